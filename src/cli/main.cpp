// p2pnode: one binary, the role is a subcommand. Exit status: 0 success, 1 runtime failure,
// 2 bad usage or a bad config, 3 the requested role is not built yet.
#include <algorithm>
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
#include "p2pnode/config/nodes_config.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/nn/layers.hpp"
#include "p2pnode/node/local_trainer.hpp"
#include "p2pnode/robust/robust.hpp"
#include "p2pnode_version.h"

namespace {

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
}

using p2p::cli::kExitRuntime;
using p2p::cli::kExitUsage;
constexpr int kExitNotBuilt = 3;

// Shown as the default of --data-root; resolved by data::default_data_root().
constexpr const char* kAutoDataRoot = "auto";
constexpr const char* kDataRootHelp =
    "Folder with MNIST-format IDX files (raw or .gz); 'auto' = ./data if it holds them, else "
    "/usr/share/datasets/fashion-mnist";

std::string resolve_data_root(const std::string& flag) {
    return flag == kAutoDataRoot ? p2p::data::default_data_root() : flag;
}

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }

// Flags every training node takes, with the reference's names and defaults.
struct NodeFlags {
    int node_id = 0;
    std::string node_type = "honest";
    int rounds = 50;
    int batch_size = 64;
    double lr = 0.05;
    double byz_scale = -1.0;
    std::string data_root = kAutoDataRoot;
    std::uint64_t seed = 0;
    std::string aggregator = "median";
    std::vector<std::string> pre;
    std::string attack = "empire";
    int f = -1;  // -1: the number of Byzantine nodes
    double tau = 10.0;
    int iterations = 0;
    CLI::Option* aggregator_opt = nullptr;
    CLI::Option* pre_opt = nullptr;
    CLI::Option* attack_opt = nullptr;
    CLI::Option* f_opt = nullptr;
    CLI::Option* tau_opt = nullptr;
    CLI::Option* iterations_opt = nullptr;
    CLI::Option* node_type_opt = nullptr;
    CLI::Option* rounds_opt = nullptr;
    CLI::Option* batch_opt = nullptr;
    CLI::Option* lr_opt = nullptr;

    p2p::TrainingFlags given() const {
        p2p::TrainingFlags f;
        if (rounds_opt->count()) f.rounds = rounds;
        if (batch_opt->count()) f.batch_size = batch_size;
        if (lr_opt->count()) f.learning_rate = lr;
        return f;
    }
};

void add_node_flags(CLI::App* sub, NodeFlags& f) {
    sub->add_option("--node-id", f.node_id, "Unique node id (0, 1, 2, ...)")->required()->check(CLI::NonNegativeNumber);
    f.node_type_opt = sub->add_option("--node-type", f.node_type, "honest or byzantine")
                          ->check(CLI::IsMember({"honest", "byzantine"}));
    f.rounds_opt = sub->add_option("--rounds", f.rounds, "Training rounds")->check(CLI::Range(1, 100'000'000));
    f.batch_opt = sub->add_option("--batch-size", f.batch_size, "Batch size")->check(CLI::Range(1, 1'000'000));
    f.lr_opt = sub->add_option("--lr", f.lr, "Learning rate")->check(CLI::PositiveNumber);
    sub->add_option("--byz-scale", f.byz_scale, "Byzantine attack scale (Empire: scale x mean of honest gradients)");
    sub->add_option("--data-root", f.data_root, kDataRootHelp);
    sub->add_option("--seed", f.seed, "Random seed (model init, shuffling, attacks)");
    f.aggregator_opt = sub->add_option("--aggregator", f.aggregator, "Robust aggregation rule of honest nodes: " +
                                                                         join(p2p::robust::aggregator_names()))
                           ->check(CLI::IsMember(p2p::robust::aggregator_names()));
    f.pre_opt = sub->add_option("--pre-aggregator", f.pre,
                                "Pre-aggregator before the rule, in the order given (repeatable): " +
                                    join(p2p::robust::pre_aggregator_names()))
                    ->check(CLI::IsMember(p2p::robust::pre_aggregator_names()))
                    ->take_all()
                    ->expected(1)
                    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    f.attack_opt = sub->add_option("--attack", f.attack, "What Byzantine nodes send: " +
                                                             join(p2p::robust::attack_names()))
                       ->check(CLI::IsMember(p2p::robust::attack_names()));
    f.f_opt = sub->add_option("--f", f.f, "Tolerated Byzantine inputs (-1: the number of Byzantine nodes)")
                  ->check(CLI::Range(-1, 100000));
    f.tau_opt = sub->add_option("--tau", f.tau, "centered-clipping radius / clipping threshold")->check(CLI::PositiveNumber);
    f.iterations_opt = sub->add_option("--iterations", f.iterations,
                                       "geometric-median / centered-clipping iterations (0: the rule's default)")
                           ->check(CLI::NonNegativeNumber);
}

