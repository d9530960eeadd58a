#include "p2pnode/transport/mesh.hpp"

#include <algorithm>
#include <deque>
#include <set>

#include <fmt/format.h>

#include "p2pnode/errors.hpp"
#include "zmq_util.hpp"

namespace p2p::transport {

std::optional<Scheme> parse_scheme(std::string_view s) {
    if (s == "tcp") return Scheme::Tcp;
    if (s == "ipc") return Scheme::Ipc;
    if (s == "inproc") return Scheme::Inproc;
    return std::nullopt;
}

std::string_view to_string(Scheme s) {
    switch (s) {
    case Scheme::Tcp: return "tcp";
    case Scheme::Ipc: return "ipc";
    case Scheme::Inproc: return "inproc";
    }
    return "?";
}

std::string endpoint_for(Scheme scheme, const std::string& host, int port, const std::string& ipc_dir) {
    switch (scheme) {
    case Scheme::Tcp: return fmt::format("tcp://{}:{}", host, port);
    case Scheme::Ipc: return fmt::format("ipc://{}/p2pnode-{}.ipc", ipc_dir, port);
    case Scheme::Inproc: return fmt::format("inproc://p2pnode-{}", port);
    }
    return {};
}

namespace {

constexpr char kHello = 'H';  // "I am here"; the peer answers kAck
constexpr char kAck = 'A';

class Mesh final : public detail::PumpedTransport {
public:
    Mesh(zmq::context_t& ctx, const MeshSpec& spec) : spec_(spec), socket_(ctx, zmq::socket_type::router) {
        detail::apply_limits(socket_, spec.limits);
        const auto me = detail::id_bytes(spec.self);
        socket_.set(zmq::sockopt::routing_id, zmq::const_buffer(me.data(), me.size()));
        socket_.set(zmq::sockopt::router_mandatory, 1);
        if (spec.security) {
            if (spec.bind_endpoint.rfind("inproc://", 0) == 0)
                throw IoError("CURVE security needs tcp or ipc endpoints; inproc is not encrypted");
            if (spec.security->start_zap) zap_ = std::make_unique<ZapHandler>(ctx, allowed_keys(*spec.security));
            socket_.set(zmq::sockopt::curve_secretkey, spec.security->own.secret_z85);
            socket_.set(zmq::sockopt::curve_publickey, spec.security->own.public_z85);
            socket_.set(zmq::sockopt::curve_server, 1);
            socket_.set(zmq::sockopt::zap_domain, "p2pnode");
        }
        try {
            socket_.bind(spec.bind_endpoint);
        } catch (const zmq::error_t& e) {
            throw IoError(fmt::format("node {}: cannot bind {}: {}", spec.self, spec.bind_endpoint, e.what()));
        }
        // Read now: ZMQ_LAST_ENDPOINT also reports connects.
        bound_ = socket_.get(zmq::sockopt::last_endpoint);
        for (const auto& [id, endpoint] : spec.peers) {
            known_.insert(id);
            const auto peer = detail::id_bytes(id);
            socket_.set(zmq::sockopt::connect_routing_id, zmq::const_buffer(peer.data(), peer.size()));
            if (spec.security) {  // we are the CURVE client of a lower-id peer, which must hold its key
                auto key = spec.security->public_keys.find(id);
                if (key == spec.security->public_keys.end())
                    throw IoError(fmt::format("node {}: no public key for node {}", spec.self, id));
                socket_.set(zmq::sockopt::curve_server, 0);
                socket_.set(zmq::sockopt::curve_serverkey, key->second);
            }
            try {
                socket_.connect(endpoint);
            } catch (const zmq::error_t& e) {
                throw IoError(fmt::format("node {}: cannot connect to node {} at {}: {}", spec.self, id, endpoint,
                                          e.what()));
            }
        }
        for (auto id : spec.accept_from) known_.insert(id);
    }

    std::uint32_t self() const override { return spec_.self; }
    const Counters& counters() const override { return counters_; }
    std::string local_endpoint() const override { return bound_; }
    void set_close_linger(std::chrono::milliseconds linger) override {
        socket_.set(zmq::sockopt::linger, static_cast<int>(linger.count()));
    }

