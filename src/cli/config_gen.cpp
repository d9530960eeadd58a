// p2pnode config: writes a nodes config (the reference's YAML) for an allocation: a host list,
// an OpenMPI hostfile, or the Slurm job this runs in; without hosts, a local one on 127.0.0.1.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include <fmt/format.h>

#include "commands.hpp"
#include "node_commands.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/launch/allocation.hpp"
#include "p2pnode/launch/processes.hpp"
#include "p2pnode/node/settings.hpp"

namespace p2p::cli {

namespace {

// The sections a generated config carries: the graph, training, rules and attack, the data
// (the Byzantine nodes become the nodes' types instead).
bool written_section(const Field& f) {
    return f.key.substr(0, 10) != "byzantine." && f.key.substr(0, 8) != "outputs." && f.key.substr(0, 10) != "transport.";
}

// `scontrol show hostnames LIST`, one host a line.
std::vector<std::string> slurm_hostnames(const std::string& list) {
    for (char c : list)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == ',' || c == '[' || c == ']' || c == '_'))
            throw ConfigError(fmt::format("SLURM_JOB_NODELIST: unexpected character '{}' in '{}'", c, list));
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(("scontrol show hostnames '" + list + "'").c_str(), "r"), pclose);
    if (!pipe) throw IoError("cannot run scontrol show hostnames");
    std::vector<std::string> hosts;
    char buf[512];
    while (std::fgets(buf, sizeof buf, pipe.get())) {
        std::string h(buf);
        while (!h.empty() && (h.back() == '\n' || h.back() == '\r')) h.pop_back();
        if (!h.empty()) hosts.push_back(h);
    }
    if (hosts.empty()) throw IoError(fmt::format("scontrol show hostnames '{}' named no host (is Slurm's scontrol installed?)", list));
    return hosts;
}

}  // namespace

void add_config_command(CLI::App& app, ConfigFlags& f) {
    CLI::App* sub = app.add_subcommand(
        "config", "Write a nodes config for the hosts of an allocation (a list, an OpenMPI hostfile, or this Slurm "
                  "job), or a local one; node ids follow the ranks of srun and mpirun");
    auto* hosts = sub->add_option("--hosts", f.hosts, "Hosts, comma-separated: the nodes are split evenly over them");
    auto* hostfile = sub->add_option("--hostfile", f.hostfile, "OpenMPI hostfile: 'host slots=N' lines, filled in order");
    auto* slurm = sub->add_flag("--from-slurm", f.from_slurm,
                                "The hosts and tasks of this Slurm job (SLURM_JOB_NODELIST via scontrol show hostnames, "
                                "SLURM_TASKS_PER_NODE)");
    hosts->excludes(hostfile)->excludes(slurm);
    hostfile->excludes(slurm);
    sub->add_option("--nodes", f.nodes, "Number of nodes (default: the slots of the hostfile or the Slurm job; 5 locally)")
        ->check(CLI::Range(1, 1'000'000));
    sub->add_option("--base-port", f.base_port, "First port on each host; a host's k-th node takes base + k")
        ->check(CLI::Range(1, 65535));
    sub->add_option("--bind-host", f.bind_host,
                    "What every node binds (default with hosts: 0.0.0.0; locally: the host, 127.0.0.1)");
    sub->add_option("--out", f.out, "Write the config here (default: standard output)");
    add_experiment_flags(sub, f.experiment, kLaunchFlag, false,
                         [](const Field& fl) { return fl.key.substr(0, 8) != "outputs." && fl.key.substr(0, 10) != "transport."; });
}

int run_config(const ConfigFlags& f) {
    std::vector<launch::HostSlots> hosts;
    std::string bind = f.bind_host;
    if (!f.hosts.empty()) {
        for (std::size_t b = 0; b <= f.hosts.size();) {
            const std::size_t c = std::min(f.hosts.find(',', b), f.hosts.size());
            if (c == b) throw ConfigError(fmt::format("--hosts: an empty host name in '{}'", f.hosts));
            hosts.push_back({f.hosts.substr(b, c - b), 0});
            b = c + 1;
            if (c == f.hosts.size()) break;
        }
    } else if (!f.hostfile.empty()) {
        hosts = launch::parse_hostfile(read_config_file(f.hostfile), f.hostfile);
    } else if (f.from_slurm) {
        const char* list = std::getenv("SLURM_JOB_NODELIST");
        const char* tasks = std::getenv("SLURM_TASKS_PER_NODE");
        if (!list || !tasks)
            throw ConfigError("--from-slurm: SLURM_JOB_NODELIST and SLURM_TASKS_PER_NODE are not set (run it inside a "
                              "Slurm job: sbatch or salloc)");
        const auto names = slurm_hostnames(list);
        const auto counts = launch::expand_tasks_per_node(tasks);
        if (counts.size() != names.size())
            throw ConfigError(fmt::format("--from-slurm: {} hosts in SLURM_JOB_NODELIST but {} counts in "
                                          "SLURM_TASKS_PER_NODE ('{}')",
                                          names.size(), counts.size(), tasks));
        for (std::size_t i = 0; i < names.size(); ++i) hosts.push_back({names[i], counts[i]});
    }
    const bool local = hosts.empty();
    if (local) hosts.push_back({"127.0.0.1", 0});
    else if (bind.empty()) bind = "0.0.0.0";
    int nodes = f.nodes;
    if (nodes == 0) {
        if (local) nodes = 5;
        else if (hosts.front().slots > 0)
            for (const auto& h : hosts) nodes += h.slots;
        else throw ConfigError("--nodes: how many nodes to spread over --hosts");
    }
    NodesConfig cfg;
    cfg.source = "p2pnode config";
    cfg.nodes = launch::spread_nodes(hosts, nodes, f.base_port, bind);
    std::vector<std::string> warnings;
    Experiment e = resolve_experiment(f.experiment, cfg.experiment, warnings);
    node::check_names(e);
    // A random graph: the nodes must draw the graph the Byzantine nodes were placed on, so the
    // config names the accepted draw's seed (the placement is written as the nodes' types).
    const node::PlacedGraph placed = node::placed_graph(cfg, e);
    cfg = placed.config;
    const bool random = node::find_topology(e.topology.type)->random;
    if (random) e.topology.seed = static_cast<long long>(placed.seed);
    const std::string sections = experiment_yaml(e, [&](const Field& fl) {
        return written_section(fl) && (given(f.experiment, fl.key) || (random && fl.key == "topology.seed"));
    });
    const std::string text = launch::nodes_yaml(cfg.nodes, sections);
    if (f.out.empty()) {
        std::fputs(text.c_str(), stdout);
        return 0;
    }
    launch::write_whole(f.out, text);
    std::fprintf(stderr, "config: %d nodes (%d Byzantine) on %zu host(s) written to %s\n", nodes,
                 nodes - cfg.honest_count(), hosts.size(), f.out.c_str());
    return 0;
}

}  // namespace p2p::cli
