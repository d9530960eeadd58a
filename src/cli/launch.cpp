// p2pnode launch: every node of a config on this machine (launch/ runs them).
#include "node_commands.hpp"
#include "p2pnode_version.h"

#include <csignal>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "commands.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/launch/cluster.hpp"
#include "p2pnode/launch/processes.hpp"
#include "p2pnode/launch/wiring.hpp"
#include "p2pnode/nn/layers.hpp"
#include "p2pnode/node/settings.hpp"
#include "p2pnode/robust/robust.hpp"
#include "p2pnode/transport/hub.hpp"
#include "p2pnode/transport/mesh.hpp"
#include "p2pnode/transport/security.hpp"

extern char** environ;

namespace p2p::cli {

using launch::write_whole;

int run_launch(const LaunchFlags& l, const NodeFlags& f, const std::string& self_exe) {
    const NodesConfig cfg = load_nodes_config(l.config);
    for (const auto& w : cfg.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    // Resolved once: every node, thread or process, runs this experiment.
    Experiment e = experiment_of(f, cfg);
    // Validates the whole run before starting anything: every node's settings (rule bounds,
    // topology) and its shard of the data set.
    const std::vector<node::NodeSettings> all = node::settings_for_all(cfg, e);
    auto data = load_data(e);
    node::check_shards(all, data->train);
    if (l.resume && e.outputs.checkpoint_dir.empty()) throw ConfigError("--resume needs --checkpoint-dir");
    const std::string metrics_dir = e.outputs.metrics_dir;
    if (!metrics_dir.empty()) {
        std::filesystem::create_directories(metrics_dir);
        for (const auto& n : cfg.nodes) std::filesystem::remove(fmt::format("{}/node-{}.summary.json", metrics_dir, n.id));
    }
    // The table is read from the nodes' summaries; with --metrics-dir '' they go to a temporary
    // folder that is removed afterwards.
    std::string summary_dir = metrics_dir;
    if (summary_dir.empty()) {
        std::string pattern = (std::filesystem::temp_directory_path() / "p2pnode-launch-XXXXXX").string();
        if (!mkdtemp(pattern.data())) throw IoError("launch: cannot create a temporary folder for the node summaries");
        summary_dir = pattern;
    }
    struct RemoveTemp {
        std::string dir;
        ~RemoveTemp() {
            std::error_code ec;
            if (!dir.empty()) std::filesystem::remove_all(dir, ec);
        }
    } remove_temp{metrics_dir.empty() ? summary_dir : std::string()};
    // The run folder describes itself: the resolved experiment beside the metrics, also the file
    // every child process reads (--experiment).
    e.outputs.metrics_dir = summary_dir;
    const std::string experiment_file = summary_dir + "/experiment.yaml";
    write_whole(experiment_file, experiment_yaml(e));
    launch::write_run_record(summary_dir, "launch", P2PNODE_VERSION, cfg, e);
    ::setenv("P2PNODE_LAUNCHED", "1", 1);  // its node processes do not record the run again
    install_stop_handlers();
    const launch::Pattern pattern = e.transport.pattern == "hub" ? launch::Pattern::Hub : launch::Pattern::Mesh;
    const std::string& endpoint = e.transport.endpoint;
    spdlog::info("launch: {} nodes of {} as a {} over {}; the experiment in {}", cfg.nodes.size(), cfg.source,
                 e.transport.pattern, endpoint, metrics_dir.empty() ? std::string("a temporary folder") : experiment_file);
    if (endpoint == "inproc") {
        if (!l.keys_dir.empty()) throw ConfigError("--keys-dir: CURVE needs tcp or ipc; inproc is not encrypted");
        nn::set_blas_threads(1);
        launch::ClusterOptions o;
        o.pattern = pattern;
        o.scheme = transport::Scheme::Inproc;
        o.stop_requested = [] { return g_stop.load(); };
        o.resume = l.resume;
        auto results = launch::run_threads(cfg, e, o, *data);
        for (const auto& s : all)
            if (auto r = results.find(s.id); r != results.end()) launch::write_summary(summary_dir, s, r->second);
        launch::print_table(node::with_placement(cfg, e), summary_dir);
        return 0;
    }
    std::vector<std::string> broker;
    if (pattern == launch::Pattern::Hub) {
        broker = {"broker", "--host", "127.0.0.1", "--port", std::to_string(l.broker_port),
                  "--endpoint", endpoint, "--ipc-dir", e.transport.ipc_dir, "--config", l.config};
        if (!l.keys_dir.empty()) broker.insert(broker.end(), {"--secret-key", l.keys_dir + "/broker.key"});
    }
    std::vector<std::vector<std::string>> nodes;
    for (const auto& n : cfg.nodes) {
        std::vector<std::string> args;
        if (pattern == launch::Pattern::Hub)
            args = {"hub-client", "--config", l.config, "--server-host", "127.0.0.1", "--server-port",
                    std::to_string(l.broker_port), "--node-id", std::to_string(n.id)};
        else
            args = {"mesh", "--config", l.config, "--node-id", std::to_string(n.id)};
        args.insert(args.end(), {"--experiment", experiment_file});
        if (l.resume) args.push_back("--resume");
        if (!l.keys_dir.empty()) args.insert(args.end(), {"--secret-key", fmt::format("{}/node-{}.key", l.keys_dir, n.id)});
        nodes.push_back(std::move(args));
    }
    data.reset();  // checked above; each child loads its own
    const int failures = launch::run_processes(self_exe, broker, nodes, [] { return g_stop.load(); });
    launch::print_table(node::with_placement(cfg, e), summary_dir);
    if (failures) {
        std::fprintf(stderr, "launch: %d node(s) failed\n", failures);
        return kExitRuntime;
    }
    return 0;
}

CLI::App* add_summary_command(CLI::App& app, std::string& dir) {
    CLI::App* sub = app.add_subcommand(
        "summary", "Print the table `launch` prints from a run's metrics folder (nodes started by srun, mpirun or by hand)");
    sub->add_option("dir", dir, "The run's --metrics-dir: its run.json and node-<id>.summary.json files")->required();
    return sub;
}

int run_summary(const std::string& dir) {
    const NodesConfig nodes = launch::run_nodes(dir);
    const int missing = launch::print_table(nodes, dir);
    if (missing) {
        std::fprintf(stderr, "summary: %d of %zu node(s) did not finish (no node-<id>.summary.json in %s)\n", missing,
                     nodes.nodes.size(), dir.c_str());
        return kExitRuntime;
    }
    return 0;
}

}  // namespace p2p::cli
