// Every node of a config on this machine as threads of one process (one shared ZeroMQ
// context, so inproc works): the in-process half of `p2pnode launch` and of the tests. Picks
// the transport; the nodes (node/) never know which one they run on.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "p2pnode/node/settings.hpp"
#include "p2pnode/transport/hub.hpp"
#include "p2pnode/transport/security.hpp"
#include "p2pnode/transport/transport.hpp"

namespace p2p::launch {

enum class Pattern { Mesh, Hub };

struct ClusterOptions {
    Pattern pattern = Pattern::Mesh;
    transport::Scheme scheme = transport::Scheme::Inproc;
    std::string ipc_dir = "/tmp";
    bool ephemeral_ports = false;          // tcp: bind 127.0.0.1:* instead of the config's ports
    int broker_port = 8888;                // hub over tcp without ephemeral ports
    std::function<bool()> stop_requested;  // passed to every node
    std::vector<std::uint32_t> only;       // run just these ids (others are played from outside); empty: all
    bool resume = false;                   // every node starts from its checkpoint (the experiment's folder)
    // CURVE: every node's key pair (and the broker's); empty: no security. One ZAP handler serves
    // the shared context.
    std::map<std::uint32_t, transport::CurveKeys> keys;
    transport::CurveKeys broker_keys;
    transport::BrokerStats* broker_stats = nullptr;  // hub: filled with the broker's counters at the end
};

// Runs all nodes to the end; results by node id. Exceptions in a node thread are rethrown.
std::map<std::uint32_t, node::NodeResult> run_threads(const NodesConfig& cfg, const Experiment& experiment,
                                                      const ClusterOptions& options, const data::MnistData& data);

}  // namespace p2p::launch
