// Small linear algebra and selection: weighted combinations of the inputs (BLAS GEMM), means
// of sets, dot products, smallest scores and nearest sets, binomials, the Jacobi eigen solver.
#include "common.hpp"

#include <cstdint>
#include <cstring>
#include <numeric>

#include <cblas.h>

namespace p2p::robust::detail {

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
}  // namespace p2p::robust::detail
