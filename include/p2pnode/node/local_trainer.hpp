// Single-node training: the non-distributed baseline a researcher compares against. Prints
// Round / Eval / Final lines like the nodes do and writes the same JSONL metrics.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "p2pnode/config/experiment.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/data/partition.hpp"
#include "p2pnode/nn/model.hpp"

namespace p2p::node {

struct LocalTrainSettings {
    TrainingOptions training;       // rounds, batch size, lr, seed, eval_every
    std::size_t shard = 0;          // train on honest shard `shard` of `shards`
    std::size_t shards = 1;
    data::PartitionSpec partition;  // how the training set is cut into `shards` (strided: h, h+H, ...)
    std::string model = "small-cnn";  // a row of nn::models()
    nn::ModelOptions model_options;   // mlp: hidden sizes
    float momentum = 0.0f;
    float weight_decay = 0.0f;
    int node_id = 0;                // the id printed in "[Node N]" lines
    std::string metrics_path;       // empty: no metrics file
    std::function<bool()> stop_requested;  // checked between rounds; may be empty
};

struct LocalTrainResult {
    int rounds_done = 0;
    nn::EvalResult final_eval;
    double seconds_per_round = 0;  // mean wall time of a training round (compute only)
    std::vector<float> params;     // the trained model's parameters
};

LocalTrainResult train_locally(const LocalTrainSettings& settings, const data::MnistData& data);

}  // namespace p2p::node
