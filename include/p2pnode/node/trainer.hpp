// The training half every node shares with `p2pnode train`: one model from the catalogue, its
// SGD, the batches of one shard (the same seed arithmetic everywhere), the gradient on a batch,
// the step and the test-set evaluation. The round protocol and the local loop are built on it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "p2pnode/config/experiment.hpp"
#include "p2pnode/data/batches.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/data/partition.hpp"
#include "p2pnode/nn/model.hpp"

namespace p2p::node {

class Trainer {
public:
    // Trains on shard `shard` of `shards` under `partition` (default: strided). ConfigError for
    // a model that is no row of nn::models(). `data` must outlive the trainer.
    Trainer(const TrainingOptions& training, const std::string& model, std::size_t shard, std::size_t shards,
            const data::MnistData& data, float momentum = 0.0f, float weight_decay = 0.0f,
            const data::PartitionSpec& partition = {}, const nn::ModelOptions& model_options = {});

    // Draws the shard's next batch; with `flip_labels`, label y becomes classes - 1 - y.
    void next_batch(bool flip_labels = false);
    // Forward and backward on the current batch: grads() holds the gradient. Returns the mean loss.
    double gradient();
    // theta <- theta - lr * g (with the trainer's momentum and weight decay).
    void step(std::span<const float> g) { sgd_.step(model_.params(), g); }
    // A node's vector for the round, after gradient(): the worker momentum
    // m <- beta m + (1 - beta) (g + wd * theta), from m = 0 (ByzFL's), with the training
    // options' beta and wd; the gradient itself when both are 0. Valid until the next call.
    std::span<const float> worker_vector();
    // Sets the learning rate of round `round` (1-based) from the schedule: lr x gamma^k after k
    // milestones (a milestone m: rounds m+1, ... use the lower rate). Returns it.
    float schedule(int round);
    float lr() const { return sgd_.lr(); }
    // The worker momentum (empty until used), for checkpoints.
    std::vector<float>& worker_momentum() { return momentum_; }
    // Whether round `round` (1-based) evaluates: every eval_every rounds and the last one.
    bool evaluates(int round, bool last) const {
        return last || (training_.eval_every > 0 && round % training_.eval_every == 0);
    }
    nn::EvalResult evaluate() { return nn::evaluate(model_, data_.test); }
    // Nodes as threads of one process: the model's passes borrow their scratch from `pool`.
    void share_workspaces(std::shared_ptr<nn::WorkspacePool> pool) { model_.share_workspaces(std::move(pool)); }

    std::span<float> params() { return model_.params(); }
    std::span<const float> grads() const { return model_.grads(); }
    std::size_t dim() const { return model_.param_count(); }
    nn::Sgd& sgd() { return sgd_; }
    data::BatchSampler& sampler() { return sampler_; }

private:
    TrainingOptions training_;
    const data::MnistData& data_;
    nn::Sequential model_;
    nn::Sgd sgd_;
    data::BatchSampler sampler_;
    std::vector<float> momentum_;  // worker momentum (nodes), allocated at the first use
    std::vector<float> pixels_;
    std::vector<std::uint8_t> labels_;
    nn::Tensor input_;
};

}  // namespace p2p::node
