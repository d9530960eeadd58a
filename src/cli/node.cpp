// p2pnode mesh and p2pnode hub-client: one training node.
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
#include "p2pnode/launch/rank.hpp"
#include "p2pnode/launch/wiring.hpp"
#include "p2pnode/nn/layers.hpp"
#include "p2pnode/node/settings.hpp"
#include "p2pnode/robust/robust.hpp"
#include "p2pnode/transport/hub.hpp"
#include "p2pnode/transport/mesh.hpp"
#include "p2pnode/transport/security.hpp"

extern char** environ;

namespace p2p::cli {

void add_node_flags(CLI::App* sub, NodeFlags& f, bool with_identity) {
    if (with_identity) {
        sub->add_option("--node-id", f.node_id_text,
                        "Unique node id (0, 1, 2, ...), or auto: the rank srun or mpirun gives the process "
                        "(SLURM_PROCID, else OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK)")
            ->required()
            ->type_name("ID|auto");
        sub->add_option("--rank-offset", f.rank_offset,
                        "With --node-id auto: the node id is the rank minus this (e.g. 1 when rank 0 is the broker)")
            ->check(CLI::Range(0, 1'000'000));
        f.node_type_opt = sub->add_option("--node-type", f.node_type, "honest or byzantine")
                              ->check(CLI::IsMember({"honest", "byzantine"}));
    }
    add_experiment_flags(sub, f.experiment, with_identity ? kNodeFlag : kLaunchFlag);
    if (with_identity) {
        sub->add_flag("--resume", f.resume, "Start from the checkpoint in --checkpoint-dir and rejoin the current round");
        sub->add_option("--secret-key", f.secret_key,
                        "CURVE: this node's secret key file (p2pnode keygen); the config gives every public key");
    }
}


void resolve_identity(NodeFlags& f) {
    try {
        const auto id = launch::resolve_node_id(f.node_id_text, f.rank_offset);
        f.node_id = id.id;
        f.id_source = id.source;
    } catch (const std::invalid_argument& ex) {
        throw CLI::ValidationError(ex.what());
    }
}

namespace {

node::NodeOverrides overrides_of(const NodeFlags& f, const Experiment& e) {
    node::NodeOverrides o;
    o.resume = f.resume;
    if (f.resume && e.outputs.checkpoint_dir.empty()) throw ConfigError("--resume needs --checkpoint-dir");
    if (f.node_type_opt && f.node_type_opt->count()) o.type = parse_node_type(f.node_type);
    if (f.data_shard >= 0) o.shard = static_cast<std::size_t>(f.data_shard);
    return o;
}

std::string describe(const node::NodeSettings& s) {
    std::string pre;
    for (const auto& p : s.pre_aggregators) pre += p + " -> ";
    // A Byzantine node takes no step, so it has no self weight.
    const std::string weight =
        s.type == NodeType::Honest ? fmt::format(", self weight {}", s.training.self_weight) : std::string();
    return fmt::format("{}{} (f={}: {}), attack {} (scale {}), {} exchange{}", pre, s.aggregator, s.robust.f,
                       s.f_reason, s.attack, s.attack_params.scale, s.training.exchange, weight);
}

int run_one(const NodesConfig& cfg, const NodeFlags& f, std::uint32_t id, const char* command,
            const std::function<std::unique_ptr<transport::Transport>(zmq::context_t&, const node::NodeSettings&,
                                                                      const Experiment&)>& make) {
    for (const auto& w : cfg.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    const Experiment e = experiment_of(f, cfg);
    if (e.transport.endpoint == "inproc")
        throw ConfigError("--endpoint inproc: a node alone has no one to talk to in-process; run the nodes as "
                          "threads with `p2pnode launch --endpoint inproc`");
    const node::NodeOverrides o = overrides_of(f, e);
    if (!cfg.find(static_cast<int>(id)) && f.id_source != "--node-id")
        throw ConfigError(fmt::format("--node-id auto: node {} (from {}) is not in {} (ids: {}): start as many "
                                      "ranks as the config has nodes",
                                      id, f.id_source, cfg.source, cfg.ids_text()));
    node::NodeSettings s = node::settings_for(cfg, id, e, o);
    const NodeSpec& self = cfg.require(static_cast<int>(id));
    if (o.type && *o.type != self.type)
        std::fprintf(stderr, "warning: node %u: --node-type %s overrides the type '%s' given in %s\n", id,
                     std::string(to_string(*o.type)).c_str(), std::string(to_string(self.type)).c_str(),
                     cfg.source.c_str());
    s.stop_requested = [] { return g_stop.load(); };
    install_stop_handlers();
    nn::set_blas_threads(1);
    auto data = load_data(e);
    // The run records itself, unless `launch` started this node (it writes the record once).
    if (!std::getenv("P2PNODE_LAUNCHED"))
        launch::write_run_record(e.outputs.metrics_dir, command, P2PNODE_VERSION, cfg, e);
    if (f.id_source != "--node-id") spdlog::info("[Node {}] id from {}", id, f.id_source);
    spdlog::info("[Node {}] {} node, rounds {}, batch {}, lr {}, seed {}, data {}, {}", id, to_string(s.type),
                 s.training.rounds, s.training.batch_size, s.training.learning_rate, s.training.seed, data->root,
                 describe(s));
    zmq::context_t ctx;
    auto t = make(ctx, s, e);
    const auto r = node::run_node(s, *t, *data);
    launch::write_summary(e.outputs.metrics_dir, s, r);
    return 0;
}

}  // namespace

int run_mesh(const std::string& config_path, const NodeFlags& f) {
    const NodesConfig cfg = load_nodes_config(config_path);
    return run_one(cfg, f, static_cast<std::uint32_t>(f.node_id), "mesh", [&](zmq::context_t& ctx, const node::NodeSettings& s,
                                                                      const Experiment& e) {
        const auto scheme = *transport::parse_scheme(e.transport.endpoint);
        const std::string& ipc_dir = e.transport.ipc_dir;
        if (scheme == transport::Scheme::Ipc) std::filesystem::create_directories(ipc_dir);
        transport::MeshSpec ms = launch::mesh_wiring(cfg, s, scheme, ipc_dir);
        ms.security = security_of(f.secret_key, cfg, false);
        ms.limits = launch::limits_for(e, cfg.nodes.size());
        spdlog::info("[Node {}] mesh over {}{}: bound {}, {} neighbour(s)", s.id, e.transport.endpoint,
                     ms.security ? " with CURVE" : "", ms.bind_endpoint, s.neighbours.size());
        return transport::make_mesh(ctx, ms);
    });
}

int run_hub_client(const HubFlags& h, const NodeFlags& f) {
    NodesConfig cfg;
    if (!h.config.empty()) {
        cfg = load_nodes_config(h.config);
    } else {
        // The reference's flags: ids 0 .. total-1, the first honest-nodes of them honest.
        cfg.source = "(command line)";
        for (int i = 0; i < h.total; ++i) {
            NodeSpec n;
            n.id = i;
            n.host = "127.0.0.1";
            n.port = 1 + i;  // unused by the hub
            n.type = i < h.honest ? NodeType::Honest : NodeType::Byzantine;
            if (i == f.node_id && f.node_type_opt->count()) n.type = *parse_node_type(f.node_type);
            cfg.nodes.push_back(n);
        }
    }
    return run_one(cfg, f, static_cast<std::uint32_t>(f.node_id), "hub-client", [&](zmq::context_t& ctx, const node::NodeSettings& s,
                                                                      const Experiment& e) {
        const auto scheme = *transport::parse_scheme(e.transport.endpoint);
        transport::HubSpec hs;
        hs.self = s.id;
        hs.broker_endpoint = transport::endpoint_for(scheme, h.server_host, h.server_port, e.transport.ipc_dir);
        if (!f.secret_key.empty() && h.config.empty())
            throw ConfigError("--secret-key needs --config (it gives the public keys of the nodes and the broker)");
        hs.security = security_of(f.secret_key, cfg, true);
        hs.limits = launch::limits_for(e, cfg.nodes.size());
        spdlog::info("[Node {}] hub client of the broker at {}{}", s.id, hs.broker_endpoint,
                     hs.security ? " with CURVE" : "");
        return transport::make_hub_client(ctx, hs);
    });
}

}  // namespace p2p::cli
