#include "p2pnode/node/settings.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "p2pnode/errors.hpp"

namespace p2p::node {

Topology topology_of(const NodesConfig& cfg) {
    std::vector<std::uint32_t> ids;
    for (const auto& n : cfg.nodes) ids.push_back(static_cast<std::uint32_t>(n.id));
    const auto& t = cfg.topology;
    const TopologyEntry* entry = find_topology(t.type);
    if (!entry) {
        std::string known;
        for (const auto& e : topologies()) known += fmt::format("{}{}", known.empty() ? "" : ", ", e.name);
        throw ConfigError(fmt::format("{}:{}: topology.type: unknown topology '{}' (known: {})", cfg.source,
                                      t.type_line, t.type, known));
    }
    TopologySpec spec;
    spec.type = t.type;
    spec.k = static_cast<std::size_t>(t.k);
    for (const auto& [a, b] : t.edges) spec.edges.emplace_back(static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(b));
    try {
        return entry->make(ids, spec);
    } catch (const std::invalid_argument& ex) {
        throw ConfigError(fmt::format("{}: topology.{}: {}", cfg.source, t.type, ex.what()));
    }
}

NodeSettings settings_for(const NodesConfig& cfg, std::uint32_t id, const RunChoice& c) {
    const NodeSpec& self = cfg.require(static_cast<int>(id));
    const Topology topo = topology_of(cfg);
    NodeSettings s;
    s.id = id;
    s.type = c.type_override.value_or(self.type);
    s.neighbours = topo.neighbours(id);
    for (auto n : s.neighbours)
        if (cfg.require(static_cast<int>(n)).type == NodeType::Honest) s.honest_neighbours.push_back(n);
    s.training = c.training;
    // Honest node h of H trains on indices h, h+H, ...; a Byzantine node that needs its own
    // gradient (sign-flip, label-flip) borrows shard id mod H.
    std::vector<int> honest;
    for (const auto& n : cfg.nodes)
        if (n.type == NodeType::Honest) honest.push_back(n.id);
    std::sort(honest.begin(), honest.end());
    s.shards = std::max<std::size_t>(1, honest.size());
    auto pos = std::find(honest.begin(), honest.end(), static_cast<int>(id));
    s.shard = pos != honest.end() ? static_cast<std::size_t>(pos - honest.begin()) : id % s.shards;

    s.aggregator = c.aggregator;
    s.pre_aggregators = c.pre_aggregators;
    s.robust = c.robust;
    s.robust.f = c.f.value_or(cfg.nodes.size() - honest.size());
    s.attack = c.attack;
    s.attack_params.scale = c.training.byz_scale;
    s.attack_params.n = s.neighbours.size() + 1;
    s.attack_params.f = s.robust.f;
    s.attack_params.seed = c.training.seed + id;
    s.attack_params.rule = c.aggregator;
    s.attack_params.pre = c.pre_aggregators;
    s.attack_params.rule_params = s.robust;
    const std::size_t deg = s.neighbours.size();
    s.quorum = c.quorum.value_or(deg > s.robust.f ? deg - s.robust.f : 0);
    s.soft_timeout = c.soft_timeout;
    s.hard_timeout = c.hard_timeout;
    s.startup_timeout = c.startup_timeout;
    s.checkpoint_dir = c.checkpoint_dir;
    s.checkpoint_every = c.checkpoint_every;
    s.resume = c.resume;
    if (!c.metrics_dir.empty()) s.metrics_path = fmt::format("{}/node-{}.jsonl", c.metrics_dir, id);
    if (s.type == NodeType::Honest) {
        // Fails now, with the rule's bound, rather than at the first round.
        robust::Pipeline<float>(s.pre_aggregators, s.aggregator, s.robust).check(deg + 1);
    }
    return s;
}

}  // namespace p2p::node
