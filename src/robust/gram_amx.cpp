// The float Gram matrix on Intel AMX, in exact integer arithmetic.
//
// In a column chunk, row i's values are written in fixed point against the row's largest
// magnitude m_i there: Q = round(x * S / m_i) with S = 2^23 - 2^16, an integer of 24 bits
// like a float's significand, split into three signed 8-bit digits, Q = 2^16 q0 + 2^8 q1 + q2.
// The tile unit multiplies digits exactly into int32 sums, so over the chunk
//   <x_i, x_j> = (2^8 m_i / S) (2^8 m_j / S) (2^16 C0 + 2^8 C1 + C2) + e,
//   C0 = sum q0 p0, C1 = sum (q0 p1 + q1 p0), C2 = sum (q0 p2 + q1 p1 + q2 p0),
// where e holds the rounding of Q (at most m / 2^24 per value) and the three digit products
// of weight below 2^16, left out (below 2^-23 of m_i m_j each, of either sign). That is a
// float's precision per term without a float sum's rounding; chunks are added in double.
#include "common.hpp"

#include <atomic>
#include <cpuid.h>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

// GCC 12's AVX-512 intrinsics start from undefined vectors, which -W(maybe-)uninitialized
// reports as uses of uninitialised values (false positives).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace p2p::robust::detail {

namespace {

constexpr std::size_t kTile = 16;   // tile rows, and int32 columns of a result tile
constexpr std::size_t kStep = 64;   // int8 values per tile row: the columns one tile product covers
constexpr float kS = 8323072.0f;    // 2^23 - 2^16: |Q| <= kS keeps q0 within [-127, 127]
// Larger values are left to the float kernels, whose products of them overflow to inf, so
// that inputs that large mean the same (infinitely far) on every CPU.
constexpr float kLargest = 1e18f;

// Linux: the tile data state must be asked for (once; it then holds for every thread).
constexpr long kArchReqXcompPerm = 0x1023;
constexpr long kXfeatureXtileData = 18;

bool probe_amx() {
    const char* off = std::getenv("P2PNODE_NO_AMX");
    if (off && *off && std::strcmp(off, "0") != 0) return false;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c >> 27 & 1)) return false;  // OSXSAVE
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool avx512 = (b >> 16 & 1) && (b >> 30 & 1) && (b >> 31 & 1);  // F, BW, VL
    const bool tiles = (d >> 24 & 1) && (d >> 25 & 1);                   // AMX-TILE, AMX-INT8
    if (!avx512 || !tiles) return false;
    unsigned lo = 0, hi = 0;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    const std::uint64_t xcr0 = (std::uint64_t{hi} << 32) | lo;
    constexpr std::uint64_t want = 0xE6 | (std::uint64_t{3} << 17);  // SSE, AVX, AVX-512, tile state
    if ((xcr0 & want) != want) return false;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) == 0;
}

std::atomic<bool> g_allowed{true};

struct alignas(64) TileConfig {
    std::uint8_t palette = 1;
    std::uint8_t start_row = 0;
    std::uint8_t reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};
};

#define P2P_AMX_TARGET __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl")))

