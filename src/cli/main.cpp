// p2pnode: one binary, the role is a subcommand. Exit status: 0 success, 1 runtime failure,
// 2 bad usage or a bad config.
#include <algorithm>
#include <filesystem>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "node_commands.hpp"
#include "p2pnode/config/nodes_config.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/nn/layers.hpp"
#include "p2pnode/node/local_trainer.hpp"
#include "p2pnode/node/settings.hpp"
#include "p2pnode/robust/robust.hpp"
#include "p2pnode_version.h"

namespace {

using p2p::cli::kExitRuntime;
using p2p::cli::kExitUsage;
using p2p::cli::g_stop;

void setup_logging() {
    auto logger = spdlog::stdout_logger_mt("p2pnode");
    // Info lines read like the reference's output: no timestamp or level prefix.
    logger->set_pattern("%^%v%$");
    spdlog::set_default_logger(logger);
}

// One-line reason plus usage, exit 2: what a researcher sees after a typo.
// `first_arg` is argv[1] (or empty): a word that names no subcommand gets its own reason.
int usage_error(const CLI::App& app, const CLI::Error& e, const std::string& first_arg) {
    const CLI::App* where = &app;
    for (const CLI::App* sub : app.get_subcommands()) where = sub;
    std::string name = where == &app ? app.get_name() : app.get_name() + " " + where->get_name();
    std::string reason = e.what();
    if (where == &app && !first_arg.empty() && first_arg[0] != '-') {
        std::string known;
        for (const CLI::App* sub : app.get_subcommands({})) known += (known.empty() ? "" : ", ") + sub->get_name();
        reason = fmt::format("unknown subcommand '{}' (expected one of: {})", first_arg, known);
    }
    std::fprintf(stderr, "%s: error: %s\n", name.c_str(), reason.c_str());
    std::fprintf(stderr, "%s", CLI::Formatter().make_usage(where, name).c_str());
    std::fprintf(stderr, "Run '%s --help' for every flag and its default.\n", name.c_str());
    return kExitUsage;
}

// This executable, to start node processes from `launch`.
std::string self_exe() {
    std::error_code ec;
    auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string("p2pnode") : p.string();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"p2pnode: decentralized Byzantine-robust training over ZeroMQ", "p2pnode"};
    app.set_version_flag("--version", std::string("p2pnode ") + P2PNODE_VERSION);
    app.require_subcommand(1);
    app.option_defaults()->always_capture_default();
    app.footer("Exit status: 0 success, 1 runtime failure, 2 bad usage or config.");

    p2p::cli::BrokerFlags broker_args;
    CLI::App* broker = app.add_subcommand("broker", "Hub-and-spoke: bind a ROUTER and route gradients between nodes");
    broker->add_option("--host", broker_args.host, "Host to bind to");
    broker->add_option("--port", broker_args.port, "Port to listen on")->check(CLI::Range(1, 65535));
    broker->add_option("--endpoint", broker_args.endpoint, "Transport: tcp or ipc")->check(CLI::IsMember({"tcp", "ipc"}));
    broker->add_option("--ipc-dir", broker_args.ipc_dir, "Folder for ipc:// socket files");
    broker->add_option("--secret-key", broker_args.secret_key, "CURVE: the broker's secret key file (p2pnode keygen)");
    broker->add_option("--config", broker_args.config, "Nodes config: only its ids may register (and, with CURVE, its public keys)");
    broker->add_flag("--exit-when-done", broker_args.exit_when_done,
                     "Stop once every node of --config has registered and left (the broker as an mpirun rank or a "
                     "Slurm step ends with the run)");

    std::string keygen_out;
    bool keygen_force = false;
    CLI::App* keygen = app.add_subcommand("keygen", "Write a CURVE key pair: PREFIX.key (secret, mode 0600), PREFIX.pub");
    keygen->add_option("--out", keygen_out, "Path prefix of the two files")->required();
    keygen->add_flag("--force", keygen_force, "Replace existing files");

