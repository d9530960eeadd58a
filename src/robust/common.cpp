#include "common.hpp"

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

std::atomic<int> g_threads{1};

std::size_t worker_count(std::size_t tasks) {
    return std::clamp<std::size_t>(static_cast<std::size_t>(g_threads.load()), 1, std::max<std::size_t>(tasks, 1));
}

// Helper threads kept between parallel regions: starting threads per region cost ~50 us and
// page faults in their fresh heaps. Waking a sleeping thread costs another ~40 us on these VMs,
// so a helper spins for a short while after each job (regions often come back to back) and the
// caller spins while the helpers finish, each for at most kSpin before sleeping. One region
// uses the pool at a time; a region that finds it busy (nodes run as threads of one process
// aggregate at once) starts threads of its own.
class Pool {
public:
    ~Pool() {
        {
            std::lock_guard<std::mutex> lock(m_);
            stop_ = true;
        }
        wake_.notify_all();
        for (auto& t : threads_) t.join();
    }

    // Runs job(t) for t in [1, helpers] on pool threads and job(0) on the caller; returns
    // false, running nothing, when the pool is busy.
    bool run(std::size_t helpers, const std::function<void(std::size_t)>& job) {
        std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
        if (!busy.owns_lock()) return false;
        {
            std::lock_guard<std::mutex> lock(m_);
            while (threads_.size() < helpers) {
                const std::size_t id = threads_.size() + 1;
                threads_.emplace_back([this, id] { work(id); });
            }
            job_ = &job;
            helpers_ = helpers;
            error_ = nullptr;
            pending_.store(helpers);
            generation_.fetch_add(1);
        }
        wake_.notify_all();
        std::exception_ptr own;
        try {
            job(0);
        } catch (...) {
            own = std::current_exception();
        }
        spin_until([&] { return pending_.load() == 0; });
        std::unique_lock<std::mutex> lock(m_);
        done_.wait(lock, [&] { return pending_.load() == 0; });
        job_ = nullptr;
        if (!own) own = error_;
        lock.unlock();
        if (own) std::rethrow_exception(own);
        return true;
    }

private:
    static constexpr auto kSpin = std::chrono::microseconds(200);

    template <class Ready>
    static void spin_until(Ready ready) {
        const auto until = std::chrono::steady_clock::now() + kSpin;
        while (!ready()) {
            for (int i = 0; i < 64 && !ready(); ++i) _mm_pause();
            if (std::chrono::steady_clock::now() > until) return;
        }
    }

    void work(std::size_t id) {
        std::uint64_t seen = 0;
        for (;;) {
            spin_until([&] { return generation_.load() != seen; });
            const std::function<void(std::size_t)>* job = nullptr;
            {
                std::unique_lock<std::mutex> lock(m_);
                wake_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
                if (stop_) return;
                seen = generation_.load();
                if (id <= helpers_) job = job_;  // else a smaller region: not needed this time
            }
            if (!job) continue;
            std::exception_ptr error;
            try {
                (*job)(id);
            } catch (...) {
                error = std::current_exception();
            }
            if (error) {
                std::lock_guard<std::mutex> lock(m_);
                if (!error_) error_ = error;
            }
            if (pending_.fetch_sub(1) == 1) {
                std::lock_guard<std::mutex> lock(m_);  // the caller checks pending_ under m_
                done_.notify_one();
            }
        }
    }

    std::mutex busy_;  // held by the region using the pool
    std::mutex m_;
    std::condition_variable wake_, done_;
    std::vector<std::thread> threads_;
    const std::function<void(std::size_t)>* job_ = nullptr;
    std::size_t helpers_ = 0;
    std::atomic<std::size_t> pending_{0};
    std::atomic<std::uint64_t> generation_{0};
    std::exception_ptr error_;
    bool stop_ = false;
};

Pool& pool() {
    static Pool instance;
    return instance;
}

