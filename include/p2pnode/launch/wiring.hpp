// Who connects to whom, written once for every way a run starts (threads, processes, a node by
// hand): in the mesh, node i binds its inbox on its own endpoint and connects its outbox to
// every neighbour's endpoint (transport/mesh.hpp: one socket for each direction, so each
// pair has one connection per socket).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "p2pnode/config/nodes_config.hpp"
#include "p2pnode/node/round_node.hpp"
#include "p2pnode/transport/mesh.hpp"

namespace p2p::launch {

// The mesh transport of node `s.id`: it binds the config's bind_host (else host) and port, and
// connects to each neighbour at `bound[n]` when given (the endpoint a node of this process
// actually bound), else at the config's host and port. Security is the caller's.
// Socket limits for a run of `nodes` nodes training the experiment's model: a message is at
// most the model's payload and 64 KiB (header, hub targets), 16 messages are queued per
// connection received, and 5 per node sent (a broker's queue to one node carries every
// sender's messages, up to the future window ahead); a bound socket keeps the connections it
// expects and 8 more.
transport::SocketLimits limits_for(const Experiment& e, std::size_t nodes);

transport::MeshSpec mesh_wiring(const NodesConfig& cfg, const node::NodeSettings& s, transport::Scheme scheme,
                                const std::string& ipc_dir, const std::map<std::uint32_t, std::string>& bound = {});

}  // namespace p2p::launch
