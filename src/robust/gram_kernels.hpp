// Gram matrices and the distances they give (internal to src/robust).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "p2pnode/robust/robust.hpp"

namespace p2p::robust::detail {

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

// Squared distances from the Gram matrix; non-finite (a vector with NaN/inf) becomes +inf.
std::vector<double> distances_from_gram(std::vector<double> g, std::size_t n);

template <class T>
std::vector<double> pairwise_d2(Vectors<T> in) {
    return distances_from_gram(gram(in), in.size());
}

}  // namespace p2p::robust::detail
