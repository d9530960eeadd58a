// A hostile peer with a raw ZeroMQ socket, playing the config's Byzantine node 2, sends
// garbage while honest nodes 0 and 1 train (threads of this process, mesh over ipc). Every
// honest node keeps training and finishes; its counters say what it rejected and why; the
// process's resident memory stays bounded.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include "p2pnode/errors.hpp"
#include "p2pnode/launch/cluster.hpp"
#include "p2pnode/launch/wiring.hpp"
#include "p2pnode/node/checkpoint.hpp"
#include "p2pnode/node/settings.hpp"
#include "p2pnode/transport/mesh.hpp"
#include "p2pnode/wire/envelope.hpp"
#include "support.hpp"

using namespace p2p;
using namespace std::chrono_literals;

namespace {

// VmRSS (or with "VmHWM:", the peak since the last reset_peak) of this process, in KiB.
long resident_kib(const std::string& which = "VmRSS:") {
    std::ifstream in("/proc/self/status");
    std::string key;
    long value = 0;
    while (in >> key) {
        if (key == which) {
            in >> value;
            return value;
        }
        std::getline(in, key);
    }
    return 0;
}

zmq::message_t bytes(const std::vector<std::byte>& v) { return zmq::message_t(v.data(), v.size()); }

std::vector<std::byte> grad_header(std::uint32_t from, std::uint64_t round, std::uint32_t dim) {
    wire::Header h;
    h.kind = wire::Kind::Grad;
    h.from = from;
    h.round = round;
    h.dim = dim;
    return wire::encode_header(h);
}

// One volley of hostile messages for round r, each as [header][payload] (or other frames), sent
// through `send`, starting at a different kind each iteration (the broker routes only a
// sender's share to a target between the target's own messages); `iteration` also varies the
// far-future rounds.
template <class Send>
void volley(Send&& send_now, std::uint64_t r, std::uint64_t iteration, bool huge) {
    std::vector<std::vector<zmq::message_t>> all;
    auto send = [&](std::vector<zmq::message_t> frames) { all.push_back(std::move(frames)); };
    const std::uint32_t dim = static_cast<std::uint32_t>(nn::kSmallCnnParams);
    static const std::vector<float> small(nn::kSmallCnnParams, 0.001f);
    static const std::vector<float> nans(nn::kSmallCnnParams, std::numeric_limits<float>::quiet_NaN());
    auto payload = [](const std::vector<float>& v) { return zmq::message_t(v.data(), v.size() * sizeof(float)); };
    auto two = [](zmq::message_t a, zmq::message_t b) {
        std::vector<zmq::message_t> v;
        v.push_back(std::move(a));
        v.push_back(std::move(b));
        return v;
    };
    send(two(zmq::message_t("\x93garbage", 8), zmq::message_t("junk", 4)));  // garbage bytes
    auto h = grad_header(2, r, dim);
    h.resize(h.size() / 2);
    send(two(bytes(h), payload(small)));                                                       // truncated header
    send(two(bytes(grad_header(2, r, 5)), zmq::message_t(small.data(), 5 * sizeof(float))));  // wrong dim
    send(two(bytes(grad_header(2, r, dim)), payload(nans)));                                  // NaN payload
    send(two(zmq::message_t("\xdd\xff\xff\xff\xff", 5), zmq::message_t()));              // 2^32-element claim
    send(two(bytes(grad_header(2, r + 5, dim)), payload(small)));                             // beyond the future window
    send(two(bytes(grad_header(2, r + 1000 + iteration, dim)), payload(small)));              // beyond the run
    send(two(bytes(grad_header(1, r, dim)), payload(small)));                                 // claims node 1
    for (int dup = 0; dup < 2; ++dup) send(two(bytes(grad_header(2, r, dim)), payload(small)));  // duplicates
    if (huge) {  // beyond ZMQ_MAXMSGSIZE: libzmq drops the connection, which reconnects
        std::vector<float> big((17u << 20) / sizeof(float), 1.0f);
        send(two(bytes(grad_header(2, r, dim)), payload(big)));
    }
    for (std::size_t i = 0; i < all.size(); ++i) send_now(std::move(all[(i + iteration) % all.size()]));
}

// `duplicates`: whether both copies of a duplicate can reach the node (in the hub the broker
// routes only a few of a sender's messages to a target between the target's own messages).
void check_rejections(const std::map<std::uint32_t, node::NodeResult>& results, int rounds, bool duplicates = true) {
    REQUIRE(results.size() == 2);
    for (std::uint32_t id : {0u, 1u}) {
        CAPTURE(id);
        const auto& r = results.at(id);
        CHECK(r.rounds_done == rounds);
        for (const char* reason : {"malformed", "wrong_dim", "non_finite", "too_far_ahead", "beyond_run", "from_mismatch", "duplicate"}) {
            CAPTURE(std::string(reason));
            if (!duplicates && std::string(reason) == "duplicate") continue;
            CHECK(r.rejected.count(reason) == 1);
            if (r.rejected.count(reason)) CHECK(r.rejected.at(reason) > 0);
        }
    }
}

// Nodes 0 and 1 honest, node 2 Byzantine (played by the test), 12 quick rounds over ipc.
struct Setup {
    NodesConfig cfg;
    Experiment choice;
    launch::ClusterOptions options;
};

Setup hostile_setup(const p2p::test::TempDir& dir, int port) {
    Setup s;
    s.cfg = parse_nodes_config(fmt::format("nodes:\n  - {{id: 0, host: 127.0.0.1, port: {}, type: honest}}\n"
                                           "  - {{id: 1, host: 127.0.0.1, port: {}, type: honest}}\n"
                                           "  - {{id: 2, host: 127.0.0.1, port: {}, type: byzantine}}\n",
                                           port, port + 1, port + 2),
                               "hostile.yaml");
    s.choice.training.rounds = 12;
    s.choice.training.batch_size = 16;
    s.choice.training.eval_every = 1000;
    s.choice.outputs.metrics_dir = "";
    s.choice.timeouts.round = 0.3;
    s.choice.timeouts.startup = 5.0;
    s.options.scheme = transport::Scheme::Ipc;
    s.options.ipc_dir = dir.path().string();
    s.options.only = {0, 1};
    return s;
}

// What most of these tests start from: quiet logs, and a small data set written and loaded.
struct Harness {
    p2p::test::TempDir dir;
    std::shared_ptr<const data::MnistData> data;
    Harness() {
        spdlog::set_level(spdlog::level::err);
        p2p::test::write_set(dir, 256, false);
        data = data::load_mnist_data(dir.path().string());
    }
    ~Harness() { spdlog::set_level(spdlog::level::info); }
};

// A mesh node expecting node 1 and a broker for nodes 0-4, over loopback tcp with the run's
// limits, each read by its own thread: what the memory tests attack.
struct Targets {
    zmq::context_t ctx;
    std::unique_ptr<transport::MeshTransport> mesh;
    std::unique_ptr<transport::Broker> broker;
    std::atomic<bool> stop{false};
    std::thread routing, pumping;

