// Hub and spoke: a broker binds a ROUTER; each node connects a DEALER, says HELLO with its id,
// and sends each message once with the list of its targets; the broker forwards it to each
// target with the sender stamped by the broker (a node cannot send as another); a target named
// twice in one message gets it once. A second claim to a live id is refused, and so is an id
// outside Spec::ids; a claim to the id of a node that is gone replaces it. A node that
// the broker does not know (it restarted) is asked to say HELLO again.
//
// Frames, node -> broker: ["H" id] hello, ["Q" ids] which of these are registered,
// ["M" ids][header][payload] a message for ids. Broker -> node: ["A" token] accepted, ["R"] refused,
// ["q" ids] registered, ["W"] unknown sender, ["U" id] could not route to id, ["F" from][header]
// [payload] a message. ACCEPT carries the broker's random start token. A client keeps its last
// two gradients (and the small messages among them); when it is accepted with a new token (the
// broker restarted and lost what it held), or told W or U, it sends them again to the targets
// concerned once a Q says those are registered.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "p2pnode/transport/security.hpp"
#include "p2pnode/transport/transport.hpp"

namespace p2p::transport {

struct HubSpec {
    std::uint32_t self = 0;
    std::string broker_endpoint;  // tcp://host:port, ipc://..., inproc://...
    SocketLimits limits;
    std::optional<Security> security;  // own keys and security->broker_public
};

std::unique_ptr<Transport> make_hub_client(zmq::context_t& context, const HubSpec& spec);

struct BrokerStats {
    std::size_t nodes = 0;
    std::uint64_t messages_routed = 0, bytes_routed = 0;
    std::uint64_t dropped_unroutable = 0, dropped_unknown_sender = 0, dropped_malformed = 0;
    std::uint64_t claims_refused = 0;
    std::uint64_t dropped_queue_full = 0;     // a target's queue was full
    std::uint64_t targets_repeated = 0;       // a target named again in one message (sent once)
    std::uint64_t claims_outside_config = 0;  // HELLO for an id that is not in the config
    std::uint64_t dropped_over_share = 0;     // a sender's messages to a target beyond its share
};

class Broker {
public:
    struct Spec {
        std::string bind_endpoint;
        SocketLimits limits;
        std::chrono::milliseconds status_every{5000};
        std::optional<Security> security;  // the broker's keys; public_keys of every node
        std::set<std::uint32_t> ids;       // the config's node ids: no other id registers (empty: any)
        // A sender's share of a target's queue: at most this many of its messages are routed to
        // a target until the target next sends a message of its own (it is reading and going on).
        int share_per_sender = 6;          // a round's STOP and gradient, the next linked round's, spare
        // run() returns once every id of `ids` has registered and none is connected any more
        // (under mpirun or srun, the broker's rank ends with the run).
        bool exit_when_done = false;
    };
    // Binds at once (IoError if the endpoint is taken).
    Broker(zmq::context_t& context, Spec spec);
    ~Broker();
    Broker(const Broker&) = delete;
    Broker& operator=(const Broker&) = delete;

    // Routes until stop() returns true (checked at least every 100 ms). `log` receives status
    // lines and once-per-peer warnings.
    void run(const std::function<bool()>& stop, const std::function<void(const std::string&)>& log);
    BrokerStats stats() const;
    std::string endpoint() const;  // the bound endpoint (resolves tcp://*:0 style ports)

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace p2p::transport
