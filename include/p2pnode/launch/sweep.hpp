// `p2pnode sweep`: every point of a sweep's grid run as `launch` runs a config (nodes as threads
// of this process, sharing one loaded copy of the data), several at a time, each in its own
// folder, with one table of results at the end.
//
//   DIR/sweep.yaml              the sweep file as given (a DIR holding another sweep is refused)
//   DIR/runs/<point>/           experiment.yaml, node-<id>.jsonl, node-<id>.summary.json, status.json
//   DIR/results.csv, .json      one row per run
//   DIR/summary.md              per point mean ± std over seeds; per aggregator its worst attack
//
// A run whose status.json says done is not run again; a failed or interrupted one is. Writes
// go to a temporary file and are renamed, so an interrupted sweep leaves whole files.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "p2pnode/config/sweep.hpp"

namespace p2p::launch {

struct SweepOptions {
    std::string out = "sweep";
    int jobs = 0;                          // runs at a time (0: the cores / the nodes of a run, at least 1)
    bool force = false;                    // use DIR even if it holds another sweep
    bool progress_tty = false;             // one live status line (a terminal) instead of a line per run
    std::function<bool()> stop_requested;  // Ctrl-C: no new runs; running ones stop at an agreed round
    std::string version;                   // p2pnode's, for each run's run.json
};

// One run's outcome, as results.csv has it.
struct SweepRow {
    std::string name, group, status;  // status: done, failed, skipped, interrupted
    std::vector<std::pair<std::string, std::string>> at;
    std::uint64_t seed = 0;
    double acc_mean = 0, acc_worst = 0, acc_best = 0, loss_mean = 0;
    int rounds = 0;
    double seconds = 0, bytes_per_node_round = 0, aggregate_ms_round = 0;
    // The graph's figures (node::graph_stats): the honest mixing matrix's spectral gaps
    // (NaN when not computed) and the most Byzantine neighbours of an honest node.
    double gap_uniform = 0, gap_metropolis = 0;
    int byzantine_neighbours_max = 0;
    std::string error;
};

// Runs what is not done yet; returns every point's row (in grid order). The file at
// `sweep_path` is copied into DIR. Throws ConfigError for a DIR that holds another sweep.
std::vector<SweepRow> run_sweep(const SweepSpec& spec, const std::string& sweep_path,
                                const std::vector<SweepPoint>& points, const SweepOptions& options);

// The grid as `--dry-run` prints it: every point, and why a point would be skipped.
std::string describe_grid(const SweepSpec& spec, const std::vector<SweepPoint>& points);

}  // namespace p2p::launch
