#include "p2pnode/nn/layers.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <cblas.h>

namespace p2p::nn {

namespace {

// Resizes only when the shape differs, so a steady batch size never reallocates.
void ensure_shape(Tensor& t, std::initializer_list<std::size_t> shape) {
    bool same = t.dimension() == shape.size() && std::equal(shape.begin(), shape.end(), t.shape().begin());
    if (!same) t.resize(std::vector<std::size_t>(shape));
}

void require_dims(const Tensor& t, std::size_t dims, const char* layer) {
    if (t.dimension() != dims)
        throw std::invalid_argument(std::string(layer) + ": input has " + std::to_string(t.dimension()) +
                                    " dimensions, expected " + std::to_string(dims));
}

}  // namespace

void set_blas_threads(int threads) { openblas_set_num_threads(threads); }

// ---------------------------------------------------------------- Conv2d

Conv2d::Conv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, std::size_t padding)
    : in_(in_channels), out_(out_channels), k_(kernel), pad_(padding) {}

void Conv2d::bind(std::span<float> params, std::span<float> grads) {
    w_ = params.data();
    b_ = params.data() + weight_count();
    dw_ = grads.data();
    db_ = grads.data() + weight_count();
}

void Conv2d::forward(const Tensor& in, Tensor& out) {
    require_dims(in, 4, "conv2d");
    if (in.shape()[0] != in_) throw std::invalid_argument("conv2d: wrong number of input channels");
    const std::size_t B = in.shape()[1], H = in.shape()[2], W = in.shape()[3];
    const std::size_t Ho = H + 2 * pad_ - k_ + 1, Wo = W + 2 * pad_ - k_ + 1;
    const std::size_t N = B * Ho * Wo, K = in_ * k_ * k_;
    col_.resize(K * N);
    const float* x = in.data();
    // im2col: row (c, ki, kj), column (b, y, x).
    for (std::size_t c = 0; c < in_; ++c)
        for (std::size_t ki = 0; ki < k_; ++ki)
            for (std::size_t kj = 0; kj < k_; ++kj) {
                float* row = col_.data() + ((c * k_ + ki) * k_ + kj) * N;
                for (std::size_t b = 0; b < B; ++b) {
                    const float* plane = x + (c * B + b) * H * W;
                    for (std::size_t y = 0; y < Ho; ++y) {
                        float* dst = row + (b * Ho + y) * Wo;
                        const long sy = static_cast<long>(y + ki) - static_cast<long>(pad_);
                        if (sy < 0 || sy >= static_cast<long>(H)) {
                            std::fill(dst, dst + Wo, 0.0f);
                            continue;
                        }
                        const float* src = plane + static_cast<std::size_t>(sy) * W;
                        for (std::size_t xo = 0; xo < Wo; ++xo) {
                            const long sx = static_cast<long>(xo + kj) - static_cast<long>(pad_);
                            dst[xo] = (sx < 0 || sx >= static_cast<long>(W)) ? 0.0f : src[sx];
                        }
                    }
                }
            }
    ensure_shape(out, {out_, B, Ho, Wo});
    float* y = out.data();
    for (std::size_t o = 0; o < out_; ++o) std::fill(y + o * N, y + (o + 1) * N, b_[o]);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(out_), static_cast<int>(N),
                static_cast<int>(K), 1.0f, w_, static_cast<int>(K), col_.data(), static_cast<int>(N), 1.0f, y,
                static_cast<int>(N));
}

