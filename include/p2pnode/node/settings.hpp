// NodeSettings for one node of a nodes config under an Experiment: topology, shard, f, quorum
// and the attack's n, derived the same way for every pattern and transport.
#pragma once

#include <optional>
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

// ConfigError naming the node and the numbers when its shard of a training set of
// `train_count` samples holds fewer than one batch (honest nodes; Byzantine ones train nothing
// of their own unless their attack needs it, and then they use shard 0's size).
void check_shard(const NodeSettings& s, std::size_t train_count);

Topology topology_of(const NodesConfig& cfg, const Experiment& e);

// ConfigError when the node is not in the config or the topology is invalid; RobustError when
// the rule cannot run with the node's number of inputs and f.
NodeSettings settings_for(const NodesConfig& cfg, std::uint32_t id, const Experiment& e,
                          const NodeOverrides& o = {});

}  // namespace p2p::node
