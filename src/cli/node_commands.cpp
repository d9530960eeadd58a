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

std::shared_ptr<const data::MnistData> load_data(const Experiment& e) {
    const data::DatasetEntry* d = data::find_dataset(e.data.dataset);
    if (!d) throw ConfigError(fmt::format("data.dataset: unknown data set '{}'", e.data.dataset));
    return d->load(resolve_data_root(e.data.root));
}

void add_node_flags(CLI::App* sub, NodeFlags& f, bool with_identity) {
    if (with_identity) {
        sub->add_option("--node-id", f.node_id, "Unique node id (0, 1, 2, ...)")->required()->check(CLI::NonNegativeNumber);
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

// The node's experiment: the defaults < the config's sections < --experiment < flags; its
// names checked against the catalogues.
Experiment experiment_of(const NodeFlags& f, const NodesConfig& cfg) {
    std::vector<std::string> warnings;
    Experiment e = resolve_experiment(f.experiment, cfg.experiment, warnings);
    for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    node::check_names(e);
    return e;
}

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
            const std::function<std::unique_ptr<transport::Transport>(zmq::context_t&, const node::NodeSettings&,
                                                                      const Experiment&)>& make) {
    for (const auto& w : cfg.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    const Experiment e = experiment_of(f, cfg);
    if (e.transport.endpoint == "inproc")
        throw ConfigError("--endpoint inproc: a node alone has no one to talk to in-process; run the nodes as "
                          "threads with `p2pnode launch --endpoint inproc`");
    const node::NodeOverrides o = overrides_of(f, e);
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
    spdlog::info("[Node {}] {} node, rounds {}, batch {}, lr {}, seed {}, data {}, {}", id, to_string(s.type),
                 s.training.rounds, s.training.batch_size, s.training.learning_rate, s.training.seed, data->root,
                 describe(s));
    zmq::context_t ctx;
    auto t = make(ctx, s, e);
    const auto r = node::run_node(s, *t, *data);
    write_summary(e.outputs.metrics_dir, s, r);
    return 0;
}

}  // namespace

int run_mesh(const std::string& config_path, const NodeFlags& f) {
    const NodesConfig cfg = load_nodes_config(config_path);
    return run_one(cfg, f, static_cast<std::uint32_t>(f.node_id), [&](zmq::context_t& ctx, const node::NodeSettings& s,
                                                                      const Experiment& e) {
        const auto scheme = *transport::parse_scheme(e.transport.endpoint);
        const std::string& ipc_dir = e.transport.ipc_dir;
        const NodeSpec& self = cfg.require(static_cast<int>(s.id));
        transport::MeshSpec ms;
        ms.self = s.id;
        if (scheme == transport::Scheme::Ipc) std::filesystem::create_directories(ipc_dir);
        ms.bind_endpoint = transport::endpoint_for(scheme, self.bind_host.value_or(self.host), self.port, ipc_dir);
        for (auto n : s.neighbours) {
            const NodeSpec& peer = cfg.require(static_cast<int>(n));
            if (n < s.id)
                ms.peers[n] = transport::endpoint_for(scheme, peer.host, peer.port, ipc_dir);
            else
                ms.accept_from.push_back(n);
        }
        ms.security = security_of(f.secret_key, cfg, false);
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
    return run_one(cfg, f, static_cast<std::uint32_t>(f.node_id), [&](zmq::context_t& ctx, const node::NodeSettings& s,
                                                                      const Experiment& e) {
        const auto scheme = *transport::parse_scheme(e.transport.endpoint);
        transport::HubSpec hs;
        hs.self = s.id;
        hs.broker_endpoint = transport::endpoint_for(scheme, h.server_host, h.server_port, e.transport.ipc_dir);
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

// Writes `text` to `path` whole or not at all (a temporary file renamed into place).
void write_whole(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << text;
        if (!out.flush()) throw IoError(fmt::format("{}: cannot write", tmp));
    }
    std::filesystem::rename(tmp, path);
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
    // Resolved once: every node, thread or process, runs this experiment.
    Experiment e = experiment_of(f, cfg);
    // Validates every node's settings (rule bounds, topology) before starting anything.
    for (const auto& n : cfg.nodes) node::settings_for(cfg, static_cast<std::uint32_t>(n.id), e);
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
    install_stop_handlers();
    const launch::Pattern pattern = e.transport.pattern == "hub" ? launch::Pattern::Hub : launch::Pattern::Mesh;
    const std::string& endpoint = e.transport.endpoint;
    spdlog::info("launch: {} nodes of {} as a {} over {}; the experiment in {}", cfg.nodes.size(), cfg.source,
                 e.transport.pattern, endpoint, metrics_dir.empty() ? std::string("a temporary folder") : experiment_file);
    if (endpoint == "inproc") {
        if (!l.keys_dir.empty()) throw ConfigError("--keys-dir: CURVE needs tcp or ipc; inproc is not encrypted");
        nn::set_blas_threads(1);
        auto data = load_data(e);
        launch::ClusterOptions o;
        o.pattern = pattern;
        o.scheme = transport::Scheme::Inproc;
        o.stop_requested = [] { return g_stop.load(); };
        auto results = launch::run_threads(cfg, e, o, *data);
        for (auto& [id, r] : results) write_summary(summary_dir, node::settings_for(cfg, id, e), r);
        print_table(cfg, summary_dir);
        return 0;
    }
    std::vector<pid_t> children;
    pid_t broker = 0;
    if (pattern == launch::Pattern::Hub) {
        std::vector<std::string> args = {"broker", "--host", "127.0.0.1", "--port", std::to_string(l.broker_port),
                                         "--endpoint", endpoint, "--ipc-dir", e.transport.ipc_dir};
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
        args.insert(args.end(), {"--experiment", experiment_file});
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
