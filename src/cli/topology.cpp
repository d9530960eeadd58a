// p2pnode topology: what a config's graph means for robustness, before anything trains: degrees,
// the honest nodes' connectivity and spectral gaps, each honest node's Byzantine neighbours, and
// a drawing (Graphviz).
#include <cstdio>
#include <filesystem>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.hpp"
#include "node_commands.hpp"
#include "p2pnode/config/nodes_config.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/launch/processes.hpp"
#include "p2pnode/node/settings.hpp"

extern char** environ;

namespace p2p::cli {

namespace {

bool decides_graph(const Field& f) {
    // the rounds: which graphs a time-varying one goes through
    return f.key.substr(0, 9) == "topology." || f.key.substr(0, 10) == "byzantine." || f.key == "training.seed" ||
           f.key == "training.rounds";
}

std::string describe(const Experiment& e) {
    const auto& t = e.topology;
    if (t.type == "ring") return fmt::format("ring (k {})", t.k);
    if (t.type == "star") return t.centre >= 0 ? fmt::format("star (centre {})", t.centre) : "star (centre: the lowest id)";
    if (t.type == "torus") return t.rows > 0 ? fmt::format("torus ({} rows)", t.rows) : "torus (the most square grid)";
    if (t.type == "erdos-renyi")
        return t.every > 0 ? fmt::format("erdos-renyi (p {}, a new draw every {} rounds)", t.p, t.every)
                           : fmt::format("erdos-renyi (p {})", t.p);
    if (t.type == "random-regular") return fmt::format("random-regular (degree {})", t.degree);
    if (t.type == "two-cliques") return fmt::format("two-cliques ({} bridges)", t.bridges);
    return t.type;
}

void draw(const node::Topology& g, const node::GraphStats& st, const std::string& title, const std::string& png) {
    std::string dot = fmt::format(
        "graph p2pnode {{\n  graph [overlap=false, splines=true, fontname=\"Helvetica\", fontsize=16, labelloc=t, "
        "label=\"{}\"];\n  node [shape=circle, style=filled, fontname=\"Helvetica\", fontcolor=white, width=0.45, "
        "fixedsize=true];\n",
        title);
    for (const auto& n : st.per_node)
        dot += fmt::format("  {} [fillcolor=\"{}\"];\n", n.id, n.byzantine ? "#c0392b" : "#2e6fb5");
    for (auto a : g.ids())
        for (auto b : g.neighbours(a))
            if (a < b) dot += fmt::format("  {} -- {};\n", a, b);
    dot += "}\n";
    const std::string dot_file = png + ".dot";
    launch::write_whole(dot_file, dot);
    const std::string tmp = fmt::format("{}.{}.tmp", png, ::getpid());
    std::vector<std::string> args{"neato", "-Tpng", "-Gdpi=110", "-o", tmp, dot_file};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawnp(&pid, "neato", nullptr, nullptr, argv.data(), environ) != 0)
        throw IoError("--png: cannot run Graphviz's neato (apt-get install graphviz; the setup installs it)");
    int status = 0;
    waitpid(pid, &status, 0);
    std::filesystem::remove(dot_file);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::filesystem::remove(tmp);
        throw IoError(fmt::format("--png: neato failed to draw {}", png));
    }
    std::filesystem::rename(tmp, png);
}

constexpr std::size_t kTableNodes = 64;  // the text's per-node table up to this many nodes

// "; most exposed: 3, 7" (the first ten, and how many more).
std::string exposed(const node::GraphStats& st) {
    if (st.most_exposed.empty()) return "";
    const std::size_t shown = std::min<std::size_t>(10, st.most_exposed.size());
    const std::vector<std::uint32_t> first(st.most_exposed.begin(), st.most_exposed.begin() + static_cast<std::ptrdiff_t>(shown));
    return fmt::format("; most exposed ({} with {}): {}{}", st.most_exposed.size(), st.byzantine_max, fmt::join(first, ", "),
                       shown < st.most_exposed.size() ? fmt::format(", ... ({} more)", st.most_exposed.size() - shown) : "");
}

int finish(const TopologyFlags& f, const node::PlacedGraph& placed, const node::GraphStats& st, const Experiment& e);

}  // namespace

void add_topology_command(CLI::App& app, TopologyFlags& f) {
    CLI::App* sub = app.add_subcommand(
        "topology", "Show a config's graph: degrees, honest connectivity, spectral gaps, Byzantine neighbours");
    sub->add_option("--config", f.config, "Nodes config file (YAML or JSON)")->required();
    add_experiment_flags(sub, f.experiment, kAllScopes, true, decides_graph);
    sub->add_flag("--json", f.json, "Print JSON instead of text");
    sub->add_option("--png", f.png, "Also draw the graph to this PNG (Graphviz): honest nodes blue, Byzantine red");
}

