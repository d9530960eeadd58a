// Helpers shared by the robust rules (internal to src/robust).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <utility>
#include <limits>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "p2pnode/robust/robust.hpp"

namespace p2p::robust::detail {

inline constexpr double kInf = std::numeric_limits<double>::infinity();

// Resizes buf to hold `count` values from a 64-byte boundary on and returns that boundary:
// whole-vector loads and stores then never straddle two cache lines.
template <class T>
T* aligned_in(std::vector<T>& buf, std::size_t count) {
    constexpr std::size_t lanes = 64 / sizeof(T);
    buf.resize(count + lanes);
    const std::size_t skip = (lanes - reinterpret_cast<std::uintptr_t>(buf.data()) / sizeof(T) % lanes) % lanes;
    return buf.data() + skip;
}

// Every input has out.size() entries; n >= 1.
template <class T>
void check_dims(std::string_view rule, Vectors<T> in, std::size_t d) {
    if (in.empty()) throw RobustError(fmt::format("{}: no input vectors", rule));
    for (std::size_t i = 0; i < in.size(); ++i)
        if (in[i].size() != d)
            throw RobustError(fmt::format("{}: vector {} has dimension {}, expected {}", rule, i, in[i].size(), d));
}

// The Gram matrix G[i*n + j] = <x_i, x_j>. float: register-tiled AVX-512/AVX2 kernels over
// column chunks (float within a chunk, double across), chunks spread over robust::threads() -
// up to 24 rows read in place in blocks with their triangles, more rows packed per chunk into
// 6 x 4 tiles; double: BLAS dsyrk over L2-sized stacked blocks.
template <class T>
std::vector<double> gram(Vectors<T> in);

// The float Gram on Intel AMX (gram_amx.cpp): usable when the CPU has AMX-INT8 and AVX-512,
// the kernel grants this process the tile state, P2PNODE_NO_AMX is unset (or 0) and
// allow_amx(false) has not turned it off.
bool amx_available();
void allow_amx(bool allowed);
struct AmxScratch {  // a thread's buffers for gram_chunk_amx, kept between calls
    std::vector<std::int8_t> a[3], b[3];
    std::vector<double> scale;
    std::vector<std::int32_t> c;
};
// Adds <x_i, x_j> over columns [j0, j0 + len) to g[i * n + j] for i <= j. Returns false,
// having added nothing, when a value there is not finite or above 1e18 in magnitude.
bool gram_chunk_amx(const float* const* rows, std::size_t n, std::size_t j0, std::size_t len, double* g,
                    AmxScratch& scratch);

// out (m x d, row-major) = W (m x n, row-major) x X, where X stacks the n inputs: one BLAS
// GEMM per L2-sized column block, so nothing is stacked whole.
template <class T>
void combine_rows(Vectors<T> in, const std::vector<double>& w, std::size_t m, T* out);

// out row r (of sets.size() rows, each d long) = the mean of the inputs listed in sets[r]; in
// L2-sized column chunks, spread over robust::threads(). When every input is in some set, a set
// of more than half the inputs is summed as the total minus the inputs left out.
template <class T>
void means_of_sets(Vectors<T> in, const std::vector<std::vector<std::size_t>>& sets, T* out);

// dots[i] = <x_i, v> in double; +inf/NaN for a non-finite x_i.
template <class T>
std::vector<double> dots_with(Vectors<T> in, const std::vector<double>& v);

// Squared distances from the Gram matrix; non-finite (a vector with NaN/inf) becomes +inf.
std::vector<double> distances_from_gram(std::vector<double> g, std::size_t n);

template <class T>
std::vector<double> pairwise_d2(Vectors<T> in) {
    return distances_from_gram(gram(in), in.size());
}

// Squared Euclidean norm, accumulated in double; +inf if not finite.
template <class T>
double norm2(std::span<const T> x) {
    double s = 0;
    for (T v : x) s += static_cast<double>(v) * static_cast<double>(v);
    return std::isfinite(s) ? s : kInf;
}

// out = mean of in[idx] over idx in `which`: added in order, then scaled, in as few passes
// over out as that takes (one vector is copied).
template <class T>
void mean_of(Vectors<T> in, const std::vector<std::size_t>& which, std::span<T> out) {
    const std::size_t d = out.size(), m = which.size();
    const T inv = T(1) / static_cast<T>(m);
    if (m <= 1) {
        if (m == 1) std::copy_n(in[which[0]].data(), d, out.data());
        else std::fill(out.begin(), out.end(), T(0) * inv);
        return;
    }
    std::copy_n(in[which[0]].data(), d, out.data());
    for (std::size_t k = 1; k + 1 < m; ++k) {
        const T* x = in[which[k]].data();
        for (std::size_t j = 0; j < d; ++j) out[j] += x[j];
    }
    const T* last = in[which[m - 1]].data();
    for (std::size_t j = 0; j < d; ++j) out[j] = (out[j] + last[j]) * inv;
}

// Comparators (i < j) of Batcher's odd-even merge sort for n inputs: applying each as
// (v[i], v[j]) <- (min, max) sorts any n values.
std::vector<std::pair<std::uint32_t, std::uint32_t>> sorting_network(std::size_t n);

// Sorts every column of a block of n rows x `lanes` values (row-major, row stride `lanes`, a
// multiple of 8): each comparator is a min/max over whole rows. Defined in common.cpp, built
// for AVX2 and for baseline x86-64 and picked at run time.
void sort_columns(float* block, std::size_t lanes, const std::vector<std::pair<std::uint32_t, std::uint32_t>>& net);
void sort_columns(double* block, std::size_t lanes, const std::vector<std::pair<std::uint32_t, std::uint32_t>>& net);

// dst[l] = src[l] for l < len, NaN written as +inf (the order the sorts use).
void copy_nan_as_inf(const float* src, std::size_t len, float* dst);
void copy_nan_as_inf(const double* src, std::size_t len, double* dst);

// Runs fn(begin, end) over contiguous ranges of [0, tasks), on up to robust::threads()
// threads when `work` (about one unit per element touched) is large enough to pay for them;
// range 0 runs on the calling thread. Returns when every range is done.
void parallel_for(std::size_t tasks, double work, const std::function<void(std::size_t, std::size_t)>& fn);

// For every coordinate, sorts its n values (NaN ordered as +inf) and calls
// finish(sorted_block, lanes, len, out_ptr), where sorted_block holds n rows of `lanes` sorted
// columns. Coordinates go in blocks that stay in L1, spread over robust::threads(); finish
// must only write its own out_ptr[0, len).
template <class T, class Finish>
void per_coordinate_sorted(Vectors<T> in, std::span<T> out, Finish finish) {
    const std::size_t n = in.size(), d = out.size();
    const auto net = sorting_network(n);
    // Blocks of about 24 KiB stay in L1 while every comparator streams over them; lanes is a
    // multiple of 16 (the sort's vector width).
    const std::size_t kLanes = std::clamp<std::size_t>((24 * 1024 / (n * sizeof(T))) / 16 * 16, 16, 512);
    const std::size_t blocks = (d + kLanes - 1) / kLanes;
    parallel_for(blocks, static_cast<double>(n) * static_cast<double>(d), [&](std::size_t b0, std::size_t b1) {
        std::vector<T> buffer;
        T* block = aligned_in(buffer, n * kLanes);
        for (std::size_t b = b0; b < b1; ++b) {
            const std::size_t j0 = b * kLanes, len = std::min(kLanes, d - j0);
            for (std::size_t i = 0; i < n; ++i) copy_nan_as_inf(in[i].data() + j0, len, block + i * kLanes);
            sort_columns(block, kLanes, net);
            finish(block, kLanes, len, out.data() + j0);
        }
    });
}

// Finishers for per_coordinate_sorted blocks (n rows of `lanes` sorted columns, the first
// len of them wanted); built for AVX-512, AVX2 and baseline x86-64, picked at run time. Lanes
// past len (up to `lanes`) may be read and their results dropped.
//
// out[l] = scale * the sum of rows [r0, r1) of column l, added in row order.
void sum_rows(const float* block, std::size_t lanes, std::size_t len, std::size_t r0, std::size_t r1, float scale,
              float* out);
void sum_rows(const double* block, std::size_t lanes, std::size_t len, std::size_t r0, std::size_t r1, double scale,
              double* out);
// Per column: the mean of the k values closest to the column's median (ties keep the smaller
// values).
void mean_around_median(const float* block, std::size_t n, std::size_t k, std::size_t lanes, std::size_t len,
                        float* out);
void mean_around_median(const double* block, std::size_t n, std::size_t k, std::size_t lanes, std::size_t len,
                        double* out);

// Median of v[0..n) (reorders v): the middle value, or the mean of the two middle values.
template <class T>
T median_inplace(T* v, std::size_t n) {
    const std::size_t mid = n / 2;
    std::nth_element(v, v + mid, v + n);
    const T upper = v[mid];
    if (n % 2) return upper;
    const T lower = *std::max_element(v, v + mid);
    return lower == upper ? upper : (lower + upper) / T(2);
}

// Indices 0..n-1 sorted by score (ties by index), the first k.
std::vector<std::size_t> smallest(const std::vector<double>& score, std::size_t k);

// For each i of n: the k nearest by the squared distances d2 (n x n), i itself included,
// in increasing index order; ties go to the lower index (as smallest() would order them).
// Rows are spread over robust::threads().
std::vector<std::vector<std::size_t>> nearest_sets(const std::vector<double>& d2, std::size_t n, std::size_t k);

// C(n, k) as a double (saturates at +inf).
double binomial(std::size_t n, std::size_t k);

// Largest eigenvalue (and its unit eigenvector) of a symmetric m x m matrix (row-major),
// by cyclic Jacobi rotations.
double max_eigen(std::vector<double> a, std::size_t m, std::vector<double>* vector = nullptr);

}  // namespace p2p::robust::detail
