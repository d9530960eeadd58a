#include "p2pnode/transport/mesh.hpp"

#include <algorithm>
#include <deque>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

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

// HELLO and ACK: the kind and the sender's id, or nullopt.
std::optional<std::pair<char, std::uint32_t>> parse_hello(const zmq::message_t& m) {
    const auto c = detail::parse_control(m, 1);
    if (!c || c->second.size() != 1 || (c->first != kHello && c->first != kAck)) return std::nullopt;
    return std::make_pair(c->first, c->second[0]);
}

// The node of a ZAP user id made by user_id_for ("N<id>"), or nullopt.
std::optional<std::uint32_t> node_of_user(const std::string& uid) {
    if (uid.size() < 2 || uid.size() > 11 || uid[0] != 'N') return std::nullopt;
    std::uint64_t v = 0;
    for (std::size_t i = 1; i < uid.size(); ++i) {
        if (uid[i] < '0' || uid[i] > '9') return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(uid[i] - '0');
    }
    if (v > UINT32_MAX) return std::nullopt;
    return static_cast<std::uint32_t>(v);
}

class Mesh final : public detail::PumpedTransport<MeshTransport> {
public:
    Mesh(zmq::context_t& ctx, const MeshSpec& spec)
        : spec_(spec), inbox_(ctx, zmq::socket_type::router), outbox_(ctx, zmq::socket_type::router) {
        detail::apply_limits(inbox_, spec.limits);
        detail::apply_limits(outbox_, spec.limits);
        detail::limit_accepted(inbox_, spec.limits, spec.peers.size());  // one per neighbour's outbox
        outbox_.set(zmq::sockopt::router_mandatory, 1);
        if (spec.security) {
            if (spec.bind_endpoint.rfind("inproc://", 0) == 0)
                throw IoError("CURVE security needs tcp or ipc endpoints; inproc is not encrypted");
            if (spec.security->start_zap) zap_ = std::make_unique<ZapHandler>(ctx, allowed_keys(*spec.security));
            inbox_.set(zmq::sockopt::curve_secretkey, spec.security->own.secret_z85);
            inbox_.set(zmq::sockopt::curve_publickey, spec.security->own.public_z85);
            inbox_.set(zmq::sockopt::curve_server, 1);
            inbox_.set(zmq::sockopt::zap_domain, "p2pnode");
            outbox_.set(zmq::sockopt::curve_secretkey, spec.security->own.secret_z85);
            outbox_.set(zmq::sockopt::curve_publickey, spec.security->own.public_z85);
        }
        try {
            inbox_.bind(spec.bind_endpoint);
        } catch (const zmq::error_t& e) {
            throw IoError(fmt::format("node {}: cannot bind {}: {}", spec.self, spec.bind_endpoint, e.what()));
        }
        bound_ = inbox_.get(zmq::sockopt::last_endpoint);
        // Every completed handshake of the outbox (a first connection or a reconnection) is
        // followed by a HELLO, so the peer's inbox knows who this new connection is.
        const std::string watch =
            fmt::format("inproc://p2pnode-outbox-{}-{}", spec.self, reinterpret_cast<std::uintptr_t>(this));
        if (zmq_socket_monitor(outbox_.handle(), watch.c_str(), ZMQ_EVENT_HANDSHAKE_SUCCEEDED) != 0)
            throw IoError(fmt::format("node {}: cannot watch its outbox: {}", spec.self, zmq_strerror(zmq_errno())));
        monitor_ = zmq::socket_t(ctx, zmq::socket_type::pair);
        monitor_.set(zmq::sockopt::linger, 0);
        monitor_.connect(watch);
        for (const auto& [id, endpoint] : spec.peers)
            if (!endpoint.empty()) connect(id, endpoint);
    }

    std::uint32_t self() const override { return spec_.self; }
    const Counters& counters() const override { return counters_; }
    std::string local_endpoint() const override { return bound_; }
    void set_close_linger(std::chrono::milliseconds linger) override {
        inbox_.set(zmq::sockopt::linger, static_cast<int>(linger.count()));
        outbox_.set(zmq::sockopt::linger, static_cast<int>(linger.count()));
    }

