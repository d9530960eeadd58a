// Per-round wall time of the protocol, split into compute (gradient), communication wait
// (gather) and aggregation (rule + step), with the bytes a node sends and receives a round.
// Nodes are threads of this process (N - 1 honest + 1 Empire attacker, median, SmallCnn);
// evaluation is off (it is not part of a round's protocol cost).
//   transports: mesh and hub over tcp, ipc and inproc, N = 5 and 16, ring k = 1;
//   scale:      mesh and hub over inproc, N = 5, 16, 64, 128 (up to MAX_N), ring k = 1 and
//               complete (and over tcp, complete, up to 64), ROUNDS x 16 / N rounds (at least
//               3), the process's peak memory.
// Usage: bench-round [ROUNDS=30] [DATA_ROOT] [MAX_N=128] [transports|scale|scale-tcp|all=all]
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "p2pnode/data/idx.hpp"
#include "p2pnode/launch/cluster.hpp"
#include "p2pnode/nn/layers.hpp"

using namespace p2p;

namespace {

struct Figures {
    double wall = 0, compute = 0, wait = 0, aggregate = 0;  // seconds a round
    double bytes_in = 0, bytes_out = 0;                       // a node, a round (honest nodes' mean)
};

Figures run(int n, const std::string& graph, launch::Pattern pattern, transport::Scheme scheme, int rounds,
            const std::string& ipc_dir, const data::MnistData& data) {
    std::string yaml = "nodes:\n";
    for (int i = 0; i < n; ++i)
        yaml += fmt::format("  - {{id: {}, host: 127.0.0.1, port: {}, type: {}}}\n", i, 19000 + i,
                            i == n - 1 ? "byzantine" : "honest");
    const auto cfg = parse_nodes_config(yaml, "bench");
    Experiment c;
    c.training.rounds = rounds;
    c.training.eval_every = 1 << 30;
    c.outputs.metrics_dir = "";
    c.topology.type = graph;
    c.timeouts.round = 600;  // a round waits for everyone: the figures are of whole rounds
    c.timeouts.hard = 600;
    c.timeouts.startup = 600;
    launch::ClusterOptions o;
    o.pattern = pattern;
    o.scheme = scheme;
    o.ephemeral_ports = true;
    o.ipc_dir = ipc_dir;
    auto results = launch::run_threads(cfg, c, o, data);
    // The honest nodes' means; a round ends when the slowest node's does.
    Figures f;
    int honest = 0;
    for (auto& [id, r] : results) {
        const double done = std::max(1, r.rounds_done);
        // the final evaluation is not part of a round's cost
        f.wall = std::max(f.wall, r.seconds_per_round - r.seconds_eval / done);
        if (static_cast<int>(id) == n - 1) continue;
        f.compute += r.seconds_compute / done;
        f.wait += r.seconds_wait / done;
        f.aggregate += r.seconds_aggregate / done;
        f.bytes_in += static_cast<double>(r.counters.bytes_in) / done;
        f.bytes_out += static_cast<double>(r.counters.bytes_out) / done;
        ++honest;
    }
    for (double* v : {&f.compute, &f.wait, &f.aggregate, &f.bytes_in, &f.bytes_out}) *v /= std::max(1, honest);
    return f;
}

double peak_mib() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;
}

const char* name(launch::Pattern p) { return p == launch::Pattern::Mesh ? "mesh" : "hub"; }

}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::max(2, std::atoi(argv[1])) : 30;
    const std::string root = argc > 2 && argv[2][0] ? argv[2] : data::default_data_root();
    const int max_n = argc > 3 ? std::atoi(argv[3]) : 128;
    const std::string part = argc > 4 ? argv[4] : "all";
    spdlog::set_level(spdlog::level::warn);
    nn::set_blas_threads(1);
    auto data = data::load_mnist_data(root);
    const std::string ipc_dir = (std::filesystem::temp_directory_path() / "p2pnode-bench-round").string();
    std::filesystem::create_directories(ipc_dir);
    if (part == "all" || part == "transports") {
        std::printf("transports: ring k = 1, %d rounds\n", rounds);
        std::printf("%-7s %-7s %3s %10s %11s %9s %12s\n", "pattern", "scheme", "N", "ms/round", "compute ms", "wait ms",
                    "aggregate ms");
        for (int n : {5, 16})
            for (auto pattern : {launch::Pattern::Mesh, launch::Pattern::Hub})
                for (auto scheme : {transport::Scheme::Tcp, transport::Scheme::Ipc, transport::Scheme::Inproc}) {
                    const Figures f = run(n, "ring", pattern, scheme, rounds, ipc_dir, *data);
                    std::printf("%-7s %-7s %3d %10.1f %11.1f %9.1f %12.1f\n", name(pattern),
                                std::string(transport::to_string(scheme)).c_str(), n, 1e3 * f.wall, 1e3 * f.compute,
                                1e3 * f.wait, 1e3 * f.aggregate);
                    std::fflush(stdout);
                }
    }
    if (part == "all" || part == "scale" || part == "scale-tcp") {
        std::printf("\nscale: nodes as threads on %u cores; MB a node a round; peak: the process's so far\n",
                    std::max(1u, std::thread::hardware_concurrency()));
        std::printf("%-7s %-7s %-9s %4s %6s %10s %11s %9s %12s %8s %8s %9s\n", "pattern", "scheme", "graph", "N",
                    "rounds", "ms/round", "compute ms", "wait ms", "aggregate ms", "MB in", "MB out", "peak MiB");
        for (int n : {5, 16, 64, 128}) {
            if (n > max_n) break;
            const int r = std::max(3, rounds * 16 / n);
            // tcp too for the complete graph up to 64: there every byte crosses the kernel, and the
            // hub's through one broker thread
            for (const std::string graph : {"ring", "complete"})
                for (auto scheme : {transport::Scheme::Inproc, transport::Scheme::Tcp}) {
                    if (scheme == transport::Scheme::Tcp && (graph == "ring" || n > 64)) continue;
                    if (part == "scale-tcp" && scheme != transport::Scheme::Tcp) continue;
                    for (auto pattern : {launch::Pattern::Mesh, launch::Pattern::Hub}) {
                        const Figures f = run(n, graph, pattern, scheme, r, ipc_dir, *data);
                        std::printf("%-7s %-7s %-9s %4d %6d %10.1f %11.1f %9.1f %12.1f %8.2f %8.2f %9.0f\n",
                                    name(pattern), std::string(transport::to_string(scheme)).c_str(), graph.c_str(), n,
                                    r, 1e3 * f.wall, 1e3 * f.compute, 1e3 * f.wait, 1e3 * f.aggregate,
                                    f.bytes_in / 1e6, f.bytes_out / 1e6, peak_mib());
                        std::fflush(stdout);
                    }
                }
        }
    }
    return 0;
}