// Splits [0, tasks) into `threads` contiguous ranges: fn(t, begin, end) runs range t, range 0 on
// the caller's thread, the others on pool threads (or threads of their own when the pool is
// busy). Returns when every range is done.
template <class Fn>
void parallel_ranges(std::size_t tasks, std::size_t threads, Fn&& fn) {
    auto range = [&](std::size_t t) { return std::make_pair(tasks * t / threads, tasks * (t + 1) / threads); };
    const std::function<void(std::size_t)> job = [&](std::size_t t) {
        const auto [b, e] = range(t);
        fn(t, b, e);
    };
    if (threads <= 1) {
        job(0);
        return;
    }
    if (pool().run(threads - 1, job)) return;
    std::vector<std::thread> workers;
    for (std::size_t t = 1; t < threads; ++t) workers.emplace_back(job, t);
    job(0);
    for (auto& w : workers) w.join();
}

}  // namespace

void parallel_for(std::size_t tasks, double work, const std::function<void(std::size_t, std::size_t)>& fn) {
    const std::size_t threads = work < 5e5 ? 1 : worker_count(tasks);
    parallel_ranges(tasks, threads, [&](std::size_t, std::size_t b, std::size_t e) {
        if (b < e) fn(b, e);
    });
}

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

}  // namespace p2p::robust::detail

namespace p2p::robust {

void set_threads(int threads) { detail::g_threads.store(std::max(1, threads)); }
int threads() { return detail::g_threads.load(); }

}  // namespace p2p::robust

namespace p2p::robust::detail {

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

namespace {

void gemm(std::size_t m, std::size_t len, std::size_t n, const float* w, const float* x, float* out, std::size_t ldc) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(len),
                static_cast<int>(n), 1.0f, w, static_cast<int>(n), x, static_cast<int>(len), 0.0f, out,
                static_cast<int>(ldc));
}
void gemm(std::size_t m, std::size_t len, std::size_t n, const double* w, const double* x, double* out,
          std::size_t ldc) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(len),
                static_cast<int>(n), 1.0, w, static_cast<int>(n), x, static_cast<int>(len), 0.0, out,
                static_cast<int>(ldc));
}

}  // namespace

template <class T>
void combine_rows(Vectors<T> in, const std::vector<double>& w, std::size_t m, T* out) {
    const std::size_t n = in.size(), d = in.empty() ? 0 : in[0].size();
    std::vector<T> wt(w.begin(), w.end());
    const std::size_t block = std::max<std::size_t>(256, (256 * 1024) / (sizeof(T) * std::max<std::size_t>(n, 1)));
    std::vector<T> stack(n * std::min(block, d));
    for (std::size_t j0 = 0; j0 < d; j0 += block) {
        const std::size_t len = std::min(block, d - j0);
        for (std::size_t i = 0; i < n; ++i) {
            // zero weight columns may hold inf/NaN (0 * inf = NaN): store zeros for them
            bool used = false;
            for (std::size_t r = 0; r < m; ++r) used = used || w[r * n + i] != 0.0;
            if (used)
                std::copy_n(in[i].data() + j0, len, stack.data() + i * len);
            else
                std::fill_n(stack.data() + i * len, len, T(0));
        }
        gemm(m, len, n, wt.data(), stack.data(), out + j0, d);
    }
}

