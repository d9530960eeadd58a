#include "node_commands.hpp"

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
#include "p2pnode/nn/layers.hpp"
#include "p2pnode/node/settings.hpp"
#include "p2pnode/robust/robust.hpp"
#include "p2pnode/transport/hub.hpp"
#include "p2pnode/transport/mesh.hpp"
#include "p2pnode/transport/security.hpp"

extern char** environ;

namespace p2p::cli {

std::atomic<bool> g_stop{false};

namespace {
extern "C" void on_stop_signal(int) { g_stop.store(true); }
}  // namespace

void install_stop_handlers() {
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
}

std::string resolve_data_root(const std::string& flag) {
    return flag == kAutoDataRoot ? data::default_data_root() : flag;
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
}

void add_node_flags(CLI::App* sub, NodeFlags& f, bool with_identity) {
    // launch (no identity) also runs nodes as threads over inproc.
    const std::vector<std::string> endpoints =
        with_identity ? std::vector<std::string>{"tcp", "ipc"} : std::vector<std::string>{"tcp", "ipc", "inproc"};
    if (with_identity) {
        sub->add_option("--node-id", f.node_id, "Unique node id (0, 1, 2, ...)")->required()->check(CLI::NonNegativeNumber);
        f.node_type_opt = sub->add_option("--node-type", f.node_type, "honest or byzantine")
                              ->check(CLI::IsMember({"honest", "byzantine"}));
    }
    f.rounds_opt = sub->add_option("--rounds", f.rounds, "Training rounds")->check(CLI::Range(1, 100'000'000));
    f.batch_opt = sub->add_option("--batch-size", f.batch_size, "Batch size")->check(CLI::Range(1, 1'000'000));
    f.lr_opt = sub->add_option("--lr", f.lr, "Learning rate")->check(CLI::PositiveNumber);
    f.exchange_opt = sub->add_option("--exchange", f.exchange,
                                     "What honest nodes send: gradient (send g, step on the robust aggregate of "
                                     "gradients: the reference's protocol) or model (send the half step theta - "
                                     "lr*g, adopt the aggregate of half steps; keeps the nodes' models together)")
                         ->check(CLI::IsMember({"gradient", "model"}));
    f.self_weight_opt = sub->add_option("--self-weight", f.self_weight,
                                        "Weight w of an honest node's own vector (its gradient; its half step with "
                                        "--exchange model) in its step, w*own + (1-w)*aggregate: 0 is the "
                                        "reference's step on the aggregate alone, 1 ignores the neighbours")
                            ->check(CLI::Validator(
                                [](std::string& in) -> std::string {
                                    double v = 0;
                                    if (CLI::detail::lexical_cast(in, v) && v >= 0 && v <= 1) return {};
                                    return "must be a number in 0..1, got " + in;
                                },
                                "in 0..1"));
    sub->add_option("--byz-scale", f.byz_scale, "Byzantine attack scale (Empire: scale x mean of honest gradients)");
    sub->add_option("--data-root", f.data_root,
                    "Folder with MNIST-format IDX files (raw or .gz); 'auto' = ./data if it holds them, else "
                    "/usr/share/datasets/fashion-mnist");
    sub->add_option("--seed", f.seed, "Random seed (model init, shuffling, attacks)");
    sub->add_option("--eval-every", f.eval_every, "Evaluate on the test set every N rounds (and at the end)")
        ->check(CLI::Range(1, 100'000'000));
    f.aggregator_opt = sub->add_option("--aggregator", f.aggregator,
                                       "Robust aggregation rule of honest nodes: " + join(robust::aggregator_names()))
                           ->check(CLI::IsMember(robust::aggregator_names()));
    f.pre_opt = sub->add_option("--pre-aggregator", f.pre,
                                "Pre-aggregator before the rule, in the order given (repeatable): " +
                                    join(robust::pre_aggregator_names()))
                    ->check(CLI::IsMember(robust::pre_aggregator_names()))
                    ->take_all()
                    ->expected(1)
                    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    f.attack_opt = sub->add_option("--attack", f.attack, "What Byzantine nodes send: " + join(robust::attack_names()))
                       ->check(CLI::IsMember(robust::attack_names()));
    f.f_opt = sub->add_option("--f", f.f, "Tolerated Byzantine inputs (-1: the number of Byzantine nodes)")
                  ->check(CLI::Range(-1, 100000));
    f.tau_opt = sub->add_option("--tau", f.tau, "centered-clipping radius / clipping threshold")->check(CLI::PositiveNumber);
    f.iterations_opt = sub->add_option("--iterations", f.iterations,
                                       "geometric-median / centered-clipping iterations (0: the rule's default)")
                           ->check(CLI::NonNegativeNumber);
    sub->add_option("--endpoint", f.endpoint,
                    with_identity ? "Transport: tcp (between machines), ipc (one machine)"
                                  : "Transport: tcp, ipc (child processes) or inproc (threads of this process)")
        ->check(CLI::IsMember(endpoints));
    sub->add_option("--ipc-dir", f.ipc_dir, "Folder for ipc:// socket files");
    sub->add_option("--metrics-dir", f.metrics_dir, "Folder for node-<id>.jsonl metrics and the run summary ('' = none)");
    sub->add_option("--round-timeout", f.soft_timeout,
                    "Seconds a round waits for all neighbours before going on with the quorum")
        ->check(CLI::PositiveNumber);
    sub->add_option("--hard-timeout", f.hard_timeout, "Seconds a round waits at most")->check(CLI::PositiveNumber);
    sub->add_option("--startup-timeout", f.startup_timeout, "Seconds to wait for neighbours at start")
        ->check(CLI::PositiveNumber);
    sub->add_option("--checkpoint-dir", f.checkpoint_dir,
                    "Write node-<id>.ckpt here every --checkpoint-every rounds and at exit ('' = none)");
    sub->add_option("--checkpoint-every", f.checkpoint_every, "Rounds between checkpoints")->check(CLI::Range(1, 100'000'000));
    if (with_identity) {
        sub->add_flag("--resume", f.resume, "Start from the checkpoint in --checkpoint-dir and rejoin the current round");
        sub->add_option("--secret-key", f.secret_key,
                        "CURVE: this node's secret key file (p2pnode keygen); the config gives every public key");
    }
}

namespace {

// A key file's content (trimmed); warns if others can read it. The key itself is never printed.
std::string read_secret_key(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw IoError(fmt::format("{}: cannot read the secret key file", path));
    if (st.st_mode & 077)
        std::fprintf(stderr, "warning: %s: the secret key file is readable by others (mode %03o); chmod 600 it\n",
                     path.c_str(), static_cast<unsigned>(st.st_mode & 0777));
    std::ifstream in(path);
    std::string key;
    in >> key;
    if (!transport::is_z85_key(key)) throw IoError(fmt::format("{}: not a CURVE secret key (40 Z85 characters)", path));
    return key;
}

// The CURVE settings of one party: its own keys from `secret_file`, everybody's public keys
// from the config. Nullopt when no secret key is given.
std::optional<transport::Security> security_of(const std::string& secret_file, const NodesConfig& cfg, bool need_broker) {
    if (secret_file.empty()) return std::nullopt;
    transport::Security s;
    s.own.secret_z85 = read_secret_key(secret_file);
    s.own.public_z85 = transport::public_from_secret(s.own.secret_z85);
    std::vector<std::string> missing;
    for (const auto& n : cfg.nodes) {
        if (n.public_key)
            s.public_keys[static_cast<std::uint32_t>(n.id)] = *n.public_key;
        else
            missing.push_back(std::to_string(n.id));
    }
    if (!missing.empty())
        throw ConfigError(fmt::format("{}: CURVE needs a public_key for every node; missing for node(s) {}", cfg.source,
                                      join(missing)));
    if (need_broker) {
        if (!cfg.broker_public_key) throw ConfigError(fmt::format("{}: broker_public_key: missing (CURVE with a broker)", cfg.source));
        s.broker_public = *cfg.broker_public_key;
    }
    return s;
}

// Flags over the file's `robust:` section over the defaults; names in the file are checked.
node::RunChoice run_choice(const NodeFlags& f, const NodesConfig& cfg) {
    const RobustSection& file = cfg.robust;
    auto check_name = [&](const std::optional<std::string>& name, int line, const std::vector<std::string>& known,
                          const char* field) {
        if (name && std::find(known.begin(), known.end(), *name) == known.end())
            throw ConfigError(fmt::format("{}:{}: robust.{}: unknown name '{}' (known: {})", cfg.source, line, field,
                                          *name, join(known)));
    };
    check_name(file.aggregator, file.aggregator_line, robust::aggregator_names(), "aggregator");
    check_name(file.attack, file.attack_line, robust::attack_names(), "attack");
    for (const auto& name : file.pre_aggregators)
        check_name(name, file.pre_line, robust::pre_aggregator_names(), "pre_aggregators");
    node::RunChoice c;
    TrainingFlags given;
    if (f.rounds_opt->count()) given.rounds = f.rounds;
    if (f.batch_opt->count()) given.batch_size = f.batch_size;
    if (f.lr_opt->count()) given.learning_rate = f.lr;
    if (f.exchange_opt->count()) given.exchange = f.exchange;
    if (f.self_weight_opt->count()) given.self_weight = f.self_weight;
    c.training = merge_training({}, cfg.training, given);
    c.training.byz_scale = f.byz_scale;
    c.training.seed = f.seed;
    c.training.eval_every = f.eval_every;
    c.aggregator = f.aggregator_opt->count() ? f.aggregator : file.aggregator.value_or(f.aggregator);
    c.attack = f.attack_opt->count() ? f.attack : file.attack.value_or(f.attack);
    c.pre_aggregators = f.pre_opt->count() ? f.pre : file.pre_aggregators;
    const int fv = f.f_opt->count() ? f.f : file.f.value_or(f.f);
    if (fv >= 0) c.f = static_cast<std::size_t>(fv);
    c.robust.tau = f.tau_opt->count() ? f.tau : file.tau.value_or(f.tau);
    c.robust.iterations =
        static_cast<std::size_t>(f.iterations_opt->count() ? f.iterations : file.iterations.value_or(f.iterations));
    c.robust.seed = f.seed;
    auto ms = [](double s) { return std::chrono::milliseconds(static_cast<long long>(s * 1000)); };
    c.soft_timeout = ms(f.soft_timeout);
    c.hard_timeout = ms(std::max(f.hard_timeout, f.soft_timeout));
    c.startup_timeout = ms(f.startup_timeout);
    c.metrics_dir = f.metrics_dir;
    c.checkpoint_dir = f.checkpoint_dir;
    c.checkpoint_every = f.checkpoint_every;
    c.resume = f.resume;
    if (f.resume && f.checkpoint_dir.empty()) throw ConfigError("--resume needs --checkpoint-dir");
    if (f.node_type_opt && f.node_type_opt->count()) c.type_override = parse_node_type(f.node_type);
    return c;
}

std::string describe(const node::NodeSettings& s) {
    std::string pre;
    for (const auto& p : s.pre_aggregators) pre += p + " -> ";
    // A Byzantine node takes no step, so it has no self weight.
    const std::string weight =
        s.type == NodeType::Honest ? fmt::format(", self weight {}", s.training.self_weight) : std::string();
    return fmt::format("{}{} (f={}), attack {} (scale {}), {} exchange{}", pre, s.aggregator, s.robust.f, s.attack,
                       s.attack_params.scale, s.training.exchange, weight);
}

// node-<id>.summary.json beside the metrics: what `launch` prints in its table.
void write_summary(const std::string& dir, const node::NodeSettings& s, const node::NodeResult& r) {
    if (dir.empty()) return;
    std::filesystem::create_directories(dir);
    std::ofstream out(fmt::format("{}/node-{}.summary.json", dir, s.id));
    // round_ms: a round's own time (compute + wait + aggregate), without evaluations, start-up
    // and checkpoints, which seconds_per_round (wall time / rounds) includes.
    const double round_ms =
        r.rounds_done ? 1000.0 * (r.seconds_compute + r.seconds_wait + r.seconds_aggregate) / r.rounds_done : 0.0;
    out << fmt::format(
        "{{\"node\": {}, \"type\": \"{}\", \"rounds\": {}, \"loss\": {}, \"acc\": {}, \"seconds_per_round\": {}, "
        "\"round_ms\": {}, \"seconds_eval\": {}}}\n",
        s.id, to_string(s.type), r.rounds_done,
        s.type == NodeType::Honest && std::isfinite(r.final_eval.loss) ? fmt::format("{}", r.final_eval.loss) : "null",
        s.type == NodeType::Honest ? fmt::format("{}", r.final_eval.accuracy) : "null", r.seconds_per_round, round_ms,
        r.seconds_eval);
}

int run_one(const NodesConfig& cfg, const NodeFlags& f, std::uint32_t id,
            const std::function<std::unique_ptr<transport::Transport>(zmq::context_t&, const node::NodeSettings&)>& make) {
    for (const auto& w : cfg.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    const node::RunChoice choice = run_choice(f, cfg);
    node::NodeSettings s = node::settings_for(cfg, id, choice);
    if (f.data_shard >= 0) s.shard = static_cast<std::size_t>(f.data_shard);
    const NodeSpec& self = cfg.require(static_cast<int>(id));
    if (choice.type_override && *choice.type_override != self.type)
        std::fprintf(stderr, "warning: node %u: --node-type %s overrides the type '%s' given in %s\n", id,
                     std::string(to_string(*choice.type_override)).c_str(), std::string(to_string(self.type)).c_str(),
                     cfg.source.c_str());
    s.stop_requested = [] { return g_stop.load(); };
    install_stop_handlers();
    nn::set_blas_threads(1);
    const std::string root = resolve_data_root(f.data_root);
    auto data = data::load_mnist_data(root);
    spdlog::info("[Node {}] {} node, rounds {}, batch {}, lr {}, seed {}, data {}, {}", id, to_string(s.type),
                 s.training.rounds, s.training.batch_size, s.training.learning_rate, s.training.seed, root, describe(s));
    zmq::context_t ctx;
    auto t = make(ctx, s);
    const auto r = node::run_node(s, *t, *data);
    write_summary(f.metrics_dir, s, r);
    return 0;
}

}  // namespace

int run_mesh(const std::string& config_path, const NodeFlags& f) {
    const NodesConfig cfg = load_nodes_config(config_path);
    const auto scheme = *transport::parse_scheme(f.endpoint);
    return run_one(cfg, f, static_cast<std::uint32_t>(f.node_id), [&](zmq::context_t& ctx, const node::NodeSettings& s) {
        const NodeSpec& self = cfg.require(static_cast<int>(s.id));
        transport::MeshSpec ms;
        ms.self = s.id;
        if (scheme == transport::Scheme::Ipc) std::filesystem::create_directories(f.ipc_dir);
        ms.bind_endpoint = transport::endpoint_for(scheme, self.bind_host.value_or(self.host), self.port, f.ipc_dir);
        for (auto n : s.neighbours) {
            const NodeSpec& peer = cfg.require(static_cast<int>(n));
            if (n < s.id)
                ms.peers[n] = transport::endpoint_for(scheme, peer.host, peer.port, f.ipc_dir);
            else
                ms.accept_from.push_back(n);
        }
        ms.security = security_of(f.secret_key, cfg, false);
        spdlog::info("[Node {}] mesh over {}{}: bound {}, {} neighbour(s)", s.id, f.endpoint,
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
        cfg.topology.type = f.topology;
        cfg.topology.k = f.k;
    }
    const auto scheme = *transport::parse_scheme(f.endpoint);
    return run_one(cfg, f, static_cast<std::uint32_t>(f.node_id), [&](zmq::context_t& ctx, const node::NodeSettings& s) {
        transport::HubSpec hs;
        hs.self = s.id;
        hs.broker_endpoint = transport::endpoint_for(scheme, h.server_host, h.server_port, f.ipc_dir);
        if (!f.secret_key.empty() && h.config.empty())
            throw ConfigError("--secret-key needs --config (it gives the public keys of the nodes and the broker)");
        hs.security = security_of(f.secret_key, cfg, true);
        spdlog::info("[Node {}] hub client of the broker at {}{}", s.id, hs.broker_endpoint,
                     hs.security ? " with CURVE" : "");
        return transport::make_hub_client(ctx, hs);
    });
}

int run_broker(const BrokerFlags& b) {
    const auto scheme = *transport::parse_scheme(b.endpoint);
    if (scheme == transport::Scheme::Ipc) std::filesystem::create_directories(b.ipc_dir);
    zmq::context_t ctx;
    transport::Broker::Spec bs;
    bs.bind_endpoint = transport::endpoint_for(scheme, b.host, b.port, b.ipc_dir);
    if (!b.secret_key.empty()) {
        if (b.config.empty()) throw ConfigError("broker --secret-key needs --config (the nodes' public keys)");
        bs.security = security_of(b.secret_key, load_nodes_config(b.config), false);
    }
    transport::Broker broker(ctx, bs);
    install_stop_handlers();
    spdlog::info("broker: routing on {}{} (Ctrl-C stops)", broker.endpoint(), bs.security ? " with CURVE" : "");
    broker.run([] { return g_stop.load(); }, [](const std::string& line) { spdlog::info("{}", line); });
    const auto st = broker.stats();
    spdlog::info("broker: stopped after routing {} messages ({} bytes), {} unroutable", st.messages_routed,
                 st.bytes_routed, st.dropped_unroutable);
    return 0;
}

namespace {

// The flags launch passes to every child. Settings the config file can also hold (training and
// robust) are passed only when given, so the file's values reach the children as they reach
// inproc nodes.
std::vector<std::string> forwarded_flags(const NodeFlags& f) {
    std::vector<std::string> a = {"--byz-scale",   fmt::format("{}", f.byz_scale),
                                  "--data-root",   f.data_root,                  "--seed",       std::to_string(f.seed),
                                  "--eval-every",  std::to_string(f.eval_every),
                                  "--endpoint",    f.endpoint,                   "--ipc-dir",    f.ipc_dir,
                                  "--metrics-dir", f.metrics_dir,                "--round-timeout", fmt::format("{}", f.soft_timeout),
                                  "--hard-timeout", fmt::format("{}", f.hard_timeout),
                                  "--startup-timeout", fmt::format("{}", f.startup_timeout),
                                  "--checkpoint-dir", f.checkpoint_dir, "--checkpoint-every", std::to_string(f.checkpoint_every)};
    auto given = [&](const CLI::Option* opt, const char* flag, const std::string& value) {
        if (opt->count()) a.insert(a.end(), {flag, value});
    };
    given(f.rounds_opt, "--rounds", std::to_string(f.rounds));
    given(f.batch_opt, "--batch-size", std::to_string(f.batch_size));
    given(f.lr_opt, "--lr", fmt::format("{}", f.lr));
    given(f.exchange_opt, "--exchange", f.exchange);
    given(f.self_weight_opt, "--self-weight", fmt::format("{}", f.self_weight));
    given(f.aggregator_opt, "--aggregator", f.aggregator);
    given(f.attack_opt, "--attack", f.attack);
    given(f.f_opt, "--f", std::to_string(f.f));
    given(f.tau_opt, "--tau", fmt::format("{}", f.tau));
    given(f.iterations_opt, "--iterations", std::to_string(f.iterations));
    if (f.pre_opt->count())
        for (const auto& p : f.pre) a.insert(a.end(), {"--pre-aggregator", p});
    return a;
}

pid_t spawn(const std::string& exe, const std::vector<std::string>& args) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(exe.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv.data(), environ) != 0)
        throw IoError(fmt::format("launch: cannot start {}", exe));
    return pid;
}

void print_table(const NodesConfig& cfg, const std::string& dir) {
    // s/round: wall time over rounds, evaluations included; round ms: compute + wait + aggregate
    // of a round; eval s: all evaluations on the test set together.
    std::printf("\n%-5s %-10s %-7s %-11s %-10s %-8s %-9s %s\n", "node", "type", "rounds", "final loss", "final acc",
                "s/round", "round ms", "eval s");
    for (const auto& n : cfg.nodes) {
        const std::string path = fmt::format("{}/node-{}.summary.json", dir, n.id);
        try {
            const YAML::Node s = YAML::LoadFile(path);
            auto field = [&](const char* k) { return s[k] && !s[k].IsNull() ? s[k].as<std::string>() : std::string("-"); };
            auto num = [&](const char* k, const char* f) {
                return s[k] && !s[k].IsNull() ? fmt::format(fmt::runtime(f), s[k].as<double>()) : std::string("-");
            };
            std::printf("%-5d %-10s %-7s %-11s %-10s %-8s %-9s %s\n", n.id, field("type").c_str(),
                        field("rounds").c_str(), num("loss", "{:.4f}").c_str(), num("acc", "{:.4f}").c_str(),
                        num("seconds_per_round", "{:.3f}").c_str(), num("round_ms", "{:.1f}").c_str(),
                        num("seconds_eval", "{:.2f}").c_str());
        } catch (const std::exception&) {
            std::printf("%-5d %-10s (no summary: the node did not finish)\n", n.id, std::string(to_string(n.type)).c_str());
        }
    }
}

}  // namespace

int run_launch(const LaunchFlags& l, const NodeFlags& f, const std::string& self_exe) {
    const NodesConfig cfg = load_nodes_config(l.config);
    for (const auto& w : cfg.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    // Validates every node's settings (rule bounds, topology) before starting anything.
    const node::RunChoice choice = run_choice(f, cfg);
    for (const auto& n : cfg.nodes) node::settings_for(cfg, static_cast<std::uint32_t>(n.id), choice);
    if (!f.metrics_dir.empty()) {
        std::filesystem::create_directories(f.metrics_dir);
        for (const auto& n : cfg.nodes) std::filesystem::remove(fmt::format("{}/node-{}.summary.json", f.metrics_dir, n.id));
    }
    // The table is read from the nodes' summaries; with --metrics-dir '' they go to a temporary
    // folder that is removed afterwards.
    std::string summary_dir = f.metrics_dir;
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
    } remove_temp{f.metrics_dir.empty() ? summary_dir : std::string()};
    install_stop_handlers();
    const launch::Pattern pattern = l.pattern == "hub" ? launch::Pattern::Hub : launch::Pattern::Mesh;
    spdlog::info("launch: {} nodes of {} as a {} over {}", cfg.nodes.size(), cfg.source, l.pattern, f.endpoint);
    if (f.endpoint == "inproc") {
        if (!l.keys_dir.empty()) throw ConfigError("--keys-dir: CURVE needs tcp or ipc; inproc is not encrypted");
        nn::set_blas_threads(1);
        auto data = data::load_mnist_data(resolve_data_root(f.data_root));
        launch::ClusterOptions o;
        o.pattern = pattern;
        o.scheme = transport::Scheme::Inproc;
        o.stop_requested = [] { return g_stop.load(); };
        auto results = launch::run_threads(cfg, choice, o, *data);
        auto topo = node::topology_of(cfg);
        for (auto& [id, r] : results) write_summary(summary_dir, node::settings_for(cfg, id, choice), r);
        print_table(cfg, summary_dir);
        return 0;
    }
    std::vector<pid_t> children;
    pid_t broker = 0;
    if (pattern == launch::Pattern::Hub) {
        std::vector<std::string> args = {"broker", "--host", "127.0.0.1", "--port", std::to_string(l.broker_port),
                                         "--endpoint", f.endpoint, "--ipc-dir", f.ipc_dir};
        if (!l.keys_dir.empty()) args.insert(args.end(), {"--secret-key", l.keys_dir + "/broker.key", "--config", l.config});
        broker = spawn(self_exe, args);
    }
    for (const auto& n : cfg.nodes) {
        std::vector<std::string> args;
        if (pattern == launch::Pattern::Hub)
            args = {"hub-client", "--config", l.config, "--server-host", "127.0.0.1", "--server-port",
                    std::to_string(l.broker_port), "--node-id", std::to_string(n.id)};
        else
            args = {"mesh", "--config", l.config, "--node-id", std::to_string(n.id)};
        NodeFlags child = f;
        child.metrics_dir = summary_dir;
        const auto fwd = forwarded_flags(child);
        args.insert(args.end(), fwd.begin(), fwd.end());
        if (!l.keys_dir.empty()) args.insert(args.end(), {"--secret-key", fmt::format("{}/node-{}.key", l.keys_dir, n.id)});
        children.push_back(spawn(self_exe, args));
    }
    int failures = 0;
    std::size_t running = children.size();
    bool forwarded = false;
    while (running > 0) {
        int status = 0;
        const pid_t done = waitpid(-1, &status, WNOHANG);
        if (done > 0 && done != broker) {
            --running;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
            continue;
        }
        if (g_stop.load() && !forwarded) {  // Ctrl-C: every child stops after its round
            for (pid_t c : children) kill(c, SIGTERM);
            forwarded = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling child exits, not synchronising
    }
    if (broker) {
        kill(broker, SIGTERM);
        int status = 0;
        waitpid(broker, &status, 0);
    }
    print_table(cfg, summary_dir);
    if (failures) {
        std::fprintf(stderr, "launch: %d node(s) failed\n", failures);
        return kExitRuntime;
    }
    return 0;
}

}  // namespace p2p::cli

namespace p2p::cli {

int run_keygen(const std::string& prefix, bool force) {
    const auto keys = transport::generate_keys();
    const std::string secret = prefix + ".key", pub = prefix + ".pub";
    const std::filesystem::path parent = std::filesystem::path(secret).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    const int flags = O_WRONLY | O_CREAT | (force ? O_TRUNC : O_EXCL);
    const int fd = ::open(secret.c_str(), flags, 0600);
    if (fd < 0)
        throw IoError(fmt::format("{}: cannot create the secret key file{}", secret,
                                  errno == EEXIST ? " (it exists; --force replaces it)" : ""));
    ::fchmod(fd, 0600);
    const std::string line = keys.secret_z85 + "\n";
    const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!ok) throw IoError(fmt::format("{}: cannot write the secret key", secret));
    std::ofstream(pub) << keys.public_z85 << "\n";
    std::printf("wrote %s (public key %s) and %s (secret, mode 0600)\n", pub.c_str(), keys.public_z85.c_str(),
                secret.c_str());
    return 0;
}

}  // namespace p2p::cli
