#include "p2pnode/nn/model.hpp"

#include <fmt/format.h>

#include "p2pnode/catalogue.hpp"

#include <cmath>
#include <random>
#include <stdexcept>

#include "p2pnode/data/batches.hpp"

namespace p2p::nn {

Sequential::Sequential(std::vector<std::unique_ptr<Layer>> layers) : layers_(std::move(layers)) {
    std::size_t total = 0;
    for (const auto& l : layers_) total += l->param_count();
    params_.assign(total, 0.0f);
    grads_.assign(total, 0.0f);
    std::size_t offset = 0;
    for (auto& l : layers_) {
        const std::size_t n = l->param_count();
        l->bind(std::span<float>(params_).subspan(offset, n), std::span<float>(grads_).subspan(offset, n));
        offset += n;
    }
}

WorkspacePool::WorkspacePool(std::size_t slots) {
    for (std::size_t i = 0; i < std::max<std::size_t>(1, slots); ++i) free_.push_back(std::make_unique<Workspace>());
}

WorkspacePool::Lease WorkspacePool::borrow() {
    std::unique_lock lock(m_);
    if (!free_.empty()) {  // none waits when one is free
        auto w = std::move(free_.back());
        free_.pop_back();
        return Lease(*this, std::move(w));
    }
    Waiter me;
    waiting_.push_back(&me);
    me.cv.wait(lock, [&] { return me.given != nullptr; });
    return Lease(*this, std::move(me.given));
}

void WorkspacePool::give_back(std::unique_ptr<Workspace> w) {
    std::lock_guard lock(m_);
    if (waiting_.empty()) {
        free_.push_back(std::move(w));
        return;
    }
    Waiter* first = waiting_.front();  // first come, first served
    waiting_.pop_front();
    first->given = std::move(w);
    first->cv.notify_one();  // under the lock: `first` lives until it has seen `given`
}

void Sequential::share_workspaces(std::shared_ptr<WorkspacePool> pool) {
    pool_ = std::move(pool);
    if (pool_) own_ = Workspace{};  // its memory goes
}

Sequential::Pass::Pass(Sequential& m) : m_(m) {
    if (m_.pool_ && !m_.held_) {
        m_.held_.emplace(m_.pool_->borrow());
        borrowed_ = true;
    }
}

Sequential::Pass::~Pass() {
    if (borrowed_) m_.held_.reset();
}

Workspace& Sequential::scratch() {
    Workspace& w = held_ ? held_->get() : own_;
    if (w.acts.size() < layers_.size()) w.acts.resize(layers_.size());  // first used by this model
    if (w.dacts.size() < layers_.size()) w.dacts.resize(layers_.size());
    return w;
}

void Sequential::init(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    // Uniform in [-bound, bound) from 24 random bits: the same floats on every platform.
    auto uniform = [&](float bound) {
        const float u = static_cast<float>(rng() >> 40) * (1.0f / 16777216.0f);
        return (2.0f * u - 1.0f) * bound;
    };
    std::size_t offset = 0;
    for (const auto& l : layers_) {
        const std::size_t n = l->param_count();
        if (n) {
            const float bound = 1.0f / std::sqrt(static_cast<float>(l->fan_in()));
            for (std::size_t i = 0; i < n; ++i) params_[offset + i] = uniform(bound);
        }
        offset += n;
    }
}

const Tensor& Sequential::forward(const Tensor& input) {
    input_ = &input;
    Workspace& w = scratch();
    const Tensor* x = &input;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        layers_[i]->forward(*x, w.acts[i]);
        x = &w.acts[i];
    }
    return *x;
}

const Tensor& Sequential::infer(const Tensor& input) {
    Workspace& w = scratch();
    const Tensor* x = &input;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        auto* conv = dynamic_cast<Conv2d*>(layers_[i].get());
        if (conv && i + 1 < layers_.size() && dynamic_cast<MaxPool2*>(layers_[i + 1].get())) {
            const bool relu = i + 2 < layers_.size() && dynamic_cast<Relu*>(layers_[i + 2].get());
            i += relu ? 2 : 1;  // the layers done in this pass
            conv->forward_pooled(*x, w.chunk, relu, w.acts[i]);
        } else {
            layers_[i]->forward(*x, w.acts[i]);
        }
        x = &w.acts[i];
    }
    return *x;
}

LossResult Sequential::compute_gradient(const Tensor& input, std::span<const std::uint8_t> labels) {
    Pass pass(*this);
    const Tensor& logits = forward(input);
    Workspace& w = scratch();
    LossResult r = softmax_cross_entropy(logits, labels, &w.dlogits);
    const Tensor* dout = &w.dlogits;
    // Layers before the first one with parameters (a leading Flatten) need no gradient, so
    // the first parametrised layer computes none for its input: for logreg and mlp that is a
    // third of the backward pass (the batch x 784 input gradient of the first Linear).
    std::size_t first = 0;
    while (first < layers_.size() && layers_[first]->param_count() == 0) ++first;
    for (std::size_t i = layers_.size(); i-- > first;) {
        const Tensor& in = i == 0 ? *input_ : w.acts[i - 1];
        Tensor* din = i == first ? nullptr : &w.dacts[i - 1];
        layers_[i]->backward(in, *dout, din);
        dout = din;
    }
    return r;
}