namespace {

// One column block of means_of_sets, kCols wide: the block of every input packed row after
// row in `packed` (contiguous, so a few hundred inputs sit in L1 together without the set
// conflicts of rows that are whole pages apart). lists[r] are the inputs output r adds or,
// when subtract[r], takes away from the block's total. Returns false, writing nothing, when a
// total is needed and not finite (an inf or NaN in the block).
template <class T, std::size_t kCols>
[[gnu::always_inline]] inline bool means_block(const T* packed, std::size_t n,
                                               const std::vector<std::vector<std::size_t>>& lists,
                                               const std::vector<char>& subtract, const std::vector<T>& inv,
                                               bool use_total, T* out, std::size_t ld) {
    T total[kCols] = {};
    if (use_total) {
        for (std::size_t k = 0; k < n; ++k)
            for (std::size_t l = 0; l < kCols; ++l) total[l] += packed[k * kCols + l];
        T probe = 0;
        for (std::size_t l = 0; l < kCols; ++l) probe += total[l] * T(0);  // NaN unless all finite
        if (probe != T(0)) return false;
    }
    constexpr std::size_t W = 64 / sizeof(T), nv = kCols / W;
    using V [[gnu::vector_size(64)]] = T;
    static_assert(kCols % W == 0);
    constexpr std::size_t P = 4;  // independent sums, so the adds are not one latency chain
    for (std::size_t r = 0; r < lists.size(); ++r) {
        V acc[P][nv] = {};
        const bool minus = subtract[r] != 0;
        const auto& list = lists[r];
        std::size_t at = 0;
        for (; at + P <= list.size(); at += P)
#pragma GCC unroll 4
            for (std::size_t p = 0; p < P; ++p) {
                const T* x = packed + list[at + p] * kCols;
#pragma GCC unroll 8
                for (std::size_t v = 0; v < nv; ++v) {
                    V xv;
                    std::memcpy(&xv, x + v * W, sizeof(V));
                    acc[p][v] += xv;
                }
            }
        for (; at < list.size(); ++at) {
            const T* x = packed + list[at] * kCols;
            for (std::size_t v = 0; v < nv; ++v) {
                V xv;
                std::memcpy(&xv, x + v * W, sizeof(V));
                acc[0][v] += xv;
            }
        }
        const T scale = inv[r];
#pragma GCC unroll 8
        for (std::size_t v = 0; v < nv; ++v) {
            V sum = (acc[0][v] + acc[1][v]) + (acc[2][v] + acc[3][v]);
            if (minus) {
                V t;
                std::memcpy(&t, total + v * W, sizeof(V));
                sum = t - sum;
            }
            const V o = sum * scale;
            std::memcpy(out + r * ld + v * W, &o, sizeof(V));
        }
    }
    return true;
}

constexpr std::size_t kMeanCols = 64;

__attribute__((target_clones("avx512f", "avx2", "default"))) bool means_block(
    const float* packed, std::size_t n, const std::vector<std::vector<std::size_t>>& lists,
    const std::vector<char>& subtract, const std::vector<float>& inv, bool use_total, float* out, std::size_t ld) {
    return means_block<float, kMeanCols>(packed, n, lists, subtract, inv, use_total, out, ld);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) bool means_block(
    const double* packed, std::size_t n, const std::vector<std::vector<std::size_t>>& lists,
    const std::vector<char>& subtract, const std::vector<double>& inv, bool use_total, double* out, std::size_t ld) {
    return means_block<double, kMeanCols>(packed, n, lists, subtract, inv, use_total, out, ld);
}

}  // namespace

template <class T>
void means_of_sets(Vectors<T> in, const std::vector<std::vector<std::size_t>>& sets, T* out) {
    const std::size_t n = in.size(), d = in.empty() ? 0 : in[0].size(), m = sets.size();
    std::vector<T> inv(m);
    for (std::size_t r = 0; r < m; ++r) inv[r] = T(1) / static_cast<T>(sets[r].size());
    // Each output adds its set's inputs, or takes the ones outside it from the total when
    // those are fewer; the total is used only where every input is finite.
    std::vector<std::vector<std::size_t>> shorter(m);
    std::vector<char> none(m, 0), minus(m, 0);
    parallel_for(m, 20.0 * static_cast<double>(m) * static_cast<double>(n), [&](std::size_t r0, std::size_t r1) {
        std::vector<char> member(n);
        for (std::size_t r = r0; r < r1; ++r) {
            std::fill(member.begin(), member.end(), char{0});
            for (std::size_t k : sets[r]) member[k] = 1;
            std::vector<std::size_t> outside;
            for (std::size_t k = 0; k < n; ++k)
                if (!member[k]) outside.push_back(k);
            minus[r] = outside.size() < sets[r].size();
            shorter[r] = minus[r] ? std::move(outside) : sets[r];
        }
    });
    const std::size_t blocks = d / kMeanCols;
    double added = 0;  // vectors summed over all outputs
    for (const auto& list : shorter) added += static_cast<double>(list.size());
    parallel_for(blocks, (added + static_cast<double>(n)) * static_cast<double>(d), [&](std::size_t b0, std::size_t b1) {
        std::vector<T> buffer;
        T* packed = aligned_in(buffer, n * kMeanCols);
        for (std::size_t b = b0; b < b1; ++b) {
            const std::size_t j0 = b * kMeanCols;
            for (std::size_t k = 0; k < n; ++k) std::copy_n(in[k].data() + j0, kMeanCols, packed + k * kMeanCols);
            if (!means_block(packed, n, shorter, minus, inv, true, out + j0, d))
                means_block(packed, n, sets, none, inv, false, out + j0, d);
        }
    });
    // the last columns, fewer than a block
    for (std::size_t r = 0; r < m; ++r)
        for (std::size_t j = blocks * kMeanCols; j < d; ++j) {
            T acc = 0;
            for (std::size_t k : sets[r]) acc += in[k][j];
            out[r * d + j] = acc * inv[r];
        }
}

