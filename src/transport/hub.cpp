#include "p2pnode/transport/hub.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>

#include <fmt/format.h>

#include "p2pnode/errors.hpp"
#include "zmq_util.hpp"

namespace p2p::transport {

namespace {

using detail::control;
using detail::parse_control;

constexpr std::size_t kMaxTargets = 4096;
constexpr std::size_t kMaxWarned = 64;

class HubClient final : public detail::PumpedTransport<> {
public:
    HubClient(zmq::context_t& ctx, const HubSpec& spec) : spec_(spec), socket_(ctx, zmq::socket_type::dealer) {
        detail::apply_limits(socket_, spec.limits);
        if (spec.security) {
            socket_.set(zmq::sockopt::curve_secretkey, spec.security->own.secret_z85);
            socket_.set(zmq::sockopt::curve_publickey, spec.security->own.public_z85);
            socket_.set(zmq::sockopt::curve_serverkey, spec.security->broker_public);
        }
        try {
            socket_.connect(spec.broker_endpoint);
        } catch (const zmq::error_t& e) {
            throw IoError(fmt::format("node {}: cannot connect to the broker at {}: {}", spec.self,
                                      spec.broker_endpoint, e.what()));
        }
    }

    std::uint32_t self() const override { return spec_.self; }
    const Counters& counters() const override { return counters_; }
    void set_close_linger(std::chrono::milliseconds linger) override {
        socket_.set(zmq::sockopt::linger, static_cast<int>(linger.count()));
    }

    std::vector<std::uint32_t> wait_ready(const std::vector<std::uint32_t>& peers, Clock::time_point deadline) override {
        auto next = Clock::now();
        while (true) {
            std::vector<std::uint32_t> missing;
            for (auto p : peers)
                if (!registered_.count(p)) missing.push_back(p);
            if ((accepted_ && missing.empty()) || Clock::now() >= deadline) {
                if (!accepted_) return peers;
                return missing;
            }
            if (Clock::now() >= next) {
                if (!accepted_) send_one(control('H', {spec_.self}));
                if (!missing.empty()) send_one(control('Q', missing));
                next = Clock::now() + std::chrono::milliseconds(100);
            }
            if (auto m = pump(std::min(deadline, next))) keep_early(std::move(*m), spec_.limits);
        }
    }

    std::vector<std::uint32_t> send(const std::vector<std::uint32_t>& to, std::span<const std::byte> header,
                                    std::span<const std::byte> payload) override {
        if (to.empty()) return {};
        std::vector<zmq::message_t> parts;
        parts.push_back(control('M', to));
        parts.emplace_back(header.data(), header.size());
        parts.emplace_back(payload.data(), payload.size());
        keep(to, parts);
        if (!detail::send_parts(socket_, parts)) {
            counters_.send_failures += to.size();
            return to;
        }
        counters_.messages_out += to.size();
        counters_.bytes_out += header.size() + payload.size();
        return {};
    }


private:
    Counters& mutable_counters() override { return counters_; }

    // The last messages sent are kept (their frames shared with the sent ones, not copied): a
    // broker that restarts loses what it held, and a node whose gradient was lost with it would
    // wait for its neighbours' gradients of the round while they wait for its own. In step, a
    // neighbour can lack at most this node's last two gradients (it cannot have finished the
    // round before them), so the last two messages with a payload are kept, and those without
    // one (STOP, BYE) around them, at most kMaxKept in all. When this node registers with
    // a new broker (its ACCEPT carries another start token), or the broker says it dropped what
    // this node sent (it did not know the node, or could not route to a target), each kept
    // message goes again to each of those targets once the broker says the target is registered
    // (asked every 100 ms while any is pending: for a target that never comes back, until the
    // kept message is pushed out by newer ones).
    static constexpr std::size_t kKeptPayloads = 2, kMaxKept = 8;
    struct Kept {
        std::set<std::uint32_t> targets, pending;  // pending: to send again once registered
        std::vector<zmq::message_t> frames;        // header, payload
        bool payload = false;  // a gradient, not a STOP or BYE
    };
    void keep(const std::vector<std::uint32_t>& to, std::vector<zmq::message_t>& parts) {
        Kept& k = kept_.emplace_back();
        k.targets = {to.begin(), to.end()};
        for (std::size_t i = 1; i < parts.size(); ++i) k.frames.emplace_back().copy(parts[i]);
        k.payload = parts.back().size() > 0;
        auto payloads = [&] { return std::count_if(kept_.begin(), kept_.end(), [](const Kept& e) { return e.payload; }); };
        while (kept_.size() > kMaxKept || static_cast<std::size_t>(payloads()) > kKeptPayloads) kept_.pop_front();
    }
    std::vector<std::uint32_t> pending() const {
        std::set<std::uint32_t> all;
        for (const auto& k : kept_) all.insert(k.pending.begin(), k.pending.end());
        return {all.begin(), all.end()};
    }
    // The broker says these ids are registered: the kept messages pending for them go again.
    void registered(const std::vector<std::uint32_t>& ids) {
        for (auto& k : kept_) {
            std::vector<std::uint32_t> to;
            for (auto id : ids)
                if (k.pending.erase(id)) to.push_back(id);
            if (to.empty()) continue;
            std::vector<zmq::message_t> parts;
            parts.push_back(control('M', to));
            for (auto& m : k.frames) parts.emplace_back().copy(m);
            if (detail::send_parts(socket_, parts)) counters_.messages_resent += to.size();
            else k.pending.insert(to.begin(), to.end());  // tried again after the next Q
        }
    }

