// The models, each a Sequential over flat float32 parameter and gradient vectors (layer by
// layer, weights then bias), trained with softmax cross-entropy (mean over the batch).
// SmallCnn is the reference's model:
//   conv 1->16 3x3 pad 1, ReLU, maxpool 2; conv 16->32 3x3 pad 1, ReLU, maxpool 2;
//   linear 1568->128, ReLU; linear 128->10.
// The catalogue (models()) adds ByzFL's: logreg, mlp, cnn-mnist, cnn-cifar.
#pragma once

#include <condition_variable>
#include <deque>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "p2pnode/data/idx.hpp"
#include "p2pnode/nn/layers.hpp"

namespace p2p::nn {

// The scratch of one pass through a model: each layer's output and the gradient with respect to it
// (for SmallCnn at batch 64 about 15 MB, at an evaluation batch of 100 about 20 MB).
struct Workspace {
    std::vector<Tensor> acts, dacts;
    Tensor dlogits;
    std::vector<float> chunk;  // infer(): one chunk of a convolution's output
};

// Workspaces shared by the models of one process (nodes as threads): a pass borrows one for its
// duration and gives it back, so the scratch is that of `slots` passes however many models
// there are. A pass waits while every workspace is lent, first come first served (a pass never
// waits on anything else, so this cannot deadlock; an evaluation borrows per batch, so a node's
// training pass waits behind one batch of each evaluating node, not whole evaluations); with
// slots = the cores, no core waits for want of one.
class WorkspacePool {
public:
    explicit WorkspacePool(std::size_t slots);

    class Lease {
    public:
        Lease(WorkspacePool& pool, std::unique_ptr<Workspace> w) : pool_(&pool), w_(std::move(w)) {}
        Lease(Lease&& o) noexcept = default;
        Lease& operator=(Lease&& o) noexcept {
            if (this != &o) {
                if (w_) pool_->give_back(std::move(w_));
                pool_ = o.pool_;
                w_ = std::move(o.w_);
            }
            return *this;
        }
        ~Lease() {
            if (w_) pool_->give_back(std::move(w_));
        }
        Workspace& get() { return *w_; }

    private:
        WorkspacePool* pool_;
        std::unique_ptr<Workspace> w_;
    };
    Lease borrow();

private:
    void give_back(std::unique_ptr<Workspace> w);
    // A borrower waiting: a returned workspace is handed to the first in line, and only it wakes.
    struct Waiter {
        std::condition_variable cv;
        std::unique_ptr<Workspace> given;
    };
    std::mutex m_;
    std::vector<std::unique_ptr<Workspace>> free_;
    std::deque<Waiter*> waiting_;
};

// A sequence of layers over one flat parameter vector and one flat gradient vector.
class Sequential {
public:
    explicit Sequential(std::vector<std::unique_ptr<Layer>> layers);

    std::size_t param_count() const { return params_.size(); }
    std::span<float> params() { return params_; }
    std::span<const float> params() const { return params_; }
    std::span<const float> grads() const { return grads_; }

    // PyTorch's default initialisation for every layer: weights and biases U(-1/sqrt(fan_in),
    // +1/sqrt(fan_in)) (Kaiming-uniform with a = sqrt(5) reduces to that bound). Same seed,
    // same parameters, on every machine.
    void init(std::uint64_t seed);

    // `input` is {C, B, H, W}. Returns the logits ({B, K}), valid until the next call.
    const Tensor& forward(const Tensor& input);
    // The logits of forward(), bit for bit, for inference: a convolution followed by max
    // pooling (and ReLU) runs as one pass (Conv2d::forward_pooled), without the activations
    // that backward() would need. What evaluate() uses.
    const Tensor& infer(const Tensor& input);
    // Forward, loss and backward on one batch: fills grads(), returns the loss summary.
    LossResult compute_gradient(const Tensor& input, std::span<const std::uint8_t> labels);

    const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }

