// CURVE encryption and authentication (opt-in). Every node has a key pair; the config lists
// every node's public key (and the broker's). A ZAP handler admits only the configured keys
// and names each connection's node ("N<id>" as the ZAP user id), so a node cannot send as
// another node: without ZAP, libzmq's CURVE accepts any client key. Secret keys are never
// printed or logged.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "p2pnode/config/nodes_config.hpp"

namespace p2p::transport {

struct CurveKeys {
    std::string public_z85;  // 40 characters
    std::string secret_z85;  // 40 characters; never printed
};

CurveKeys generate_keys();
// The public key of a secret key (Z85); IoError-free: std::invalid_argument on a bad key.
std::string public_from_secret(const std::string& secret_z85);
// Whether a text is a key at all: p2p::is_z85_key (config/nodes_config.hpp), the one check.
using p2p::is_z85_key;

struct Security {
    CurveKeys own;
    std::map<std::uint32_t, std::string> public_keys;  // node id -> public key (Z85)
    std::string broker_public;                          // hub clients: the broker's public key
    bool start_zap = true;  // false when a ZapHandler already serves this context (nodes as threads)
};

// Serves ZAP requests for one ZeroMQ context until destroyed.
class ZapHandler {
public:
    // `allowed`: public key (Z85) -> node id.
    ZapHandler(zmq::context_t& ctx, std::map<std::string, std::uint32_t> allowed);
    ~ZapHandler();
    ZapHandler(const ZapHandler&) = delete;
    ZapHandler& operator=(const ZapHandler&) = delete;
    std::uint64_t denied() const { return denied_.load(); }
    std::uint64_t admitted() const { return admitted_.load(); }

private:
    zmq::socket_t socket_;
    std::map<std::string, std::uint32_t> allowed_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> denied_{0}, admitted_{0};
    std::thread thread_;
};

std::map<std::string, std::uint32_t> allowed_keys(const Security& s);

// The ZAP user id of a received frame, or "" when the connection was not authenticated by us.
std::string user_id(zmq::message_t& m);
std::string user_id_for(std::uint32_t node);

}  // namespace p2p::transport
