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

namespace {

TopologySpec spec_of(const Experiment& e) {
    const auto& t = e.topology;
    TopologySpec spec;
    spec.type = t.type;
    spec.k = static_cast<std::size_t>(t.k);
    for (const auto& [a, b] : t.edges) spec.edges.emplace_back(static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(b));
    spec.centre = t.centre;
    spec.rows = static_cast<std::size_t>(t.rows);
    spec.p = t.p;
    spec.degree = static_cast<std::size_t>(t.degree);
    spec.bridges = static_cast<std::size_t>(t.bridges);
    spec.seed = t.seed >= 0 ? static_cast<std::uint64_t>(t.seed) : e.training.seed;
    spec.every = static_cast<std::size_t>(t.every);
    return spec;
}

// The field a graph's errors are about: its parameter (where it was given), else its type.
std::string param_of(const std::string& type) {
    if (type == "star") return "topology.centre";
    if (type == "torus") return "topology.rows";
    if (type == "erdos-renyi") return "topology.p";
    if (type == "random-regular") return "topology.degree";
    if (type == "two-cliques") return "topology.bridges";
    if (type == "ring") return "topology.k";
    if (type == "edges") return "topology.edges";
    return "topology.type";
}

Topology draw(const NodesConfig& cfg, const Experiment& e, const TopologySpec& spec) {
    std::vector<std::uint32_t> ids;
    for (const auto& n : cfg.nodes) ids.push_back(static_cast<std::uint32_t>(n.id));
    try {
        return find_topology(spec.type)->make(ids, spec);
    } catch (const std::invalid_argument& ex) {
        throw ConfigError(fmt::format("{}: topology.{}: {}", where(e, param_of(spec.type)), spec.type, ex.what()));
    }
}

NodesConfig placed_on(const NodesConfig& cfg, const Experiment& e, const Topology& graph);

constexpr int kDraws = 1000;  // a random graph's draws before giving up

// The schedule of a time-varying graph, once round 1's graph is placed (null: a static one).
std::shared_ptr<const TimeVarying> schedule_of(const PlacedGraph& g, const Experiment& e, const TopologySpec& spec) {
    const std::vector<std::uint32_t>& ids = g.graph.ids();
    if (spec.type == "one-peer-exponential") return std::make_shared<const TimeVarying>(one_peer_exponential(ids));
    if (spec.type != "erdos-renyi" || spec.every == 0) return nullptr;
    std::vector<std::uint32_t> honest;
    for (const auto& n : g.config.nodes)
        if (n.type == NodeType::Honest) honest.push_back(static_cast<std::uint32_t>(n.id));
    const std::string field = where(e, "topology.p");
    auto make = [ids, honest, spec, first = g.graph, field](std::uint64_t epoch) {
        if (epoch == 0) return first;
        TopologySpec s = spec;
        for (int d = 0; d < kDraws; ++d) {
            s.seed = spec.seed + epoch * kDraws + static_cast<std::uint64_t>(d);
            Topology t = Topology::erdos_renyi(ids, s.p, s.seed);
            if (t.connected_within(honest)) return t;
        }
        throw ConfigError(fmt::format("{}: topology.erdos-renyi: no draw of round {}'s graph in {} left the honest "
                                      "nodes connected: raise topology.p",
                                      field, epoch * spec.every + 1, kDraws));
    };
    return std::make_shared<const TimeVarying>(spec.every, 0, ids.size() > 0 ? ids.size() - 1 : 0, make);
}

}  // namespace

PlacedGraph placed_graph(const NodesConfig& cfg, const Experiment& e) {
    require_row(e, "topology.type", e.topology.type, topologies(), "topology");
    TopologySpec spec = spec_of(e);
    const TopologyEntry* row = find_topology(spec.type);
    // A random graph is drawn again (seed, seed + 1, ...) until its honest nodes are connected.
    if (spec.every > 0 && spec.type != "erdos-renyi")
        throw ConfigError(fmt::format("{}: topology.every: only erdos-renyi is redrawn every R rounds, not {} "
                                      "(one-peer-exponential changes every round by itself)",
                                      where(e, "topology.every"), spec.type));
    const std::uint64_t first = spec.seed;
    for (int d = 0; d < (row->random ? kDraws : 1); ++d) {
        spec.seed = first + static_cast<std::uint64_t>(d);
        PlacedGraph g{draw(cfg, e, spec), {}, spec.seed, nullptr};
        g.config = placed_on(cfg, e, g.graph);
        std::vector<std::uint32_t> honest;
        for (const auto& n : g.config.nodes)
            if (n.type == NodeType::Honest) honest.push_back(static_cast<std::uint32_t>(n.id));
        if (!row->random || g.graph.connected_within(honest)) {
            g.varying = schedule_of(g, e, spec);
            return g;
        }
    }
    throw ConfigError(fmt::format("{}: topology.{}: no draw in {} (seeds {}..{}) left the honest nodes connected: "
                                  "raise {}",
                                  where(e, param_of(spec.type)), spec.type, kDraws, first, first + kDraws - 1,
                                  param_of(spec.type)));
}

Topology topology_of(const NodesConfig& cfg, const Experiment& e) { return placed_graph(cfg, e).graph; }

GraphStats graph_stats(const PlacedGraph& placed) {
    std::vector<std::uint32_t> byzantine;
    for (const auto& n : placed.config.nodes)
        if (n.type == NodeType::Byzantine) byzantine.push_back(static_cast<std::uint32_t>(n.id));
    return graph_stats(placed.graph, byzantine);
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
    return placed_graph(cfg, e).config;
}

