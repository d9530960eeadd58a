// Small linear algebra and selection (internal to src/robust).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "p2pnode/robust/robust.hpp"

namespace p2p::robust::detail {

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
