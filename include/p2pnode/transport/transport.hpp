// Message patterns over ZeroMQ. A transport moves two byte frames (a header and a payload)
// between node ids; it knows nothing of their contents. The sender of a received message is
// what the transport proves (the ROUTER routing id bound at the handshake in the mesh, the
// broker's stamp in the hub), never a field the sender wrote.
//
// Threads: a transport and its sockets belong to the thread that created it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <zmq.hpp>

namespace p2p::transport {

using Clock = std::chrono::steady_clock;

// A received frame; the bytes stay inside the ZeroMQ message (no copy).
class Frame {
public:
    Frame() = default;
    explicit Frame(zmq::message_t msg) : msg_(std::move(msg)) {}
    std::span<const std::byte> bytes() const {
        return {static_cast<const std::byte*>(msg_.data()), msg_.size()};
    }

private:
    zmq::message_t msg_;
};

struct Incoming {
    std::uint32_t from = 0;  // proven by the transport
    Frame header;
    Frame payload;
};

// Counters a node reports in its metrics.
struct Counters {
    std::uint64_t messages_in = 0, messages_out = 0;
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::uint64_t dropped_unknown_peer = 0;  // from a routing id that is not a known peer
    std::uint64_t dropped_malformed = 0;     // wrong number of frames
    std::uint64_t send_failures = 0;         // a target that could not be reached (hub: as the broker says)
    std::uint64_t dropped_unauthenticated = 0;  // CURVE: a key claiming another node's id
    std::uint64_t dropped_early = 0;      // data beyond the bound kept while waiting for the peers
    std::uint64_t claims_conflicting = 0; // plaintext mesh: a second connection claimed a live id
    std::uint64_t messages_resent = 0;    // hub: the last message sent again after a broker restart
};

// Limits on every socket: largest message, queue depth, how long close() flushes. What one
// connection can make a node hold is about high_water_mark x max_message_bytes (with the
// bounded libzmq, ZMQ_MAXMSGSIZE bounds a whole multipart message; see meson_options.txt).
// launch::limits_for derives them from the model.
struct SocketLimits {
    std::int64_t max_message_bytes = 16 << 20;  // 4M floats
    int high_water_mark = 64;          // messages per pipe, received (and sent, unless below)
    int send_high_water_mark = 0;      // messages per pipe, sent (0: high_water_mark)
    int linger_ms = 3000;
    int heartbeat_ivl_ms = 1000;
    int heartbeat_timeout_ms = 5000;
    // Data that arrives before every peer is ready waits in the transport, at most this many
    // messages per sender and this many bytes in all; the rest is dropped (dropped_early).
    std::size_t early_per_peer = 8;
    std::size_t early_bytes = 64u << 20;
    // A bound socket keeps at most the connections it expects (a mesh inbox: one per neighbour;
    // the broker: one per configured node) and this many more; -1: no limit. Needs the bounded
    // libzmq's ZMQ_MAX_ACCEPTED (without it, no limit).
    int spare_connections = -1;
};

class Transport {
public:
    virtual ~Transport() = default;
    virtual std::uint32_t self() const = 0;
    // Handshakes with `peers` until each can be sent to and has announced itself, or the
    // deadline passes. Returns the peers still missing (empty: all ready).
    virtual std::vector<std::uint32_t> wait_ready(const std::vector<std::uint32_t>& peers,
                                                  Clock::time_point deadline) = 0;
    // Sends header + payload to every id in `to`; the payload is copied once into a message
    // shared by all targets. Returns the ids it could not send to (unknown, gone).
    virtual std::vector<std::uint32_t> send(const std::vector<std::uint32_t>& to, std::span<const std::byte> header,
                                            std::span<const std::byte> payload) = 0;
    // The next data message, or nullopt when the deadline passes first.
    virtual std::optional<Incoming> receive(Clock::time_point deadline) = 0;
    virtual const Counters& counters() const = 0;
    // From now on closing waits at most `linger` for messages not yet sent (SocketLimits::
    // linger_ms until then). For when the layer above knows nothing unsent is still needed:
    // a message queued for a peer that already left would otherwise hold the close for the
    // whole linger.
    virtual void set_close_linger(std::chrono::milliseconds linger) = 0;
    // The endpoint this transport bound (mesh: with the real port of tcp://host:*), or "".
    virtual std::string local_endpoint() const { return {}; }
};

// Endpoint schemes.
enum class Scheme { Tcp, Ipc, Inproc };
std::optional<Scheme> parse_scheme(std::string_view s);
std::string_view to_string(Scheme s);

}  // namespace p2p::transport