Sequential make_small_cnn(std::uint64_t seed) {
    std::vector<std::unique_ptr<Layer>> layers;
    // conv -> ReLU -> maxpool computed as conv -> maxpool -> ReLU: the two orders give the
    // same outputs and the same gradients (ReLU is monotone, so it commutes with max, and a
    // window whose maximum is <= 0 passes no gradient either way), and the ReLU then touches a
    // quarter of the data.
    layers.push_back(std::make_unique<Conv2d>(1, 16, 3, 1));
    layers.push_back(std::make_unique<MaxPool2>());
    layers.push_back(std::make_unique<Relu>());
    layers.push_back(std::make_unique<Conv2d>(16, 32, 3, 1));
    layers.push_back(std::make_unique<MaxPool2>());
    layers.push_back(std::make_unique<Relu>());
    layers.push_back(std::make_unique<Flatten>());
    layers.push_back(std::make_unique<Linear>(32 * 7 * 7, 128));
    layers.push_back(std::make_unique<Relu>());
    layers.push_back(std::make_unique<Linear>(128, 10));
    Sequential model(std::move(layers));
    model.init(seed);
    return model;
}

Sgd::Sgd(float lr, float momentum, float weight_decay) : lr_(lr), momentum_(momentum), weight_decay_(weight_decay) {}

void Sgd::step(std::span<float> params, std::span<const float> grads) {
    if (params.size() != grads.size()) throw std::invalid_argument("Sgd::step: parameter and gradient sizes differ");
    const std::size_t n = params.size();
    if (momentum_ == 0.0f && weight_decay_ == 0.0f) {
        for (std::size_t i = 0; i < n; ++i) params[i] -= lr_ * grads[i];
        return;
    }
    const bool first = velocity_.empty();
    if (momentum_ != 0.0f && first) velocity_.assign(n, 0.0f);
    for (std::size_t i = 0; i < n; ++i) {
        float g = grads[i] + weight_decay_ * params[i];
        if (momentum_ != 0.0f) {
            velocity_[i] = first ? g : momentum_ * velocity_[i] + g;
            g = velocity_[i];
        }
        params[i] -= lr_ * g;
    }
}

EvalResult evaluate(Sequential& model, const data::Dataset& ds, std::size_t batch) {
    EvalResult out;
    std::vector<std::uint32_t> idx;
    std::vector<float> pixels;
    std::vector<std::uint8_t> labels;
    Tensor input;
    double loss_sum = 0;
    std::size_t correct = 0;
    for (std::size_t start = 0; start < ds.count; start += batch) {
        const std::size_t b = std::min(batch, ds.count - start);
        idx.resize(b);
        for (std::size_t i = 0; i < b; ++i) idx[i] = static_cast<std::uint32_t>(start + i);
        data::gather_batch(ds, idx, pixels, labels);
        const std::vector<std::size_t> shape{ds.channels, b, ds.rows, ds.cols};
        if (input.shape() != xt::xarray<float>::shape_type(shape.begin(), shape.end())) input.resize(shape);
        std::copy_n(pixels.data(), b * ds.image_size(), input.data());
        Sequential::Pass pass(model);  // a shared workspace per batch
        const Tensor& logits = model.infer(input);
        LossResult r = softmax_cross_entropy(logits, std::span<const std::uint8_t>(labels).first(b), nullptr);
        loss_sum += r.loss_sum;
        correct += r.correct;
    }
    out.count = ds.count;
    if (ds.count) {
        out.loss = loss_sum / static_cast<double>(ds.count);
        out.accuracy = static_cast<double>(correct) / static_cast<double>(ds.count);
    }
    return out;
}

