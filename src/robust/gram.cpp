// Gram matrices: register-tiled float kernels (AVX-512 / AVX2, picked at run time), the AMX
// path (gram_amx.cpp) above 64 vectors, BLAS dsyrk for double; distances from a Gram matrix.
#include "common.hpp"
#include "p2pnode/robust/gram.hpp"

#include <cstring>
#include <stdexcept>
#include <atomic>
#include <cstdint>
#include <numeric>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include <immintrin.h>

#include <cblas.h>


namespace p2p::robust::detail {

namespace {

void syrk(std::size_t n, std::size_t k, const double* a, double* acc, std::vector<double>&) {
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, static_cast<int>(n), static_cast<int>(k), 1.0, a,
                static_cast<int>(k), 1.0, acc, static_cast<int>(n));
}

}  // namespace

namespace {

// For a few vectors: all pairwise dot products of one block straight from the inputs (no
// stacking copy), 8 float lanes at a time; block partials are added into double.
template <class T>
inline void gram_block_direct(Vectors<T> in, std::size_t j0, std::size_t len, double* g) {
    constexpr std::size_t W = 32 / sizeof(T);
    using V [[gnu::vector_size(W * sizeof(T))]] = T;
    const std::size_t n = in.size();
    for (std::size_t a = 0; a < n; ++a)
        for (std::size_t b = a; b < n; ++b) {
            const T* x = in[a].data() + j0;
            const T* y = in[b].data() + j0;
            V acc = {};
            std::size_t l = 0;
            for (; l + W <= len; l += W) {
                V vx, vy;
                std::memcpy(&vx, x + l, sizeof(V));
                std::memcpy(&vy, y + l, sizeof(V));
                acc += vx * vy;
            }
            double s = 0;
            for (std::size_t k = 0; k < W; ++k) s += acc[k];
            for (; l < len; ++l) s += static_cast<double>(x[l]) * y[l];
            g[a * n + b] += s;
        }
}

__attribute__((target_clones("avx2", "default"))) void gram_direct(Vectors<double> in, std::size_t j0,
                                                                     std::size_t len, double* g) {
    gram_block_direct(in, j0, len, g);
}

}  // namespace

namespace {

// Float Gram kernel: rows in RA x RB tiles, each tile's dot products accumulated in float
// vector registers over one column chunk (at most kChunk floats, so a lane sums <= 256
// products), then reduced and added into double. W float lanes per vector and the tile fill
// the registers: 6 x 4 tiles of 16 lanes for AVX-512 (32 registers), 3 x 4 of 8 for AVX2 (16).
// Rows past n repeat row n-1; their products are computed and dropped.
constexpr std::size_t kChunk = 2048;
constexpr std::size_t kPackAbove = 24;
constexpr std::size_t kPackedChunk = 1024;
constexpr std::size_t kAmxChunk = 512;
// Below this many vectors, splitting every value into digits costs more than the tiles save
// (measured at d = 4096 to 206922: AMX 1.3x slower at n = 30, even at 64, 1.2-1.4x faster from
// 100 on).
constexpr std::size_t kAmxAbove = 64;

template <std::size_t W>
using FloatVec [[gnu::vector_size(W * sizeof(float))]] = float;

// The sum of a vector's lanes: halves added in float down to 4 lanes, then in double.
template <std::size_t W>
[[gnu::always_inline]] inline double lane_sum(FloatVec<W> v) {
    if constexpr (W > 4) {
        FloatVec<W / 2> lo, hi;
        std::memcpy(&lo, &v, sizeof(lo));
        std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof(lo), sizeof(hi));
        return lane_sum<W / 2>(lo + hi);
    } else {
        double s = 0;
        for (std::size_t k = 0; k < W; ++k) s += v[k];
        return s;
    }
}