    // Passes borrow their scratch from `pool` from now on instead of keeping their own (nodes as
    // threads of one process); null: their own again.
    void share_workspaces(std::shared_ptr<WorkspacePool> pool);
    // While a Pass lives the model holds one workspace: what forward() returns stays valid until
    // it ends (an evaluation holds one per batch). compute_gradient holds one by itself.
    class Pass {
    public:
        explicit Pass(Sequential& m);
        Pass(const Pass&) = delete;
        Pass& operator=(const Pass&) = delete;
        ~Pass();

    private:
        Sequential& m_;
        bool borrowed_ = false;
    };

private:
    Workspace& scratch();  // the held workspace, else the model's own, sized for the layers
    std::vector<std::unique_ptr<Layer>> layers_;
    std::vector<float> params_;
    std::vector<float> grads_;
    Workspace own_;  // acts[i] is layer i's output, dacts[i] the gradient with respect to it
    std::shared_ptr<WorkspacePool> pool_;
    std::optional<WorkspacePool::Lease> held_;
    const Tensor* input_ = nullptr;
};

inline constexpr std::size_t kSmallCnnParams = 206'922;

// The reference's SmallCnn, initialised from `seed`.
Sequential make_small_cnn(std::uint64_t seed);

// What a model is built for: images of channels x height x width, and the class count. The
// data set gives them (nn knows no files: the caller passes the shape).
struct ModelShape {
    std::size_t channels = 1, height = 28, width = 28;
    std::size_t classes = 10;
};

// A model's own choices beyond the data's shape (mlp: hidden sizes).
struct ModelOptions {
    std::vector<std::size_t> hidden{100};
};

// The model catalogue: one row per model, with the input it takes (0: any size; its layers
// follow the data) and its factory (same shape, options and seed: same parameters on every
// machine). `model:` / `--model`, `p2pnode list models` and the errors read it.
struct ModelEntry {
    std::string_view name;
    std::string_view description;
    std::size_t channels, height, width;  // 0: any
    std::size_t classes;                  // 0: any (the data set's)
    Sequential (*make)(const ModelShape& shape, const ModelOptions& options, std::uint64_t seed);

    // "" or why the model cannot take data of that shape ("takes 3x32x32 images").
    std::string misfit(const ModelShape& shape) const;
    // Its parameter count for that shape (builds it once).
    std::size_t param_count(const ModelShape& shape, const ModelOptions& options) const;
};
std::span<const ModelEntry> models();
const ModelEntry* find_model(std::string_view name);

// The other rows' factories, for tests and benchmarks.
Sequential make_logreg(const ModelShape& shape, std::uint64_t seed);
Sequential make_mlp(const ModelShape& shape, const std::vector<std::size_t>& hidden, std::uint64_t seed);
Sequential make_cnn_mnist(std::uint64_t seed);
Sequential make_cnn_cifar(std::uint64_t seed);

// theta <- theta - lr * g, with optional momentum and weight decay (PyTorch's SGD semantics;
// off by default, like the reference). The momentum buffer is allocated once.
class Sgd {
public:
    explicit Sgd(float lr, float momentum = 0.0f, float weight_decay = 0.0f);
    void step(std::span<float> params, std::span<const float> grads);
    float lr() const { return lr_; }
    void set_lr(float lr) { lr_ = lr; }
    // The momentum buffer (empty until the first step with momentum), for checkpoints.
    std::vector<float>& velocity() { return velocity_; }

private:
    float lr_, momentum_, weight_decay_;
    std::vector<float> velocity_;
};

struct EvalResult {
    double loss = 0;      // mean cross-entropy
    double accuracy = 0;  // fraction correct
    std::size_t count = 0;
};

// Loss and accuracy of `model` over every image of `ds`, in batches of `batch`.
EvalResult evaluate(Sequential& model, const data::Dataset& ds, std::size_t batch = 100);

}  // namespace p2p::nn
