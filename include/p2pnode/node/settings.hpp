// NodeSettings for one node of a nodes config: topology, shard, f, quorum and the attack's n,
// derived the same way for every pattern and transport.
#pragma once

#include <optional>
#include <string>

#include "p2pnode/config/nodes_config.hpp"
#include "p2pnode/node/round_node.hpp"
#include "p2pnode/node/topology.hpp"

namespace p2p::node {

struct RunChoice {
    TrainingOptions training;
    std::string aggregator = "median";
    std::vector<std::string> pre_aggregators;
    std::string attack = "empire";
    robust::Params robust;                  // robust.f is replaced by `f` below
    std::optional<std::size_t> f;           // default: the number of Byzantine nodes in the config
    std::optional<std::size_t> quorum;      // default: neighbours - f
    std::chrono::milliseconds soft_timeout{5000}, hard_timeout{30000}, startup_timeout{60000};
    std::string metrics_dir = "metrics";    // node-<id>.jsonl there ("" = none)
    std::optional<NodeType> type_override;  // --node-type
    std::string checkpoint_dir;             // "" = no checkpoints
    int checkpoint_every = 10;
    bool resume = false;
};

Topology topology_of(const NodesConfig& cfg);

// ConfigError when the node is not in the config or the topology is invalid; RobustError when
// the rule cannot run with the node's number of inputs and f.
NodeSettings settings_for(const NodesConfig& cfg, std::uint32_t id, const RunChoice& choice);

}  // namespace p2p::node