template void means_of_sets<float>(Vectors<float>, const std::vector<std::vector<std::size_t>>&, float*);
template void means_of_sets<double>(Vectors<double>, const std::vector<std::vector<std::size_t>>&, double*);

template <class T>
std::vector<double> dots_with(Vectors<T> in, const std::vector<double>& v) {
    std::vector<double> out(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        double s = 0;
        const T* x = in[i].data();
        for (std::size_t j = 0; j < v.size(); ++j) s += static_cast<double>(x[j]) * v[j];
        out[i] = s;
    }
    return out;
}

template void combine_rows<float>(Vectors<float>, const std::vector<double>&, std::size_t, float*);
template void combine_rows<double>(Vectors<double>, const std::vector<double>&, std::size_t, double*);
template std::vector<double> dots_with<float>(Vectors<float>, const std::vector<double>&);
template std::vector<double> dots_with<double>(Vectors<double>, const std::vector<double>&);

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

std::vector<std::pair<std::uint32_t, std::uint32_t>> sorting_network(std::size_t n) {
    // Batcher's odd-even merge sort on the next power of two; comparators that touch an index
    // >= n are dropped, which is exact when the missing inputs are taken as +inf.
    std::vector<std::pair<std::uint32_t, std::uint32_t>> net;
    std::size_t size = 1;
    while (size < n) size <<= 1;
    for (std::size_t p = 1; p < size; p <<= 1)
        for (std::size_t k = p; k >= 1; k >>= 1)
            for (std::size_t j = k % p; j + k < size; j += 2 * k)
                for (std::size_t i = 0; i < std::min(k, size - j - k); ++i)
                    if ((i + j) / (2 * p) == (i + j + k) / (2 * p)) {
                        const std::size_t a = i + j, b = i + j + k;
                        if (b < n) net.emplace_back(static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(b));
                    }
    return net;
}

namespace {

template <class T, std::size_t W>
using Vec [[gnu::vector_size(W * sizeof(T))]] = T;

// One comparator pass over whole rows with GCC vector types: min/max as selects, so the
// AVX2 clone uses 256-bit vminps/vmaxps and the default one 128-bit SSE2.
template <class T>
inline void sort_rows(T* block, std::size_t lanes, const std::vector<std::pair<std::uint32_t, std::uint32_t>>& net) {
    constexpr std::size_t W = 64 / sizeof(T);
    using V = Vec<T, W>;
    for (const auto& [i, j] : net) {
        T* a = block + i * lanes;
        T* b = block + j * lanes;
        for (std::size_t l = 0; l < lanes; l += W) {
            V x, y;
            std::memcpy(&x, a + l, sizeof(V));
            std::memcpy(&y, b + l, sizeof(V));
            const V lo = y < x ? y : x;
            const V hi = y < x ? x : y;
            std::memcpy(a + l, &lo, sizeof(V));
            std::memcpy(b + l, &hi, sizeof(V));
        }
    }
}

}  // namespace