void Conv2d::backward(const Tensor& in, const Tensor& dout, Tensor* din) {
    const std::size_t B = in.shape()[1], H = in.shape()[2], W = in.shape()[3];
    const std::size_t Ho = dout.shape()[2], Wo = dout.shape()[3];
    const std::size_t N = B * Ho * Wo, K = in_ * k_ * k_;
    const float* dy = dout.data();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(out_), static_cast<int>(K),
                static_cast<int>(N), 1.0f, dy, static_cast<int>(N), col_.data(), static_cast<int>(N), 0.0f, dw_,
                static_cast<int>(K));
    for (std::size_t o = 0; o < out_; ++o) {
        double s = 0;
        for (std::size_t n = 0; n < N; ++n) s += dy[o * N + n];
        db_[o] = static_cast<float>(s);
    }
    if (!din) return;
    dcol_.resize(K * N);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(K), static_cast<int>(N),
                static_cast<int>(out_), 1.0f, w_, static_cast<int>(K), dy, static_cast<int>(N), 0.0f, dcol_.data(),
                static_cast<int>(N));
    ensure_shape(*din, {in_, B, H, W});
    float* dx = din->data();
    std::fill(dx, dx + din->size(), 0.0f);
    // col2im: scatter-add each column entry back to the input pixel it was read from.
    for (std::size_t c = 0; c < in_; ++c)
        for (std::size_t ki = 0; ki < k_; ++ki)
            for (std::size_t kj = 0; kj < k_; ++kj) {
                const float* row = dcol_.data() + ((c * k_ + ki) * k_ + kj) * N;
                for (std::size_t b = 0; b < B; ++b) {
                    float* plane = dx + (c * B + b) * H * W;
                    for (std::size_t y = 0; y < Ho; ++y) {
                        const long sy = static_cast<long>(y + ki) - static_cast<long>(pad_);
                        if (sy < 0 || sy >= static_cast<long>(H)) continue;
                        const float* src = row + (b * Ho + y) * Wo;
                        float* dst = plane + static_cast<std::size_t>(sy) * W;
                        for (std::size_t xo = 0; xo < Wo; ++xo) {
                            const long sx = static_cast<long>(xo + kj) - static_cast<long>(pad_);
                            if (sx >= 0 && sx < static_cast<long>(W)) dst[sx] += src[xo];
                        }
                    }
                }
            }
}

// ---------------------------------------------------------------- Relu

void Relu::forward(const Tensor& in, Tensor& out) {
    if (out.shape() != in.shape()) out.resize(in.shape());
    const float* x = in.data();
    float* y = out.data();
    for (std::size_t i = 0, n = in.size(); i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void Relu::backward(const Tensor& in, const Tensor& dout, Tensor* din) {
    if (!din) return;
    if (din->shape() != in.shape()) din->resize(in.shape());
    const float* x = in.data();
    const float* dy = dout.data();
    float* dx = din->data();
    for (std::size_t i = 0, n = in.size(); i < n; ++i) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

// ---------------------------------------------------------------- MaxPool2

void MaxPool2::forward(const Tensor& in, Tensor& out) {
    require_dims(in, 4, "maxpool2");
    const std::size_t C = in.shape()[0], B = in.shape()[1], H = in.shape()[2], W = in.shape()[3];
    const std::size_t Ho = H / 2, Wo = W / 2;
    ensure_shape(out, {C, B, Ho, Wo});
    argmax_.resize(out.size());
    const float* x = in.data();
    float* y = out.data();
    std::size_t o = 0;
    for (std::size_t plane = 0; plane < C * B; ++plane) {
        const std::size_t base = plane * H * W;
        for (std::size_t oy = 0; oy < Ho; ++oy)
            for (std::size_t ox = 0; ox < Wo; ++ox, ++o) {
                std::size_t best = base + (2 * oy) * W + 2 * ox;
                float bestv = x[best];
                for (std::size_t dy = 0; dy < 2; ++dy)
                    for (std::size_t dx = 0; dx < 2; ++dx) {
                        std::size_t idx = base + (2 * oy + dy) * W + 2 * ox + dx;
                        if (x[idx] > bestv || std::isnan(x[idx])) {
                            bestv = x[idx];
                            best = idx;
                        }
                    }
                y[o] = bestv;
                argmax_[o] = static_cast<std::uint32_t>(best);
            }
    }
}

void MaxPool2::backward(const Tensor& in, const Tensor& dout, Tensor* din) {
    if (!din) return;
    if (din->shape() != in.shape()) din->resize(in.shape());
    float* dx = din->data();
    std::fill(dx, dx + din->size(), 0.0f);
    const float* dy = dout.data();
    for (std::size_t o = 0, n = dout.size(); o < n; ++o) dx[argmax_[o]] += dy[o];
}

// ---------------------------------------------------------------- Flatten

void Flatten::forward(const Tensor& in, Tensor& out) {
    require_dims(in, 4, "flatten");
    const std::size_t C = in.shape()[0], B = in.shape()[1], HW = in.shape()[2] * in.shape()[3];
    ensure_shape(out, {B, C * HW});
    const float* x = in.data();
    float* y = out.data();
    for (std::size_t c = 0; c < C; ++c)
        for (std::size_t b = 0; b < B; ++b) std::copy_n(x + (c * B + b) * HW, HW, y + b * C * HW + c * HW);
}

void Flatten::backward(const Tensor& in, const Tensor& dout, Tensor* din) {
    if (!din) return;
    if (din->shape() != in.shape()) din->resize(in.shape());
    const std::size_t C = in.shape()[0], B = in.shape()[1], HW = in.shape()[2] * in.shape()[3];
    const float* dy = dout.data();
    float* dx = din->data();
    for (std::size_t c = 0; c < C; ++c)
        for (std::size_t b = 0; b < B; ++b) std::copy_n(dy + b * C * HW + c * HW, HW, dx + (c * B + b) * HW);
}

// ---------------------------------------------------------------- Linear

Linear::Linear(std::size_t in_features, std::size_t out_features) : in_(in_features), out_(out_features) {}

void Linear::bind(std::span<float> params, std::span<float> grads) {
    w_ = params.data();
    b_ = params.data() + weight_count();
    dw_ = grads.data();
    db_ = grads.data() + weight_count();
}

void Linear::forward(const Tensor& in, Tensor& out) {
    require_dims(in, 2, "linear");
    if (in.shape()[1] != in_) throw std::invalid_argument("linear: wrong number of input features");
    const std::size_t B = in.shape()[0];
    ensure_shape(out, {B, out_});
    float* y = out.data();
    for (std::size_t b = 0; b < B; ++b) std::copy_n(b_, out_, y + b * out_);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(B), static_cast<int>(out_),
                static_cast<int>(in_), 1.0f, in.data(), static_cast<int>(in_), w_, static_cast<int>(in_), 1.0f, y,
                static_cast<int>(out_));
}

void Linear::backward(const Tensor& in, const Tensor& dout, Tensor* din) {
    const std::size_t B = in.shape()[0];
    const float* dy = dout.data();
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(out_), static_cast<int>(in_),
                static_cast<int>(B), 1.0f, dy, static_cast<int>(out_), in.data(), static_cast<int>(in_), 0.0f, dw_,
                static_cast<int>(in_));
    for (std::size_t o = 0; o < out_; ++o) {
        double s = 0;
        for (std::size_t b = 0; b < B; ++b) s += dy[b * out_ + o];
        db_[o] = static_cast<float>(s);
    }
    if (!din) return;
    ensure_shape(*din, {B, in_});
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(B), static_cast<int>(in_),
                static_cast<int>(out_), 1.0f, dy, static_cast<int>(out_), w_, static_cast<int>(in_), 0.0f,
                din->data(), static_cast<int>(in_));
}

