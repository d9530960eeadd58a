// The node-list config (the reference tool's format, YAML or JSON):
//
//   training: {rounds: 50, batch_size: 64, learning_rate: 0.05}   # optional
//   nodes:
//     - {id: 0, host: 127.0.0.1, port: 8880, type: honest, bind_host: 0.0.0.0}
//
// Loading validates everything it reads; a problem raises ConfigError with a message of the
// form "FILE:LINE: FIELD: what is wrong". Problems that do not stop a run (unknown keys) are
// returned as warnings, never silently dropped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace p2p {

enum class NodeType { Honest, Byzantine };

std::string_view to_string(NodeType type);
// "honest" or "byzantine" (exactly); nullopt for anything else.
std::optional<NodeType> parse_node_type(std::string_view text);

struct TrainingSection {
    std::optional<int> rounds;
    std::optional<int> batch_size;
    std::optional<double> learning_rate;
    std::optional<std::string> exchange;  // gradient | model
    std::optional<double> self_weight;    // 0..1
};

// The optional `robust:` section. Names are checked against the catalogue by the caller (the
// config layer knows no rules); `line` says where each given name stands, for its messages.
struct RobustSection {
    std::optional<std::string> aggregator;       // e.g. median
    std::vector<std::string> pre_aggregators;    // applied in order
    std::optional<std::string> attack;           // what Byzantine nodes send, e.g. empire
    std::optional<int> f;                        // tolerated Byzantine inputs
    std::optional<double> tau;                   // centered clipping radius / clipping threshold
    std::optional<int> iterations;
    int aggregator_line = 0, pre_line = 0, attack_line = 0;
};

// The optional `topology:` section: {type: ring, k: 1} (the default), {type: complete}, or
// {type: edges, edges: [[0, 1], [1, 2], ...]} (undirected); `p2pnode list topologies`.
struct TopologySection {
    std::string type = "ring";  // a row of node::topologies(), checked where the graph is built
    int k = 1;
    std::vector<std::pair<int, int>> edges;
    int type_line = 0;
};

struct NodeSpec {
    int id = 0;
    std::string host;
    int port = 0;
    NodeType type = NodeType::Honest;
    std::optional<std::string> bind_host;
    std::optional<std::string> public_key;  // CURVE public key (40 Z85 characters)
    int line = 0;  // 1-based line of the node's entry in the file, for messages
};

struct NodesConfig {
    std::string source;  // file path (or a name given by the caller) used in messages
    TrainingSection training;
    RobustSection robust;
    TopologySection topology;
    std::optional<std::string> broker_public_key;  // hub with CURVE
    std::vector<NodeSpec> nodes;  // in file order; ids are unique
    std::vector<std::string> warnings;

    // The node with this id, or nullptr.
    const NodeSpec* find(int id) const;
    // The node with this id; ConfigError naming the file and the known ids if absent.
    const NodeSpec& require(int id) const;
    int honest_count() const;
};

// Parses YAML or JSON text; `source` names it in messages.
NodesConfig parse_nodes_config(std::string_view text, const std::string& source);
// Reads and parses a file; an unreadable or empty file is a ConfigError.
NodesConfig load_nodes_config(const std::string& path);

}  // namespace p2p

namespace p2p {

// The training settings a node runs with, after the command line and the file are merged.
// Defaults are the reference tool's.
struct TrainingOptions {
    int rounds = 50;
    int batch_size = 64;
    double learning_rate = 0.05;
    double byz_scale = -1.0;
    std::uint64_t seed = 0;
    int eval_every = 10;
    // What honest nodes send each round: "gradient" (the reference's protocol: send g_i, step
    // theta <- theta - lr * Agg(g)) or "model" (send the half step theta_i - lr * g_i, then
    // theta <- Agg(half steps): decentralized SGD whose aggregation also pulls the models together).
    std::string exchange = "gradient";
    // How much an honest node's own vector weighs in its step, w in [0, 1]: it steps on
    // w * g_i + (1 - w) * Agg(g) (model exchange: adopts w * h_i + (1 - w) * Agg(h)). w = 0 is the
    // reference's step theta <- theta - lr * Agg(g); w = 1 ignores the neighbours. The default 1/2
    // is the "lazy" mixing of decentralized optimisation: on a ring, stepping on the aggregate alone
    // mixes the nodes with a negative eigenvalue (-0.21 on 5 nodes), which pushes neighbouring
    // models apart along the loss's curved directions; weighing one's own gradient by 1/2 makes
    // every eigenvalue non-negative (see README, "Round protocol").
    double self_weight = 0.5;
};

// Settings given on the command line; an empty field was not given.
struct TrainingFlags {
    std::optional<int> rounds;
    std::optional<int> batch_size;
    std::optional<double> learning_rate;
    std::optional<std::string> exchange;
    std::optional<double> self_weight;
};

// Flags win over the file's `training` section, which wins over the defaults.
TrainingOptions merge_training(const TrainingOptions& defaults, const TrainingSection& file, const TrainingFlags& flags);

}  // namespace p2p