__attribute__((target_clones("avx512f", "avx2", "default"))) void sort_columns(
    float* block, std::size_t lanes, const std::vector<std::pair<std::uint32_t, std::uint32_t>>& net) {
    sort_rows(block, lanes, net);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void sort_columns(
    double* block, std::size_t lanes, const std::vector<std::pair<std::uint32_t, std::uint32_t>>& net) {
    sort_rows(block, lanes, net);
}

std::vector<std::size_t> smallest(const std::vector<double>& score, std::size_t k) {
    std::vector<std::size_t> idx(score.size());
    std::iota(idx.begin(), idx.end(), 0);
    k = std::min(k, idx.size());
    // ties go to the lower index, as a stable sort would order them
    auto before = [&](std::size_t a, std::size_t b) { return score[a] < score[b] || (score[a] == score[b] && a < b); };
    if (2 * k < idx.size()) {
        std::partial_sort(idx.begin(), idx.begin() + static_cast<long>(k), idx.end(), before);
    } else {
        std::sort(idx.begin(), idx.end(), before);
    }
    idx.resize(k);
    return idx;
}

namespace {

// How many of v[0, n) are below t (a branch-free count the compiler vectorises).
__attribute__((target_clones("avx512f", "avx2", "default"))) std::size_t count_below(const std::int32_t* v,
                                                                                    std::size_t n, std::int32_t t) {
    std::uint32_t c = 0;
    for (std::size_t j = 0; j < n; ++j) c += v[j] < t ? 1u : 0u;
    return c;
}

// Non-negative doubles (and +inf) order as their bit patterns do; -0 and NaN become 0 and +inf.
std::int64_t order_key(double v) {
    constexpr std::int64_t kInfBits = 0x7FF0000000000000;
    if (!(v > 0)) return v != v ? kInfBits : 0;
    std::int64_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    return std::min(bits, kInfBits);
}

}  // namespace

std::vector<std::vector<std::size_t>> nearest_sets(const std::vector<double>& d2, std::size_t n, std::size_t k) {
    std::vector<std::vector<std::size_t>> near(n);
    k = std::min(k, n);
    // A row's selection without sorting or branchy partitions: the (k-1)-th smallest high word
    // of the keys is found bit by bit with vectorised counts (31 counts), and only the keys that
    // share that high word are compared whole, ties going to the lower index.
    parallel_for(n, 30.0 * static_cast<double>(n) * static_cast<double>(n), [&](std::size_t i0, std::size_t i1) {
        const std::size_t padded = (n + 15) / 16 * 16;  // whole vectors for count_below
        std::vector<std::int64_t> key(n);
        std::vector<std::int32_t> high(padded, std::numeric_limits<std::int32_t>::max());
        std::vector<std::pair<std::int64_t, std::size_t>> tied;
        std::vector<char> chosen(n);
        std::vector<std::size_t> list(n + 1);
        for (std::size_t i = i0; i < i1; ++i) {
            if (k == 0) continue;
            for (std::size_t j = 0; j < n; ++j) {
                key[j] = order_key(d2[i * n + j]);
                high[j] = static_cast<std::int32_t>(key[j] >> 32);
            }
            high[i] = std::numeric_limits<std::int32_t>::max();  // itself: chosen apart, first
            const std::size_t want = k - 1;                       // the others to choose
            std::int32_t h = 0;  // the largest value with fewer than `want` high words below it
            if (want > 0)
                for (int bit = 30; bit >= 0; --bit) {
                    const std::int32_t candidate = h | (std::int32_t{1} << bit);
                    if (count_below(high.data(), padded, candidate) < want) h = candidate;
                }
            const std::size_t taken = want > 0 ? count_below(high.data(), padded, h) : 0;
            for (std::size_t j = 0; j < n; ++j) chosen[j] = high[j] < h;
            chosen[i] = 1;
            if (want > taken) {  // the rest from the keys whose high word is h
                tied.clear();
                for (std::size_t j = 0; j < n; ++j)
                    if (high[j] == h) tied.emplace_back(key[j], j);
                const std::size_t rest = want - taken;  // 1 <= rest <= tied.size()
                std::nth_element(tied.begin(), tied.begin() + static_cast<long>(rest - 1), tied.end());
                for (std::size_t t = 0; t < rest; ++t) chosen[tied[t].second] = 1;
            }
            std::size_t c = 0;  // the chosen indices in order, without a branch per index
            for (std::size_t j = 0; j < n; ++j) {
                list[c] = j;
                c += static_cast<std::size_t>(chosen[j]);
            }
            near[i].assign(list.begin(), list.begin() + static_cast<long>(c));
        }
    });
    return near;
}

double binomial(std::size_t n, std::size_t k) {
    if (k > n) return 0;
    k = std::min(k, n - k);
    double r = 1;
    for (std::size_t i = 1; i <= k; ++i) r = r * static_cast<double>(n - k + i) / static_cast<double>(i);
    return std::round(r);
}

double max_eigen(std::vector<double> a, std::size_t m, std::vector<double>* vector) {
    std::vector<double> v(m * m, 0.0);
    for (std::size_t i = 0; i < m; ++i) v[i * m + i] = 1.0;
    for (int sweep = 0; sweep < 60; ++sweep) {
        double off = 0, diag = 0;
        for (std::size_t i = 0; i < m; ++i) {
            diag += a[i * m + i] * a[i * m + i];
            for (std::size_t j = i + 1; j < m; ++j) off += a[i * m + j] * a[i * m + j];
        }
        if (off <= 1e-30 * (diag + 1e-300)) break;
        for (std::size_t p = 0; p < m; ++p)
            for (std::size_t q = p + 1; q < m; ++q) {
                const double apq = a[p * m + q];
                if (std::abs(apq) < 1e-300) continue;
                const double theta = (a[q * m + q] - a[p * m + p]) / (2.0 * apq);
                const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1.0));
                const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
                for (std::size_t k = 0; k < m; ++k) {  // rotate columns p, q
                    const double akp = a[k * m + p], akq = a[k * m + q];
                    a[k * m + p] = c * akp - s * akq;
                    a[k * m + q] = s * akp + c * akq;
                }
                for (std::size_t k = 0; k < m; ++k) {  // rotate rows p, q
                    const double apk = a[p * m + k], aqk = a[q * m + k];
                    a[p * m + k] = c * apk - s * aqk;
                    a[q * m + k] = s * apk + c * aqk;
                }
                for (std::size_t k = 0; k < m; ++k) {
                    const double vkp = v[k * m + p], vkq = v[k * m + q];
                    v[k * m + p] = c * vkp - s * vkq;
                    v[k * m + q] = s * vkp + c * vkq;
                }
            }
    }
    std::size_t best = 0;
    for (std::size_t i = 1; i < m; ++i)
        if (a[i * m + i] > a[best * m + best]) best = i;
    if (vector) {
        vector->resize(m);
        for (std::size_t k = 0; k < m; ++k) (*vector)[k] = v[k * m + best];
    }
    return m ? a[best * m + best] : 0.0;
}

