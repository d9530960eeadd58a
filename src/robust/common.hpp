// Helpers shared by the robust rules (internal to src/robust).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include <fmt/format.h>

#include "p2pnode/robust/robust.hpp"

namespace p2p::robust::detail {

inline constexpr double kInf = std::numeric_limits<double>::infinity();

// Every input has out.size() entries; n >= 1.
template <class T>
void check_dims(std::string_view rule, Vectors<T> in, std::size_t d) {
    if (in.empty()) throw RobustError(fmt::format("{}: no input vectors", rule));
    for (std::size_t i = 0; i < in.size(); ++i)
        if (in[i].size() != d)
            throw RobustError(fmt::format("{}: vector {} has dimension {}, expected {}", rule, i, in[i].size(), d));
}

// The Gram matrix G[i*n + j] = <x_i, x_j>, accumulated by BLAS in T over L2-sized column
// blocks (the inputs are separate buffers; each block is stacked once).
template <class T>
std::vector<double> gram(Vectors<T> in);

// Squared distances from the Gram matrix; non-finite (a vector with NaN/inf) becomes +inf.
std::vector<double> distances_from_gram(const std::vector<double>& g, std::size_t n);

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

// out = mean of in[idx] over idx in `which`.
template <class T>
void mean_of(Vectors<T> in, const std::vector<std::size_t>& which, std::span<T> out) {
    const std::size_t d = out.size();
    std::fill(out.begin(), out.end(), T(0));
    for (std::size_t i : which) {
        const T* x = in[i].data();
        for (std::size_t j = 0; j < d; ++j) out[j] += x[j];
    }
    const T inv = T(1) / static_cast<T>(which.size());
    for (std::size_t j = 0; j < d; ++j) out[j] *= inv;
}

// Applies kernel(values, n) -> T to every coordinate, with values gathered per coordinate
// (NaN replaced by +inf so that orderings put it last). Coordinates are walked in blocks so
// that each input is read sequentially.
template <class T, class Kernel>
void per_coordinate(Vectors<T> in, std::span<T> out, Kernel kernel) {
    const std::size_t n = in.size(), d = out.size();
    constexpr std::size_t kBlock = 512;
    std::vector<T> block(n * kBlock);
    std::vector<T> vals(n);
    for (std::size_t j0 = 0; j0 < d; j0 += kBlock) {
        const std::size_t len = std::min(kBlock, d - j0);
        for (std::size_t i = 0; i < n; ++i) {
            const T* src = in[i].data() + j0;
            for (std::size_t j = 0; j < len; ++j) {
                const T v = src[j];
                block[j * n + i] = v != v ? std::numeric_limits<T>::infinity() : v;
            }
        }
        for (std::size_t j = 0; j < len; ++j) out[j0 + j] = kernel(block.data() + j * n, n);
    }
}

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

// C(n, k) as a double (saturates at +inf).
double binomial(std::size_t n, std::size_t k);

// Largest eigenvalue (and its unit eigenvector) of a symmetric m x m matrix (row-major),
// by cyclic Jacobi rotations.
double max_eigen(std::vector<double> a, std::size_t m, std::vector<double>* vector = nullptr);

}  // namespace p2p::robust::detail
