// Subcommands that live in their own files (shared declarations for main.cpp).
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "experiment_flags.hpp"

namespace p2p::cli {

inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

struct AggregateFlags {
    std::string rule;
    std::size_t f = 0;
    std::size_t q = 0;  // 0: the rule's default (n - f)
    double tau = 10.0;
    std::size_t iterations = 0;
    std::size_t reference = 0;
    std::size_t bucket_size = 2;
    std::uint64_t seed = 0;
    std::vector<std::string> pre;
    int threads = 1;
    std::string input, output;
};

CLI::App* add_aggregate_command(CLI::App& app, AggregateFlags& f);
// Exit status: 0, or kExitUsage for a bad file, shape, dtype, rule or parameter.
int run_aggregate(const AggregateFlags& f);

// train's own flags; the experiment's (rounds, batch, lr, seed, model, data, ...) come from the table.
struct TrainFlags {
    std::string shard = "0/1";
    std::string metrics = "metrics/train.jsonl";
    int blas_threads = 1;
    ExperimentFlags experiment;
};

void add_train_command(CLI::App& app, TrainFlags& f);
int run_train(const TrainFlags& f);

// p2pnode partition: each honest node's samples per class before training.
struct PartitionFlags {
    std::string config;
    bool json = false;
    ExperimentFlags experiment;
};
void add_partition_command(CLI::App& app, PartitionFlags& f);
int run_partition(const PartitionFlags& f);

// p2pnode config: a nodes config from hosts, a hostfile or a Slurm allocation.
struct ConfigFlags {
    std::string hosts, hostfile, out, bind_host;
    bool from_slurm = false;
    int nodes = 0, base_port = 8880;
    ExperimentFlags experiment;
};
void add_config_command(CLI::App& app, ConfigFlags& f);
int run_config(const ConfigFlags& f);

// p2pnode sweep FILE and p2pnode plot DIR.
struct SweepFlags {
    std::string file, out;
    int jobs = 0;
    bool dry_run = false, force = false, no_plot = false;
};
struct PlotFlags {
    std::string dir;
    std::string format = "png";
};
void add_sweep_commands(CLI::App& app, SweepFlags& sweep, PlotFlags& plot);
int run_sweep_command(const SweepFlags& f);
int run_plot(const PlotFlags& f);

// p2pnode topology: a config's graph, its spectral gaps and Byzantine neighbours (--png: drawn).
struct TopologyFlags {
    std::string config, png;
    bool json = false;
    ExperimentFlags experiment;
};
void add_topology_command(CLI::App& app, TopologyFlags& f);
int run_topology(const TopologyFlags& f);

// p2pnode summary DIR: launch's table from a run folder; exit 1 when a node has no summary.
CLI::App* add_summary_command(CLI::App& app, std::string& dir);
int run_summary(const std::string& dir);

// p2pnode list [KIND]
const std::vector<std::string>& list_kinds();
CLI::App* add_list_command(CLI::App& app, std::string& kind);
int run_list(const std::string& kind);

}  // namespace p2p::cli
