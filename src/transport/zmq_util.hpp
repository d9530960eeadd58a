// Socket helpers shared by the transports (internal to src/transport).
#pragma once

#include <array>
#include <cstring>
#include <deque>
#include <optional>
#include <vector>

#include <zmq.hpp>

#include "p2pnode/transport/transport.hpp"

namespace p2p::transport::detail {

// A node's routing id: 'N' and its id, 4 bytes little-endian. (libzmq reserves routing ids
// that start with a zero byte, which node 0's bare id would.)
inline std::array<std::byte, 5> id_bytes(std::uint32_t id) {
    std::array<std::byte, 5> b{};
    b[0] = static_cast<std::byte>('N');
    for (int i = 0; i < 4; ++i) b[1 + i] = static_cast<std::byte>((id >> (8 * i)) & 0xff);
    return b;
}

// The node id of a routing id made by id_bytes, or nullopt.
inline std::optional<std::uint32_t> parse_id(const zmq::message_t& m) {
    if (m.size() != 5) return std::nullopt;
    const auto* p = static_cast<const unsigned char*>(m.data());
    if (p[0] != 'N') return std::nullopt;
    return std::uint32_t{p[1]} | (std::uint32_t{p[2]} << 8) | (std::uint32_t{p[3]} << 16) | (std::uint32_t{p[4]} << 24);
}

// The bounded libzmq's option (subprojects/packagefiles/libzmq/cap-accepted-connections.patch):
// the most connections a listener keeps at once. Another libzmq refuses it (EINVAL): no limit.
constexpr int kMaxAcceptedOption = 7001;

// A bound socket expecting `expected` connections keeps at most that many and l's spare.
inline void limit_accepted(zmq::socket_t& s, const SocketLimits& l, std::size_t expected) {
    if (l.spare_connections < 0) return;
    const int cap = static_cast<int>(expected) + l.spare_connections;
    (void)zmq_setsockopt(s.handle(), kMaxAcceptedOption, &cap, sizeof cap);
}

inline void apply_limits(zmq::socket_t& s, const SocketLimits& l) {
    s.set(zmq::sockopt::maxmsgsize, l.max_message_bytes);
    s.set(zmq::sockopt::sndhwm, l.send_high_water_mark > 0 ? l.send_high_water_mark : l.high_water_mark);
    s.set(zmq::sockopt::rcvhwm, l.high_water_mark);
    s.set(zmq::sockopt::linger, l.linger_ms);
    s.set(zmq::sockopt::heartbeat_ivl, l.heartbeat_ivl_ms);
    s.set(zmq::sockopt::heartbeat_timeout, l.heartbeat_timeout_ms);
    s.set(zmq::sockopt::heartbeat_ttl, l.heartbeat_timeout_ms);
}

// Receives one whole multipart message without blocking, keeping at most `max_parts` parts
// (the rest is read and discarded; `overflow` tells). Empty when nothing is waiting.
inline std::optional<std::vector<zmq::message_t>> recv_parts(zmq::socket_t& s, std::size_t max_parts, bool& overflow) {
    std::vector<zmq::message_t> parts;
    overflow = false;
    while (true) {
        zmq::message_t m;
        auto got = s.recv(m, parts.empty() ? zmq::recv_flags::dontwait : zmq::recv_flags::none);
        if (!got) return std::nullopt;
        const bool more = m.more();
        if (parts.size() < max_parts)
            parts.push_back(std::move(m));
        else
            overflow = true;
        if (!more) return parts;
    }
}

// A control frame: one kind byte and 4-byte little-endian ids (the hub's and the mesh's).
inline zmq::message_t control(char kind, const std::vector<std::uint32_t>& ids = {}) {
    zmq::message_t m(1 + 4 * ids.size());
    auto* p = static_cast<unsigned char*>(m.data());
    p[0] = static_cast<unsigned char>(kind);
    for (std::size_t i = 0; i < ids.size(); ++i)
        for (int b = 0; b < 4; ++b) p[1 + 4 * i + b] = static_cast<unsigned char>((ids[i] >> (8 * b)) & 0xff);
    return m;
}

// The kind and ids of a control frame; nullopt if it is not one.
inline std::optional<std::pair<char, std::vector<std::uint32_t>>> parse_control(const zmq::message_t& m,
                                                                          std::size_t max_ids) {
    if (m.size() < 1 || (m.size() - 1) % 4 != 0 || (m.size() - 1) / 4 > max_ids) return std::nullopt;
    const auto* p = static_cast<const unsigned char*>(m.data());
    std::vector<std::uint32_t> ids((m.size() - 1) / 4);
    for (std::size_t i = 0; i < ids.size(); ++i)
        ids[i] = std::uint32_t{p[1 + 4 * i]} | (std::uint32_t{p[2 + 4 * i]} << 8) | (std::uint32_t{p[3 + 4 * i]} << 16) |
                 (std::uint32_t{p[4 + 4 * i]} << 24);
    return std::make_pair(static_cast<char>(p[0]), std::move(ids));
}

// Waits up to `deadline` for `s` to become readable.
inline bool wait_readable(zmq::socket_t& s, Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    const long ms = std::max<long>(0, static_cast<long>(left.count()));
    try {
        return zmq::poll(&item, 1, std::chrono::milliseconds(ms)) > 0;
    } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) return false;  // a signal (Ctrl-C): the caller checks its stop flag
        throw;
    }
}