// GCC 12's AVX-512 shuffle intrinsics start from _mm512_undefined_ps, which -Wmaybe-uninitialized
// reports as a use of an uninitialised value (a false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// Sums of the lanes of 16 vectors in one vector: v[4 * y + x] (x, y < 4) ends up in lane 4x + y,
// its 16 lanes added in a tree of in-register shuffles.
__attribute__((target("avx512f"))) inline __m512 lane_sums_16(const __m512* v) {
    __m512 s[8], t[4], u[2];
    for (int p = 0; p < 8; ++p)  // 128-bit quarters: a0+a2, a1+a3, b0+b2, b1+b3
        s[p] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0xEE));
    for (int p = 0; p < 4; ++p)  // quarter k holds four partial sums of v[4p + k]
        t[p] = _mm512_add_ps(_mm512_shuffle_f32x4(s[2 * p], s[2 * p + 1], 0x88),
                             _mm512_shuffle_f32x4(s[2 * p], s[2 * p + 1], 0xDD));
    for (int p = 0; p < 2; ++p)  // quarter k: two partials each of v[8p + k], v[8p + 4 + k]
        u[p] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * p], t[2 * p + 1], 0x44),
                             _mm512_shuffle_ps(t[2 * p], t[2 * p + 1], 0xEE));
    // quarter k: the sums of v[k], v[4 + k], v[8 + k], v[12 + k]
    return _mm512_add_ps(_mm512_shuffle_ps(u[0], u[1], 0x88), _mm512_shuffle_ps(u[0], u[1], 0xDD));
}

// Adds the lane sums of a 6 x 4 tile of accumulators to g[x * n + y], in double.
__attribute__((target("avx512f"))) void add_tile_6x4(const FloatVec<16> (&acc)[6][4], double* g, std::size_t n) {
    __m512 v[16];
    for (int part = 0; part < 2; ++part) {  // rows 0-3, then rows 4-5 with two zero rows
        for (int x = 0; x < 4; ++x)
            for (int y = 0; y < 4; ++y) {
                const int row = part * 4 + x;
                v[4 * y + x] = row < 6 ? reinterpret_cast<const __m512&>(acc[row][y]) : _mm512_setzero_ps();
            }
        const __m512 sums = lane_sums_16(v);  // lane 4x + y: row part*4 + x, column y
        const __m256 lo = _mm512_castps512_ps256(sums);
        const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sums), 1));
        const __m128 rows4[4] = {_mm256_castps256_ps128(lo), _mm256_extractf128_ps(lo, 1),
                                 _mm256_castps256_ps128(hi), _mm256_extractf128_ps(hi, 1)};
        for (int x = 0; x < 4 && part * 4 + x < 6; ++x) {
            double* out = g + static_cast<std::size_t>(part * 4 + x) * n;
            _mm256_storeu_pd(out, _mm256_add_pd(_mm256_loadu_pd(out), _mm256_cvtps_pd(rows4[x])));
        }
    }
}

#pragma GCC diagnostic pop

// acc[x][y] += the products of rows a[x] and b[y], W lanes at a time, over `steps` vectors.
template <std::size_t W, std::size_t RA, std::size_t RB>
[[gnu::always_inline]] inline void tile_products(const float* const (&a)[RA], const float* const (&b)[RB],
                                                 std::size_t steps, FloatVec<W> (&acc)[RA][RB]) {
    using V = FloatVec<W>;
#pragma GCC unroll 4
    for (std::size_t st = 0; st < steps; ++st) {
        V va[RA];
#pragma GCC unroll 8
        for (std::size_t x = 0; x < RA; ++x) std::memcpy(&va[x], a[x] + st * W, sizeof(V));
#pragma GCC unroll 8
        for (std::size_t y = 0; y < RB; ++y) {
            V vb;
            std::memcpy(&vb, b[y] + st * W, sizeof(V));
#pragma GCC unroll 8
            for (std::size_t x = 0; x < RA; ++x) acc[x][y] += va[x] * vb;
        }
    }
}

template <std::size_t W, std::size_t RA, std::size_t RB>
[[gnu::always_inline]] inline void gram_chunk(const float* const* rows, std::size_t n, std::size_t j0,
                                              std::size_t len, double* g) {
    using V = FloatVec<W>;
    const std::size_t steps = len / W;
    for (std::size_t I = 0; I < n; I += RA) {
        const float* a[RA];
        for (std::size_t x = 0; x < RA; ++x) a[x] = rows[std::min(I + x, n - 1)] + j0;
        for (std::size_t J = I / RB * RB; J < n; J += RB) {
            const float* b[RB];
            for (std::size_t y = 0; y < RB; ++y) b[y] = rows[std::min(J + y, n - 1)] + j0;
            V acc[RA][RB] = {};
            tile_products<W, RA, RB>(a, b, steps, acc);
            if constexpr (W == 16 && RA == 6 && RB == 4) {
                // Whole tile inside the matrix and no tail: reduce all 24 sums at once. (Sums
                // below the diagonal are overwritten from above it when the Gram is finished.)
                if (I + RA <= n && J + RB <= n && steps * W == len) {
                    add_tile_6x4(acc, g + I * n + J, n);
                    continue;
                }
            }
            for (std::size_t x = 0; x < RA; ++x)
                for (std::size_t y = 0; y < RB; ++y) {
                    const std::size_t i = I + x, j = J + y;
                    if (i >= n || j >= n || j < i) continue;
                    double sum = lane_sum<W>(acc[x][y]);
                    for (std::size_t l = steps * W; l < len; ++l)
                        sum += static_cast<double>(rows[i][j0 + l]) * rows[j][j0 + l];
                    g[i * n + j] += sum;
                }
        }
    }
}