// Row x's `len` values (zero up to K) as digit rows d0, d1, d2 of K bytes; returns x's scale
// 2^8 m / S, or a negative number when a value is NaN or above kLargest in magnitude.
P2P_AMX_TARGET double digits(const float* x, std::size_t len, std::size_t K, std::int8_t* d0, std::int8_t* d1,
                             std::int8_t* d2) {
    auto mask = [&](std::size_t k) {
        return k + 16 <= len ? __mmask16(0xFFFF) : k < len ? __mmask16((1u << (len - k)) - 1) : __mmask16(0);
    };
    __m512 top = _mm512_setzero_ps();
    __mmask16 nan = 0;
    for (std::size_t k = 0; k < len; k += 16) {
        const __m512 v = _mm512_maskz_loadu_ps(mask(k), x + k);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        top = _mm512_max_ps(top, _mm512_abs_ps(v));
    }
    const float m = _mm512_reduce_max_ps(top);
    if (nan || !(m <= kLargest)) return -1.0;
    // Values below 2^-64 are scaled up by 2^64 first (exactly), so that S / m stays finite.
    const float pre = m < 0x1p-64f ? 0x1p64f : 1.0f;
    const __m512 mult = _mm512_set1_ps(m > 0 ? kS / (m * pre) : 0.0f);
    const __m512 vpre = _mm512_set1_ps(pre);
    for (std::size_t k = 0; k < K; k += 16) {
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask(k), x + k), vpre);
        const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(v, mult));
        const __m512i q2 = _mm512_srai_epi32(_mm512_slli_epi32(q, 24), 24);
        const __m512i r1 = _mm512_srai_epi32(_mm512_sub_epi32(q, q2), 8);
        const __m512i q1 = _mm512_srai_epi32(_mm512_slli_epi32(r1, 24), 24);
        const __m512i q0 = _mm512_srai_epi32(_mm512_sub_epi32(r1, q1), 8);
        _mm_store_si128(reinterpret_cast<__m128i*>(d0 + k), _mm512_cvtepi32_epi8(q0));
        _mm_store_si128(reinterpret_cast<__m128i*>(d1 + k), _mm512_cvtepi32_epi8(q1));
        _mm_store_si128(reinterpret_cast<__m128i*>(d2 + k), _mm512_cvtepi32_epi8(q2));
    }
    return static_cast<double>(m) * 256.0 / static_cast<double>(kS);
}

// 16 x 16 transpose of 32-bit values: out row r, lane c = in row c, lane r.
P2P_AMX_TARGET inline void transpose16(const std::uint32_t* in, std::size_t in_stride, std::uint32_t* out) {
    __m512i r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_load_si512(in + i * in_stride);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    // 4 x 4 blocks are transposed within 128-bit quarters; two shuffles of quarters place them
    for (int i = 0; i < 4; ++i) {
        t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; ++i) {
        r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xDD);
        r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xDD);
    }
    for (int i = 0; i < 16; ++i) _mm512_store_si512(out + i * 16, r[i]);
}

P2P_AMX_TARGET inline __m512d eight(const std::int32_t* p) {
    return _mm512_cvtepi32_pd(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)));
}

// g[i][j] += s_i s_j (2^16 C0 + 2^8 C1 + C2) for the result tile (ib, jb), columns on or above
// the diagonal and below n; c holds C0, C1, C2 as 16 x 16 int32 each.
P2P_AMX_TARGET void add_tile(const std::int32_t* c, const double* scale, std::size_t n, std::size_t ib,
                             std::size_t jb, double* g) {
    const __m512d w0 = _mm512_set1_pd(65536.0), w1 = _mm512_set1_pd(256.0);
    for (std::size_t r = 0; r < kTile; ++r) {
        const std::size_t i = ib * kTile + r;
        if (i >= n) return;
        const __m512d si = _mm512_set1_pd(scale[i]);
        for (std::size_t h = 0; h < 2; ++h) {
            const std::size_t j = jb * kTile + h * 8;
            if (j >= n || j + 8 <= i) continue;
            unsigned m = 0xFF;
            if (j + 8 > n) m &= (1u << (n - j)) - 1;
            if (j < i) m &= ~((1u << (i - j)) - 1) & 0xFF;
            const std::int32_t* at = c + r * kTile + h * 8;
            const __m512d v = _mm512_fmadd_pd(eight(at), w0, _mm512_fmadd_pd(eight(at + 256), w1, eight(at + 512)));
            const __m512d add = _mm512_mul_pd(_mm512_mul_pd(v, si), _mm512_loadu_pd(scale + j));
            double* out = g + i * n + j;
            _mm512_mask_storeu_pd(out, __mmask8(m), _mm512_add_pd(_mm512_maskz_loadu_pd(__mmask8(m), out), add));
        }
    }
}

}  // namespace

bool amx_available() {
    static const bool ok = probe_amx();
    return ok && g_allowed.load();
}

