#include "p2pnode/node/trainer.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "p2pnode/errors.hpp"

namespace p2p::node {

namespace {

// The model, after checking that it takes the data set's images and classes.
nn::Sequential build(const std::string& name, std::uint64_t seed, const data::MnistData& data) {
    const nn::ModelEntry* e = nn::find_model(name);
    if (!e) throw ConfigError(fmt::format("unknown model '{}'", name));
    const data::Dataset& d = data.train;
    if (e->channels != d.channels || e->height != d.rows || e->width != d.cols || e->classes < d.classes)
        throw ConfigError(fmt::format("model {} takes {}x{}x{} images of {} classes; the data in {} are {}x{}x{} of {}",
                                      name, e->channels, e->height, e->width, e->classes, data.root, d.channels,
                                      d.rows, d.cols, d.classes));
    return e->make(seed);  // every node starts from the same model
}

}  // namespace

Trainer::Trainer(const TrainingOptions& t, const std::string& model, std::size_t shard, std::size_t shards,
                 const data::MnistData& data, float momentum, float weight_decay)
    : training_(t),
      data_(data),
      model_(build(model, t.seed, data)),
      sgd_(static_cast<float>(t.learning_rate), momentum, weight_decay),
      // Each shard shuffles with its own stream, derived from the run's seed.
      sampler_(data::shard_indices(data.train.count, shard, shards), static_cast<std::size_t>(t.batch_size),
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
