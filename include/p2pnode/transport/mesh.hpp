// Mesh: each node owns two ROUTER sockets. Its inbox binds the node's endpoint and only
// receives; its outbox connects to every neighbour's inbox and only sends (the zguide's
// "Harmony" shape). So what a node sends to peer j travels on a connection this node made to
// j's configured endpoint (with CURVE: to the holder of j's secret key), and no peer can
// receive another's messages by claiming its routing id. The outbox presents no routing id,
// and the routing id a connection to the inbox presents names nothing for us: the inbox never
// sends. Who sent a message on the inbox is proven by the CURVE key (the ZAP user id) when
// security is on; without it, by the HELLO the connection sent (plaintext cannot prove who is
// who: a second connection claiming a live id is logged and counted, and the newer one wins).
// The outbox says HELLO again after every handshake (a socket monitor), so a link that
// reconnects is heard again.
//
// Control frames are one kind byte and the sender's id (4 bytes little-endian): HELLO ("I am
// here", answered with ACK). A peer is ready once it acknowledged our HELLO: then our link
// to it and its link to us both work. Data from a connection that has not said HELLO or ACK
// is dropped and counted.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "p2pnode/transport/security.hpp"
#include "p2pnode/transport/transport.hpp"

namespace p2p::transport {

struct MeshSpec {
    std::uint32_t self = 0;
    std::string bind_endpoint;                   // e.g. tcp://0.0.0.0:8880, ipc://..., inproc://...
    std::map<std::uint32_t, std::string> peers;  // every neighbour id -> its endpoint ("" = given later by connect)
    SocketLimits limits;
    std::optional<Security> security;            // CURVE + ZAP (tcp and ipc only)
};

class MeshTransport : public Transport {
public:
    // Connects the outbox to peer `id` (one of spec.peers) at `endpoint`: for peers whose
    // endpoint was not known when the transport was made (ephemeral ports in one process).
    virtual void connect(std::uint32_t id, const std::string& endpoint) = 0;
};

// `context` must outlive the transport; inproc endpoints need one shared context.
std::unique_ptr<MeshTransport> make_mesh(zmq::context_t& context, const MeshSpec& spec);

// The endpoint of node `id` for a scheme: tcp://host:port, ipc://<dir>/p2pnode-<port>.ipc,
// inproc://p2pnode-<port>.
std::string endpoint_for(Scheme scheme, const std::string& host, int port, const std::string& ipc_dir);

}  // namespace p2p::transport