    void connect(std::uint32_t id, const std::string& endpoint) override {
        if (!spec_.peers.count(id)) throw IoError(fmt::format("node {}: node {} is not a peer", spec_.self, id));
        if (!connected_.insert(id).second)
            throw IoError(fmt::format("node {}: already connected to node {}", spec_.self, id));
        const auto alias = detail::id_bytes(id);  // our name for the link; the peer never sees it
        outbox_.set(zmq::sockopt::connect_routing_id, zmq::const_buffer(alias.data(), alias.size()));
        if (spec_.security) {  // the far end must hold this peer's secret key
            auto key = spec_.security->public_keys.find(id);
            if (key == spec_.security->public_keys.end())
                throw IoError(fmt::format("node {}: no public key for node {}", spec_.self, id));
            outbox_.set(zmq::sockopt::curve_serverkey, key->second);
        }
        try {
            outbox_.connect(endpoint);
        } catch (const zmq::error_t& e) {
            throw IoError(
                fmt::format("node {}: cannot connect to node {} at {}: {}", spec_.self, id, endpoint, e.what()));
        }
    }

    std::vector<std::uint32_t> wait_ready(const std::vector<std::uint32_t>& peers, Clock::time_point deadline) override {
        auto missing = [&] {
            std::vector<std::uint32_t> out;
            for (auto p : peers)
                if (!acked_.count(p)) out.push_back(p);
            return out;
        };
        auto next_hello = Clock::now();
        while (true) {
            auto left = missing();
            if (left.empty() || Clock::now() >= deadline) return left;
            if (Clock::now() >= next_hello) {
                for (auto p : left) send_control(p, kHello);
                next_hello = Clock::now() + std::chrono::milliseconds(100);
            }
            if (auto m = pump(std::min(deadline, next_hello))) keep_early(std::move(*m), spec_.limits);
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
            if (spec_.peers.count(id) && detail::send_parts(outbox_, parts)) {
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
    Counters& mutable_counters() override { return counters_; }

    void send_control(std::uint32_t peer, char what) {
        const auto rid = detail::id_bytes(peer);
        std::vector<zmq::message_t> parts;
        parts.emplace_back(rid.data(), rid.size());
        parts.push_back(detail::control(what, {spec_.self}));
        detail::send_parts(outbox_, parts);  // not connected yet: the next HELLO will go
    }

    // Once per (kind of trouble, peer): a line in the log.
    void warn_once(const std::string& what, std::uint32_t id, const std::string& line) {
        if (warned_.insert({what, id}).second) spdlog::warn("[Node {}] {}", spec_.self, line);
    }

    // Who sent a message on the inbox, or nullopt (counted).
    std::optional<std::uint32_t> sender(const std::string& route, zmq::message_t& first,
                                        const std::optional<std::pair<char, std::uint32_t>>& claim) {
        if (spec_.security) {
            const auto who = node_of_user(user_id(first));
            if (who && claim && claim->second != *who) {
                ++counters_.dropped_unauthenticated;
                warn_once("impostor", *who, fmt::format("a connection with node {}'s key claims to be node {}; refused",
                                                        *who, claim->second));
                return std::nullopt;
            }
            if (!who || !spec_.peers.count(*who)) {  // ZAP admits only configured keys: a non-neighbour
                ++counters_.dropped_unknown_peer;
                return std::nullopt;
            }
            if (!claim && !heard_.count(*who)) {  // data before HELLO
                ++counters_.dropped_unknown_peer;
                return std::nullopt;
            }
            return who;
        }
        if (!claim) {
            auto it = route_to_node_.find(route);
            if (it == route_to_node_.end()) {
                ++counters_.dropped_unknown_peer;
                return std::nullopt;
            }
            return it->second;
        }
        const std::uint32_t id = claim->second;
        if (!spec_.peers.count(id)) {
            ++counters_.dropped_unknown_peer;
            return std::nullopt;
        }
        if (auto held = node_to_route_.find(id); held != node_to_route_.end() && held->second != route) {
            ++counters_.claims_conflicting;
            warn_once("claim", id,
                      fmt::format("node {} now speaks over a new connection: a reconnection, or, since without "
                                  "CURVE nothing proves who is who, another peer claiming its id; the newer one is "
                                  "heard (each such change is counted)",
                                  id));
            route_to_node_.erase(held->second);
        }
        if (auto old = route_to_node_.find(route); old != route_to_node_.end() && old->second != id)
            node_to_route_.erase(old->second);
        route_to_node_[route] = id;
        node_to_route_[id] = route;
        return id;
    }

    std::optional<Incoming> pump(Clock::time_point deadline) override {
        if (!readable(deadline)) return std::nullopt;
        bool overflow = false;
        if (auto event = detail::recv_parts(monitor_, 2, overflow)) {
            for (const auto& [id, endpoint] : spec_.peers) send_control(id, kHello);
            return std::nullopt;
        }
        // Nothing is ever sent to our outbox; a peer that does is only heard to be ignored.
        if (auto junk = detail::recv_parts(outbox_, 1, overflow)) {
            ++counters_.dropped_malformed;
            return std::nullopt;
        }
        auto parts = detail::recv_parts(inbox_, 3, overflow);
        if (!parts) return std::nullopt;
        if (overflow || parts->size() < 2) {
            ++counters_.dropped_malformed;
            return std::nullopt;
        }
        const std::string route(static_cast<const char*>((*parts)[0].data()), (*parts)[0].size());
        std::optional<std::pair<char, std::uint32_t>> claim;
        if (parts->size() == 2) {
            claim = parse_hello((*parts)[1]);
            if (!claim) {
                ++counters_.dropped_malformed;
                return std::nullopt;
            }
        }
        const auto from = sender(route, (*parts)[1], claim);
        if (!from) return std::nullopt;
        if (claim) {
            heard_.insert(*from);
            if (claim->first == kHello)
                send_control(*from, kAck);  // the peer keeps saying HELLO until it hears this
            else
                acked_.insert(*from);
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

    // Waits until the inbox or the outbox has something, or the deadline.
    bool readable(Clock::time_point deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        zmq::pollitem_t items[3] = {{inbox_.handle(), 0, ZMQ_POLLIN, 0},
                                    {outbox_.handle(), 0, ZMQ_POLLIN, 0},
                                    {monitor_.handle(), 0, ZMQ_POLLIN, 0}};
        try {
            return zmq::poll(items, 3, std::chrono::milliseconds(std::max<long>(0, static_cast<long>(left.count())))) > 0;
        } catch (const zmq::error_t& e) {
            if (e.num() == EINTR) return false;  // a signal (Ctrl-C): the caller checks its stop flag
            throw;
        }
    }

    MeshSpec spec_;
    std::unique_ptr<ZapHandler> zap_;  // before the sockets: destroyed after them
    zmq::socket_t inbox_, outbox_;
    zmq::socket_t monitor_;  // the outbox's handshakes (closed before the outbox)
    std::set<std::uint32_t> connected_;
    std::string bound_;
    std::set<std::uint32_t> heard_;  // said HELLO or ACK on our inbox
    std::set<std::uint32_t> acked_;  // answered our HELLO: ready
    std::map<std::string, std::uint32_t> route_to_node_;  // plaintext: inbox connection -> the id it claimed
    std::map<std::uint32_t, std::string> node_to_route_;
    std::set<std::pair<std::string, std::uint32_t>> warned_;
    Counters counters_;
};

}  // namespace

std::unique_ptr<MeshTransport> make_mesh(zmq::context_t& context, const MeshSpec& spec) {
    return std::make_unique<Mesh>(context, spec);
}

}  // namespace p2p::transport
