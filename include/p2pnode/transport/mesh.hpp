// Mesh: each node owns one ROUTER socket, bound on its endpoint and connected to its peers with
// lower ids (exactly one connection per pair: measured here, two connections per pair lose
// messages). Every ROUTER presents its node id as its routing id; a connecting side sets
// ZMQ_CONNECT_ROUTING_ID to the peer's id so it can address it at once. Peers exchange a
// HELLO control frame before data; data from a routing id that is not a configured peer, or
// that has not said HELLO, is dropped and counted.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "p2pnode/transport/security.hpp"
#include "p2pnode/transport/transport.hpp"

namespace p2p::transport {

struct MeshSpec {
    std::uint32_t self = 0;
    std::string bind_endpoint;                       // e.g. tcp://0.0.0.0:8880, ipc://..., inproc://...
    std::map<std::uint32_t, std::string> peers;      // peer id -> endpoint to connect to (ids < self)
    std::vector<std::uint32_t> accept_from;          // peer ids that connect to us (ids > self)
    SocketLimits limits;
    std::optional<Security> security;                // CURVE + ZAP (tcp and ipc only)
};

// `context` must outlive the transport; inproc endpoints need one shared context.
std::unique_ptr<Transport> make_mesh(zmq::context_t& context, const MeshSpec& spec);

// The endpoint of node `id` for a scheme: tcp://host:port, ipc://<dir>/p2pnode-<port>.ipc,
// inproc://p2pnode-<port>.
std::string endpoint_for(Scheme scheme, const std::string& host, int port, const std::string& ipc_dir);

}  // namespace p2p::transport