    Targets() {
        const auto limits = launch::limits_for(Experiment{}, 5);
        transport::MeshSpec ms;
        ms.self = 0;
        ms.bind_endpoint = "tcp://127.0.0.1:*";
        ms.peers[1] = "";
        ms.limits = limits;
        mesh = transport::make_mesh(ctx, ms);
        transport::Broker::Spec bs;
        bs.bind_endpoint = "tcp://127.0.0.1:*";
        bs.status_every = std::chrono::hours(1);
        bs.limits = limits;
        bs.ids = {0, 1, 2, 3, 4};
        broker = std::make_unique<transport::Broker>(ctx, bs);
        routing = std::thread([this] { broker->run([this] { return stop.load(); }, [](const std::string&) {}); });
        pumping = std::thread([this] {
            while (!stop) mesh->receive(transport::Clock::now() + std::chrono::milliseconds(50));
        });
    }
    ~Targets() {
        stop = true;
        pumping.join();
        routing.join();
    }
    // The two tcp ports to attack: the mesh inbox's and the broker's.
    std::vector<int> ports() const {
        std::vector<int> out;
        for (const std::string& at : {mesh->local_endpoint(), broker->endpoint()})
            out.push_back(std::stoi(at.substr(at.rfind(':') + 1)));
        return out;
    }
};

// A raw ZeroMQ peer playing node `as` over plaintext ipc: one ROUTER connected to the inboxes
// of `to`, saying HELLO and ACK as `as` on request.
struct RawPeer {
    zmq::context_t ctx;
    zmq::socket_t s{ctx, zmq::socket_type::router};
    std::uint32_t as;
    std::vector<std::uint32_t> to;

    RawPeer(const p2p::test::TempDir& dir, int base_port, std::uint32_t as_id, std::vector<std::uint32_t> peers)
        : as(as_id), to(std::move(peers)) {
        s.set(zmq::sockopt::router_mandatory, 0);
        s.set(zmq::sockopt::linger, 0);
        s.set(zmq::sockopt::sndhwm, 16);  // the attacker's own queue, in this process, stays small too
        for (std::uint32_t peer : to) {
            const char rid[5] = {'N', static_cast<char>(peer), 0, 0, 0};
            s.set(zmq::sockopt::connect_routing_id, zmq::const_buffer(rid, 5));
            s.connect(transport::endpoint_for(transport::Scheme::Ipc, "127.0.0.1", base_port + static_cast<int>(peer),
                                              dir.path().string()));
        }
    }
    void send(std::uint32_t peer, std::vector<zmq::message_t> frames) {
        const char rid[5] = {'N', static_cast<char>(peer), 0, 0, 0};
        s.send(zmq::const_buffer(rid, 5), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        for (std::size_t i = 0; i < frames.size(); ++i)
            s.send(frames[i], (i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none) |
                                  zmq::send_flags::dontwait);
    }
    // HELLO and ACK as `as` to every peer: it is then ready for them.
    void announce() {
        for (std::uint32_t peer : to)
            for (char kind : {'H', 'A'}) {
                const char c[5] = {kind, static_cast<char>(as), 0, 0, 0};
                std::vector<zmq::message_t> f;
                f.emplace_back(c, 5);
                send(peer, std::move(f));
            }
    }
    // A decodable, finite gradient for `round`.
    void grad(std::uint32_t peer, std::uint64_t round) {
        static const std::vector<float> small(nn::kSmallCnnParams, 0.001f);
        std::vector<zmq::message_t> f;
        f.push_back(bytes(grad_header(as, round, static_cast<std::uint32_t>(small.size()))));
        f.emplace_back(small.data(), small.size() * sizeof(float));
        send(peer, std::move(f));
    }
    // Paces the attack: waits at most `ms` on the socket, draining what arrives.
    void pace(std::chrono::milliseconds ms) {
        zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, ms) > 0) {
            zmq::message_t m;
            while (s.recv(m, zmq::recv_flags::dontwait)) {
            }
        }
    }
};

// `n` nodes on loopback from `base_port` (node `byzantine` Byzantine, -1: none) on an
// Erdos-Renyi graph redrawn every round with p = 1: everyone is linked every round, yet the
// graph is time-varying, so its flood bound (n - 1) is the rounds window.
void on_redrawn_complete(Setup& s, int n, int base_port, int byzantine = -1) {
    std::string text = "nodes:\n";
    for (int i = 0; i < n; ++i)
        text += fmt::format("  - {{id: {}, host: 127.0.0.1, port: {}{}}}\n", i, base_port + i,
                            i == byzantine ? ", type: byzantine" : "");
    s.cfg = parse_nodes_config(text, "redrawn.yaml");
    s.choice.topology.type = "erdos-renyi";
    s.choice.topology.p = 1.0;
    s.choice.topology.every = 1;
}

// A raw peer's own inbox: a ROUTER bound where node `as` listens, so the nodes' gradients to it
// arrive here.
zmq::socket_t inbox_of(RawPeer& peer, const p2p::test::TempDir& dir, int base_port) {
    zmq::socket_t inbox(peer.ctx, zmq::socket_type::router);
    inbox.set(zmq::sockopt::linger, 0);
    inbox.bind(transport::endpoint_for(transport::Scheme::Ipc, "127.0.0.1", base_port + static_cast<int>(peer.as),
                                       dir.path().string()));
    return inbox;
}

