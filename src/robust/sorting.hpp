// Sorting networks and per-coordinate finishers (internal to src/robust).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "p2pnode/robust/robust.hpp"

namespace p2p::robust::detail {

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

}  // namespace p2p::robust::detail
