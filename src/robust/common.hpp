// Helpers shared by the robust rules (internal to src/robust); the kernels they build on are
// declared by topic in parallel.hpp, gram_kernels.hpp, sorting.hpp and linalg.hpp.
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
#include "gram_kernels.hpp"
#include "linalg.hpp"
#include "parallel.hpp"
#include "sorting.hpp"

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

}  // namespace p2p::robust::detail
