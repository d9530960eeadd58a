// Winograd's minimal filtering F(2x2, 5x5) for Conv2d (internal to the nn library).
//
// A 5x5 convolution with padding 2 on images of even height and width: each 2x2 block of
// outputs comes from the 6x6 block of inputs around it with 36 products per pair of input and
// output channels instead of 100 (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016; interpolation points 0, 1, -1, 2, -2 and infinity). In the transformed
// domain the convolution is 36 independent matrix products, one per tap xi of the 6x6 tile:
//
//   forward    M[xi] = U[xi] V[xi]              (O x C)(C x T)  U = G w G^T, V = B^T d B
//              y     = A^T M A
//   backward   M'    = A dy A^T
//              dU[xi] = M'[xi] V[xi]^T          dw = G^T dU G
//              dV[xi] = U[xi]^T M'[xi]          dx += B dV B^T, scattered onto the 6x6 blocks
//
// The three passes share the same transforms, so the gradients are the exact gradients of the
// forward that is computed. The transforms here are the element-wise parts; the caller does
// the matrix products with sgemm. Pure math: no files, no sockets.
//
// Layouts: U and dU are [xi][o][c]; V, dV, M and M' hold the T tiles of a chunk of images
// [b0, b1) as [xi][channel][t], t = ((b - b0) * H/2 + ty) * W/2 + tx.
#pragma once

#include <cstddef>

namespace p2p::nn::winograd {

constexpr std::size_t kTaps = 36;  // 6 x 6 transformed values a tile

// Whether F(2x2, 5x5) computes this convolution (5x5, padding 2, even height and width).
bool fits(std::size_t kernel, std::size_t pad, std::size_t H, std::size_t W);

// Tiles of one image.
inline std::size_t tiles_per_image(std::size_t H, std::size_t W) { return (H / 2) * (W / 2); }

// Floats of scratch the functions below need for a chunk of T tiles.
inline std::size_t scratch_floats(std::size_t T) { return 2 * kTaps * T; }

// U = G w G^T for the O x C kernels w[o][c][5][5].
void weights_to(const float* w, std::size_t O, std::size_t C, float* U);
// dw[o][c][5][5] = G^T dU G (overwrites dw).
void weights_grad_from(const float* dU, std::size_t O, std::size_t C, float* dw);

// V = B^T d B of the tiles of images [b0, b1) of x {C, B, H, W} (zero outside the image).
void input_to(const float* x, std::size_t C, std::size_t B, std::size_t H, std::size_t W, std::size_t b0,
              std::size_t b1, float* scratch, float* V);
// y {O, B, H, W} of images [b0, b1) = bias[o] + A^T M A.
void output_from(const float* M, std::size_t O, std::size_t B, std::size_t H, std::size_t W, std::size_t b0,
                 std::size_t b1, const float* bias, float* scratch, float* y);
// M' = A dy A^T of the tiles of images [b0, b1) of dy {O, B, H, W}.
void grad_output_to(const float* dy, std::size_t O, std::size_t B, std::size_t H, std::size_t W, std::size_t b0,
                    std::size_t b1, float* scratch, float* Mp);
// dx {C, B, H, W} += B dV B^T of each tile, on the tile's 6x6 block (what falls outside the
// image is dropped).
void grad_input_from(const float* dV, std::size_t C, std::size_t B, std::size_t H, std::size_t W, std::size_t b0,
                     std::size_t b1, float* scratch, float* dx);

}  // namespace p2p::nn::winograd