// Few rows (at most kPackAbove, read in place, not packed): rows in blocks of B, each block
// with itself as a triangle (its B(B+1)/2 pairs, B loads for as many products) and with each
// later block as a B x B square, so no product is computed twice or for a row past n but the
// last block's.
// The tiles' partial sums stay in L1 while all tiles sweep kSweep vectors of every row at a
// time: the rows then stream in once, front to back, as the hardware prefetchers expect, and
// memory reads overlap the products.
template <std::size_t W, std::size_t B>
[[gnu::always_inline]] inline void gram_chunk_blocks(const float* const* rows, std::size_t n, std::size_t j0,
                                                     std::size_t len, double* g) {
    using V = FloatVec<W>;
    constexpr std::size_t kTri = B * (B + 1) / 2, kSweep = 16, kMaxBlocks = (kPackAbove + B - 1) / B;
    const std::size_t steps = len / W, blocks = (n + B - 1) / B;
    if (blocks > kMaxBlocks) throw std::logic_error("gram_chunk_blocks: more than kPackAbove rows");
    V tri[kMaxBlocks][kTri];
    V sq[kMaxBlocks * (kMaxBlocks - 1) / 2][B][B];
    std::memset(tri, 0, sizeof(V) * kTri * blocks);
    std::memset(sq, 0, sizeof(V) * B * B * (blocks * (blocks - 1) / 2));
    for (std::size_t s0 = 0; s0 < steps; s0 += kSweep) {
        const std::size_t sweep = std::min(steps - s0, kSweep);
        std::size_t pair = 0;
        for (std::size_t p = 0; p < blocks; ++p) {
            const float* a[B];
            for (std::size_t x = 0; x < B; ++x) a[x] = rows[std::min(p * B + x, n - 1)] + j0 + s0 * W;
            V acc[kTri];
            std::memcpy(acc, tri[p], sizeof(acc));
#pragma GCC unroll 4
            for (std::size_t st = 0; st < sweep; ++st) {
                V va[B];
#pragma GCC unroll 8
                for (std::size_t x = 0; x < B; ++x) std::memcpy(&va[x], a[x] + st * W, sizeof(V));
                std::size_t k = 0;
#pragma GCC unroll 8
                for (std::size_t x = 0; x < B; ++x)
#pragma GCC unroll 8
                    for (std::size_t y = x; y < B; ++y) acc[k++] += va[x] * va[y];
            }
            std::memcpy(tri[p], acc, sizeof(acc));
            for (std::size_t q = p + 1; q < blocks; ++q, ++pair) {
                const float* b[B];
                for (std::size_t y = 0; y < B; ++y) b[y] = rows[std::min(q * B + y, n - 1)] + j0 + s0 * W;
                V sums[B][B];
                std::memcpy(sums, sq[pair], sizeof(sums));
                tile_products<W, B, B>(a, b, sweep, sums);
                std::memcpy(sq[pair], sums, sizeof(sums));
            }
        }
    }
    auto add = [&](std::size_t i, std::size_t j, V acc) {
        if (i >= n || j >= n) return;
        double sum = lane_sum<W>(acc);
        for (std::size_t l = steps * W; l < len; ++l) sum += static_cast<double>(rows[i][j0 + l]) * rows[j][j0 + l];
        g[i * n + j] += sum;
    };
    std::size_t pair = 0;
    for (std::size_t p = 0; p < blocks; ++p) {
        std::size_t k = 0;
        for (std::size_t x = 0; x < B; ++x)
            for (std::size_t y = x; y < B; ++y) add(p * B + x, p * B + y, tri[p][k++]);
        for (std::size_t q = p + 1; q < blocks; ++q, ++pair)
            for (std::size_t x = 0; x < B; ++x)
                for (std::size_t y = 0; y < B; ++y) add(p * B + x, q * B + y, sq[pair][x][y]);
    }
}