void allow_amx(bool allowed) { g_allowed.store(allowed); }

// Layouts for a chunk of K columns (K a multiple of 64) and np rows (a multiple of 16), per
// digit: a row-major np x K (the A operand: a tile is 16 rows x 64 columns), and the same
// values in the tile unit's B form, one 1 KiB tile per (64-column step, 16-row block): B tile
// row r holds, for each of the block's 16 rows, its 4 values at columns 4r..4r+3 of the step.
P2P_AMX_TARGET bool gram_chunk_amx(const float* const* rows, std::size_t n, std::size_t j0, std::size_t len,
                                   double* g, AmxScratch& s) {
    const std::size_t K = (len + kStep - 1) / kStep * kStep, np = (n + kTile - 1) / kTile * kTile;
    const std::size_t steps = K / kStep, blocks = np / kTile;
    std::int8_t* a[3];
    std::int8_t* b[3];
    for (int q = 0; q < 3; ++q) {
        a[q] = aligned_in(s.a[q], np * K);
        b[q] = aligned_in(s.b[q], np * K);
    }
    s.scale.assign(np + 8, 0.0);  // + 8: whole vectors of scales past the last block
    std::int32_t* c = aligned_in(s.c, 3 * kTile * kTile);
    for (std::size_t i = 0; i < n; ++i) {
        if (i + 2 < n)  // a later row's chunk on its way while this one is split
            for (std::size_t k = 0; k < len; k += 16)
                _mm_prefetch(reinterpret_cast<const char*>(rows[i + 2] + j0 + k), _MM_HINT_T0);
        s.scale[i] = digits(rows[i] + j0, len, K, a[0] + i * K, a[1] + i * K, a[2] + i * K);
        if (s.scale[i] < 0) return false;
    }
    for (int q = 0; q < 3; ++q) std::memset(a[q] + n * K, 0, (np - n) * K);
    const std::size_t quads = K / 4;  // 4-value groups per row
    for (int q = 0; q < 3; ++q)
        for (std::size_t st = 0; st < steps; ++st)
            for (std::size_t jb = 0; jb < blocks; ++jb)
                transpose16(reinterpret_cast<const std::uint32_t*>(a[q]) + jb * kTile * quads + st * 16, quads,
                            reinterpret_cast<std::uint32_t*>(b[q] + (st * blocks + jb) * 1024));
    TileConfig cfg;
    for (int t = 0; t < 8; ++t) {
        cfg.rows[t] = kTile;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    // tiles 0-2: C0, C1, C2; 3-5: A digits 0-2; 6, 7: B digits
    for (std::size_t ib = 0; ib < blocks; ++ib)
        for (std::size_t jb = ib; jb < blocks; ++jb) {
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            for (std::size_t st = 0; st < steps; ++st) {
                const std::size_t ao = ib * kTile * K + st * kStep, bo = (st * blocks + jb) * 1024;
                _tile_loadd(3, a[0] + ao, K);
                _tile_loadd(4, a[1] + ao, K);
                _tile_loadd(5, a[2] + ao, K);
                _tile_loadd(6, b[0] + bo, 64);
                _tile_dpbssd(0, 3, 6);
                _tile_dpbssd(1, 4, 6);
                _tile_dpbssd(2, 5, 6);
                _tile_loadd(7, b[1] + bo, 64);
                _tile_dpbssd(1, 3, 7);
                _tile_dpbssd(2, 4, 7);
                _tile_loadd(6, b[2] + bo, 64);
                _tile_dpbssd(2, 3, 6);
            }
            _tile_stored(0, c, 64);
            _tile_stored(1, c + 256, 64);
            _tile_stored(2, c + 512, 64);
            add_tile(c, s.scale.data(), n, ib, jb, g);
        }
    _tile_release();
    return true;
}

}  // namespace p2p::robust::detail

#pragma GCC diagnostic pop

namespace p2p::robust {

bool amx_available() { return detail::amx_available(); }
void allow_amx(bool allowed) { detail::allow_amx(allowed); }

}  // namespace p2p::robust
