// `launch` over tcp or ipc: one child process per node (and the broker's), the node summaries
// they leave, and the table read from them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "p2pnode/config/nodes_config.hpp"
#include "p2pnode/node/round_node.hpp"
#include "p2pnode/node/topology.hpp"

namespace p2p::launch {

// Starts `broker` (a command line of `exe`; empty: none), then every node's command line, and
// waits for the nodes. When `stop_requested` turns true every node gets SIGTERM once (it stops
// after its round). When the nodes are done the broker gets SIGTERM. Returns how many nodes
// did not exit 0. IoError if a process cannot be started.
int run_processes(const std::string& exe, const std::vector<std::string>& broker,
                  const std::vector<std::vector<std::string>>& nodes, const std::function<bool()>& stop_requested);

// Writes `text` to `path` whole or not at all: a temporary file of this process (several
// processes may write the same record), renamed into place. IoError when it cannot be written.
void write_whole(const std::string& path, const std::string& text);

// node-<id>.summary.json in `dir` (created): what the table prints for one node.
void write_summary(const std::string& dir, const node::NodeSettings& s, const node::NodeResult& r);

// run.json in `dir` (created; written whole): what the run was, for whoever reads its metrics
// later: the command, p2pnode's version, the start time (UTC), the pattern and endpoint, the
// seed, every node's id and type, and the resolved experiment (experiment_json).
void write_run_record(const std::string& dir, const std::string& command, const std::string& version,
                      const NodesConfig& cfg, const Experiment& e, const std::string& name = "run.json");

// The table of every node of `cfg` from the summaries in `dir`; a node without one is listed as
// not finished. Returns how many were.
int print_table(const NodesConfig& cfg, const std::string& dir);

// The nodes of the run whose metrics are in `dir` (ids and types, no addresses): from its
// run.json, else from the node-<id>.summary.json files there. ConfigError when `dir` holds
// neither (not a run's folder) or a record that cannot be read.
NodesConfig run_nodes(const std::string& dir);

}  // namespace p2p::launch