__attribute__((target("avx512f,fma"))) void gram_few_avx512(const float* const* rows, std::size_t n,
                                                            std::size_t j0, std::size_t len, double* g) {
    gram_chunk_blocks<16, 5>(rows, n, j0, len, g);
}
__attribute__((target("avx2,fma"))) void gram_few_avx2(const float* const* rows, std::size_t n, std::size_t j0,
                                                       std::size_t len, double* g) {
    gram_chunk_blocks<8, 3>(rows, n, j0, len, g);
}
void gram_few_plain(const float* const* rows, std::size_t n, std::size_t j0, std::size_t len, double* g) {
    gram_chunk_blocks<4, 3>(rows, n, j0, len, g);
}

__attribute__((target("avx512f,fma"))) void gram_chunk_avx512(const float* const* rows, std::size_t n,
                                                              std::size_t j0, std::size_t len, double* g) {
    gram_chunk<16, 6, 4>(rows, n, j0, len, g);
}
__attribute__((target("avx2,fma"))) void gram_chunk_avx2(const float* const* rows, std::size_t n, std::size_t j0,
                                                         std::size_t len, double* g) {
    gram_chunk<8, 3, 4>(rows, n, j0, len, g);
}
void gram_chunk_plain(const float* const* rows, std::size_t n, std::size_t j0, std::size_t len, double* g) {
    gram_chunk<4, 3, 4>(rows, n, j0, len, g);
}

using GramChunk = void (*)(const float* const*, std::size_t, std::size_t, std::size_t, double*);

GramChunk pick_gram_chunk(bool few) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return few ? gram_few_avx512 : gram_chunk_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return few ? gram_few_avx2 : gram_chunk_avx2;
    return few ? gram_few_plain : gram_chunk_plain;
}

// Column chunks spread over the threads; each thread sums into its own matrix. More than
// kAmxAbove rows go to AMX tiles where the CPU has them (gram_amx.cpp) unless `tiles` is
// false or a value is not finite or above 1e18.
std::vector<double> gram_float(Vectors<float> in, bool tiles) {
    static const GramChunk tiles_fn = pick_gram_chunk(false), few_fn = pick_gram_chunk(true);
    const std::size_t n = in.size(), d = in.empty() ? 0 : in[0].size();
    std::vector<const float*> rows(n);
    for (std::size_t i = 0; i < n; ++i) rows[i] = in[i].data();
    const bool amx = tiles && n > kAmxAbove && amx_available();
    const bool pack = !amx && n > kPackAbove;
    const GramChunk chunk_fn = pack ? tiles_fn : few_fn;
    // packed: a 6-row tile's chunks (6 x 4 KiB) stay in L1 while the other rows stream past;
    // AMX: the digits of a 16-row block (3 x 16 x 512 bytes) do
    const std::size_t chunk = amx ? kAmxChunk : pack ? kPackedChunk : kChunk;
    const std::size_t chunks = (d + chunk - 1) / chunk;
    // A helper thread is worth waking (~40 us when it sleeps) only for a few hundred
    // microseconds of work.
    const double flops = static_cast<double>(n) * static_cast<double>(n + 1) * static_cast<double>(d);
    const std::size_t threads = flops < 2e7 ? 1 : worker_count(chunks);
    // Per-thread sums, kept by the calling thread between calls: a fresh 300 KiB matrix per
    // call and thread would be paid for in page faults.
    thread_local std::vector<std::vector<double>> sums;
    if (sums.size() < threads) sums.resize(threads);
    std::vector<std::vector<double>>& part = sums;  // each thread zeroes its own
    // Inputs are separate buffers, often page-aligned alike, so their chunks compete for the
    // same L1 sets; past a few rows each chunk is first packed into one aligned buffer whose
    // rows are a cache line apart in set terms (stride chunk + 16 floats).
    thread_local std::vector<std::vector<float>> scratch;  // kept by the calling thread between calls
    if (scratch.size() < threads) scratch.resize(threads);
    std::vector<std::vector<float>>& buffers = scratch;  // the caller's, also in the workers
    std::atomic<bool> refused{false};                    // AMX met a value it leaves to the float kernels
    parallel_ranges(chunks, threads, [&](std::size_t t, std::size_t c0, std::size_t c1) {
        part[t].assign(n * n, 0.0);
        if (amx) {
            thread_local AmxScratch amx_buffers;  // this thread's, kept between calls
            for (std::size_t c = c0; c < c1 && !refused.load(std::memory_order_relaxed); ++c) {
                const std::size_t len = std::min(chunk, d - c * chunk);
                if (!gram_chunk_amx(rows.data(), n, c * chunk, len, part[t].data(), amx_buffers)) refused.store(true);
            }
            return;
        }
        const std::size_t stride = chunk + 16;
        std::vector<float>& buffer = buffers[t];
        float* base = pack ? aligned_in(buffer, n * stride) : nullptr;
        std::vector<const float*> packed(n);
        for (std::size_t i = 0; i < n && pack; ++i) packed[i] = base + i * stride;
        for (std::size_t c = c0; c < c1; ++c) {
            const std::size_t j0 = c * chunk, len = std::min(chunk, d - j0);
            if (!pack) {
                chunk_fn(rows.data(), n, j0, len, part[t].data());
                continue;
            }
            for (std::size_t i = 0; i < n; ++i) std::copy_n(rows[i] + j0, len, base + i * stride);
            chunk_fn(packed.data(), n, 0, len, part[t].data());
        }
    });
    if (refused.load()) return gram_float(in, false);  // the float kernels' rules for inf and NaN
    // The threads' sums added and mirrored below the diagonal, row i (from the diagonal on)
    // by one thread.
    std::vector<double> g(n * n);
    parallel_for(n, static_cast<double>(threads) * static_cast<double>(n) * static_cast<double>(n),
                 [&](std::size_t i0, std::size_t i1) {
                     for (std::size_t i = i0; i < i1; ++i)
                         for (std::size_t j = i; j < n; ++j) {
                             double v = part[0][i * n + j];
                             for (std::size_t t = 1; t < threads; ++t) v += part[t][i * n + j];
                             g[i * n + j] = v;
                             g[j * n + i] = v;
                         }
                 });
    return g;
}

}  // namespace