// The robust settings a node runs with: flags over the file's `robust:` section over defaults.
struct RobustChoice {
    std::string aggregator, attack;
    std::vector<std::string> pre;
    p2p::robust::Params params;
};

RobustChoice resolve_robust(const NodeFlags& f, const p2p::RobustSection& file, const std::string& source,
                            int byzantine_nodes) {
    auto from_file = [&](const std::optional<std::string>& name, int line, const std::vector<std::string>& known,
                         const char* field) {
        if (name && std::find(known.begin(), known.end(), *name) == known.end())
            throw p2p::ConfigError(fmt::format("{}:{}: robust.{}: unknown name '{}' (known: {})", source, line, field,
                                               *name, join(known)));
    };
    from_file(file.aggregator, file.aggregator_line, p2p::robust::aggregator_names(), "aggregator");
    from_file(file.attack, file.attack_line, p2p::robust::attack_names(), "attack");
    for (const auto& name : file.pre_aggregators)
        from_file(name, file.pre_line, p2p::robust::pre_aggregator_names(), "pre_aggregators");
    RobustChoice c;
    c.aggregator = f.aggregator_opt->count() ? f.aggregator : file.aggregator.value_or(f.aggregator);
    c.attack = f.attack_opt->count() ? f.attack : file.attack.value_or(f.attack);
    c.pre = f.pre_opt->count() ? f.pre : file.pre_aggregators;
    const int fv = f.f_opt->count() ? f.f : file.f.value_or(f.f);
    c.params.f = static_cast<std::size_t>(fv < 0 ? byzantine_nodes : fv);
    c.params.tau = f.tau_opt->count() ? f.tau : file.tau.value_or(f.tau);
    c.params.iterations = static_cast<std::size_t>(f.iterations_opt->count() ? f.iterations : file.iterations.value_or(f.iterations));
    c.params.seed = f.seed;
    // Builds them once so that a bad parameter fails now, not at the first round.
    p2p::robust::Pipeline<float>(c.pre, c.aggregator, c.params);
    p2p::robust::AttackParams ap;
    ap.scale = f.byz_scale;
    p2p::robust::make_attack<float>(c.attack, ap);
    return c;
}

std::string describe(const RobustChoice& c, double scale) {
    std::string pre;
    for (const auto& p : c.pre) pre += p + " -> ";
    return fmt::format("{}{} (f={}), attack {} (scale {})", pre, c.aggregator, c.params.f, c.attack, scale);
}

void setup_logging() {
    auto logger = spdlog::stdout_logger_mt("p2pnode");
    // Info lines read like the reference's output: no timestamp or level prefix.
    logger->set_pattern("%v");
    spdlog::set_default_logger(logger);
}

void warn(const std::string& line) { std::fprintf(stderr, "warning: %s\n", line.c_str()); }

// Reports what a role would do and that it is not built yet, so nothing pretends to train.
int not_built(const std::string& role, const std::string& issue) {
    std::fprintf(stderr,
                 "p2pnode %s: the input is valid, but %s is not built yet (%s); nothing was trained.\n",
                 role.c_str(), role.c_str(), issue.c_str());
    return kExitNotBuilt;
}

int run_broker(const std::string& host, int port) {
    spdlog::info("broker: would bind tcp://{}:{}", host, port);
    return not_built("broker", "the hub transport lands with the transports issue");
}

int run_hub_client(const std::string& server_host, int server_port, const NodeFlags& f, int total, int honest, int shard) {
    p2p::TrainingOptions opts = p2p::merge_training({}, {}, f.given());
    opts.byz_scale = f.byz_scale;
    opts.seed = f.seed;
    const RobustChoice robust = resolve_robust(f, {}, "(command line)", total - honest);
    spdlog::info("[Node {}] hub-client: {} node {} of {} ({} honest), server tcp://{}:{}, shard {}, rounds {}, "
                 "batch {}, lr {}, byz-scale {}, seed {}, data {}, {}",
                 f.node_id, f.node_type, f.node_id, total, honest, server_host, server_port, shard, opts.rounds,
                 opts.batch_size, opts.learning_rate, opts.byz_scale, opts.seed, f.data_root,
                 describe(robust, f.byz_scale));
    return not_built("hub-client", "training over the hub lands with the transports issue");
}