    p2p::cli::HubFlags hub_args;
    p2p::cli::NodeFlags hub_flags;
    int& data_shard = hub_flags.data_shard;
    CLI::App* hub = app.add_subcommand("hub-client", "Hub-and-spoke: a training node connected to a broker");
    hub->add_option("--server-host", hub_args.server_host, "Broker hostname or IP")->required();
    hub->add_option("--server-port", hub_args.server_port, "Broker port")->check(CLI::Range(1, 65535));
    p2p::cli::add_node_flags(hub, hub_flags, true);
    auto* total_opt =
        hub->add_option("--total-nodes", hub_args.total, "Total nodes in the network")->check(CLI::Range(1, 1'000'000));
    auto* honest_opt =
        hub->add_option("--honest-nodes", hub_args.honest, "Number of honest nodes (ids 0 .. honest-nodes-1)")
            ->check(CLI::Range(1, 1'000'000));
    hub->add_option("--data-shard", data_shard, "Data shard index (default: the node's index among honest nodes)")
        ->check(CLI::Range(-1, 1'000'000));
    hub->add_option("--config", hub_args.config, "Nodes config (ids, types, topology) instead of --total/--honest-nodes");
    hub->final_callback([&] {
        p2p::cli::resolve_identity(hub_flags);
        if (hub_args.config.empty()) {
            if (!total_opt->count()) throw CLI::RequiredError("--total-nodes");
            if (!honest_opt->count()) throw CLI::RequiredError("--honest-nodes");
            if (hub_args.honest > hub_args.total)
                throw CLI::ValidationError("--honest-nodes", fmt::format("{} honest nodes > {} total nodes",
                                                                          hub_args.honest, hub_args.total));
            if (hub_flags.node_id >= hub_args.total)
                throw CLI::ValidationError("--node-id", fmt::format("{} is not below --total-nodes {}",
                                                                     hub_flags.node_id, hub_args.total));
            if (data_shard >= hub_args.honest)
                throw CLI::ValidationError("--data-shard",
                                           fmt::format("{} is not below --honest-nodes {}", data_shard, hub_args.honest));
        }
    });

    std::string config_path;
    p2p::cli::NodeFlags mesh_flags;
    CLI::App* mesh = app.add_subcommand("mesh", "Peer-to-peer mesh: a training node with its own ROUTER, no server");
    mesh->add_option("--config", config_path, "Nodes config file (YAML or JSON)")->required();
    p2p::cli::add_node_flags(mesh, mesh_flags, true);
    mesh->final_callback([&] { p2p::cli::resolve_identity(mesh_flags); });

    p2p::cli::LaunchFlags launch_args;
    p2p::cli::NodeFlags launch_flags;
    CLI::App* launch = app.add_subcommand(
        "launch", "Run every node of a config on this machine (threads for inproc, processes for tcp/ipc)");
    launch->add_option("--config", launch_args.config, "Nodes config file (YAML or JSON)")->required();
    launch->add_option("--broker-port", launch_args.broker_port, "hub: the broker's port")->check(CLI::Range(1, 65535));
    launch->add_option("--keys-dir", launch_args.keys_dir,
                       "CURVE: folder with node-<id>.key (and broker.key); the config gives the public keys");
    launch->add_flag("--resume", launch_args.resume,
                     "Restart every node from its checkpoint in --checkpoint-dir (a run stopped with Ctrl-C or killed)");
    p2p::cli::add_node_flags(launch, launch_flags, false);

    p2p::cli::TrainFlags train_flags;
    p2p::cli::add_train_command(app, train_flags);
    p2p::cli::AggregateFlags aggregate_flags;
    CLI::App* aggregate = p2p::cli::add_aggregate_command(app, aggregate_flags);
    p2p::cli::SweepFlags sweep_flags;
    p2p::cli::PlotFlags plot_flags;
    p2p::cli::add_sweep_commands(app, sweep_flags, plot_flags);
    p2p::cli::PartitionFlags partition_flags;
    p2p::cli::add_partition_command(app, partition_flags);
    p2p::cli::ConfigFlags config_flags;
    p2p::cli::add_config_command(app, config_flags);
    p2p::cli::TopologyFlags topology_flags;
    p2p::cli::add_topology_command(app, topology_flags);
    std::string summary_dir;
    CLI::App* summary = p2p::cli::add_summary_command(app, summary_dir);
    std::string list_kind;
    CLI::App* list = p2p::cli::add_list_command(app, list_kind);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        return usage_error(app, e, argc > 1 ? argv[1] : "");
    }

    setup_logging();
    try {
        if (*broker) return p2p::cli::run_broker(broker_args);
        if (*keygen) return p2p::cli::run_keygen(keygen_out, keygen_force);
        if (*hub) return p2p::cli::run_hub_client(hub_args, hub_flags);
        if (*mesh) return p2p::cli::run_mesh(config_path, mesh_flags);
        if (*launch) return p2p::cli::run_launch(launch_args, launch_flags, self_exe());
        if (*app.get_subcommand("train")) return p2p::cli::run_train(train_flags);
        if (*aggregate) return p2p::cli::run_aggregate(aggregate_flags);
        if (*app.get_subcommand("topology")) return p2p::cli::run_topology(topology_flags);
        if (*summary) return p2p::cli::run_summary(summary_dir);
        if (*list) return p2p::cli::run_list(list_kind);
        if (*app.get_subcommand("partition")) return p2p::cli::run_partition(partition_flags);
        if (*app.get_subcommand("config")) return p2p::cli::run_config(config_flags);
        if (*app.get_subcommand("sweep")) return p2p::cli::run_sweep_command(sweep_flags);
        if (*app.get_subcommand("plot")) return p2p::cli::run_plot(plot_flags);
    } catch (const p2p::ConfigError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kExitUsage;
    } catch (const p2p::IoError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kExitRuntime;
    } catch (const p2p::robust::RobustError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kExitUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kExitRuntime;
    }
    return kExitUsage;
}
