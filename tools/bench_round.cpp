// Per-round wall time of the protocol, split into compute (gradient), communication wait
// (gather) and aggregation (rule + step), for mesh and hub over tcp, ipc and inproc, with
// N = 5 and N = 16 nodes (N - 1 honest + 1 Empire attacker, ring k = 1, median), nodes as
// threads of this process on this machine. Evaluation is off (it is not part of a round's
// protocol cost). Usage: bench-round [ROUNDS=30] [DATA_ROOT]
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "p2pnode/data/idx.hpp"
#include "p2pnode/launch/cluster.hpp"
#include "p2pnode/nn/layers.hpp"

using namespace p2p;

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::max(2, std::atoi(argv[1])) : 30;
    const std::string root = argc > 2 ? argv[2] : data::default_data_root();
    spdlog::set_level(spdlog::level::warn);
    nn::set_blas_threads(1);
    auto data = data::load_mnist_data(root);
    const std::string ipc_dir = (std::filesystem::temp_directory_path() / "p2pnode-bench-round").string();
    std::filesystem::create_directories(ipc_dir);
    std::printf("%-7s %-7s %3s %10s %11s %9s %12s\n", "pattern", "scheme", "N", "ms/round", "compute ms", "wait ms",
                "aggregate ms");
    for (int n : {5, 16}) {
        std::string yaml = "nodes:\n";
        for (int i = 0; i < n; ++i)
            yaml += fmt::format("  - {{id: {}, host: 127.0.0.1, port: {}, type: {}}}\n", i, 19000 + i,
                                i == n - 1 ? "byzantine" : "honest");
        const auto cfg = parse_nodes_config(yaml, "bench");
        Experiment c;
        c.training.rounds = rounds;
        c.training.eval_every = 1 << 30;
        c.outputs.metrics_dir = "";
        for (auto pattern : {launch::Pattern::Mesh, launch::Pattern::Hub})
            for (auto scheme : {transport::Scheme::Tcp, transport::Scheme::Ipc, transport::Scheme::Inproc}) {
                launch::ClusterOptions o;
                o.pattern = pattern;
                o.scheme = scheme;
                o.ephemeral_ports = true;
                o.ipc_dir = ipc_dir;
                auto results = launch::run_threads(cfg, c, o, *data);
                // The honest nodes' means; a round ends when the slowest node's does.
                double wall = 0, compute = 0, wait = 0, agg = 0;
                int honest = 0;
                for (auto& [id, r] : results) {
                    // the final evaluation is not part of a round's cost
                    wall = std::max(wall, r.seconds_per_round - r.seconds_eval / r.rounds_done);
                    if (static_cast<int>(id) == n - 1) continue;
                    compute += r.seconds_compute / r.rounds_done;
                    wait += r.seconds_wait / r.rounds_done;
                    agg += r.seconds_aggregate / r.rounds_done;
                    ++honest;
                }
                std::printf("%-7s %-7s %3d %10.1f %11.1f %9.1f %12.1f\n",
                            pattern == launch::Pattern::Mesh ? "mesh" : "hub",
                            std::string(transport::to_string(scheme)).c_str(), n, 1e3 * wall, 1e3 * compute / honest,
                            1e3 * wait / honest, 1e3 * agg / honest);
            }
    }
    return 0;
}
