// Sorting networks over columns of a block and the per-coordinate finishers (sum of a row
// range, mean around the median, NaN as +inf), each built for AVX-512, AVX2 and baseline x86-64.
#include "common.hpp"

#include <cstdint>
#include <cstring>
#include <limits>

namespace p2p::robust::detail {

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
