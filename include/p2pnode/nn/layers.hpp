// Layers of the CNN. Pure math: no files, no sockets.
//
// Layout: convolution-side tensors are {C, B, H, W} (channel-major, the batch inside each
// channel) so that a whole batch convolves as one GEMM; dense tensors are {B, F}. Flatten
// turns {C, B, H, W} into {B, C*H*W} in PyTorch's per-image (C, H, W) order.
//
// Contract of a Layer: forward(in, out) resizes `out` and fills it; backward(in, dout, din)
// is called after forward with the same `in`, writes the gradients of the layer's parameters
// into the span given to bind() (overwriting, not accumulating), and fills `din` unless it is
// null. Buffers are kept between calls: after the first batch of a size, nothing is allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

namespace p2p::nn {

using Tensor = xt::xarray<float>;

class Layer {
public:
    virtual ~Layer() = default;
    virtual std::string name() const = 0;
    virtual void forward(const Tensor& in, Tensor& out) = 0;
    virtual void backward(const Tensor& in, const Tensor& dout, Tensor* din) = 0;
    // Number of parameters; bind() gives the layer its slice of the flat parameter and
    // gradient vectors (weights first, then bias).
    virtual std::size_t param_count() const { return 0; }
    virtual void bind(std::span<float> /*params*/, std::span<float> /*grads*/) {}
    // Fan-in used by PyTorch's default initialisation (0 for parameter-free layers).
    virtual std::size_t fan_in() const { return 0; }
    virtual std::size_t weight_count() const { return 0; }
};

// 2-D convolution, stride 1, square kernel, zero padding: im2col + sgemm over chunks of the
// batch, or, for a 5x5 kernel with padding 2 on even-sized images and `Algorithm::winograd`,
// Winograd's F(2x2, 5x5) (36 products a 2x2 output block and channel pair instead of 100; the
// same convolution up to float rounding, about 16x im2col's rounding error). Its backward()
// uses the kernels as the forward() before it transformed them: the weights must not change
// in between (Sequential::compute_gradient runs the two back to back).
class Conv2d : public Layer {
public:
    enum class Algorithm { im2col, winograd };
    Conv2d(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, std::size_t padding,
           Algorithm algorithm = Algorithm::im2col);
    std::string name() const override { return "conv2d"; }
    void forward(const Tensor& in, Tensor& out) override;
    void backward(const Tensor& in, const Tensor& dout, Tensor* din) override;
    // Inference: this convolution, then 2x2 max pooling (then ReLU if `relu`), the same floats
    // as forward() and MaxPool2 (and Relu) but without the full convolution output (Winograd:
    // with it, in `chunk`); `chunk` is scratch. Not followed by backward().
    void forward_pooled(const Tensor& in, std::vector<float>& chunk, bool relu, Tensor& out);
    std::size_t param_count() const override { return weight_count() + out_; }
    std::size_t weight_count() const override { return out_ * in_ * k_ * k_; }
    std::size_t fan_in() const override { return in_ * k_ * k_; }
    void bind(std::span<float> params, std::span<float> grads) override;

private:
    bool winograd_for(const Tensor& in) const;
    void winograd_forward(const Tensor& in, float* y);
    void winograd_backward(const Tensor& in, const Tensor& dout, Tensor* din);

    std::size_t in_, out_, k_, pad_;
    Algorithm algorithm_;
    float* w_ = nullptr;
    float* b_ = nullptr;
    float* dw_ = nullptr;
    float* db_ = nullptr;
    std::vector<float> col_;   // one chunk's im2col matrix, (in*k*k) x (images*Ho*Wo)
    std::vector<float> dcol_;
    std::vector<float> dwt_;   // dW transposed, (in*k*k) x out
    // Winograd: the transformed kernels (kept from forward for backward) and their gradient,
    // [36][out][in]; one chunk's transformed inputs, products and scratch
    std::vector<float> u_, du_, v_, m_, scratch_;
};

class Relu : public Layer {
public:
    std::string name() const override { return "relu"; }
    void forward(const Tensor& in, Tensor& out) override;
    void backward(const Tensor& in, const Tensor& dout, Tensor* din) override;
};

// 2x2 max pooling, stride 2, on {C, B, H, W}; an odd last row or column is dropped (floor
// mode). In backward, ties go to the first maximum in scan order (row, then column), as in
// PyTorch. NaN inputs give unspecified results.
class MaxPool2 : public Layer {
public:
    std::string name() const override { return "maxpool2"; }
    void forward(const Tensor& in, Tensor& out) override;
    void backward(const Tensor& in, const Tensor& dout, Tensor* din) override;
};

// {C, B, H, W} -> {B, C*H*W}.
class Flatten : public Layer {
public:
    std::string name() const override { return "flatten"; }
    void forward(const Tensor& in, Tensor& out) override;
    void backward(const Tensor& in, const Tensor& dout, Tensor* din) override;
};

// y = x W^T + b with W of shape {out, in}, as torch.nn.Linear.
class Linear : public Layer {
public:
    Linear(std::size_t in_features, std::size_t out_features);
    std::string name() const override { return "linear"; }
    void forward(const Tensor& in, Tensor& out) override;
    void backward(const Tensor& in, const Tensor& dout, Tensor* din) override;
    std::size_t param_count() const override { return weight_count() + out_; }
    std::size_t weight_count() const override { return out_ * in_; }
    std::size_t fan_in() const override { return in_; }
    void bind(std::span<float> params, std::span<float> grads) override;

private:
    std::size_t in_, out_;
    float* w_ = nullptr;
    float* b_ = nullptr;
    float* dw_ = nullptr;
    float* db_ = nullptr;
};

// Softmax cross-entropy, mean over the batch, computed stably (log-sum-exp).
struct LossResult {
    double loss_sum = 0;     // sum over the batch of -log p(label)
    std::size_t correct = 0; // argmax == label
};
// logits {B, K}; fills dlogits ({B, K}, gradient of the mean loss) when it is not null.
LossResult softmax_cross_entropy(const Tensor& logits, std::span<const std::uint8_t> labels, Tensor* dlogits);

// Limits OpenBLAS to `threads` threads (1 by default in p2pnode: several nodes share a machine).
void set_blas_threads(int threads);

}  // namespace p2p::nn
