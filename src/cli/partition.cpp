// p2pnode partition: how the config's honest nodes would split the training set, per class, as
// a table or JSON, before anything trains.
#include <algorithm>
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.hpp"
#include "node_commands.hpp"
#include "p2pnode/config/nodes_config.hpp"
#include "p2pnode/data/partition.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/node/settings.hpp"

namespace p2p::cli {

namespace {

// The fields that decide a split: the data section, the seed and the batch (dirichlet's floor).
bool decides_split(const Field& f) {
    // The data and its seed, and who is honest: the Byzantine placement and the graph it uses.
    return f.key.substr(0, 5) == "data." || f.key.substr(0, 10) == "byzantine." || f.key.substr(0, 9) == "topology." ||
           f.key == "training.seed" || f.key == "training.batch_size";
}

std::string spec_text(const data::PartitionSpec& p) {
    if (p.name == "dirichlet")
        return fmt::format("alpha {}, min size {}, data seed {}", p.alpha,
                           p.min_size > 0 ? fmt::format("{}", p.min_size) : fmt::format("{} (one batch)", p.batch),
                           p.seed);
    if (p.name == "gamma") return fmt::format("gamma {}, data seed {}", p.gamma, p.seed);
    if (p.name == "classes") return fmt::format("{} classes per node, data seed {}", p.classes_per_node, p.seed);
    if (p.name == "iid") return fmt::format("data seed {}", p.seed);
    return "no parameters";
}

}  // namespace

void add_partition_command(CLI::App& app, PartitionFlags& f) {
    CLI::App* sub = app.add_subcommand(
        "partition", "Show how a config's honest nodes split the training set: samples per class and node");
    sub->add_option("--config", f.config, "Nodes config file (YAML or JSON)")->required();
    add_experiment_flags(sub, f.experiment, kAllScopes, true, decides_split);
    sub->add_flag("--json", f.json, "Print JSON ({\"nodes\": [{\"id\": ID, \"counts\": [...]}, ...]}) instead of a table");
}

int run_partition(const PartitionFlags& f) {
    const NodesConfig cfg = load_nodes_config(f.config);
    for (const auto& w : cfg.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::vector<std::string> warnings;
    const Experiment e = resolve_experiment(f.experiment, cfg.experiment, warnings);
    for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    node::check_names(e);
    std::vector<int> honest;
    for (const auto& n : node::with_placement(cfg, e).nodes)
        if (n.type == NodeType::Honest) honest.push_back(n.id);
    std::sort(honest.begin(), honest.end());
    if (honest.empty()) throw ConfigError(fmt::format("{}: no honest node to give data to", cfg.source));
    const data::PartitionSpec spec = node::partition_of(e);
    auto set = load_data(e);
    const data::Dataset& train = set->train;
    data::Shards shards;
    try {
        shards = data::partition(train.labels, train.classes, honest.size(), spec);
    } catch (const std::invalid_argument& ex) {
        throw ConfigError(fmt::format("data.partition {}: {}", spec.name, ex.what()));
    }
    const auto counts = data::class_counts(shards, train.labels, train.classes);
    std::size_t used = 0;
    for (const auto& s : shards) used += s.size();
    if (f.json) {
        std::string nodes;
        for (std::size_t h = 0; h < shards.size(); ++h)
            nodes += fmt::format("{}\n    {{\"id\": {}, \"size\": {}, \"counts\": [{}]}}", h ? "," : "", honest[h],
                                 shards[h].size(), fmt::join(counts[h], ", "));
        std::printf("{\n  \"partition\": \"%s\",\n  \"seed\": %llu,\n  \"classes\": %zu,\n  \"samples\": %zu,\n"
                    "  \"used\": %zu,\n  \"nodes\": [%s\n  ]\n}\n",
                    spec.name.c_str(), static_cast<unsigned long long>(spec.seed), train.classes, train.count, used,
                    nodes.c_str());
        return 0;
    }
    std::printf("%s partition (%s) of the %zu training samples in %s over %zu honest nodes\n", spec.name.c_str(),
                spec_text(spec).c_str(), train.count, set->root.c_str(), honest.size());
    std::string head = fmt::format("{:>6} {:>8} {:>6} ", "node", "samples", "kinds");
    for (std::size_t c = 0; c < train.classes; ++c) head += fmt::format(" {:>6}", fmt::format("c{}", c));
    std::printf("%s\n", head.c_str());
    const auto batch = static_cast<std::size_t>(e.training.batch_size);
    for (std::size_t h = 0; h < shards.size(); ++h) {
        std::size_t kinds = 0;
        for (auto c : counts[h]) kinds += c > 0;
        std::string line = fmt::format("{:>6} {:>8} {:>6} ", honest[h], shards[h].size(), kinds);
        for (auto c : counts[h]) line += fmt::format(" {:>6}", c);
        if (shards[h].size() < batch) line += fmt::format("  < one batch of {}", batch);
        std::printf("%s\n", line.c_str());
    }
    std::string total = fmt::format("{:>6} {:>8} {:>6} ", "all", used, "");
    for (std::size_t c = 0; c < train.classes; ++c) {
        std::size_t sum = 0;
        for (const auto& row : counts) sum += row[c];
        total += fmt::format(" {:>6}", sum);
    }
    std::printf("%s\n", total.c_str());
    if (used < train.count)
        std::printf("%zu samples go to no node (the classes no node was dealt)\n", train.count - used);
    return 0;
}

}  // namespace p2p::cli
