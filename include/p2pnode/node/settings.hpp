// NodeSettings for one node of a nodes config under an Experiment: topology, shard, f, quorum
// and the attack's n, derived the same way for every pattern and transport.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>

#include "p2pnode/config/experiment.hpp"
#include "p2pnode/config/nodes_config.hpp"
#include "p2pnode/node/round_node.hpp"
#include "p2pnode/node/topology.hpp"

namespace p2p::node {

// What one node's command line adds to the experiment it shares with the others.
struct NodeOverrides {
    std::optional<NodeType> type;         // --node-type
    bool resume = false;                  // --resume
    std::optional<std::size_t> shard;     // hub-client --data-shard
    std::optional<std::size_t> quorum;    // default: neighbours - f
};

// ConfigError "ORIGIN: KEY: unknown aggregator 'x' (known: ...)" for a name that is no row of
// its catalogue (aggregator, pre-aggregators, attack, model, data set, topology), and for
// settings that do not fit together (--resume without a checkpoint folder is the caller's).
void check_names(const Experiment& e);

// The model's own options in an experiment (mlp: hidden sizes).
nn::ModelOptions model_options_of(const Experiment& e);

// The partition's settings in an experiment (its seed: data.seed, or the run's seed when -1).
data::PartitionSpec partition_of(const Experiment& e);

// ConfigError naming the node and the numbers when its shard of `train` holds fewer than one
// batch, or when the partition cannot be made (a dirichlet min size never reached, K above the
// classes). The partition is computed once for nodes that share it.
void check_shards(std::span<const NodeSettings> nodes, const data::Dataset& train);
inline void check_shard(const NodeSettings& s, const data::Dataset& train) { check_shards({&s, 1}, train); }

// The graph of the run and the config with its Byzantine nodes placed on it. A random graph
// (erdos-renyi, random-regular) is drawn from topology.seed, then seed + 1, ... until the honest
// nodes are connected among themselves (ConfigError after 1,000 draws).
// A time-varying graph (one-peer-exponential, erdos-renyi with every) also has its schedule:
// `graph` is then round 1's, and a later erdos-renyi epoch e is the first draw from seed
// topology.seed + 1000 e, + 1000 e + 1, ... that leaves the honest nodes connected.
struct PlacedGraph {
    Topology graph;
    NodesConfig config;
    std::uint64_t seed = 0;  // the draw's seed (a random graph's: the one accepted)
    std::shared_ptr<const TimeVarying> varying;  // null: the same graph every round
};
PlacedGraph placed_graph(const NodesConfig& cfg, const Experiment& e);
// What the placed graph means for robustness (graph_stats with its Byzantine nodes): what
// `p2pnode topology`, run.json and a sweep's rows report.
GraphStats graph_stats(const PlacedGraph& placed);
Topology topology_of(const NodesConfig& cfg, const Experiment& e);

// The config with the experiment's Byzantine nodes (byzantine.ids, or byzantine.count placed on
// the graph) as its node types; the config itself when neither is set. ConfigError for an id
// not in the config, both given, or no honest node left.
NodesConfig with_placement(const NodesConfig& cfg, const Experiment& e);

// ConfigError when the node is not in the config or the topology is invalid; RobustError when
// the rule cannot run with the node's number of inputs and f.
NodeSettings settings_for(const NodesConfig& cfg, std::uint32_t id, const Experiment& e,
                          const NodeOverrides& o = {});
// settings_for of every node of the config, in id order, with the graph and placement made
// once (launch checks a whole run of thousands of nodes this way before starting any).
std::vector<NodeSettings> settings_for_all(const NodesConfig& cfg, const Experiment& e, const NodeOverrides& o = {});

}  // namespace p2p::node