    void send_one(zmq::message_t m) {
        std::vector<zmq::message_t> parts;
        parts.push_back(std::move(m));
        detail::send_parts(socket_, parts);
    }

    std::optional<Incoming> pump(Clock::time_point deadline) override {
        // Say HELLO again now and then: a restarted broker learns who is connected without
        // waiting for this node to send (its DEALER reconnects by itself).
        if (accepted_ && Clock::now() >= next_hello_) {
            send_one(control('H', {spec_.self}));
            next_hello_ = Clock::now() + std::chrono::seconds(1);
        }
        deadline = std::min(deadline, next_hello_);
        if (accepted_ && !kept_.empty()) {  // kept messages to send again: which of their targets are registered?
            if (auto ids = pending(); !ids.empty()) {
                if (Clock::now() >= next_query_) {
                    send_one(control('Q', ids));
                    next_query_ = Clock::now() + std::chrono::milliseconds(100);
                }
                deadline = std::min(deadline, next_query_);
            }
        }
        if (!detail::wait_readable(socket_, deadline)) return std::nullopt;
        bool overflow = false;
        auto parts = detail::recv_parts(socket_, 3, overflow);
        if (!parts) return std::nullopt;
        const auto c = parse_control((*parts)[0], kMaxTargets);
        if (!c || overflow) {
            ++counters_.dropped_malformed;
            return std::nullopt;
        }
        const auto& [kind, ids] = *c;
        if (kind == 'F' && ids.size() == 1 && parts->size() == 3) {
            Incoming in;
            in.from = ids[0];
            counters_.bytes_in += (*parts)[1].size() + (*parts)[2].size();
            ++counters_.messages_in;
            in.header = Frame(std::move((*parts)[1]));
            in.payload = Frame(std::move((*parts)[2]));
            return in;
        }
        if (kind == 'A' && ids.size() <= 1) {
            accepted_ = true;
            const std::uint32_t start = ids.empty() ? 0 : ids[0];
            if (broker_start_ && *broker_start_ != start)  // a new broker: what the old one held is gone
                for (auto& k : kept_) k.pending = k.targets;
            broker_start_ = start;
        } else if (kind == 'R') {
            throw IoError(fmt::format("node {}: the broker refused the id: another live node holds it, or it is not in the broker's config", spec_.self));
        } else if (kind == 'q') {
            registered_.insert(ids.begin(), ids.end());
            registered(ids);
        } else if (kind == 'P') {  // the broker checking that we are alive: nothing to do
        } else if (kind == 'U') {  // the broker could not route to these: send again once they are back
            counters_.send_failures += ids.size();
            for (auto& k : kept_)
                for (auto id : ids)
                    if (k.targets.count(id)) k.pending.insert(id);
        } else if (kind == 'W') {  // the broker restarted: say who we are again (what we sent was dropped)
            accepted_ = false;
            for (auto& k : kept_) k.pending = k.targets;
            send_one(control('H', {spec_.self}));
        } else {
            ++counters_.dropped_malformed;
        }
        return std::nullopt;
    }

