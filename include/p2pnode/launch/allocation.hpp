// Nodes configs from an allocation: the hosts a scheduler gave (a host list, an OpenMPI
// hostfile, a Slurm job's node list and tasks per node), N nodes spread over them in rank
// order, ports from a base port, one port per node on a host. `p2pnode config` writes the
// result in the reference's YAML format.
#pragma once

#include <string>
#include <vector>

#include "p2pnode/config/nodes_config.hpp"

namespace p2p::launch {

struct HostSlots {
    std::string host;
    int slots = 0;  // 0: no limit given (a --hosts list: the nodes are split evenly)
};

// OpenMPI's hostfile: "host slots=N" a line, '#' comments and blank lines skipped
// (max_slots=M is read and ignored). ConfigError "FILE:LINE: ..." for a host without slots,
// a bad count or an unknown word.
std::vector<HostSlots> parse_hostfile(const std::string& text, const std::string& source);

// SLURM_TASKS_PER_NODE ("2(x3),1" -> 2, 2, 2, 1); ConfigError when malformed.
std::vector<int> expand_tasks_per_node(const std::string& text);

// `nodes` ids 0..nodes-1 on the hosts in rank order (slots filled host by host, as srun's and
// mpirun's default block mapping places ranks; hosts without slots share the nodes evenly, the
// first hosts one more), each at base_port + its index on its host. bind_host is written for
// each node when non-empty. ConfigError for more nodes than the slots hold, no host, or a port
// past 65535.
std::vector<NodeSpec> spread_nodes(const std::vector<HostSlots>& hosts, int nodes, int base_port,
                                   const std::string& bind_host);

// The config as YAML: the experiment sections given (`sections`, as experiment_yaml writes
// them, may be empty) and one line per node.
std::string nodes_yaml(const std::vector<NodeSpec>& nodes, const std::string& sections);

}  // namespace p2p::launch