enum class SendResult { Sent, Unreachable, Full };

// Sends parts as one multipart message without blocking, telling a peer that is gone
// (EHOSTUNREACH) from one whose queue is full (EAGAIN).
inline SendResult try_send_parts(zmq::socket_t& s, std::vector<zmq::message_t>& parts) {
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const auto flags = (i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none) |
                           zmq::send_flags::dontwait;
        try {
            if (!s.send(parts[i], flags) && i == 0) return SendResult::Full;
        } catch (const zmq::error_t& e) {
            if (i == 0 && e.num() == EHOSTUNREACH) return SendResult::Unreachable;
            if (i == 0 && e.num() == EAGAIN) return SendResult::Full;
            throw;
        }
    }
    return SendResult::Sent;
}

// try_send_parts, as a yes or no: false when the first part was refused (EHOSTUNREACH: not
// connected yet or gone; EAGAIN: the peer's queue is full); then nothing of the message was sent.
inline bool send_parts(zmq::socket_t& s, std::vector<zmq::message_t>& parts) {
    return try_send_parts(s, parts) == SendResult::Sent;
}

// The shared half of the socket transports: messages that arrived while handshaking wait in
// `pending_`; receive() hands them out first, then pumps the socket until the deadline.
template <class Base = Transport>
class PumpedTransport : public Base {
public:
    std::optional<Incoming> receive(Clock::time_point deadline) final {
        if (!pending_.empty()) {
            Incoming m = std::move(pending_.front());
            pending_.pop_front();
            pending_bytes_ -= m.header.bytes().size() + m.payload.bytes().size();
            return m;
        }
        while (true) {
            if (auto m = pump(deadline)) return m;
            if (Clock::now() >= deadline) return std::nullopt;
        }
    }

protected:
    // Handles at most one incoming message, waiting until the deadline; returns it if it is data.
    virtual std::optional<Incoming> pump(Clock::time_point deadline) = 0;
    virtual Counters& mutable_counters() = 0;

    // Keeps a message that arrived while handshaking, within the limits (else drops and counts it).
    void keep_early(Incoming m, const SocketLimits& limits) {
        const std::size_t size = m.header.bytes().size() + m.payload.bytes().size();
        std::size_t from_same = 0;
        for (const auto& p : pending_) from_same += p.from == m.from;
        if (from_same >= limits.early_per_peer || pending_bytes_ + size > limits.early_bytes) {
            ++mutable_counters().dropped_early;
            return;
        }
        pending_bytes_ += size;
        pending_.push_back(std::move(m));
    }

private:
    std::deque<Incoming> pending_;
    std::size_t pending_bytes_ = 0;
};

}  // namespace p2p::transport::detail
