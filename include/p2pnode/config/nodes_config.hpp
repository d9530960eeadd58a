// The node-list config (the reference tool's format, YAML or JSON):
//
//   training: {rounds: 50, batch_size: 64, learning_rate: 0.05}   # optional: any experiment section
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

#include "p2pnode/config/experiment.hpp"

namespace p2p {

enum class NodeType { Honest, Byzantine };

std::string_view to_string(NodeType type);
// "honest" or "byzantine" (exactly); nullopt for anything else.
std::optional<NodeType> parse_node_type(std::string_view text);

// A CURVE key as the config and the key files hold it: 40 characters of ZeroMQ's Z85 alphabet.
bool is_z85_key(std::string_view s);

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
    // The file's training:, robust:, topology:, ... sections over the defaults (flags and an
    // experiment file go on top: see experiment.hpp).
    // The file's training:, robust:, topology:, ... sections over the defaults (an experiment
    // file and flags go on top: see experiment.hpp).
    Experiment experiment;
    std::optional<std::string> broker_public_key;  // hub with CURVE
    std::vector<NodeSpec> nodes;  // in file order; ids are unique
    std::vector<std::string> warnings;

    // The node with this id, or nullptr.
    const NodeSpec* find(int id) const;
    // The node with this id; ConfigError naming the file and the known ids if absent.
    const NodeSpec& require(int id) const;
    int honest_count() const;
    // "0, 1, 2": the ids in file order, for messages.
    std::string ids_text() const;
};

// Parses YAML or JSON text; `source` names it in messages.
NodesConfig parse_nodes_config(std::string_view text, const std::string& source);
// The text of a config-like file (nodes config, experiment, sweep, hostfile): a regular file of
// at most 16 MiB, else ConfigError naming the path and what is wrong.
std::string read_config_file(const std::string& path);
// Reads and parses a file; an unreadable or empty file is a ConfigError.
NodesConfig load_nodes_config(const std::string& path);

}  // namespace p2p