    HubSpec spec_;
    zmq::socket_t socket_;
    bool accepted_ = false;
    Clock::time_point next_hello_ = Clock::now() + std::chrono::seconds(1);
    std::set<std::uint32_t> registered_;
    std::optional<std::uint32_t> broker_start_;  // the broker's start token, from its last ACCEPT
    Clock::time_point next_query_{};
    std::deque<Kept> kept_;                      // the last messages sent, oldest first
    Counters counters_;
};

}  // namespace

std::unique_ptr<Transport> make_hub_client(zmq::context_t& context, const HubSpec& spec) {
    return std::make_unique<HubClient>(context, spec);
}

struct Broker::State {
    State(zmq::context_t& ctx, Spec s) : spec(std::move(s)) {
        if (spec.security && spec.security->start_zap)
            zap = std::make_unique<ZapHandler>(ctx, allowed_keys(*spec.security));
        socket = zmq::socket_t(ctx, zmq::socket_type::router);
    }
    Spec spec;
    std::unique_ptr<ZapHandler> zap;
    zmq::socket_t socket;
    std::map<std::uint32_t, std::string> by_id;     // node id -> routing id
    std::map<std::string, std::uint32_t> by_route;  // routing id -> node id
    std::set<std::uint32_t> registered_once;        // every id that registered (exit_when_done)
    // Each warning once per id (until it no longer holds), and at most kMaxWarned ids of a kind:
    // a peer naming random ids gets a few lines, then only the counters grow.
    std::set<std::uint32_t> warned;                 // unroutable targets already logged (until routed again)
    std::set<std::uint32_t> warned_full;            // targets with a full queue already logged
    std::set<std::uint32_t> warned_claims;          // ids outside the config already logged
    std::set<std::uint32_t> warned_second;          // ids whose second claims were logged
    std::set<std::uint32_t> warned_keys;            // ids claimed by another node's key, logged
    std::set<std::uint32_t> warned_repeats;         // senders of repeated targets already logged
    std::map<std::uint32_t, std::map<std::uint32_t, int>> in_flight;  // target -> sender -> routed since it last sent
    std::set<std::pair<std::uint32_t, std::uint32_t>> warned_share;   // (sender, target) already logged
    std::map<std::string, Clock::time_point> refused_at;  // claiming route -> when a ping last found the holder live
    BrokerStats stats;
    // Told to every node in each ACCEPT: a node that sees another value knows the broker restarted.
    std::uint32_t start_token = std::random_device{}();
};

Broker::Broker(zmq::context_t& context, Spec spec) : state_(std::make_unique<State>(context, std::move(spec))) {
    detail::apply_limits(state_->socket, state_->spec.limits);
    if (!state_->spec.ids.empty()) detail::limit_accepted(state_->socket, state_->spec.limits, state_->spec.ids.size());
    state_->socket.set(zmq::sockopt::router_mandatory, 1);
    if (const auto& sec = state_->spec.security) {
        if (state_->spec.bind_endpoint.rfind("inproc://", 0) == 0)
            throw IoError("CURVE security needs tcp or ipc endpoints; inproc is not encrypted");
        state_->socket.set(zmq::sockopt::curve_secretkey, sec->own.secret_z85);
        state_->socket.set(zmq::sockopt::curve_publickey, sec->own.public_z85);
        state_->socket.set(zmq::sockopt::curve_server, 1);
        state_->socket.set(zmq::sockopt::zap_domain, "p2pnode");
    }
    try {
        state_->socket.bind(state_->spec.bind_endpoint);
    } catch (const zmq::error_t& e) {
        throw IoError(fmt::format("broker: cannot bind {}: {}", state_->spec.bind_endpoint, e.what()));
    }
}

Broker::~Broker() = default;

std::string Broker::endpoint() const { return state_->socket.get(zmq::sockopt::last_endpoint); }

BrokerStats Broker::stats() const {
    BrokerStats s = state_->stats;
    s.nodes = state_->by_id.size();
    return s;
}

void Broker::run(const std::function<bool()>& stop, const std::function<void(const std::string&)>& log) {
    State& st = *state_;
    auto reply = [&](const std::string& route, zmq::message_t m) {
        std::vector<zmq::message_t> parts;
        parts.emplace_back(route.data(), route.size());
        parts.push_back(std::move(m));
        return detail::send_parts(st.socket, parts);
    };
    // Forgets registrations whose connection is gone, so the status counts live nodes only.
    auto prune = [&] {
        for (auto it = st.by_id.begin(); it != st.by_id.end();) {
            std::vector<zmq::message_t> ping;
            ping.emplace_back(it->second.data(), it->second.size());
            ping.push_back(control('P'));
            if (detail::try_send_parts(st.socket, ping) == detail::SendResult::Unreachable) {
                st.by_route.erase(it->second);
                it = st.by_id.erase(it);
            } else {
                ++it;
            }
        }
    };
    auto next_status = Clock::now() + st.spec.status_every;
    auto next_check = Clock::now() + std::chrono::seconds(1);
    while (!stop()) {
        if (st.spec.exit_when_done && !st.spec.ids.empty() && Clock::now() >= next_check) {
            if (st.registered_once.size() == st.spec.ids.size()) {
                prune();
                if (st.by_id.empty()) {
                    log(fmt::format("broker: all {} nodes registered and left; stopping", st.registered_once.size()));
                    return;
                }
            }
            next_check = Clock::now() + std::chrono::seconds(1);
        }
        if (Clock::now() >= next_status) {
            prune();
            const auto s = stats();
            log(fmt::format("broker: {} nodes connected, {} messages and {} bytes routed, {} unroutable, {} from "
                            "unknown senders, {} malformed, {} to full queues, {} repeated targets, {} over a sender's share",
                            s.nodes, s.messages_routed, s.bytes_routed, s.dropped_unroutable, s.dropped_unknown_sender,
                            s.dropped_malformed, s.dropped_queue_full, s.targets_repeated, s.dropped_over_share));
            next_status = Clock::now() + st.spec.status_every;
        }
        if (!detail::wait_readable(st.socket, Clock::now() + std::chrono::milliseconds(100))) continue;
        bool overflow = false;
        auto parts = detail::recv_parts(st.socket, 4, overflow);
        if (!parts || parts->size() < 2) {
            ++st.stats.dropped_malformed;
            continue;
        }
        const std::string route(static_cast<const char*>((*parts)[0].data()), (*parts)[0].size());
        const auto c = parse_control((*parts)[1], kMaxTargets);
        if (!c || overflow) {
            ++st.stats.dropped_malformed;
            continue;
        }
        const auto& [kind, ids] = *c;
        if (kind == 'H' && ids.size() == 1 && parts->size() == 2) {
            const std::uint32_t id = ids[0];
            if (!st.spec.ids.empty() && !st.spec.ids.count(id)) {
                ++st.stats.claims_outside_config;
                if (st.warned_claims.size() < kMaxWarned && st.warned_claims.insert(id).second)
                    log(fmt::format("broker: refused a claim to node id {}, which is not in the config", id));
                reply(route, control('R'));
                continue;
            }
            if (st.spec.security && user_id((*parts)[1]) != user_id_for(id)) {
                // a valid key claiming another node's id
                ++st.stats.claims_refused;
                if (st.warned_keys.size() < kMaxWarned && st.warned_keys.insert(id).second)
                    log(fmt::format("broker: refused a claim to node id {} by a key that is not node {}'s (further "
                                    "ones are counted, not logged)",
                                    id, id));
                reply(route, control('R'));
                continue;
            }
            auto held = st.by_id.find(id);
            if (held != st.by_id.end() && held->second != route) {
                // A live holder keeps its id (even a busy one with a full queue); a gone one
                // (its pipe closed) is replaced. A claimer refused within the last second is
                // refused again without another ping: a storm of claims must not fill the
                // holder's queue with pings, or the broker would drop its neighbours' gradients
                // to it as to a full queue. A new connection (the holder itself, reconnected)
                // is always checked with a ping.
                const auto now = Clock::now();
                auto refused = st.refused_at.find(route);
                const bool recent = refused != st.refused_at.end() && now < refused->second + std::chrono::seconds(1);
                bool live = recent;
                if (!recent) {
                    std::vector<zmq::message_t> ping;
                    ping.emplace_back(held->second.data(), held->second.size());
                    ping.push_back(control('P'));
                    live = detail::try_send_parts(st.socket, ping) != detail::SendResult::Unreachable;
                    if (live) {
                        if (st.refused_at.size() >= 4 * kMaxWarned) st.refused_at.clear();  // bounded
                        st.refused_at[route] = now;
                    }
                }
                if (live) {
                    ++st.stats.claims_refused;
                    if (st.warned_second.size() < kMaxWarned && st.warned_second.insert(id).second)
                        log(fmt::format("broker: refused a second claim to node id {} (its holder is live; further "
                                        "claims to it are counted, not logged)",
                                        id));
                    reply(route, control('R'));
                    continue;
                }
                st.by_route.erase(held->second);
            }
            if (auto old = st.by_route.find(route); old != st.by_route.end() && old->second != id) {
                st.by_id.erase(old->second);  // the same connection re-registers under a new id
            }
            st.by_id[id] = route;
            st.by_route[route] = id;
            st.registered_once.insert(id);
            st.warned.erase(id);
            reply(route, control('A', {st.start_token}));
            continue;
        }
        auto sender = st.by_route.find(route);
        if (sender == st.by_route.end()) {
            ++st.stats.dropped_unknown_sender;
            reply(route, control('W'));
            continue;
        }
        if (kind == 'Q' && parts->size() == 2) {
            std::vector<std::uint32_t> known;
            for (auto id : ids)
                if (st.by_id.count(id)) known.push_back(id);
            reply(route, control('q', known));
        } else if (kind == 'M' && parts->size() == 4) {
            const std::size_t size = (*parts)[2].size() + (*parts)[3].size();
            st.in_flight.erase(sender->second);  // the sender is going on: its queue is being read
            // Each target once: a sender naming a victim many times gets one copy through.
            std::set<std::uint32_t> targets;
            std::size_t repeated = 0;
            for (auto target : ids) repeated += !targets.insert(target).second;
            if (repeated) {
                st.stats.targets_repeated += repeated;
                if (st.warned_repeats.size() < kMaxWarned && st.warned_repeats.insert(sender->second).second)
                    log(fmt::format("broker: node {} named the same target {} extra time(s) in one message; each target "
                                    "gets it once",
                                    sender->second, repeated));
            }
            std::vector<std::uint32_t> unroutable;
            for (auto target : targets) {
                auto to = st.by_id.find(target);
                if (to == st.by_id.end()) {  // no entry for it: a sender naming random ids costs nothing
                    unroutable.push_back(target);
                    continue;
                }
                int& used = st.in_flight[target][sender->second];
                if (used >= st.spec.share_per_sender) {
                    ++st.stats.dropped_over_share;
                    if (st.warned_share.size() < kMaxWarned && st.warned_share.insert({sender->second, target}).second)
                        log(fmt::format("broker: node {} sent node {} more than its share ({} messages since node {} last "
                                        "sent); dropping the rest until it does",
                                        sender->second, target, st.spec.share_per_sender, target));
                    continue;
                }
                std::vector<zmq::message_t> out;
                out.emplace_back(to->second.data(), to->second.size());
                out.push_back(control('F', {sender->second}));
                out.emplace_back();
                out.back().copy((*parts)[2]);
                out.emplace_back();
                out.back().copy((*parts)[3]);
                const auto result = detail::try_send_parts(st.socket, out);
                if (result == detail::SendResult::Sent) {
                    ++used;  // only what reached its queue counts against the share
                    ++st.stats.messages_routed;
                    st.stats.bytes_routed += size;
                    st.warned.erase(target);
                    st.warned_full.erase(target);
                } else if (result == detail::SendResult::Full) {
                    ++st.stats.dropped_queue_full;
                    if (st.warned_full.size() < kMaxWarned && st.warned_full.insert(target).second)
                        log(fmt::format("broker: node {}'s queue is full (it is not reading); dropping messages to it "
                                        "until it reads (last from node {})",
                                        target, sender->second));
                } else {  // its connection is gone: forget it (as prune() does), so a Q is told the truth
                    st.by_route.erase(to->second);
                    st.by_id.erase(to);
                    st.in_flight.erase(target);
                    unroutable.push_back(target);
                }
            }
            if (!unroutable.empty()) {
                st.stats.dropped_unroutable += unroutable.size();
                reply(route, control('U', unroutable));  // the sender keeps its message for when they are back
                for (auto target : unroutable)
                    if (st.warned.size() < kMaxWarned && st.warned.insert(target).second)
                        log(fmt::format("broker: cannot route to node {} (not connected); dropping its messages",
                                        target));
            }
        } else {
            ++st.stats.dropped_malformed;
        }
    }
}

}  // namespace p2p::transport