int run_mesh(const std::string& config_path, const NodeFlags& f) {
    p2p::NodesConfig cfg = p2p::load_nodes_config(config_path);
    for (const auto& w : cfg.warnings) warn(w);
    const p2p::NodeSpec& self = cfg.require(f.node_id);
    p2p::NodeType type = self.type;
    if (f.node_type_opt->count()) {
        p2p::NodeType flag_type = *p2p::parse_node_type(f.node_type);
        if (flag_type != self.type)
            warn(fmt::format("node {}: --node-type {} overrides the type '{}' given in {}", f.node_id,
                             p2p::to_string(flag_type), p2p::to_string(self.type), cfg.source));
        type = flag_type;
    }
    p2p::TrainingOptions opts = p2p::merge_training({}, cfg.training, f.given());
    opts.byz_scale = f.byz_scale;
    opts.seed = f.seed;
    const int byzantine = static_cast<int>(cfg.nodes.size()) - cfg.honest_count();
    const RobustChoice robust = resolve_robust(f, cfg.robust, cfg.source, byzantine);
    spdlog::info("[Node {}] mesh: {} node, binds {}:{}, {} peers in {}, rounds {}, batch {}, lr {}, byz-scale {}, "
                 "seed {}, data {}, {}",
                 self.id, p2p::to_string(type), self.bind_host.value_or(self.host), self.port, cfg.nodes.size() - 1,
                 cfg.source, opts.rounds, opts.batch_size, opts.learning_rate, opts.byz_scale, opts.seed,
                 f.data_root, describe(robust, f.byz_scale));
    return not_built("mesh", "training over the mesh lands with the transports issue");
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

struct TrainFlags {
    int rounds = 50;
    int batch_size = 64;
    double lr = 0.05;
    std::string data_root = kAutoDataRoot;
    std::uint64_t seed = 0;
    int eval_every = 10;
    std::string shard = "0/1";
    double momentum = 0.0;
    double weight_decay = 0.0;
    std::string metrics = "metrics/train.jsonl";
    int blas_threads = 1;
};

// "h/H" with 0 <= h < H.
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

void add_train_command(CLI::App& app, TrainFlags& f) {
    CLI::App* sub = app.add_subcommand("train", "Single-node training on one machine: the non-distributed baseline");
    sub->add_option("--rounds", f.rounds, "Training rounds (one SGD step each)")->check(CLI::Range(1, 100'000'000));
    sub->add_option("--batch-size", f.batch_size, "Batch size")->check(CLI::Range(1, 1'000'000));
    sub->add_option("--lr", f.lr, "Learning rate")->check(CLI::PositiveNumber);
    sub->add_option("--data-root", f.data_root, kDataRootHelp);
    sub->add_option("--seed", f.seed, "Random seed (model init, shuffling)");
    sub->add_option("--eval-every", f.eval_every, "Evaluate on the test set every N rounds (and at the end)")
        ->check(CLI::Range(1, 100'000'000));
    sub->add_option("--shard", f.shard, "Train on honest shard h of H (indices h, h+H, ...), as h/H")
        ->check(CLI::Validator(
            [](std::string& v) {
                std::size_t h = 0, n = 0;
                return parse_shard(v, h, n) ? std::string() : "must be h/H with 0 <= h < H, got '" + v + "'";
            },
            "h/H"));
    sub->add_option("--momentum", f.momentum, "SGD momentum (0: plain SGD, like the reference)")
        ->check(CLI::Range(0.0, 0.999999));
    sub->add_option("--weight-decay", f.weight_decay, "SGD weight decay (L2)")->check(CLI::NonNegativeNumber);
    sub->add_option("--metrics", f.metrics, "JSONL metrics file (one row per round); '' writes none");
    sub->add_option("--blas-threads", f.blas_threads, "OpenBLAS threads")->check(CLI::Range(1, 256));
}

int run_train(const TrainFlags& f) {
    p2p::node::LocalTrainSettings s;
    s.training.rounds = f.rounds;
    s.training.batch_size = f.batch_size;
    s.training.learning_rate = f.lr;
    s.training.seed = f.seed;
    s.training.eval_every = f.eval_every;
    parse_shard(f.shard, s.shard, s.shards);
    s.momentum = static_cast<float>(f.momentum);
    s.weight_decay = static_cast<float>(f.weight_decay);
    s.node_id = static_cast<int>(s.shard);
    s.metrics_path = f.metrics;
    s.stop_requested = [] { return g_stop.load(); };
    p2p::nn::set_blas_threads(f.blas_threads);

    const std::string root = resolve_data_root(f.data_root);
    auto data = p2p::data::load_mnist_data(root);
    spdlog::info("[Node {}] train: shard {} ({} of {} training images), {} test images from {}, rounds {}, batch {}, "
                 "lr {}, seed {}",
                 s.node_id, f.shard, (data->train.count + s.shards - 1 - s.shard) / s.shards, data->train.count,
                 data->test.count, root, f.rounds, f.batch_size, f.lr, f.seed);
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    auto result = p2p::node::train_locally(s, *data);
    spdlog::info("[Node {}] {} rounds, {:.2f} ms per round (compute){}", s.node_id, result.rounds_done,
                 1000.0 * result.seconds_per_round, f.metrics.empty() ? "" : ", metrics in " + f.metrics);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"p2pnode: decentralized Byzantine-robust training over ZeroMQ", "p2pnode"};
    app.set_version_flag("--version", std::string("p2pnode ") + P2PNODE_VERSION);
    app.require_subcommand(1);
    app.option_defaults()->always_capture_default();
    app.footer("Exit status: 0 success, 1 runtime failure, 2 bad usage or config, 3 role not built yet.");

    std::string host = "0.0.0.0";
    int port = 8888;
    CLI::App* broker = app.add_subcommand("broker", "Hub-and-spoke: bind a ROUTER and route gradients between nodes");
    broker->add_option("--host", host, "Host to bind to");
    broker->add_option("--port", port, "Port to listen on")->check(CLI::Range(1, 65535));

    std::string server_host;
    int server_port = 8888, total = 0, honest = 0, shard = 0;
    NodeFlags hub_flags;
    CLI::App* hub = app.add_subcommand("hub-client", "Hub-and-spoke: a training node connected to a broker");
    hub->add_option("--server-host", server_host, "Broker hostname or IP")->required();
    hub->add_option("--server-port", server_port, "Broker port")->check(CLI::Range(1, 65535));
    add_node_flags(hub, hub_flags);
    hub->add_option("--total-nodes", total, "Total nodes in the network")->required()->check(CLI::Range(1, 1'000'000));
    hub->add_option("--honest-nodes", honest, "Number of honest nodes")->required()->check(CLI::Range(1, 1'000'000));
    hub->add_option("--data-shard", shard, "Data shard index (honest nodes: 0 .. honest-nodes-1)")
        ->check(CLI::NonNegativeNumber);
    hub->final_callback([&] {
        if (honest > total)
            throw CLI::ValidationError("--honest-nodes", fmt::format("{} honest nodes > {} total nodes", honest, total));
        if (hub_flags.node_id >= total)
            throw CLI::ValidationError("--node-id", fmt::format("{} is not below --total-nodes {}", hub_flags.node_id, total));
        if (shard >= honest)
            throw CLI::ValidationError("--data-shard", fmt::format("{} is not below --honest-nodes {}", shard, honest));
    });

    std::string config_path;
    NodeFlags mesh_flags;
    CLI::App* mesh = app.add_subcommand("mesh", "Peer-to-peer mesh: a training node with its own ROUTER, no server");
    mesh->add_option("--config", config_path, "Nodes config file (YAML or JSON)")->required();
    add_node_flags(mesh, mesh_flags);

    TrainFlags train_flags;
    add_train_command(app, train_flags);
    p2p::cli::AggregateFlags aggregate_flags;
    CLI::App* aggregate = p2p::cli::add_aggregate_command(app, aggregate_flags);

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
        if (*broker) return run_broker(host, port);
        if (*hub) return run_hub_client(server_host, server_port, hub_flags, total, honest, shard);
        if (*mesh) return run_mesh(config_path, mesh_flags);
        if (*app.get_subcommand("train")) return run_train(train_flags);
        if (*aggregate) return p2p::cli::run_aggregate(aggregate_flags);
    } catch (const p2p::ConfigError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kExitUsage;
    } catch (const p2p::robust::RobustError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kExitUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kExitRuntime;
    }
    return kExitUsage;
}
