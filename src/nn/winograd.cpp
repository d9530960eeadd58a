#include "winograd.hpp"

#include <algorithm>

namespace p2p::nn::winograd {

namespace {

#define P2P_INLINE inline __attribute__((always_inline))

// The 1-D transforms, each applied lane-wise to n contiguous floats: input row k of a
// transform is at in + k * is, output row k at out + k * os. With the points 0, 1, -1, 2, -2
// and infinity (Lavin's F(4, 3) uses the same B^T):
//
//   B^T = | 4  0 -5  0  1  0 |   G = |  1/4     0     0     0     0  |   A^T = | 1 1  1 1  1 0 |
//         | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6  -1/6  -1/6  |         | 0 1 -1 2 -2 1 |
//         | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6   1/6  -1/6  |
//         | 0 -2 -1  2  1  0 |       | 1/24  1/12   1/6   1/3   2/3  |
//         | 0  2 -1 -2  1  0 |       | 1/24 -1/12   1/6  -1/3   2/3  |
//         | 0  4  0 -5  0  1 |       |   0     0     0     0     1   |

// out = B^T in (6 -> 6)
P2P_INLINE void bt(const float* __restrict in, std::size_t is, float* __restrict out, std::size_t os, std::size_t n) {
    const float *i0 = in, *i1 = in + is, *i2 = in + 2 * is, *i3 = in + 3 * is, *i4 = in + 4 * is, *i5 = in + 5 * is;
    float *o0 = out, *o1 = out + os, *o2 = out + 2 * os, *o3 = out + 3 * os, *o4 = out + 4 * os, *o5 = out + 5 * os;
    for (std::size_t t = 0; t < n; ++t) {
        const float a = i1[t], b = i2[t], c = i3[t], d = i4[t];
        o0[t] = 4.0f * i0[t] - 5.0f * b + d;
        o1[t] = (d + c) - 4.0f * (a + b);
        o2[t] = (d - c) + 4.0f * (a - b);
        o3[t] = (d - b) + 2.0f * (c - a);
        o4[t] = (d - b) - 2.0f * (c - a);
        o5[t] = 4.0f * a - 5.0f * c + i5[t];
    }
}

// out = B in, B = (B^T)^T (6 -> 6)
P2P_INLINE void b(const float* __restrict in, std::size_t is, float* __restrict out, std::size_t os, std::size_t n) {
    const float *i0 = in, *i1 = in + is, *i2 = in + 2 * is, *i3 = in + 3 * is, *i4 = in + 4 * is, *i5 = in + 5 * is;
    float *o0 = out, *o1 = out + os, *o2 = out + 2 * os, *o3 = out + 3 * os, *o4 = out + 4 * os, *o5 = out + 5 * os;
    for (std::size_t t = 0; t < n; ++t) {
        const float x0 = i0[t], x1 = i1[t], x2 = i2[t], x3 = i3[t], x4 = i4[t], x5 = i5[t];
        const float s12 = x1 + x2, d12 = x1 - x2, s34 = x3 + x4, d34 = x3 - x4;
        o0[t] = 4.0f * x0;
        o1[t] = 4.0f * (x5 - d12) - 2.0f * d34;
        o2[t] = -5.0f * x0 - 4.0f * s12 - s34;
        o3[t] = d12 + 2.0f * d34 - 5.0f * x5;
        o4[t] = x0 + s12 + s34;
        o5[t] = x5;
    }
}

// out = A^T in (6 -> 2)
P2P_INLINE void at(const float* __restrict in, std::size_t is, float* __restrict out, std::size_t os, std::size_t n) {
    const float *i0 = in, *i1 = in + is, *i2 = in + 2 * is, *i3 = in + 3 * is, *i4 = in + 4 * is, *i5 = in + 5 * is;
    float *o0 = out, *o1 = out + os;
    for (std::size_t t = 0; t < n; ++t) {
        const float s12 = i1[t] + i2[t], d12 = i1[t] - i2[t], s34 = i3[t] + i4[t], d34 = i3[t] - i4[t];
        o0[t] = i0[t] + s12 + s34;
        o1[t] = d12 + 2.0f * d34 + i5[t];
    }
}

// out = A in (2 -> 6)
P2P_INLINE void a(const float* __restrict in, std::size_t is, float* __restrict out, std::size_t os, std::size_t n) {
    const float *i0 = in, *i1 = in + is;
    float *o0 = out, *o1 = out + os, *o2 = out + 2 * os, *o3 = out + 3 * os, *o4 = out + 4 * os, *o5 = out + 5 * os;
    for (std::size_t t = 0; t < n; ++t) {
        const float x = i0[t], y = i1[t];
        o0[t] = x;
        o1[t] = x + y;
        o2[t] = x - y;
        o3[t] = x + 2.0f * y;
        o4[t] = x - 2.0f * y;
        o5[t] = y;
    }
}

// out = G in (5 -> 6)
P2P_INLINE void g(const float* __restrict in, std::size_t is, float* __restrict out, std::size_t os, std::size_t n) {
    const float *i0 = in, *i1 = in + is, *i2 = in + 2 * is, *i3 = in + 3 * is, *i4 = in + 4 * is;
    float *o0 = out, *o1 = out + os, *o2 = out + 2 * os, *o3 = out + 3 * os, *o4 = out + 4 * os, *o5 = out + 5 * os;
    for (std::size_t t = 0; t < n; ++t) {
        const float x0 = i0[t], x1 = i1[t], x2 = i2[t], x3 = i3[t], x4 = i4[t];
        const float even = x0 + x2 + x4, odd = x1 + x3;
        const float even2 = x0 + 4.0f * x2 + 16.0f * x4, odd2 = 2.0f * x1 + 8.0f * x3;
        o0[t] = 0.25f * x0;
        o1[t] = -(even + odd) / 6.0f;
        o2[t] = -(even - odd) / 6.0f;
        o3[t] = (even2 + odd2) / 24.0f;
        o4[t] = (even2 - odd2) / 24.0f;
        o5[t] = x4;
    }
}

// out = G^T in (6 -> 5)
P2P_INLINE void gt(const float* __restrict in, std::size_t is, float* __restrict out, std::size_t os, std::size_t n) {
    const float *i0 = in, *i1 = in + is, *i2 = in + 2 * is, *i3 = in + 3 * is, *i4 = in + 4 * is, *i5 = in + 5 * is;
    float *o0 = out, *o1 = out + os, *o2 = out + 2 * os, *o3 = out + 3 * os, *o4 = out + 4 * os;
    for (std::size_t t = 0; t < n; ++t) {
        const float s = -(i1[t] + i2[t]) / 6.0f, d = (i2[t] - i1[t]) / 6.0f;
        const float p = (i3[t] + i4[t]) / 24.0f, m = (i3[t] - i4[t]) / 24.0f;
        o0[t] = 0.25f * i0[t] + s + p;
        o1[t] = d + 2.0f * m;
        o2[t] = s + 4.0f * p;
        o3[t] = d + 8.0f * m;
        o4[t] = s + 16.0f * p + i5[t];
    }
}

// Kernel pairs transformed at once (on the stack: 55 floats each).
constexpr std::size_t kPairs = 128;

}  // namespace

// Each entry point is compiled for AVX2 and the baseline, picked at load time (the lane-wise
// transforms are most of their time). Not for AVX-512: it brings FMA, which GCC would contract
// a * b + c into, and the floats would then depend on the CPU; lane-wise without FMA, AVX2 and
// SSE2 compute the same floats. GNU ifunc: glibc only.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define P2P_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define P2P_CLONES
#endif

bool fits(std::size_t kernel, std::size_t pad, std::size_t H, std::size_t W) {
    return kernel == 5 && pad == 2 && H >= 2 && W >= 2 && H % 2 == 0 && W % 2 == 0;
}

P2P_CLONES void weights_to(const float* w, std::size_t O, std::size_t C, float* U) {
    const std::size_t OC = O * C;
    float wt[25 * kPairs], t1[30 * kPairs];
    for (std::size_t p0 = 0; p0 < OC; p0 += kPairs) {
        const std::size_t n = std::min(kPairs, OC - p0);
        for (std::size_t p = 0; p < n; ++p)
            for (std::size_t k = 0; k < 25; ++k) wt[k * n + p] = w[(p0 + p) * 25 + k];
        for (std::size_t kj = 0; kj < 5; ++kj) g(wt + kj * n, 5 * n, t1 + kj * n, 5 * n, n);  // t1[xr][kj]
        for (std::size_t xr = 0; xr < 6; ++xr) g(t1 + xr * 5 * n, n, U + xr * 6 * OC + p0, OC, n);
    }
}

P2P_CLONES void weights_grad_from(const float* dU, std::size_t O, std::size_t C, float* dw) {
    const std::size_t OC = O * C;
    float t1[30 * kPairs], dk[25 * kPairs];
    for (std::size_t p0 = 0; p0 < OC; p0 += kPairs) {
        const std::size_t n = std::min(kPairs, OC - p0);
        for (std::size_t xc = 0; xc < 6; ++xc) gt(dU + xc * OC + p0, 6 * OC, t1 + xc * n, 6 * n, n);  // t1[ki][xc]
        for (std::size_t ki = 0; ki < 5; ++ki) gt(t1 + ki * 6 * n, n, dk + ki * 5 * n, n, n);
        for (std::size_t p = 0; p < n; ++p)
            for (std::size_t k = 0; k < 25; ++k) dw[(p0 + p) * 25 + k] = dk[k * n + p];
    }
}

P2P_CLONES void input_to(const float* x, std::size_t C, std::size_t B, std::size_t H, std::size_t W, std::size_t b0,
              std::size_t b1, float* scratch, float* V) {
    const std::size_t th = H / 2, tw = W / 2, T = (b1 - b0) * th * tw;
    float* d = scratch;            // d[r * 6 + s][t]: the tiles' 6x6 input blocks
    float* t1 = scratch + kTaps * T;  // t1[xr * 6 + s][t]
    for (std::size_t c = 0; c < C; ++c) {
        for (std::size_t r = 0; r < 6; ++r)
            for (std::size_t s = 0; s < 6; ++s) {
                float* dst = d + (r * 6 + s) * T;
                for (std::size_t bb = b0; bb < b1; ++bb)
                    for (std::size_t ty = 0; ty < th; ++ty, dst += tw) {
                        const std::size_t row = 2 * ty + r - 2;  // wraps below 0: then >= H
                        if (row >= H) {
                            std::fill(dst, dst + tw, 0.0f);
                            continue;
                        }
                        const float* src = x + ((c * B + bb) * H + row) * W;
                        for (std::size_t tx = 0; tx < tw; ++tx) {
                            const std::size_t col = 2 * tx + s - 2;
                            dst[tx] = col < W ? src[col] : 0.0f;
                        }
                    }
            }
        for (std::size_t s = 0; s < 6; ++s) bt(d + s * T, 6 * T, t1 + s * T, 6 * T, T);
        for (std::size_t xr = 0; xr < 6; ++xr) bt(t1 + xr * 6 * T, T, V + (xr * 6 * C + c) * T, C * T, T);
    }
}

P2P_CLONES void output_from(const float* M, std::size_t O, std::size_t B, std::size_t H, std::size_t W, std::size_t b0,
                 std::size_t b1, const float* bias, float* scratch, float* y) {
    const std::size_t th = H / 2, tw = W / 2, T = (b1 - b0) * th * tw;
    float* t1 = scratch;           // t1[i * 6 + xc][t]
    float* out = scratch + 12 * T;  // out[i * 2 + j][t]
    for (std::size_t o = 0; o < O; ++o) {
        for (std::size_t xc = 0; xc < 6; ++xc) at(M + (xc * O + o) * T, 6 * O * T, t1 + xc * T, 6 * T, T);
        for (std::size_t i = 0; i < 2; ++i) at(t1 + i * 6 * T, T, out + i * 2 * T, T, T);
        const float* src = out;
        for (std::size_t bb = b0; bb < b1; ++bb)
            for (std::size_t ty = 0; ty < th; ++ty, src += tw) {
                float* r0 = y + ((o * B + bb) * H + 2 * ty) * W;
                float* r1 = r0 + W;
                for (std::size_t tx = 0; tx < tw; ++tx) {
                    r0[2 * tx] = bias[o] + src[tx];
                    r0[2 * tx + 1] = bias[o] + src[T + tx];
                    r1[2 * tx] = bias[o] + src[2 * T + tx];
                    r1[2 * tx + 1] = bias[o] + src[3 * T + tx];
                }
            }
    }
}

P2P_CLONES void grad_output_to(const float* dy, std::size_t O, std::size_t B, std::size_t H, std::size_t W, std::size_t b0,
                    std::size_t b1, float* scratch, float* Mp) {
    const std::size_t th = H / 2, tw = W / 2, T = (b1 - b0) * th * tw;
    float* e = scratch;           // e[i * 2 + j][t]: the tiles' 2x2 output gradients
    float* t1 = scratch + 4 * T;  // t1[xr * 2 + j][t]
    for (std::size_t o = 0; o < O; ++o) {
        float* dst = e;
        for (std::size_t bb = b0; bb < b1; ++bb)
            for (std::size_t ty = 0; ty < th; ++ty, dst += tw) {
                const float* r0 = dy + ((o * B + bb) * H + 2 * ty) * W;
                const float* r1 = r0 + W;
                for (std::size_t tx = 0; tx < tw; ++tx) {
                    dst[tx] = r0[2 * tx];
                    dst[T + tx] = r0[2 * tx + 1];
                    dst[2 * T + tx] = r1[2 * tx];
                    dst[3 * T + tx] = r1[2 * tx + 1];
                }
            }
        for (std::size_t j = 0; j < 2; ++j) a(e + j * T, 2 * T, t1 + j * T, 2 * T, T);
        for (std::size_t xr = 0; xr < 6; ++xr) a(t1 + xr * 2 * T, T, Mp + (xr * 6 * O + o) * T, O * T, T);
    }
}

P2P_CLONES void grad_input_from(const float* dV, std::size_t C, std::size_t B, std::size_t H, std::size_t W, std::size_t b0,
                     std::size_t b1, float* scratch, float* dx) {
    const std::size_t th = H / 2, tw = W / 2, T = (b1 - b0) * th * tw;
    float* t1 = scratch;              // t1[r * 6 + xc][t]
    float* dd = scratch + kTaps * T;  // dd[r * 6 + s][t]
    for (std::size_t c = 0; c < C; ++c) {
        for (std::size_t xc = 0; xc < 6; ++xc) b(dV + (xc * C + c) * T, 6 * C * T, t1 + xc * T, 6 * T, T);
        for (std::size_t r = 0; r < 6; ++r) b(t1 + r * 6 * T, T, dd + r * 6 * T, T, T);
        for (std::size_t r = 0; r < 6; ++r)
            for (std::size_t s = 0; s < 6; ++s) {
                const float* src = dd + (r * 6 + s) * T;
                for (std::size_t bb = b0; bb < b1; ++bb)
                    for (std::size_t ty = 0; ty < th; ++ty, src += tw) {
                        const std::size_t row = 2 * ty + r - 2;
                        if (row >= H) continue;
                        float* dst = dx + ((c * B + bb) * H + row) * W;
                        const std::size_t first = s < 2 ? 1 : 0, last = s >= 4 ? tw - 1 : tw;
                        for (std::size_t tx = first; tx < last; ++tx) dst[2 * tx + s - 2] += src[tx];
                    }
            }
    }
}

}  // namespace p2p::nn::winograd