namespace {

// One register block of C lanes starting at l0 (w of them wanted) of sum_rows.
template <class T, std::size_t C>
[[gnu::always_inline]] inline void sum_rows_block(const T* block, std::size_t lanes, std::size_t l0, std::size_t w,
                                                  std::size_t r0, std::size_t r1, T scale, T* out) {
    T acc[C];
    for (std::size_t l = 0; l < C; ++l) acc[l] = T(0);
    for (std::size_t r = r0; r < r1; ++r) {
        const T* row = block + r * lanes + l0;
        for (std::size_t l = 0; l < C; ++l) acc[l] += row[l];
    }
    for (std::size_t l = 0; l < w; ++l) out[l0 + l] = acc[l] * scale;
}

// mean_around_median over whole rows. The k closest values of a sorted column are a window
// [s, s + k); s only moves right while the next value above is closer than the lowest one, a
// test that is true for a prefix of s = 0 .. n - k - 1, so counting the true ones gives s.
template <class T>
[[gnu::always_inline]] inline void around_median_all(const T* block, std::size_t n, std::size_t k, std::size_t lanes,
                                                     std::size_t len, T* out) {
    const std::size_t mid = n / 2;
    thread_local std::vector<T> m, s;
    m.resize(len);
    s.assign(len, T(0));
    for (std::size_t l = 0; l < len; ++l)
        m[l] = n % 2 ? block[mid * lanes + l] : (block[(mid - 1) * lanes + l] + block[mid * lanes + l]) / T(2);
    for (std::size_t r = 0; r + k < n; ++r) {
        const T* lo = block + r * lanes;
        const T* hi = block + (r + k) * lanes;
        for (std::size_t l = 0; l < len; ++l) s[l] += (hi[l] - m[l] < m[l] - lo[l]) ? T(1) : T(0);
    }
    for (std::size_t l = 0; l < len; ++l) out[l] = 0;
    const T kk = static_cast<T>(k);
    // s <= n - k, so rows [n - k, k) are in every window; only the others need the test
    for (std::size_t r = 0; r < n; ++r) {
        const T* row = block + r * lanes;
        const T rr = static_cast<T>(r);
        if (r >= n - k && r < k) {
            for (std::size_t l = 0; l < len; ++l) out[l] += row[l];
            continue;
        }
        for (std::size_t l = 0; l < len; ++l) {
            const T v = row[l];  // loaded unconditionally, so the select vectorises
            out[l] += (rr >= s[l]) & (rr < s[l] + kk) ? v : T(0);
        }
    }
    const T inv = T(1) / kk;
    for (std::size_t l = 0; l < len; ++l) out[l] *= inv;
}

template <class T>
[[gnu::always_inline]] inline void sum_rows_all(const T* block, std::size_t lanes, std::size_t len, std::size_t r0,
                                                std::size_t r1, T scale, T* out) {
    // blocks of 64 lanes while the rows have them, then of 16 (lanes is a multiple of 16)
    std::size_t l0 = 0;
    for (; l0 < len && l0 + 64 <= lanes; l0 += 64)
        sum_rows_block<T, 64>(block, lanes, l0, std::min<std::size_t>(64, len - l0), r0, r1, scale, out);
    for (; l0 < len; l0 += 16)
        sum_rows_block<T, 16>(block, lanes, l0, std::min<std::size_t>(16, len - l0), r0, r1, scale, out);
}

}  // namespace

