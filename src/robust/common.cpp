#include "common.hpp"

#include <cstring>
#include <numeric>

#include <cblas.h>

namespace p2p::robust::detail {

namespace {

void syrk(std::size_t n, std::size_t k, const float* a, double* acc, std::vector<float>& tmp) {
    tmp.assign(n * n, 0.0f);
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, static_cast<int>(n), static_cast<int>(k), 1.0f, a,
                static_cast<int>(k), 0.0f, tmp.data(), static_cast<int>(n));
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = i; j < n; ++j) acc[i * n + j] += tmp[i * n + j];
}

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

__attribute__((target_clones("avx2", "default"))) void gram_direct(Vectors<float> in, std::size_t j0,
                                                                     std::size_t len, double* g) {
    gram_block_direct(in, j0, len, g);
}
__attribute__((target_clones("avx2", "default"))) void gram_direct(Vectors<double> in, std::size_t j0,
                                                                     std::size_t len, double* g) {
    gram_block_direct(in, j0, len, g);
}

}  // namespace

template <class T>
std::vector<double> gram(Vectors<T> in) {
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
template std::vector<double> gram<float>(Vectors<float>);
template std::vector<double> gram<double>(Vectors<double>);

std::vector<double> distances_from_gram(const std::vector<double>& g, std::size_t n) {
    std::vector<double> d2(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            if (i == j) {
                d2[i * n + j] = std::isfinite(g[i * n + i]) ? 0.0 : kInf;
                continue;
            }
            const double v = g[i * n + i] + g[j * n + j] - 2.0 * g[i * n + j];
            d2[i * n + j] = std::isfinite(v) ? std::max(0.0, v) : kInf;
        }
    return d2;
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
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return score[a] < score[b]; });
    idx.resize(std::min(k, idx.size()));
    return idx;
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

}  // namespace p2p::robust::detail