// ---------------------------------------------------------------- loss

LossResult softmax_cross_entropy(const Tensor& logits, std::span<const std::uint8_t> labels, Tensor* dlogits) {
    require_dims(logits, 2, "softmax_cross_entropy");
    const std::size_t B = logits.shape()[0], K = logits.shape()[1];
    if (labels.size() < B) throw std::invalid_argument("softmax_cross_entropy: fewer labels than rows");
    if (dlogits) ensure_shape(*dlogits, {B, K});
    LossResult r;
    const float* z = logits.data();
    for (std::size_t b = 0; b < B; ++b) {
        const float* row = z + b * K;
        const std::size_t label = labels[b];
        if (label >= K) throw std::invalid_argument("softmax_cross_entropy: label out of range");
        std::size_t arg = 0;
        float mx = row[0];
        for (std::size_t k = 1; k < K; ++k)
            if (row[k] > mx) mx = row[k], arg = k;
        double sum = 0;
        for (std::size_t k = 0; k < K; ++k) sum += std::exp(static_cast<double>(row[k]) - mx);
        const double log_sum = std::log(sum) + mx;
        r.loss_sum += log_sum - row[label];
        r.correct += arg == label;
        if (dlogits) {
            float* g = dlogits->data() + b * K;
            for (std::size_t k = 0; k < K; ++k) {
                double p = std::exp(static_cast<double>(row[k]) - log_sum);
                g[k] = static_cast<float>((p - (k == label ? 1.0 : 0.0)) / static_cast<double>(B));
            }
        }
    }
    return r;
}

}  // namespace p2p::nn
