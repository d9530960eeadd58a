#include "p2pnode/node/trainer.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "p2pnode/errors.hpp"

namespace p2p::node {

namespace {

// The model, after checking that it takes the data set's images and classes.
nn::Sequential build(const std::string& name, const nn::ModelOptions& options, std::uint64_t seed,
                     const data::MnistData& data) {
    const nn::ModelEntry* e = nn::find_model(name);
    if (!e) throw ConfigError(fmt::format("unknown model '{}'", name));
    const data::Dataset& d = data.train;
    const nn::ModelShape shape{d.channels, d.rows, d.cols, d.classes};
    if (const std::string why = e->misfit(shape); !why.empty())
        throw ConfigError(fmt::format("model {} {}; the data in {} are {}x{}x{} images of {} classes", name, why,
                                      data.root, d.channels, d.rows, d.cols, d.classes));
    return e->make(shape, options, seed);  // every node starts from the same model
}

std::vector<std::uint32_t> shard_of(const data::Dataset& train, std::size_t shard, std::size_t shards,
                                    const data::PartitionSpec& partition) {
    if (shards == 0 || shard >= shards) throw ConfigError(fmt::format("shard {} of {} does not exist", shard, shards));
    try {
        return std::move(data::partition(train.labels, train.classes, shards, partition)[shard]);
    } catch (const std::invalid_argument& e) {
        throw ConfigError(fmt::format("data.partition {}: {}", partition.name, e.what()));
    }
}

}  // namespace

Trainer::Trainer(const TrainingOptions& t, const std::string& model, std::size_t shard, std::size_t shards,
                 const data::MnistData& data, float momentum, float weight_decay, const data::PartitionSpec& partition,
                 const nn::ModelOptions& model_options)
    : training_(t),
      data_(data),
      model_(build(model, model_options, t.seed, data)),
      sgd_(static_cast<float>(t.learning_rate), momentum, weight_decay),
      // Each shard shuffles with its own stream, derived from the run's seed.
      sampler_(shard_of(data.train, shard, shards, partition), static_cast<std::size_t>(t.batch_size),
               t.seed * 1000003ULL + shard),
      input_(nn::Tensor::from_shape(
          {data.train.channels, static_cast<std::size_t>(t.batch_size), data.train.rows, data.train.cols})) {}

void Trainer::next_batch(bool flip_labels) {
    data::gather_batch(data_.train, sampler_.next(), pixels_, labels_);
    std::copy_n(pixels_.data(), input_.size(), input_.data());
    if (flip_labels)
        for (auto& l : labels_) l = static_cast<std::uint8_t>(data_.train.classes - 1 - l);
}

double Trainer::gradient() { return model_.compute_gradient(input_, labels_).loss_sum / training_.batch_size; }

}  // namespace p2p::node

namespace p2p::node {

std::span<const float> Trainer::worker_vector() {
    const auto beta = static_cast<float>(training_.momentum), wd = static_cast<float>(training_.weight_decay);
    if (beta == 0.0f && wd == 0.0f) return model_.grads();
    const auto g = model_.grads();
    const auto theta = model_.params();
    if (momentum_.size() != g.size()) momentum_.assign(g.size(), 0.0f);  // m_0 = 0, as ByzFL starts
    for (std::size_t k = 0; k < g.size(); ++k) momentum_[k] = beta * momentum_[k] + (1.0f - beta) * (g[k] + wd * theta[k]);
    return momentum_;
}

float Trainer::schedule(int round) {
    double lr = training_.learning_rate;
    for (int m : training_.lr_milestones)
        if (round > m) lr *= training_.lr_gamma;
    sgd_.set_lr(static_cast<float>(lr));
    return sgd_.lr();
}

}  // namespace p2p::node