namespace {

using Layers = std::vector<std::unique_ptr<Layer>>;

Sequential finish(Layers layers, std::uint64_t seed) {
    Sequential model(std::move(layers));
    model.init(seed);
    return model;
}

// conv -> ReLU -> maxpool, computed as conv -> maxpool -> ReLU (see make_small_cnn).
void conv_block(Layers& l, std::size_t in, std::size_t out, std::size_t kernel, std::size_t pad,
                Conv2d::Algorithm algorithm = Conv2d::Algorithm::im2col) {
    l.push_back(std::make_unique<Conv2d>(in, out, kernel, pad, algorithm));
    l.push_back(std::make_unique<MaxPool2>());
    l.push_back(std::make_unique<Relu>());
}

Sequential small_cnn_row(const ModelShape&, const ModelOptions&, std::uint64_t seed) { return make_small_cnn(seed); }
Sequential logreg_row(const ModelShape& s, const ModelOptions&, std::uint64_t seed) { return make_logreg(s, seed); }
Sequential mlp_row(const ModelShape& s, const ModelOptions& o, std::uint64_t seed) { return make_mlp(s, o.hidden, seed); }
Sequential cnn_mnist_row(const ModelShape&, const ModelOptions&, std::uint64_t seed) { return make_cnn_mnist(seed); }
Sequential cnn_cifar_row(const ModelShape&, const ModelOptions&, std::uint64_t seed) { return make_cnn_cifar(seed); }

const ModelEntry kModels[] = {
    {"small-cnn", "the reference's CNN: conv 16, conv 32 (3x3, ReLU, maxpool 2), fc 128, fc 10; 206,922 parameters",
     1, 28, 28, 10, small_cnn_row},
    {"logreg", "linear softmax regression on the flattened image (any image size and class count)", 0, 0, 0, 0,
     logreg_row},
    {"mlp", "fully connected, ReLU between layers, hidden sizes --hidden (default 100: ByzFL's fc_mnist)", 0, 0, 0,
     0, mlp_row},
    {"cnn-mnist",
     "ByzFL's cnn_mnist: conv 20, conv 50 (5x5, no padding, ReLU, maxpool 2), fc 500, fc 10; 431,080 parameters", 1,
     28, 28, 10, cnn_mnist_row},
    {"cnn-cifar",
     "ByzFL's cnn_cifar: conv 20, 100, 200 (5x5, padding 2, ReLU, maxpool 2), fc 512, fc 256, fc 10; 2,324,630 "
     "parameters; convolutions 2 and 3 by Winograd F(2x2, 5x5)",
     3, 32, 32, 10, cnn_cifar_row},
};

}  // namespace

Sequential make_logreg(const ModelShape& s, std::uint64_t seed) {
    Layers l;
    l.push_back(std::make_unique<Flatten>());
    l.push_back(std::make_unique<Linear>(s.channels * s.height * s.width, s.classes));
    return finish(std::move(l), seed);
}

Sequential make_mlp(const ModelShape& s, const std::vector<std::size_t>& hidden, std::uint64_t seed) {
    Layers l;
    l.push_back(std::make_unique<Flatten>());
    std::size_t in = s.channels * s.height * s.width;
    for (std::size_t h : hidden) {
        l.push_back(std::make_unique<Linear>(in, h));
        l.push_back(std::make_unique<Relu>());
        in = h;
    }
    l.push_back(std::make_unique<Linear>(in, s.classes));
    return finish(std::move(l), seed);
}

Sequential make_cnn_mnist(std::uint64_t seed) {
    Layers l;
    conv_block(l, 1, 20, 5, 0);   // 28 -> 24 -> 12
    conv_block(l, 20, 50, 5, 0);  // 12 -> 8 -> 4
    l.push_back(std::make_unique<Flatten>());
    l.push_back(std::make_unique<Linear>(50 * 4 * 4, 500));
    l.push_back(std::make_unique<Relu>());
    l.push_back(std::make_unique<Linear>(500, 10));
    return finish(std::move(l), seed);
}

Sequential make_cnn_cifar(std::uint64_t seed) {
    Layers l;
    // The two larger convolutions by Winograd's F(2x2, 5x5) (their im2col sgemms were 70% of
    // a step); the first, with 3 input channels, is faster as im2col.
    const auto winograd = Conv2d::Algorithm::winograd;
    conv_block(l, 3, 20, 5, 2);               // 32 -> 16
    conv_block(l, 20, 100, 5, 2, winograd);   // 16 -> 8
    conv_block(l, 100, 200, 5, 2, winograd);  // 8 -> 4
    l.push_back(std::make_unique<Flatten>());
    l.push_back(std::make_unique<Linear>(200 * 4 * 4, 512));
    l.push_back(std::make_unique<Relu>());
    l.push_back(std::make_unique<Linear>(512, 256));
    l.push_back(std::make_unique<Relu>());
    l.push_back(std::make_unique<Linear>(256, 10));
    return finish(std::move(l), seed);
}

std::string ModelEntry::misfit(const ModelShape& s) const {
    auto any = [](std::size_t v) { return v == 0 ? std::string("any") : std::to_string(v); };
    if ((channels && channels != s.channels) || (height && height != s.height) || (width && width != s.width))
        return fmt::format("takes {}x{}x{} images", any(channels), any(height), any(width));
    if (classes && classes < s.classes) return fmt::format("has {} classes", classes);
    if (s.classes < 2) return "needs at least 2 classes";
    return {};
}

std::size_t ModelEntry::param_count(const ModelShape& s, const ModelOptions& o) const {
    return make(s, o, 0).param_count();
}

std::span<const ModelEntry> models() { return kModels; }

const ModelEntry* find_model(std::string_view name) { return find_row(models(), name); }

}  // namespace p2p::nn
