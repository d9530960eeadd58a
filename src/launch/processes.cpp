#include "p2pnode/launch/processes.hpp"

#include <algorithm>
#include <csignal>
#include <ctime>
#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "p2pnode/errors.hpp"
#include "p2pnode/node/settings.hpp"

extern char** environ;

namespace p2p::launch {

namespace {

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

}  // namespace

int run_processes(const std::string& exe, const std::vector<std::string>& broker_args,
                  const std::vector<std::vector<std::string>>& nodes, const std::function<bool()>& stop_requested) {
    const pid_t broker = broker_args.empty() ? 0 : spawn(exe, broker_args);
    std::vector<pid_t> children;
    for (const auto& args : nodes) children.push_back(spawn(exe, args));
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
        if (stop_requested && stop_requested() && !forwarded) {  // Ctrl-C: every child stops after its round
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
    return failures;
}

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

namespace {

std::string json_escaped(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

}  // namespace

void write_whole(const std::string& path, const std::string& text) {
    // Unique among processes of every machine writing to one shared folder: host and pid.
    char host[64] = {};
    ::gethostname(host, sizeof host - 1);
    const std::string tmp = fmt::format("{}.{}.{}.tmp", path, host, ::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << text;
        if (!out.flush()) throw IoError(fmt::format("{}: cannot write", tmp));
    }
    std::filesystem::rename(tmp, path);
}

void write_run_record(const std::string& dir, const std::string& command, const std::string& version,
                      const NodesConfig& cfg, const Experiment& e, const std::string& name) {
    if (dir.empty()) return;
    std::filesystem::create_directories(dir);
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    char started[32];
    std::strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &utc);
    // The placed types and the graph's figures; when the graph cannot be made (a sweep point it
    // skips, train's one-node config under a launch's experiment) the config's types and a null
    // graph: the record is written either way.
    NodesConfig placed = cfg;
    std::string graph = "null";
    try {
        const node::PlacedGraph pg = node::placed_graph(cfg, e);
        placed = pg.config;
        const node::GraphStats g = node::graph_stats(pg);
        auto gap = [&](double v) { return g.gaps_computed ? fmt::format("{}", v) : std::string("null"); };
        graph = fmt::format(
            "{{\"edges\": {}, \"degree_min\": {}, \"degree_mean\": {}, \"degree_max\": {}, \"honest_connected\": {}, "
            "\"gap_uniform\": {}, \"gap_metropolis\": {}, \"byzantine_neighbours_min\": {}, "
            "\"byzantine_neighbours_mean\": {}, \"byzantine_neighbours_max\": {}}}",
            g.edges, g.degree_min, g.degree_mean, g.degree_max, g.honest_connected ? "true" : "false", gap(g.gap_uniform),
            gap(g.gap_metropolis), g.byzantine_min, g.byzantine_mean, g.byzantine_max);
    } catch (const std::exception&) {
    }
    std::string nodes;
    for (const auto& n : placed.nodes)
        nodes += fmt::format("{}{{\"id\": {}, \"type\": \"{}\"}}", nodes.empty() ? "" : ", ", n.id, to_string(n.type));
    const std::string text = fmt::format(
        "{{\"command\": \"{}\", \"p2pnode\": \"{}\", \"started\": \"{}\", \"pattern\": \"{}\", \"endpoint\": \"{}\", "
        "\"seed\": {}, \"config\": \"{}\", \"nodes\": [{}], \"graph\": {}, \"experiment\": {}}}\n",
        command, version, started, e.transport.pattern, e.transport.endpoint, e.training.seed, json_escaped(cfg.source), nodes,
        graph, experiment_json(e));
    write_whole(dir + "/" + name, text);  // nodes started by hand may write the same record
}

int print_table(const NodesConfig& cfg, const std::string& dir) {
    int missing = 0;
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
            ++missing;
        }
    }
    return missing;
}

NodesConfig run_nodes(const std::string& dir) {
    NodesConfig cfg;
    cfg.source = dir;
    auto add = [&](const YAML::Node& n, const std::string& file) {
        try {
            NodeSpec spec;
            spec.id = n["id"] ? n["id"].as<int>() : n["node"].as<int>();
            const auto type = parse_node_type(n["type"].as<std::string>());
            if (!type) throw ConfigError("unknown type");
            spec.type = *type;
            cfg.nodes.push_back(spec);
        } catch (const std::exception&) {
            throw ConfigError(fmt::format("{}: a node without a readable id and type", file));
        }
    };
    const std::filesystem::path record = std::filesystem::path(dir) / "run.json";
    if (std::filesystem::is_regular_file(record)) {
        YAML::Node run;
        try {
            run = YAML::LoadFile(record.string());
        } catch (const std::exception& e) {
            throw ConfigError(fmt::format("{}: cannot be read: {}", record.string(), e.what()));
        }
        if (!run["nodes"] || !run["nodes"].IsSequence())
            throw ConfigError(fmt::format("{}: no nodes list", record.string()));
        for (const auto& n : run["nodes"]) add(n, record.string());
        return cfg;
    }
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("node-", 0) != 0 || name.size() < 18 || name.substr(name.size() - 13) != ".summary.json") continue;
        YAML::Node s;
        try {
            s = YAML::LoadFile(entry.path().string());
        } catch (const std::exception& e) {
            throw ConfigError(fmt::format("{}: cannot be read: {}", entry.path().string(), e.what()));
        }
        add(s, entry.path().string());
    }
    if (ec) throw ConfigError(fmt::format("{}: cannot be read: {}", dir, ec.message()));
    if (cfg.nodes.empty())
        throw ConfigError(fmt::format("{}: no run.json and no node-<id>.summary.json: not the metrics folder of a run",
                                      dir));
    std::sort(cfg.nodes.begin(), cfg.nodes.end(), [](const NodeSpec& a, const NodeSpec& b) { return a.id < b.id; });
    return cfg;
}

}  // namespace p2p::launch
