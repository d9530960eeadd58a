// Gram matrices of float or double vectors, the kernel behind the distance-based rules.
#pragma once

#include <vector>

#include "p2pnode/robust/robust.hpp"

namespace p2p::robust {

// G[i * n + j] = <x_i, x_j> for the n inputs, accumulated in double (float: float sums within
// column chunks of at most 2048 values, double across; AMX above 64 vectors where available).
// Every input has the same dimension.
template <class T>
std::vector<double> gram(Vectors<T> in);

}  // namespace p2p::robust
