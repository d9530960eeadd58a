// p2pnode train: one node alone, the non-distributed baseline.
#include <cstdio>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "node_commands.hpp"
#include "p2pnode/launch/processes.hpp"
#include "p2pnode_version.h"
#include "p2pnode/data/partition.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/nn/layers.hpp"
#include "p2pnode/node/local_trainer.hpp"
#include "p2pnode/node/settings.hpp"

namespace p2p::cli {

// "h/H" with 0 <= h < H.
namespace {

bool parse_shard(const std::string& text, std::size_t& h, std::size_t& count) {
    auto slash = text.find('/');
    if (slash == std::string::npos) return false;
    try {
        std::size_t used = 0;
        long long a = std::stoll(text.substr(0, slash), &used);
        if (used != slash) return false;
        long long b = std::stoll(text.substr(slash + 1), &used);
        if (used != text.size() - slash - 1 || a < 0 || b < 1 || a >= b) return false;
        h = static_cast<std::size_t>(a);
        count = static_cast<std::size_t>(b);
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

}  // namespace

void add_train_command(CLI::App& app, TrainFlags& f) {
    CLI::App* sub = app.add_subcommand("train", "Single-node training on one machine: the non-distributed baseline");
    add_experiment_flags(sub, f.experiment, kTrainFlag);
    sub->add_option("--shard", f.shard, "Train on honest shard h of H of --partition (strided: indices h, h+H, ...), as h/H")
        ->check(CLI::Validator(
            [](std::string& v) {
                std::size_t h = 0, n = 0;
                return parse_shard(v, h, n) ? std::string() : "must be h/H with 0 <= h < H, got '" + v + "'";
            },
            "h/H"));
    sub->add_option("--metrics", f.metrics, "JSONL metrics file (one row per round); '' writes none");
    sub->add_option("--blas-threads", f.blas_threads, "OpenBLAS threads")->check(CLI::Range(1, 256));
}

int run_train(const TrainFlags& f) {
    std::vector<std::string> warnings;
    const Experiment e = resolve_experiment(f.experiment, {}, warnings);
    for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    node::check_names(e);
    node::LocalTrainSettings s;
    s.training = e.training;
    s.model = e.model.name;
    parse_shard(f.shard, s.shard, s.shards);
    s.momentum = static_cast<float>(e.training.momentum);
    s.weight_decay = static_cast<float>(e.training.weight_decay);
    s.partition = node::partition_of(e);
    s.model_options = node::model_options_of(e);
    s.node_id = static_cast<int>(s.shard);
    s.metrics_path = f.metrics;
    s.stop_requested = [] { return g_stop.load(); };
    nn::set_blas_threads(f.blas_threads);

    auto data = load_data(e);
    std::size_t size = 0;
    try {
        size = data::partition(data->train.labels, data->train.classes, s.shards, s.partition)[s.shard].size();
    } catch (const std::invalid_argument& ex) {
        throw ConfigError(fmt::format("data.partition {}: {}", s.partition.name, ex.what()));
    }
    spdlog::info("[Node {}] train: shard {} of the {} partition ({} of {} training images), {} test images from {}, "
                 "rounds {}, batch {}, lr {}, seed {}",
                 s.node_id, f.shard, s.partition.name, size, data->train.count,
                 data->test.count, data->root, s.training.rounds, s.training.batch_size, s.training.learning_rate,
                 s.training.seed);
    if (!f.metrics.empty()) {  // beside the metrics: <name>.run.json
        NodesConfig one;
        one.source = "(train)";
        NodeSpec n;
        n.id = s.node_id;
        one.nodes.push_back(n);
        std::filesystem::path p(f.metrics);
        const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
        launch::write_run_record(dir, "train", P2PNODE_VERSION, one, e, p.stem().string() + ".run.json");
    }
    install_stop_handlers();
    auto result = node::train_locally(s, *data);
    spdlog::info("[Node {}] {} rounds, {:.2f} ms per round (compute){}", s.node_id, result.rounds_done,
                 1000.0 * result.seconds_per_round, f.metrics.empty() ? "" : ", metrics in " + f.metrics);
    return 0;
}


}  // namespace p2p::cli
