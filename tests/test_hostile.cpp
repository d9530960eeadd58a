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
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "p2pnode/launch/cluster.hpp"
#include "p2pnode/transport/mesh.hpp"
#include "p2pnode/wire/envelope.hpp"
#include "support.hpp"

using namespace p2p;
using namespace std::chrono_literals;

namespace {

long resident_kib() {
    std::ifstream in("/proc/self/status");
    std::string key;
    long value = 0;
    while (in >> key) {
        if (key == "VmRSS:") {
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
// through `send`; `iteration` varies the far-future rounds.
template <class Send>
void volley(Send&& send, std::uint64_t r, std::uint64_t iteration, bool huge) {
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
    send(two(bytes(grad_header(2, r + 1000 + iteration, dim)), payload(small)));              // far-future flood
    send(two(bytes(grad_header(1, r, dim)), payload(small)));                                 // claims node 1
    for (int dup = 0; dup < 2; ++dup) send(two(bytes(grad_header(2, r, dim)), payload(small)));  // duplicates
    if (huge) {  // beyond ZMQ_MAXMSGSIZE: libzmq drops the connection, which reconnects
        std::vector<float> big((17u << 20) / sizeof(float), 1.0f);
        send(two(bytes(grad_header(2, r, dim)), payload(big)));
    }
}

void check_rejections(const std::map<std::uint32_t, node::NodeResult>& results, int rounds) {
    REQUIRE(results.size() == 2);
    for (std::uint32_t id : {0u, 1u}) {
        CAPTURE(id);
        const auto& r = results.at(id);
        CHECK(r.rounds_done == rounds);
        for (const char* reason : {"malformed", "wrong_dim", "non_finite", "too_far_ahead", "from_mismatch", "duplicate"}) {
            CAPTURE(reason);
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

}  // namespace

TEST_CASE("hostile peer in the hub: the broker and the clients drop, count and go on") {
    spdlog::set_level(spdlog::level::err);
    p2p::test::TempDir dir;
    p2p::test::write_set(dir, 256, false);
    auto data = data::load_mnist_data(dir.path().string());
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
    std::uint64_t iteration = 0;
    bool node0_live = false;  // the thief claims node 0's id once node 0 is registered and training
    while (!done) {
        ++iteration;
        s.send(hello(2), zmq::send_flags::dontwait);  // HELLO storm (and registration)
        if (node0_live) thief.send(hello(0), zmq::send_flags::dontwait);
        else s.send(control('Q', 0), zmq::send_flags::dontwait);  // is node 0 registered?
        s.send(zmq::str_buffer("\x01\x02\x03"), zmq::send_flags::dontwait);  // not a control frame
        volley(
            [&](std::vector<zmq::message_t> frames) {
                s.send(zmq::const_buffer(to_both, 9), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
                for (std::size_t i = 0; i < frames.size(); ++i)
                    s.send(frames[i], (i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none) |
                                          zmq::send_flags::dontwait);
            },
            1 + iteration % rounds, iteration, iteration % 50 == 0);
        zmq::pollitem_t items[2] = {{s.handle(), 0, ZMQ_POLLIN, 0}, {thief.handle(), 0, ZMQ_POLLIN, 0}};
        if (zmq::poll(items, 2, 20ms) > 0) {  // pace on replies, draining both
            zmq::message_t m;
            // a message forwarded from node 0, or the broker's answer that node 0 is registered
            while (s.recv(m, zmq::recv_flags::dontwait))
                if (m.size() == 5 && (std::memcmp(m.data(), "F\0\0\0\0", 5) == 0 || std::memcmp(m.data(), "q\0\0\0\0", 5) == 0))
                    node0_live = true;
            while (thief.recv(m, zmq::recv_flags::dontwait)) {
            }
        }
    }
    cluster.join();
    if (failure) std::rethrow_exception(failure);
    check_rejections(results, rounds);
    CHECK(resident_kib() < 800 * 1024);  // broker, two nodes and the attacker, all in this process
    CHECK(stats.dropped_malformed > 0);
    CHECK(stats.claims_refused > 0);
    MESSAGE("broker: " << stats.messages_routed << " routed, " << stats.dropped_malformed << " malformed, "
                       << stats.claims_refused << " claims refused; honest node 0 rejected "
                       << results.at(0).rejected.size() << " kinds");
    spdlog::set_level(spdlog::level::info);
}

TEST_CASE("hostile peer: garbage, lies and floods are dropped and counted; honest nodes finish") {
    spdlog::set_level(spdlog::level::err);
    p2p::test::TempDir dir;
    p2p::test::write_set(dir, 256, false);
    auto data = data::load_mnist_data(dir.path().string());
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
    zmq::context_t ctx;
    zmq::socket_t s(ctx, zmq::socket_type::router);
    const char me[5] = {'N', 2, 0, 0, 0};
    s.set(zmq::sockopt::routing_id, zmq::const_buffer(me, 5));
    s.set(zmq::sockopt::router_mandatory, 0);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::sndhwm, 16);  // the attacker's own queue, in this process, stays small too
    for (std::uint32_t peer : {0u, 1u}) {
        const char rid[5] = {'N', static_cast<char>(peer), 0, 0, 0};
        s.set(zmq::sockopt::connect_routing_id, zmq::const_buffer(rid, 5));
        s.connect(transport::endpoint_for(transport::Scheme::Ipc, "127.0.0.1", 19500 + static_cast<int>(peer),
                                          dir.path().string()));
    }
    auto send = [&](std::uint32_t peer, std::vector<zmq::message_t> frames) {
        const char rid[5] = {'N', static_cast<char>(peer), 0, 0, 0};
        s.send(zmq::const_buffer(rid, 5), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        for (std::size_t i = 0; i < frames.size(); ++i)
            s.send(frames[i], (i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none) |
                                  zmq::send_flags::dontwait);
    };
    std::uint64_t iteration = 0;
    while (!done) {
        ++iteration;
        for (std::uint32_t peer : {0u, 1u}) {
            send(peer, [] { std::vector<zmq::message_t> f; f.emplace_back("H", 1); return f; }());  // HELLO storm
            volley([&](std::vector<zmq::message_t> frames) { send(peer, std::move(frames)); }, 1 + iteration % rounds,
                   iteration, iteration % 50 == 0);
        }
        // Pace on our own socket: drain what the honest nodes send us, waiting at most 20 ms.
        zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, 20ms) > 0) {
            zmq::message_t m;
            while (s.recv(m, zmq::recv_flags::dontwait)) {
            }
        }
    }
    cluster.join();
    const long rss_after = resident_kib();
    check_rejections(results, rounds);
    MESSAGE("hostile iterations " << iteration << ", resident memory " << rss_before / 1024 << " -> " << rss_after / 1024
                                  << " MiB");
    // Bounded: two models, the data, and ZeroMQ queues capped by the high-water marks; nothing
    // allocated on the word of the peer.
    CHECK(rss_after < 800 * 1024);
    spdlog::set_level(spdlog::level::info);
}