// The gradients that reached `inbox` (waiting at most `wait` for the first), as (sender, round).
std::vector<std::pair<std::uint32_t, std::uint64_t>> gradients_on(zmq::socket_t& inbox, std::chrono::milliseconds wait) {
    std::vector<std::pair<std::uint32_t, std::uint64_t>> out;
    zmq::pollitem_t item{inbox.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, wait) <= 0) return out;
    std::vector<zmq::message_t> frames;
    while (zmq::recv_multipart(inbox, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        if (frames.size() == 3) {  // [routing id][header][payload]
            try {
                const auto m = wire::decode(std::span(static_cast<const std::byte*>(frames[1].data()), frames[1].size()),
                                            std::span(static_cast<const std::byte*>(frames[2].data()), frames[2].size()));
                if (m.header.kind == wire::Kind::Grad) out.emplace_back(m.header.from, m.header.round);
            } catch (const ProtocolError&) {
            }
        }
        frames.clear();
    }
    return out;
}

// Runs the cluster in a thread while `attack()` is called until it is done.
template <class Attack>
std::map<std::uint32_t, node::NodeResult> under_attack(const Setup& s, const data::MnistData& data, Attack&& attack) {
    std::map<std::uint32_t, node::NodeResult> results;
    std::atomic<bool> done{false};
    std::exception_ptr failure;
    std::thread cluster([&] {
        try {
            results = launch::run_threads(s.cfg, s.choice, s.options, data);
        } catch (...) {
            failure = std::current_exception();
        }
        done = true;
    });
    std::uint64_t iteration = 0;
    while (!done) attack(++iteration);
    cluster.join();
    if (failure) std::rethrow_exception(failure);
    return results;
}

}  // namespace