namespace {

// What every node's settings read of the run as a whole, computed once: the placed graph, each
// node's type by position on it, the honest ids in order, and the default f.
struct RunView {
    PlacedGraph placed;
    Topology links;               // whom each node is linked to in some round (placed.graph when static)
    std::vector<NodeType> types;  // by position in placed.graph.ids()
    std::vector<int> honest;      // sorted
    std::size_t most_byzantine = 0;  // the most Byzantine neighbours any honest node has
    NodeType type_of(std::uint32_t id) const { return types[placed.graph.index_of(id)]; }
};

RunView view_of(const NodesConfig& config, const Experiment& e) {
    check_names(e);
    RunView v{placed_graph(config, e), {}, {}, {}, 0};
    const Topology& topo = v.placed.graph;
    v.types.assign(topo.ids().size(), NodeType::Honest);
    for (const auto& n : v.placed.config.nodes) {
        const std::size_t p = topo.index_of(static_cast<std::uint32_t>(n.id));
        if (p < v.types.size()) v.types[p] = n.type;
        if (n.type == NodeType::Honest) v.honest.push_back(n.id);
    }
    std::sort(v.honest.begin(), v.honest.end());
    // The most Byzantine neighbours any honest node has: what a node must tolerate in the worst
    // place of the graph (on a sparse graph far fewer than the Byzantine nodes).
    // A time-varying graph: the most in any round of the run.
    auto count_in = [&](const Topology& g) {
        for (int h : v.honest) {
            std::size_t byz = 0;
            for (auto n : g.neighbours(static_cast<std::uint32_t>(h))) byz += v.type_of(n) == NodeType::Byzantine;
            v.most_byzantine = std::max(v.most_byzantine, byz);
        }
    };
    if (!v.placed.varying) {
        count_in(topo);
        v.links = topo;
        return v;
    }
    std::vector<Topology> graphs;
    for (auto epoch : v.placed.varying->epochs_in(static_cast<std::uint64_t>(e.training.rounds))) {
        graphs.push_back(v.placed.varying->epoch(epoch));
        count_in(graphs.back());
    }
    v.links = Topology::merged(graphs);
    return v;
}

NodeSettings settings_in(const RunView& v, std::uint32_t id, const Experiment& e, const NodeOverrides& o) {
    const Topology& topo = v.links;
    const NodeSpec& self = v.placed.config.require(static_cast<int>(id));
    const std::vector<int>& honest = v.honest;
    NodeSettings s;
    s.id = id;
    s.type = o.type.value_or(self.type);
    s.neighbours = topo.neighbours(id);
    // Nodes asked to stop together agree on the round: a proposal travels a hop a round, and
    // the rounds of two nodes d hops apart differ by at most d (node/round_node.cpp).
    // On a time-varying graph news travels along each round's edges only: its flood bound.
    s.stop_margin = 2 * (v.placed.varying ? v.placed.varying->flood() : topo.eccentricity(id)) + 1;
    // How far ahead others can legitimately be (the same flood bound): buffered, not dropped as
    // too far ahead, nor taken for this node being left behind.
    if (v.placed.varying) s.lead = std::max<std::uint64_t>(1, v.placed.varying->flood());
    s.varying = v.placed.varying;
    for (auto n : s.neighbours) {
        if (v.type_of(n) == NodeType::Honest) s.honest_neighbours.push_back(n);
        s.neighbour_degrees.push_back(topo.neighbours(n).size());
    }
    if (e.training.mixing == "metropolis" && (e.robust.aggregator != "mean" || !e.robust.pre_aggregators.empty()))
        throw ConfigError(fmt::format("{}: training.mixing metropolis weighs the vectors themselves, which only the "
                                      "plain mean does; the aggregator is '{}'{} (use --aggregator mean, no "
                                      "pre-aggregators, or --mixing uniform)",
                                      where(e, "training.mixing"), e.robust.aggregator,
                                      e.robust.pre_aggregators.empty() ? "" : " with pre-aggregators"));
    s.training = e.training;
    s.model = e.model.name;
    s.model_options = model_options_of(e);
    // Honest node h of H trains on shard h of the partition; a Byzantine node that needs its own
    // gradient (sign-flip, label-flip) borrows shard id mod H.
    s.shards = std::max<std::size_t>(1, honest.size());
    auto pos = std::lower_bound(honest.begin(), honest.end(), static_cast<int>(id));
    s.shard = pos != honest.end() && *pos == static_cast<int>(id) ? static_cast<std::size_t>(pos - honest.begin())
                                                                    : id % s.shards;
    if (o.shard) s.shard = *o.shard;
    s.partition = partition_of(e);

    s.aggregator = e.robust.aggregator;
    s.pre_aggregators = e.robust.pre_aggregators;
    if (e.robust.f >= 0) {
        s.robust.f = static_cast<std::size_t>(e.robust.f);
        s.f_reason = where(e, "robust.f");
    } else {
        s.robust.f = v.most_byzantine;
        s.f_reason = v.placed.varying ? "the most Byzantine neighbours of any honest node in any round"
                                      : "the most Byzantine neighbours of any honest node";
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
    s.quorum_given = o.quorum.has_value();
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

}  // namespace

NodeSettings settings_for(const NodesConfig& cfg, std::uint32_t id, const Experiment& e, const NodeOverrides& o) {
    return settings_in(view_of(cfg, e), id, e, o);
}

std::vector<NodeSettings> settings_for_all(const NodesConfig& cfg, const Experiment& e, const NodeOverrides& o) {
    const RunView v = view_of(cfg, e);
    std::vector<NodeSettings> all;
    all.reserve(v.placed.graph.ids().size());
    for (auto id : v.placed.graph.ids()) all.push_back(settings_in(v, id, e, o));
    return all;
}

}  // namespace p2p::node
