#include "p2pnode/node/settings.hpp"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "p2pnode/catalogue.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/data/partition.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/nn/model.hpp"
#include "p2pnode/robust/catalogue.hpp"

namespace p2p::node {

namespace {

std::string where(const Experiment& e, const std::string& key) {
    auto it = e.origin.find(key);
    return it == e.origin.end() ? "(default)" : it->second;
}

template <class Row>
void require_row(const Experiment& e, const std::string& key, const std::string& name, std::span<const Row> rows,
                 const char* kind) {
    if (find_row(rows, name)) return;
    throw ConfigError(fmt::format("{}: {}: unknown {} '{}' (known: {})", where(e, key), key, kind, name,
                                  joined_names(rows)));
}

}  // namespace

void check_names(const Experiment& e) {
    require_row(e, "robust.aggregator", e.robust.aggregator, robust::aggregators(), "aggregator");
    for (const auto& p : e.robust.pre_aggregators)
        require_row(e, "robust.pre_aggregators", p, robust::pre_aggregators(), "pre-aggregator");
    require_row(e, "robust.attack", e.attack.name, robust::attacks(), "attack");
    require_row(e, "model.name", e.model.name, nn::models(), "model");
    require_row(e, "data.dataset", e.data.dataset, data::datasets(), "data set");
    require_row(e, "data.partition", e.data.partition, data::partitions(), "partition");
    require_row(e, "topology.type", e.topology.type, topologies(), "topology");
}

nn::ModelOptions model_options_of(const Experiment& e) {
    nn::ModelOptions o;
    o.hidden.assign(e.model.hidden.begin(), e.model.hidden.end());
    return o;
}

data::PartitionSpec partition_of(const Experiment& e) {
    data::PartitionSpec p;
    p.name = e.data.partition;
    p.alpha = e.data.alpha;
    p.min_size = static_cast<std::size_t>(e.data.min_size);
    p.gamma = e.data.gamma;
    p.classes_per_node = static_cast<std::size_t>(e.data.classes_per_node);
    p.seed = e.data.seed >= 0 ? static_cast<std::uint64_t>(e.data.seed) : e.training.seed;
    p.batch = static_cast<std::size_t>(e.training.batch_size);
    return p;
}

namespace {

bool same_split(const NodeSettings& a, const NodeSettings& b) {
    const auto &p = a.partition, &q = b.partition;
    return a.shards == b.shards && p.name == q.name && p.alpha == q.alpha && p.min_size == q.min_size &&
           p.gamma == q.gamma && p.classes_per_node == q.classes_per_node && p.seed == q.seed && p.batch == q.batch;
}

}  // namespace

void check_shards(std::span<const NodeSettings> nodes, const data::Dataset& train) {
    const NodeSettings* made = nullptr;
    data::Shards shards;
    for (const NodeSettings& s : nodes) {
        if (!made || !same_split(*made, s)) {
            try {
                shards = data::partition(train.labels, train.classes, s.shards, s.partition);
            } catch (const std::invalid_argument& ex) {
                throw ConfigError(fmt::format("data.partition {}: {} honest nodes over the {} training samples: {}",
                                              s.partition.name, s.shards, train.count, ex.what()));
            }
            made = &s;
        }
        const std::size_t h = s.shard, n = s.shards;
        const std::size_t size = h < shards.size() ? shards[h].size() : 0;
        const auto batch = static_cast<std::size_t>(s.training.batch_size);
        if (size >= batch) continue;
        const std::string which =
            s.partition.name == "strided"
                ? fmt::format("samples {}, {}+{}, ... of the {} training samples", h, h, n, train.count)
                : fmt::format("shard {} of {} under the {} partition of the {} training samples", h, n,
                              s.partition.name, train.count);
        std::size_t lo = train.count, hi = 0;
        for (const auto& sh : shards) lo = std::min(lo, sh.size()), hi = std::max(hi, sh.size());
        throw ConfigError(fmt::format("node {}: its shard ({}) holds {} samples, fewer than one batch of {} (shards "
                                      "hold {}..{}): use fewer nodes, a smaller --batch-size{}",
                                      s.id, which, size, batch, lo, hi,
                                      s.partition.name == "strided" ? "" : " or another partition"));
    }
}

Topology topology_of(const NodesConfig& cfg, const Experiment& e) {
    std::vector<std::uint32_t> ids;
    for (const auto& n : cfg.nodes) ids.push_back(static_cast<std::uint32_t>(n.id));
    const auto& t = e.topology;
    require_row(e, "topology.type", t.type, topologies(), "topology");
    TopologySpec spec;
    spec.type = t.type;
    spec.k = static_cast<std::size_t>(t.k);
    for (const auto& [a, b] : t.edges) spec.edges.emplace_back(static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(b));
    try {
        return find_topology(t.type)->make(ids, spec);
    } catch (const std::invalid_argument& ex) {
        throw ConfigError(fmt::format("{}: topology.{}: {}", cfg.source, t.type, ex.what()));
    }
}

namespace {

// with_placement on a graph already made (the types do not change the graph).
NodesConfig placed_on(const NodesConfig& cfg, const Experiment& e, const Topology& graph) {
    const auto& b = e.byzantine;
    if (b.ids.empty() && b.count < 0) return cfg;
    if (!b.ids.empty() && b.count >= 0)
        throw ConfigError(fmt::format("{}: byzantine.count: give the Byzantine nodes' ids ({}) or a count, not both",
                                      where(e, "byzantine.count"), where(e, "byzantine.ids")));
    std::vector<std::uint32_t> byzantine;
    if (!b.ids.empty()) {
        for (int id : b.ids) {
            if (!cfg.find(id))
                throw ConfigError(fmt::format("{}: byzantine.ids: node {} is not in {} (ids: {})", where(e, "byzantine.ids"),
                                              id, cfg.source, cfg.ids_text()));
            byzantine.push_back(static_cast<std::uint32_t>(id));
        }
        if (byzantine.size() >= cfg.nodes.size())
            throw ConfigError(fmt::format("{}: byzantine.ids: every node would be Byzantine; at least one must be honest",
                                          where(e, "byzantine.ids")));
    } else {
        const std::uint64_t seed = b.seed >= 0 ? static_cast<std::uint64_t>(b.seed) : e.training.seed;
        try {
            byzantine = place_byzantine(graph, static_cast<std::size_t>(b.count), b.placement, seed);
        } catch (const std::invalid_argument& ex) {
            throw ConfigError(fmt::format("{}: byzantine.count: {}", where(e, "byzantine.count"), ex.what()));
        }
    }
    NodesConfig placed = cfg;
    for (auto& n : placed.nodes)
        n.type = std::binary_search(byzantine.begin(), byzantine.end(), static_cast<std::uint32_t>(n.id))
                     ? NodeType::Byzantine
                     : NodeType::Honest;
    return placed;
}

}  // namespace

NodesConfig with_placement(const NodesConfig& cfg, const Experiment& e) {
    if (e.byzantine.ids.empty() && e.byzantine.count < 0) return cfg;
    return placed_on(cfg, e, topology_of(cfg, e));
}

NodeSettings settings_for(const NodesConfig& config, std::uint32_t id, const Experiment& e, const NodeOverrides& o) {
    check_names(e);
    const Topology topo = topology_of(config, e);
    const NodesConfig placed = placed_on(config, e, topo);
    const NodesConfig& cfg = placed;
    const NodeSpec& self = cfg.require(static_cast<int>(id));
    NodeSettings s;
    s.id = id;
    s.type = o.type.value_or(self.type);
    s.neighbours = topo.neighbours(id);
    // Nodes asked to stop together agree on the round: a proposal travels a hop a round, and
    // the rounds of two nodes d hops apart differ by at most d (node/round_node.cpp).
    s.stop_margin = 2 * topo.eccentricity(id) + 1;
    for (auto n : s.neighbours)
        if (cfg.require(static_cast<int>(n)).type == NodeType::Honest) s.honest_neighbours.push_back(n);
    s.training = e.training;
    s.model = e.model.name;
    s.model_options = model_options_of(e);
    // Honest node h of H trains on shard h of the partition; a Byzantine node that needs its own
    // gradient (sign-flip, label-flip) borrows shard id mod H.
    std::vector<int> honest;
    for (const auto& n : cfg.nodes)
        if (n.type == NodeType::Honest) honest.push_back(n.id);
    std::sort(honest.begin(), honest.end());
    s.shards = std::max<std::size_t>(1, honest.size());
    auto pos = std::find(honest.begin(), honest.end(), static_cast<int>(id));
    s.shard = pos != honest.end() ? static_cast<std::size_t>(pos - honest.begin()) : id % s.shards;
    if (o.shard) s.shard = *o.shard;
    s.partition = partition_of(e);

    s.aggregator = e.robust.aggregator;
    s.pre_aggregators = e.robust.pre_aggregators;
    if (e.robust.f >= 0) {
        s.robust.f = static_cast<std::size_t>(e.robust.f);
        s.f_reason = where(e, "robust.f");
    } else {
        // The most Byzantine neighbours any honest node has: what a node must tolerate in the
        // worst place of the graph (on a sparse graph far fewer than the Byzantine nodes).
        std::size_t most = 0;
        for (int h : honest) {
            std::size_t byz = 0;
            for (auto n : topo.neighbours(static_cast<std::uint32_t>(h)))
                byz += cfg.require(static_cast<int>(n)).type == NodeType::Byzantine;
            most = std::max(most, byz);
        }
        s.robust.f = most;
        s.f_reason = "the most Byzantine neighbours of any honest node";
    }
    if (e.robust.q > 0) s.robust.q = static_cast<std::size_t>(e.robust.q);
    s.robust.tau = e.robust.tau;
    s.robust.iterations = static_cast<std::size_t>(e.robust.iterations);
    s.robust.bucket_size = static_cast<std::size_t>(e.robust.bucket_size);
    s.robust.tolerance = e.robust.tolerance;
    s.robust.nu = e.robust.nu;
    s.robust.max_subsets = e.robust.max_subsets;
    s.robust.seed = e.training.seed;
    s.attack = e.attack.name;
    s.attack_params.scale = e.attack.scale;
    s.attack_params.mu = e.attack.mu;
    s.attack_params.sigma = e.attack.sigma;
    s.attack_params.target = static_cast<std::size_t>(e.attack.target);
    s.attack_params.lo = e.attack.lo;
    s.attack_params.hi = e.attack.hi;
    s.attack_params.n = s.neighbours.size() + 1;
    s.attack_params.f = s.robust.f;
    s.attack_params.seed = e.training.seed + id;
    s.attack_params.rule = e.robust.aggregator;
    s.attack_params.pre = e.robust.pre_aggregators;
    s.attack_params.rule_params = s.robust;
    const std::size_t deg = s.neighbours.size();
    s.quorum = o.quorum.value_or(deg > s.robust.f ? deg - s.robust.f : 0);
    auto ms = [](double sec) { return std::chrono::milliseconds(static_cast<long long>(sec * 1000)); };
    s.soft_timeout = ms(e.timeouts.round);
    s.hard_timeout = ms(std::max(e.timeouts.hard, e.timeouts.round));
    s.startup_timeout = ms(e.timeouts.startup);
    s.checkpoint_dir = e.outputs.checkpoint_dir;
    std::error_code ec;
    if (!s.checkpoint_dir.empty() && std::filesystem::exists(s.checkpoint_dir, ec) &&
        !std::filesystem::is_directory(s.checkpoint_dir, ec))
        throw ConfigError(fmt::format("{}: outputs.checkpoint_dir: '{}' is a file, not a folder",
                                      where(e, "outputs.checkpoint_dir"), s.checkpoint_dir));
    s.checkpoint_every = e.outputs.checkpoint_every;
    s.resume = o.resume;
    if (!e.outputs.metrics_dir.empty()) s.metrics_path = fmt::format("{}/node-{}.jsonl", e.outputs.metrics_dir, id);
    if (s.type == NodeType::Honest) {
        // Fails now, with the rule's bound, rather than at the first round.
        try {
            robust::Pipeline<float>(s.pre_aggregators, s.aggregator, s.robust).check(deg + 1);
        } catch (const robust::RobustError& ex) {
            throw robust::RobustError(fmt::format("node {}: n = {} inputs (itself and {} neighbours, {} Byzantine), "
                                                  "f = {} ({}): {}",
                                                  id, deg + 1, deg, deg - s.honest_neighbours.size(), s.robust.f,
                                                  s.f_reason, ex.what()));
        }
    }
    return s;
}

}  // namespace p2p::node