template <>
std::vector<double> gram<float>(Vectors<float> in) {
    return gram_float(in, true);
}

template <>
std::vector<double> gram<double>(Vectors<double> in) {
    using T = double;
    const std::size_t n = in.size(), d = in.empty() ? 0 : in[0].size();
    std::vector<double> g(n * n, 0.0);
    if (n <= 8) {
        // Few vectors: BLAS would need them stacked; reading them in place is faster.
        for (std::size_t j0 = 0; j0 < d; j0 += 2048) gram_direct(in, j0, std::min<std::size_t>(2048, d - j0), g.data());
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < i; ++j) g[i * n + j] = g[j * n + i];
        return g;
    }
    // Blocks of about 256 KiB: stacked once, multiplied while in cache. Float blocks are
    // summed into double between blocks, which keeps the rounding error of long vectors small.
    const std::size_t block = std::max<std::size_t>(256, (256 * 1024) / (sizeof(T) * std::max<std::size_t>(n, 1)));
    std::vector<T> stack(n * std::min(block, d));
    std::vector<T> tmp;
    for (std::size_t j0 = 0; j0 < d; j0 += block) {
        const std::size_t len = std::min(block, d - j0);
        for (std::size_t i = 0; i < n; ++i) std::copy_n(in[i].data() + j0, len, stack.data() + i * len);
        syrk(n, len, stack.data(), g.data(), tmp);
    }
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < i; ++j) g[i * n + j] = g[j * n + i];
    return g;
}

std::vector<double> distances_from_gram(std::vector<double> g, std::size_t n) {
    // in place: the diagonal is kept aside, every other entry needs only itself and it
    std::vector<double> diag(n);
    for (std::size_t i = 0; i < n; ++i) diag[i] = g[i * n + i];
    parallel_for(n, 20.0 * static_cast<double>(n) * static_cast<double>(n), [&](std::size_t i0, std::size_t i1) {
        for (std::size_t i = i0; i < i1; ++i)
            for (std::size_t j = 0; j < n; ++j) {
                const double v = i == j ? 0.0 : diag[i] + diag[j] - 2.0 * g[i * n + j];
                g[i * n + j] = std::isfinite(v) && std::isfinite(diag[i]) ? std::max(0.0, v) : kInf;
            }
    });
    return g;
}
}  // namespace p2p::robust::detail

namespace p2p::robust {

template <class T>
std::vector<double> gram(Vectors<T> in) {
    return detail::gram<T>(in);
}
template std::vector<double> gram<float>(Vectors<float>);
template std::vector<double> gram<double>(Vectors<double>);

}  // namespace p2p::robust