    std::vector<std::uint32_t> wait_ready(const std::vector<std::uint32_t>& peers, Clock::time_point deadline) override {
        auto missing = [&] {
            std::vector<std::uint32_t> out;
            for (auto p : peers)
                if (!heard_.count(p)) out.push_back(p);
            return out;
        };
        auto next_hello = Clock::now();
        while (true) {
            auto left = missing();
            if (left.empty() || Clock::now() >= deadline) return left;
            if (Clock::now() >= next_hello) {
                for (auto p : left) send_hello(p);
                next_hello = Clock::now() + std::chrono::milliseconds(100);
            }
            if (auto m = pump(std::min(deadline, next_hello))) pending_.push_back(std::move(*m));
        }
    }

    std::vector<std::uint32_t> send(const std::vector<std::uint32_t>& to, std::span<const std::byte> header,
                                    std::span<const std::byte> payload) override {
        std::vector<std::uint32_t> failed;
        zmq::message_t shared_header(header.data(), header.size());
        zmq::message_t shared_payload(payload.data(), payload.size());
        for (auto id : to) {
            const auto rid = detail::id_bytes(id);
            std::vector<zmq::message_t> parts;
            parts.emplace_back(rid.data(), rid.size());
            parts.emplace_back();
            parts.back().copy(shared_header);
            parts.emplace_back();
            parts.back().copy(shared_payload);  // large messages share one buffer
            if (detail::send_parts(socket_, parts)) {
                ++counters_.messages_out;
                counters_.bytes_out += header.size() + payload.size();
            } else {
                ++counters_.send_failures;
                failed.push_back(id);
            }
        }
        return failed;
    }


private:
    void send_control(std::uint32_t peer, char what) {
        const auto rid = detail::id_bytes(peer);
        std::vector<zmq::message_t> parts;
        parts.emplace_back(rid.data(), rid.size());
        parts.emplace_back(&what, 1);
        detail::send_parts(socket_, parts);  // not connected yet: the next HELLO will go
    }
    void send_hello(std::uint32_t peer) { send_control(peer, kHello); }

    std::optional<Incoming> pump(Clock::time_point deadline) override {
        if (!detail::wait_readable(socket_, deadline)) return std::nullopt;
        bool overflow = false;
        auto parts = detail::recv_parts(socket_, 3, overflow);
        if (!parts) return std::nullopt;
        const auto from = detail::parse_id((*parts)[0]);
        if (!from || !known_.count(*from)) {
            ++counters_.dropped_unknown_peer;
            return std::nullopt;
        }
        if (overflow || parts->size() < 2) {
            ++counters_.dropped_malformed;
            return std::nullopt;
        }
        if (spec_.security) {
            // An incoming connection carries the ZAP user id of its key; an outgoing one was
            // made to the key we expect. Either way the key must belong to the routing id.
            const std::string uid = user_id((*parts)[1]);
            const bool ok = uid.empty() ? spec_.peers.count(*from) > 0 : uid == user_id_for(*from);
            if (!ok) {
                ++counters_.dropped_unauthenticated;
                return std::nullopt;
            }
        }
        if (parts->size() == 2) {  // control: HELLO, or the empty probe of a new connection
            const auto& c = (*parts)[1];
            const char kind = c.size() == 1 ? *static_cast<const char*>(c.data()) : 0;
            if (kind == kHello) {
                heard_.insert(*from);
                send_control(*from, kAck);  // the peer keeps saying HELLO until it hears this
            } else if (kind == kAck) {
                heard_.insert(*from);
            } else if (c.size() != 0) {
                ++counters_.dropped_malformed;
            }
            return std::nullopt;
        }
        if (!heard_.count(*from)) {  // data before HELLO
            ++counters_.dropped_unknown_peer;
            return std::nullopt;
        }
        Incoming in;
        in.from = *from;
        counters_.bytes_in += (*parts)[1].size() + (*parts)[2].size();
        ++counters_.messages_in;
        in.header = Frame(std::move((*parts)[1]));
        in.payload = Frame(std::move((*parts)[2]));
        return in;
    }

    MeshSpec spec_;
    std::unique_ptr<ZapHandler> zap_;  // before socket_: destroyed after it
    zmq::socket_t socket_;
    std::string bound_;
    std::set<std::uint32_t> known_;
    std::set<std::uint32_t> heard_;
    Counters counters_;
};

}  // namespace

std::unique_ptr<Transport> make_mesh(zmq::context_t& context, const MeshSpec& spec) {
    return std::make_unique<Mesh>(context, spec);
}

}  // namespace p2p::transport