TEST_CASE("hostile peer in the hub: the broker and the clients drop, count and go on") {
    Harness h;
    auto& dir = h.dir;
    auto& data = h.data;
    auto [cfg, c, o] = hostile_setup(dir, 19600);
    const int rounds = c.training.rounds;
    o.pattern = launch::Pattern::Hub;
    o.broker_port = 19699;
    transport::BrokerStats stats;
    o.broker_stats = &stats;
    std::map<std::uint32_t, node::NodeResult> results;
    std::atomic<bool> done{false};
    std::exception_ptr failure;
    std::thread cluster([&] {
        try {
            results = launch::run_threads(cfg, c, o, *data);
        } catch (...) {
            failure = std::current_exception();
        }
        done = true;
    });
    zmq::context_t ctx;
    const std::string broker = transport::endpoint_for(transport::Scheme::Ipc, "127.0.0.1", 19699, dir.path().string());
    zmq::socket_t s(ctx, zmq::socket_type::dealer);  // plays node 2
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::sndhwm, 16);
    s.connect(broker);
    zmq::socket_t thief(ctx, zmq::socket_type::dealer);  // claims live node 0's id
    thief.set(zmq::sockopt::linger, 0);
    thief.connect(broker);
    auto control = [](char kind, std::uint32_t id) {  // a hub control frame: kind + one id
        zmq::message_t m(5);
        auto* p = static_cast<unsigned char*>(m.data());
        p[0] = static_cast<unsigned char>(kind);
        std::memcpy(p + 1, &id, 4);
        return m;
    };
    auto hello = [&](std::uint32_t id) { return control('H', id); };
    const unsigned char to_both[9] = {'M', 0, 0, 0, 0, 1, 0, 0, 0};
    std::uint64_t iteration = 0, volleys = 0;
    bool node0_live = false;  // the thief claims node 0's id once node 0 is registered and training
    // The broker passes node 2 only a share of messages for a target until the target sends
    // again, so a volley is sent right after node 0's gradient reaches node 2 (the share has just
    // been renewed and no earlier volley is still in flight), for node 0's round, starting six
    // kinds on from the last volley: two volleys in a row bring every kind within the share.
    std::uint64_t node0_round = 0;  // of the gradient from node 0 not yet answered (0: none)
    while (!done) {
        ++iteration;
        s.send(hello(2), zmq::send_flags::dontwait);  // HELLO storm (and registration)
        if (node0_live) thief.send(hello(0), zmq::send_flags::dontwait);
        else s.send(control('Q', 0), zmq::send_flags::dontwait);  // is node 0 registered?
        s.send(zmq::str_buffer("\x01\x02\x03"), zmq::send_flags::dontwait);  // not a control frame
        if (node0_round > 0) {
            volley(
                [&](std::vector<zmq::message_t> frames) {
                    s.send(zmq::const_buffer(to_both, 9), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
                    for (std::size_t i = 0; i < frames.size(); ++i)
                        s.send(frames[i], (i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none) |
                                              zmq::send_flags::dontwait);
                },
                node0_round, 6 * volleys, volleys % 4 == 3);
            ++volleys;
            node0_round = 0;
        }
        zmq::pollitem_t items[2] = {{s.handle(), 0, ZMQ_POLLIN, 0}, {thief.handle(), 0, ZMQ_POLLIN, 0}};
        if (zmq::poll(items, 2, 20ms) > 0) {  // pace on replies, draining both
            // a message forwarded from node 0 ([F 0][header][payload]), or the broker's answer
            // that node 0 is registered
            std::vector<zmq::message_t> parts;
            while (zmq::recv_multipart(s, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
                if (!parts.empty() && parts[0].size() == 5 && std::memcmp(parts[0].data(), "q\0\0\0\0", 5) == 0)
                    node0_live = true;
                if (parts.size() == 3 && parts[0].size() == 5 && std::memcmp(parts[0].data(), "F\0\0\0\0", 5) == 0) {
                    node0_live = true;
                    try {
                        auto m = wire::decode({static_cast<const std::byte*>(parts[1].data()), parts[1].size()},
                                              {static_cast<const std::byte*>(parts[2].data()), parts[2].size()});
                        if (m.header.kind == wire::Kind::Grad) node0_round = m.header.round;
                    } catch (const ProtocolError&) {
                    }
                }
                parts.clear();
            }
            zmq::message_t m;
            while (thief.recv(m, zmq::recv_flags::dontwait)) {
            }
        }
    }
    cluster.join();
    if (failure) std::rethrow_exception(failure);
    check_rejections(results, rounds, false);
    // No round waited out the 30 s hard timeout (the wait of all rounds together is less than
    // half of it): the thief's storm of claims to node 0's id
    // costs node 0 a ping a second, so its queue stays free for node 1's gradients (before, the
    // pings filled it and the broker dropped a gradient to it, about one run in three).
    for (const auto& [id, r] : results) {
        CAPTURE(id);
        CHECK(r.seconds_wait < 15.0);
    }
    CHECK(stats.dropped_over_share > 0);  // the flood was cut to its share
    CHECK(resident_kib() < 800 * 1024);  // broker, two nodes and the attacker, all in this process
    CHECK(stats.dropped_malformed > 0);
    CHECK(stats.claims_refused > 0);
    MESSAGE("broker: " << stats.messages_routed << " routed, " << stats.dropped_malformed << " malformed, "
                       << stats.claims_refused << " claims refused; honest node 0 rejected "
                       << results.at(0).rejected.size() << " kinds");
}

TEST_CASE("hostile peer: garbage, lies and floods are dropped and counted; honest nodes finish") {
    Harness h;
    auto& dir = h.dir;
    auto& data = h.data;
    auto [cfg, c, o] = hostile_setup(dir, 19500);
    const int rounds = c.training.rounds;

    const long rss_before = resident_kib();
    std::map<std::uint32_t, node::NodeResult> results;
    std::atomic<bool> done{false};
    std::thread cluster([&] {
        results = launch::run_threads(cfg, c, o, *data);
        done = true;
    });

    // The hostile node 2: connects to 0 and 1 as the config says node 2 would.
    RawPeer peer2(dir, 19500, 2, {0, 1});
    std::uint64_t iteration = 0;
    while (!done) {
        ++iteration;
        peer2.announce();  // HELLO and ACK storm, as node 2
        for (std::uint32_t peer : {0u, 1u})
            volley([&](std::vector<zmq::message_t> frames) { peer2.send(peer, std::move(frames)); },
                   1 + iteration % rounds, iteration, iteration % 50 == 0);
        peer2.pace(20ms);
    }
    cluster.join();
    const long rss_after = resident_kib();
    check_rejections(results, rounds);
    MESSAGE("hostile iterations " << iteration << ", resident memory " << rss_before / 1024 << " -> " << rss_after / 1024
                                  << " MiB");
    // Bounded: two models, the data, and ZeroMQ queues capped by the high-water marks; nothing
    // allocated on the word of the peer.
    CHECK(rss_after < 800 * 1024);
}

// Issue 19, item 2: a peer holding node 3's valid CURVE key connects to node 1 first,
// presenting node 2's routing id and saying it is node 2. Nodes 1 and 2 must still hear each
// other every round (their models equal those of a run without the impostor), the impostor
// must receive nothing, and node 1 must count the refused claim.
TEST_CASE("hostile insider with CURVE: a valid key claiming another node's id hijacks nothing") {
    Harness h;
    auto& dir = h.dir;
    auto& data = h.data;
    const int port = 19540;
    Setup s;
    s.cfg = parse_nodes_config(fmt::format("nodes:\n  - {{id: 0, host: 127.0.0.1, port: {}, type: honest}}\n"
                                           "  - {{id: 1, host: 127.0.0.1, port: {}, type: honest}}\n"
                                           "  - {{id: 2, host: 127.0.0.1, port: {}, type: honest}}\n"
                                           "  - {{id: 3, host: 127.0.0.1, port: {}, type: byzantine}}\n",
                                           port, port + 1, port + 2, port + 3),
                               "insider.yaml");
    s.choice.training.rounds = 8;
    s.choice.training.batch_size = 16;
    s.choice.training.eval_every = 1000;
    s.choice.outputs.metrics_dir = "";
    s.choice.timeouts.round = 10.0;  // nodes that are up always arrive in time: the run is deterministic
    s.choice.timeouts.startup = 3.0;  // node 3 never comes
    s.options.scheme = transport::Scheme::Ipc;
    s.options.ipc_dir = dir.path().string();
    for (std::uint32_t id = 0; id < 4; ++id) s.options.keys[id] = transport::generate_keys();
    auto run = [&](std::vector<std::uint32_t> only) {
        auto o = s.options;
        o.only = std::move(only);
        return launch::run_threads(s.cfg, s.choice, o, *data);
    };
    const auto clean = run({0, 1, 2});

    // Nodes 0 and 1 start; the impostor connects to node 1 before node 2 exists.
    std::map<std::uint32_t, node::NodeResult> first, second;
    std::atomic<bool> done{false};
    std::thread a([&] {
        first = run({0, 1});
        done = true;
    });
    zmq::context_t ctx;
    zmq::socket_t imp(ctx, zmq::socket_type::router);
    const char as_two[5] = {'N', 2, 0, 0, 0}, to_one[5] = {'N', 1, 0, 0, 0};
    imp.set(zmq::sockopt::routing_id, zmq::const_buffer(as_two, 5));
    imp.set(zmq::sockopt::connect_routing_id, zmq::const_buffer(to_one, 5));
    imp.set(zmq::sockopt::curve_secretkey, s.options.keys[3].secret_z85);
    imp.set(zmq::sockopt::curve_publickey, s.options.keys[3].public_z85);
    imp.set(zmq::sockopt::curve_serverkey, s.options.keys[1].public_z85);
    imp.set(zmq::sockopt::linger, 0);
    REQUIRE(zmq_socket_monitor(imp.handle(), "inproc://impostor-monitor", ZMQ_EVENT_HANDSHAKE_SUCCEEDED) == 0);
    zmq::socket_t monitor(ctx, zmq::socket_type::pair);
    monitor.connect("inproc://impostor-monitor");
    imp.connect(transport::endpoint_for(transport::Scheme::Ipc, "127.0.0.1", port + 1, dir.path().string()));
    zmq::pollitem_t watch{monitor.handle(), 0, ZMQ_POLLIN, 0};
    REQUIRE(zmq::poll(&watch, 1, 20s) == 1);  // the CURVE handshake with node 1 succeeded
    std::thread b([&] { second = run({2}); });
    std::uint64_t received = 0;
    while (!done) {
        for (const char* claim : {"H\x02\0\0\0", "A\x02\0\0\0", "H"}) {  // "I am node 2", old and new HELLO
            imp.send(zmq::const_buffer(to_one, 5), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
            imp.send(zmq::const_buffer(claim, claim[1] ? 5 : 1), zmq::send_flags::dontwait);
        }
        zmq::pollitem_t item{imp.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, 50ms) > 0) {
            zmq::message_t m;
            while (imp.recv(m, zmq::recv_flags::dontwait)) ++received;
        }
    }
    a.join();
    b.join();
    first.merge(second);
    REQUIRE(first.size() == 3);
    CHECK(received == 0);  // nothing of what node 1 sends to node 2 reaches the impostor
    for (std::uint32_t id : {0u, 1u, 2u}) {
        CAPTURE(id);
        CHECK(first.at(id).rounds_done == s.choice.training.rounds);
        CHECK(first.at(id).params == clean.at(id).params);  // every round heard the same neighbours
    }
    CHECK(first.at(1).counters.dropped_unauthenticated > 0);  // the claim was refused and counted
}

// Issue 19, item 5: with f = 0 one neighbour's word is a rejoin; rounds beyond the run (2^64-1,
// 10^6, rounds + 1) are no evidence, so a resumed node neither loops nor jumps.
TEST_CASE("hostile peer: a resumed node is not moved by rounds beyond the run") {
    Harness h;
    auto& dir = h.dir;
    auto& data = h.data;
    auto s = hostile_setup(dir, 19570);
    s.choice.robust.f = 0;
    s.choice.timeouts.hard = 1.0;  // f = 0: the quorum is both neighbours, so node 2 is waited for until this
    s.choice.outputs.checkpoint_dir = (dir.path() / "ckpt").string();
    s.options.resume = true;  // no checkpoint there yet: starts at round 1, rejoining if its neighbours went on
    RawPeer peer2(dir, 19570, 2, {0, 1});
    const auto results = under_attack(s, *data, [&](std::uint64_t) {
        peer2.announce();
        for (std::uint32_t peer : {0u, 1u})
            for (std::uint64_t round : {std::numeric_limits<std::uint64_t>::max(), std::uint64_t{1000000},
                                        std::uint64_t{13}})
                peer2.grad(peer, round);
        peer2.pace(20ms);
    });
    for (std::uint32_t id : {0u, 1u}) {
        CAPTURE(id);
        const auto& r = results.at(id);
        CHECK(r.rounds_done == s.choice.training.rounds);
        CHECK(r.rejected.count("beyond_run") == 1);
        CHECK(r.rejected.count("rounds_skipped") == 0);
    }
}

// Issue 19, item 8: a neighbour that only sends stale gradients stays absent (before, each one
// brought it back and the next round waited the whole round timeout for it).
TEST_CASE("hostile peer: stale messages do not hold every round to the timeout") {
    Harness h;
    auto& dir = h.dir;
    auto& data = h.data;
    auto s = hostile_setup(dir, 19580);
    s.choice.timeouts.round = 1.0;
    RawPeer peer2(dir, 19580, 2, {0, 1});
    const auto results = under_attack(s, *data, [&](std::uint64_t) {
        peer2.announce();
        for (std::uint32_t peer : {0u, 1u}) peer2.grad(peer, 1);
        peer2.pace(20ms);
    });
    for (std::uint32_t id : {0u, 1u}) {
        CAPTURE(id);
        const auto& r = results.at(id);
        CHECK(r.rounds_done == s.choice.training.rounds);
        CHECK(r.rejected.count("stale") == 1);
        // One round timeout (round 1) and a 0.2 s grace while node 2's round was recent (rounds
        // 2-5): about 1.8 s. Held to the timeout every round it would be 12 s.
        CHECK(r.seconds_wait < 6.0);
        MESSAGE("node " << id << " waited " << r.seconds_wait << " s in " << r.rounds_done << " rounds");
    }
}

// Issue 17: on a time-varying graph a peer linked to a node in some rounds is a neighbour of
// those rounds only. One-peer exponential on 4 nodes: odd rounds link 0-2 and 1-3, even rounds
// 0-1, 1-2, 2-3, 3-0. The hostile node 3 sends a valid gradient for every round to 0, 1 and 2:
// nodes 0 and 2 take it in even rounds only, node 1 in odd rounds only, each counting the others.
TEST_CASE("hostile peer on a time-varying graph: a gradient for a round it is not linked in is refused") {
    Harness h;
    auto& dir = h.dir;
    auto& data = h.data;
    auto s = hostile_setup(dir, 19620);
    s.cfg = parse_nodes_config("nodes:\n  - {id: 0, host: 127.0.0.1, port: 19620}\n"
                               "  - {id: 1, host: 127.0.0.1, port: 19621}\n"
                               "  - {id: 2, host: 127.0.0.1, port: 19622}\n"
                               "  - {id: 3, host: 127.0.0.1, port: 19623, type: byzantine}\n",
                               "varying.yaml");
    s.choice.topology.type = "one-peer-exponential";
    s.choice.robust.aggregator = "mean";
    s.choice.timeouts.round = 2.0;
    s.options.only = {0, 1, 2};
    const int rounds = s.choice.training.rounds;
    RawPeer peer3(dir, 19620, 3, {0, 1, 2});
    const auto results = under_attack(s, *data, [&](std::uint64_t iteration) {
        peer3.announce();
        const auto r = 1 + iteration % static_cast<std::uint64_t>(rounds);
        for (std::uint32_t peer : {0u, 1u, 2u}) peer3.grad(peer, r);
        peer3.pace(5ms);
    });
    for (std::uint32_t id : {0u, 1u, 2u}) {
        CAPTURE(id);
        const auto& r = results.at(id);
        CHECK(r.rounds_done == rounds);
        CHECK(r.rejected.at("not_neighbour") > 0);
    }
}

// On a graph redrawn every round the rounds window is long (the flood bound: n - 1 = 7 rounds
// on 8 nodes, since an honest neighbour may be that far ahead and in step), so what a liar can
// park ahead is bounded per neighbour too: at most 4 messages, as on a static graph. Node 2
// (linked to everyone every round: p = 1) reads the round each honest node is in from its own
// gradients and sends it valid gradients for the 6 rounds after it, all within the window: each
// node keeps 4 and refuses the rest as too far ahead.
TEST_CASE("hostile peer: what a neighbour can park ahead is bounded even when the rounds window is long") {
    Harness h;
    auto& dir = h.dir;
    auto& data = h.data;
    auto s = hostile_setup(dir, 19640);
    on_redrawn_complete(s, 8, 19640, 2);
    s.choice.timeouts.round = 2.0;
    const std::vector<std::uint32_t> honest{0, 1, 3, 4, 5, 6, 7};
    s.options.only = honest;
    const auto settings = node::settings_for_all(s.cfg, s.choice);
    REQUIRE(settings[0].horizon() == 7);
    REQUIRE(settings[0].future_per_neighbour < 6);
    const std::uint64_t rounds = static_cast<std::uint64_t>(s.choice.training.rounds);
    RawPeer peer2(dir, 19640, 2, honest);
    zmq::socket_t inbox = inbox_of(peer2, dir, 19640);  // where the honest nodes send node 2 their gradients
    std::map<std::uint32_t, std::uint64_t> answered;  // honest node -> the round it was last sent the 6
    const auto results = under_attack(s, *data, [&](std::uint64_t) {
        peer2.announce();
        peer2.pace(0ms);
        for (const auto& [from, r] : gradients_on(inbox, 5ms))
            if (r > answered[from]) {
                answered[from] = r;
                for (std::uint64_t ahead = r + 1; ahead <= std::min(r + 6, rounds); ++ahead) peer2.grad(from, ahead);
            }
    });
    for (auto id : honest) {
        CAPTURE(id);
        const auto& r = results.at(id);
        CHECK(r.rounds_done == static_cast<int>(rounds));
        // Every one of node 2's gradients was within the rounds window: only the per-neighbour
        // bound refuses any.
        REQUIRE(r.rejected.count("too_far_ahead") == 1);
        CHECK(r.rejected.at("too_far_ahead") > 0);
        CHECK(r.rejected.count("beyond_run") == 0);
    }
}

// On a graph redrawn every round (p = 1: everyone linked every round) the flood bound is
// n - 1 = 5 rounds, but a neighbour that shares the next round with this node cannot be past it
// without this node: one 3 rounds ahead went on without it, and the node catches up at once
// (a bound of r + flood for every neighbour would have kept it waiting in step-by-step rounds).
// Node 0 is real; nodes 1-5 are raw peers answering each of its gradients with theirs for the
// same round, and node 1 also, first, with one for round 4 when node 0 is in round 1.
TEST_CASE("a node whose neighbours went on catches up on a time-varying graph too") {
    Harness h;
    auto& dir = h.dir;
    auto& data = h.data;
    auto s = hostile_setup(dir, 19660);
    on_redrawn_complete(s, 6, 19660);
    s.choice.timeouts.round = 5.0;
    s.options.only = {0};
    REQUIRE(node::settings_for_all(s.cfg, s.choice)[0].lead == 5);
    std::vector<std::unique_ptr<RawPeer>> peers;
    std::vector<zmq::socket_t> inboxes;
    for (std::uint32_t id = 1; id <= 5; ++id) {
        peers.push_back(std::make_unique<RawPeer>(dir, 19660, id, std::vector<std::uint32_t>{0}));
        inboxes.push_back(inbox_of(*peers.back(), dir, 19660));
    }
    std::uint64_t answered = 0;  // the last round of node 0's answered
    const auto results = under_attack(s, *data, [&](std::uint64_t) {
        for (auto& p : peers) {
            p->announce();
            p->pace(0ms);
        }
        for (std::size_t k = 1; k < inboxes.size(); ++k) gradients_on(inboxes[k], 0ms);  // node 0's to the others: drained
        for (const auto& [from, r] : gradients_on(inboxes[0], 5ms))
            if (r > answered) {
                answered = r;
                if (r == 1) peers[0]->grad(0, 4);
                for (auto& p : peers) p->grad(0, r);
            }
    });
    const auto& r = results.at(0);
    CHECK(r.rounds_done == s.choice.training.rounds);
    REQUIRE(r.rejected.count("rounds_skipped") == 1);
    CHECK(r.rejected.at("rounds_skipped") == 4);  // rounds 1-4: it rejoined at round 5
}

// Issue 19, item 4: a node that starts (or is stopped) far behind its neighbours catches up to
// the round they vouch for, and they take it back: afterwards it hears them and they hear it.
TEST_CASE("a node far behind its neighbours catches up and is taken back") {
    Harness h;
    auto& dir = h.dir;
    auto& data = h.data;
    auto s = hostile_setup(dir, 19590);
    s.cfg = parse_nodes_config("nodes:\n  - {id: 0, host: 127.0.0.1, port: 19590, type: honest}\n"
                               "  - {id: 1, host: 127.0.0.1, port: 19591, type: honest}\n"
                               "  - {id: 2, host: 127.0.0.1, port: 19592, type: honest}\n",
                               "late.yaml");
    // Rounds enough never to end by themselves: the nodes are stopped together (the Ctrl-C
    // agreement) once node 2 has heard both neighbours for 25 rounds, so that on a loaded machine
    // nodes 0 and 1 cannot finish before node 2 is up (seen: they did, at 300 rounds).
    s.choice.training.rounds = 100000;
    s.choice.timeouts.round = 2.0;
    s.choice.timeouts.hard = 2.0;
    s.choice.timeouts.startup = 1.0;  // nodes 0 and 1 start without node 2
    s.choice.outputs.metrics_dir = (dir.path() / "metrics").string();
    std::atomic<bool> stop{false};
    s.options.stop_requested = [&] { return stop.load(); };
    auto rows = [&](std::uint32_t id) {
        std::vector<std::string> out;
        std::ifstream in(fmt::format("{}/node-{}.jsonl", s.choice.outputs.metrics_dir, id));
        for (std::string line; std::getline(in, line);) out.push_back(line);
        return out;
    };
    auto heard = [](const std::string& row) {
        const auto at = row.find("\"peers_heard\":");
        return at == std::string::npos ? -1 : std::stoi(row.substr(at + 14));
    };
    auto with_both = [&](const std::vector<std::string>& r) {
        return std::count_if(r.begin(), r.end(), [&](const std::string& row) { return heard(row) == 2; });
    };
    std::map<std::uint32_t, node::NodeResult> early, late;
    std::thread a([&] {
        auto o = s.options;
        o.only = {0, 1};
        early = launch::run_threads(s.cfg, s.choice, o, *data);
    });
    // Node 2 starts once node 0 has done 20 rounds without it (polling files, with deadlines).
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (rows(0).size() < 20 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    std::thread b([&] {
        auto o = s.options;
        o.only = {2};
        late = launch::run_threads(s.cfg, s.choice, o, *data);
    });
    deadline = std::chrono::steady_clock::now() + 60s;
    while (with_both(rows(2)) < 25 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    stop = true;
    b.join();
    a.join();
    REQUIRE(late.count(2) == 1);
    REQUIRE(early.count(0) == 1);
    const int done = late.at(2).rounds_done;
    CHECK(done < 100000);
    CHECK(early.at(0).rounds_done == done);  // stopped together
    CHECK(early.at(1).rounds_done == done);
    // Node 2 starts once its neighbours are 20 rounds in; on a loaded machine it may step a few
    // rounds alone before their messages reach it (seen: 17 skipped), so ask for a real jump, not
    // an exact one, and that every round it did not skip has its row.
    const auto skipped = late.at(2).rejected["rounds_skipped"];
    CHECK(skipped >= 10);
    const auto r2 = rows(2);
    CHECK(r2.size() + skipped == static_cast<std::size_t>(done));
    CHECK(with_both(r2) >= 25);  // after catching up, node 2 aggregated its two neighbours' gradients
    for (std::uint32_t id : {0u, 1u}) {  // and they took it back
        CAPTURE(id);
        const auto r = rows(id);
        REQUIRE(r.size() >= 2);
        CHECK(heard(r[r.size() - 2]) == 2);
    }
    MESSAGE("node 2 skipped " << late.at(2).rejected["rounds_skipped"] << " rounds, then heard both neighbours in "
                              << with_both(r2) << " of its " << r2.size() << " rows");
}

// Issue 19, item 7: a checkpoint whose CRC is valid but whose fields do not fit the run is
// refused with an error naming the file and the field, before anything runs.
TEST_CASE("crafted checkpoints with a valid CRC are checked field by field") {
    Harness h;
    auto& dir = h.dir;
    auto& data = h.data;
    auto s = hostile_setup(dir, 19610);
    s.choice.training.rounds = 2;
    s.choice.timeouts.startup = 0.2;  // node 0 alone
    s.choice.outputs.checkpoint_dir = (dir.path() / "ckpt").string();
    s.options.only = {0};
    REQUIRE(launch::run_threads(s.cfg, s.choice, s.options, *data).at(0).rounds_done == 2);
    const std::string path = node::checkpoint_path(s.choice.outputs.checkpoint_dir, 0);
    const node::Checkpoint good = node::load_checkpoint(path);
    s.options.resume = true;
    s.choice.training.rounds = 12;
    auto refused = [&](const node::Checkpoint& c, const std::string& why) {
        CAPTURE(why);
        node::save_checkpoint(path, c);  // a valid CRC
        CHECK_THROWS_WITH_AS(launch::run_threads(s.cfg, s.choice, s.options, *data), doctest::Contains(why.c_str()), IoError);
    };
    for (std::uint64_t round : {std::uint64_t{13}, std::uint64_t{(1u << 31) - 1}, std::uint64_t{1} << 63}) {
        node::Checkpoint c = good;
        c.round = round;
        refused(c, "but this run has 12 rounds");
    }
    {
        node::Checkpoint c = good;  // the sampler's order with one index outside the data set
        const auto first = c.sampler_state.find(' ', c.sampler_state.find(' ', c.sampler_state.find(' ', c.sampler_state.find(' ') + 1) + 1) + 1);
        const auto end = c.sampler_state.find(' ', first + 1);
        c.sampler_state.replace(first + 1, end - first - 1, "1000000000");
        refused(c, "not this shard's");
    }
    {
        node::Checkpoint c = good;
        c.params[7] = std::numeric_limits<float>::quiet_NaN();
        refused(c, "not finite");
    }
    {
        node::Checkpoint c = good;
        c.velocity.assign(5, 0.0f);
        refused(c, "optimizer state has 5 values");
    }
    {
        node::Checkpoint c = good;
        c.params.resize(10);
        refused(c, "parameters, not node 0's");
    }
    // The real one resumes: 10 more rounds.
    node::save_checkpoint(path, good);
    CHECK(launch::run_threads(s.cfg, s.choice, s.options, *data).at(0).rounds_done == 12);
}

namespace {

// A peer speaking raw ZMTP 3.0 (NULL mechanism) over TCP, as no ZeroMQ library would: after the
// handshake it sends frames of `frame_bytes` with the MORE flag and never ends the message.
// Adds to `sent` the bytes it got onto the wire before the node closed the connection (or
// `budget`); returns the socket, still open, for the caller to close once it has measured.
int endless_message(int port, std::size_t frame_bytes, std::size_t budget, std::size_t& sent) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{5, 0};  // a closed or stuck connection ends the attack, never the test
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    auto put = [&](const void* p, std::size_t n) {
        const char* c = static_cast<const char*>(p);
        while (n) {
            const ssize_t w = ::send(fd, c, n, MSG_NOSIGNAL);
            if (w <= 0) return false;
            c += w;
            n -= static_cast<std::size_t>(w);
        }
        return true;
    };
    unsigned char greeting[64] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0, 'N', 'U', 'L', 'L'};
    put(greeting, sizeof greeting);
    unsigned char theirs[64];
    for (std::size_t got = 0; got < sizeof theirs;) {
        const ssize_t r = ::recv(fd, theirs + got, sizeof theirs - got, 0);
        if (r <= 0) break;
        got += static_cast<std::size_t>(r);
    }
    // READY with Socket-Type DEALER: a command frame (flag 0x04).
    const std::string body = std::string("\x05READY\x0bSocket-Type\0\0\0\x06" "DEALER", 6 + 12 + 4 + 6);
    const unsigned char head[2] = {0x04, static_cast<unsigned char>(body.size())};
    put(head, 2);
    put(body.data(), body.size());
    std::vector<char> frame(frame_bytes, 'x');
    unsigned char fhead[9] = {0x03};  // MORE | LONG, then the size, 8 bytes big-endian
    for (int b = 0; b < 8; ++b) fhead[1 + b] = static_cast<unsigned char>((frame_bytes >> (8 * (7 - b))) & 0xff);
    for (std::size_t here = 0; here < budget && put(fhead, 9) && put(frame.data(), frame.size());)
        here += frame_bytes, sent += frame_bytes;
    return fd;
}

}  // namespace

// Issue 19, item 1: ZMQ_MAXMSGSIZE bounds each frame; one message that never ends made libzmq
// hold all of its frames (a node 57 MB -> 2.16 GB). With the bounded libzmq the whole message
// is bounded: the node closes the connection once a message passes the limit, and its memory
// stays within a fixed bound whatever the peer sends (here 1 GiB of frames under the frame limit,
// in several connections, to a mesh inbox and to the broker).
TEST_CASE("one endless multipart message cannot grow a node's or the broker's memory") {
    spdlog::set_level(spdlog::level::err);
    Targets targets;
    const long before = resident_kib();
    std::ofstream("/proc/self/clear_refs") << "5";  // the peak (VmHWM) restarts from the current size
    const std::size_t frame = 512u << 10;  // under the frame limit (about 0.9 MB)
    std::size_t total = 0;
    std::vector<int> open;  // every connection stays open until the peak is read
    for (int port : targets.ports())
        for (int connection = 0; connection < 4; ++connection)
            open.push_back(endless_message(port, frame, 128u << 20, total));
    const long after = resident_kib("VmHWM:");  // the peak: what the node held while the messages were open
    for (int fd : open) ::close(fd);
    MESSAGE("sent " << total / (1 << 20) << " MiB of one-message frames over 8 connections; resident memory "
                    << before / 1024 << " MiB, peak " << after / 1024 << " MiB");
    CHECK(after - before < 64 * 1024);
    CHECK(total < 64u << 20);  // each connection was closed soon after its message passed the limit
    spdlog::set_level(spdlog::level::info);
}

// Issue 19, item 1 with CURVE: a configured key's connection sending one message of three
// frames, each under the frame limit but together over the message limit (what no ZeroMQ
// library lets a sender leave unfinished, so the longer attack above needs raw ZMTP), is
// closed before the message reaches the node; what that key sends afterwards still arrives.
TEST_CASE("with CURVE, a message over the limit is refused whole, frame by frame") {
    spdlog::set_level(spdlog::level::err);
    zmq::context_t ctx;
    const auto k0 = transport::generate_keys(), k1 = transport::generate_keys();
    transport::MeshSpec ms;
    ms.self = 0;
    ms.bind_endpoint = "tcp://127.0.0.1:*";
    ms.peers[1] = "";
    ms.limits = launch::limits_for(Experiment{}, 2);
    ms.security.emplace();
    ms.security->own = k0;
    ms.security->public_keys = {{0, k0.public_z85}, {1, k1.public_z85}};
    auto node = transport::make_mesh(ctx, ms);
    zmq::socket_t peer(ctx, zmq::socket_type::dealer);
    peer.set(zmq::sockopt::curve_secretkey, k1.secret_z85);
    peer.set(zmq::sockopt::curve_publickey, k1.public_z85);
    peer.set(zmq::sockopt::curve_serverkey, k0.public_z85);
    peer.set(zmq::sockopt::linger, 0);
    REQUIRE(zmq_socket_monitor(peer.handle(), "inproc://curve-peer-monitor", ZMQ_EVENT_DISCONNECTED) == 0);
    zmq::socket_t monitor(ctx, zmq::socket_type::pair);
    monitor.connect("inproc://curve-peer-monitor");
    peer.connect(node->local_endpoint());
    const std::vector<char> part(600u << 10, 'x');  // 3 x 600 KiB: each frame fits, the message does not
    for (int i = 0; i < 3; ++i)
        peer.send(zmq::const_buffer(part.data(), part.size()), i < 2 ? zmq::send_flags::sndmore : zmq::send_flags::none);
    // The node closes that connection (the peer reconnects by itself); an unbounded libzmq would
    // take the message instead, and then the wait below ends at its deadline.
    zmq::pollitem_t watch{monitor.handle(), 0, ZMQ_POLLIN, 0};
    const bool closed = zmq::poll(&watch, 1, 5s) == 1;
    CHECK(closed);
    const char claim[5] = {'H', 2, 0, 0, 0};  // then a HELLO claiming node 2: refused and counted on arrival
    peer.send(zmq::const_buffer(claim, 5), zmq::send_flags::none);
    const auto deadline = transport::Clock::now() + 20s;
    while (node->counters().dropped_unauthenticated == 0 && transport::Clock::now() < deadline)
        node->receive(transport::Clock::now() + 50ms);
    CHECK(node->counters().dropped_unauthenticated >= 1);  // the connection (or its successor) still works
    CHECK(node->counters().dropped_malformed == 0);        // the over-limit message never reached the node
    spdlog::set_level(spdlog::level::info);
}

// Issue 19, item 1, the other half: the bound above is per connection, so a peer opening
// connection after connection, each holding a partial message, would multiply it. A bound
// socket keeps only the connections it expects and 8 more (ZMQ_MAX_ACCEPTED, the bounded
// libzmq's second patch); the rest are closed at once.
TEST_CASE("a peer opening many connections cannot multiply what a node holds") {
    spdlog::set_level(spdlog::level::err);
    Targets targets;
    const long before = resident_kib();
    std::ofstream("/proc/self/clear_refs") << "5";
    const std::size_t frame = 512u << 10;
    std::size_t total = 0;
    std::vector<int> open;
    for (int port : targets.ports())
        for (int connection = 0; connection < 150; ++connection)
            open.push_back(endless_message(port, frame, frame, total));  // one frame each, MORE set
    const long after = resident_kib("VmHWM:");
    for (int fd : open) ::close(fd);
    MESSAGE("300 connections, " << total / (1 << 20) << " MiB of partial messages sent; resident memory "
                                << before / 1024 << " MiB, peak " << after / 1024 << " MiB");
    CHECK(after - before < 64 * 1024);
    spdlog::set_level(spdlog::level::info);
}