int run_topology(const TopologyFlags& f) {
    const NodesConfig cfg = load_nodes_config(f.config);
    for (const auto& w : cfg.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::vector<std::string> warnings;
    const Experiment e = resolve_experiment(f.experiment, cfg.experiment, warnings);
    for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    const node::PlacedGraph placed = node::placed_graph(cfg, e);
    const node::GraphStats st = node::graph_stats(placed);
    // A time-varying graph: the figures are round 1's; what the run's rounds use together.
    std::string varying_text, varying_json = "null";
    if (placed.varying) {
        const auto rounds = static_cast<std::uint64_t>(e.training.rounds);
        const node::Topology all = placed.varying->union_over(rounds);
        std::vector<std::uint32_t> honest;
        for (const auto& n : st.per_node)
            if (!n.byzantine) honest.push_back(n.id);
        const bool connected = all.connected_within(honest);
        const auto distinct = placed.varying->epochs_in(rounds).size();
        varying_text = fmt::format(
            "time-varying: a new graph every {} round(s), {}; the figures are round 1's graph.\n"
            "over the run's {} rounds: {} distinct graphs, {} edges in all, honest nodes {} over them\n",
            placed.varying->period(),
            placed.varying->cycle() ? fmt::format("repeating after {}", placed.varying->cycle()) : "never repeating",
            rounds, distinct, all.edge_count(), connected ? "connected" : "NOT connected");
        varying_json = fmt::format("{{\"every\": {}, \"cycle\": {}, \"graphs\": {}, \"union_edges\": {}, "
                                   "\"union_honest_connected\": {}}}",
                                   placed.varying->period(), placed.varying->cycle(), distinct, all.edge_count(),
                                   connected ? "true" : "false");
    }
    const std::string gaps = st.gaps_computed
                                 ? fmt::format("uniform {:.4f}, metropolis {:.4f}", st.gap_uniform, st.gap_metropolis)
                                 : fmt::format("not computed above {} honest nodes", node::kMaxGapNodes);
    if (f.json) {
        std::string nodes;
        for (const auto& n : st.per_node)
            nodes += fmt::format("{}\n    {{\"id\": {}, \"type\": \"{}\", \"degree\": {}, \"byzantine_neighbours\": {}}}",
                                 nodes.empty() ? "" : ",", n.id, n.byzantine ? "byzantine" : "honest", n.degree,
                                 n.byzantine_neighbours);
        auto gap = [&](double g) { return st.gaps_computed ? fmt::format("{}", g) : std::string("null"); };
        std::printf("%s", fmt::format("{{\n  \"topology\": \"{}\",\n  \"nodes\": {},\n  \"edges\": {},\n"
                                      "  \"degree\": {{\"min\": {}, \"mean\": {}, \"max\": {}}},\n"
                                      "  \"honest\": {},\n  \"honest_connected\": {},\n"
                                      "  \"spectral_gap\": {{\"uniform\": {}, \"metropolis\": {}}},\n"
                                      "  \"byzantine_neighbours\": {{\"min\": {}, \"mean\": {}, \"max\": {}, "
                                      "\"most_exposed\": [{}]}},\n  \"time_varying\": {},\n"
                                      "  \"per_node\": [{}\n  ]\n}}\n",
                                      e.topology.type, st.nodes, st.edges, st.degree_min, st.degree_mean, st.degree_max,
                                      st.honest, st.honest_connected ? "true" : "false", gap(st.gap_uniform),
                                      gap(st.gap_metropolis), st.byzantine_min, st.byzantine_mean, st.byzantine_max,
                                      fmt::join(st.most_exposed, ", "), varying_json, nodes)
                              .c_str());
    } else {
        std::printf("%s", fmt::format("{} of {}: {} nodes, {} edges; degree min {}, mean {:.2f}, max {}\n", describe(e),
                                      cfg.source, st.nodes, st.edges, st.degree_min, st.degree_mean, st.degree_max)
                              .c_str());
        std::printf("%s", fmt::format("honest nodes: {} of {}, {} among themselves\n", st.honest, st.nodes,
                                      st.honest_connected ? "connected" : "NOT connected")
                              .c_str());
        std::printf("spectral gap of the honest mixing matrix: %s\n", gaps.c_str());
        std::printf("%s", fmt::format("Byzantine neighbours of an honest node: min {}, mean {:.2f}, max {}{}\n\n",
                                      st.byzantine_min, st.byzantine_mean, st.byzantine_max,
                                      exposed(st))
                              .c_str());
        if (!varying_text.empty()) std::printf("%s\n", varying_text.c_str());
        if (st.nodes > kTableNodes) {
            std::printf("(each node's degree and Byzantine neighbours: --json)\n");
            return finish(f, placed, st, e);
        }
        std::printf("%-5s %-10s %-7s %s\n", "node", "type", "degree", "byzantine neighbours");
        for (const auto& n : st.per_node)
            std::printf("%-5u %-10s %-7zu %zu\n", n.id, n.byzantine ? "byzantine" : "honest", n.degree,
                        n.byzantine_neighbours);
    }
    return finish(f, placed, st, e);
}

namespace {

int finish(const TopologyFlags& f, const node::PlacedGraph& placed, const node::GraphStats& st, const Experiment& e) {
    if (!f.png.empty()) {
        draw(placed.graph, st,
             fmt::format("{}: {} honest (blue), {} Byzantine (red); spectral gap {}", describe(e), st.honest,
                         st.nodes - st.honest, st.gaps_computed ? fmt::format("{:.3f} (uniform)", st.gap_uniform) : "-"),
             f.png);
        std::fprintf(stderr, "topology: drew %s\n", f.png.c_str());
    }
    return 0;
}

}  // namespace

}  // namespace p2p::cli