__attribute__((target_clones("avx512f", "avx2", "default"))) void sum_rows(const float* block, std::size_t lanes,
                                                                             std::size_t len, std::size_t r0,
                                                                             std::size_t r1, float scale, float* out) {
    sum_rows_all(block, lanes, len, r0, r1, scale, out);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void sum_rows(const double* block, std::size_t lanes,
                                                                             std::size_t len, std::size_t r0,
                                                                             std::size_t r1, double scale, double* out) {
    sum_rows_all(block, lanes, len, r0, r1, scale, out);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void mean_around_median(
    const float* block, std::size_t n, std::size_t k, std::size_t lanes, std::size_t len, float* out) {
    around_median_all(block, n, k, lanes, len, out);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void mean_around_median(
    const double* block, std::size_t n, std::size_t k, std::size_t lanes, std::size_t len, double* out) {
    around_median_all(block, n, k, lanes, len, out);
}

namespace {

template <class T>
[[gnu::always_inline]] inline void copy_nan_as_inf_all(const T* __restrict src, std::size_t len, T* __restrict dst) {
    for (std::size_t l = 0; l < len; ++l) {
        const T v = src[l];
        dst[l] = v != v ? std::numeric_limits<T>::infinity() : v;
    }
}

}  // namespace

__attribute__((target_clones("avx512f", "avx2", "default"))) void copy_nan_as_inf(const float* src, std::size_t len,
                                                                                    float* dst) {
    copy_nan_as_inf_all(src, len, dst);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void copy_nan_as_inf(const double* src, std::size_t len,
                                                                                    double* dst) {
    copy_nan_as_inf_all(src, len, dst);
}

}  // namespace p2p::robust::detail
