// A hostile peer with a raw ZeroMQ socket, playing the config's Byzantine node 2, sends
// garbage while honest nodes 0 and 1 train (threads of this process, mesh over ipc). Every
// honest node keeps training and finishes; its counters say what it rejected and why; the
// process's resident memory stays bounded.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <limits>
#include <thread>

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

}  // namespace

TEST_CASE("hostile peer: garbage, lies and floods are dropped and counted; honest nodes finish") {
    spdlog::set_level(spdlog::level::err);
    p2p::test::TempDir dir;
    p2p::test::write_set(dir, 256, false);
    auto data = data::load_mnist_data(dir.path().string());
    const auto cfg = parse_nodes_config("nodes:\n  - {id: 0, host: 127.0.0.1, port: 19500, type: honest}\n"
                                        "  - {id: 1, host: 127.0.0.1, port: 19501, type: honest}\n"
                                        "  - {id: 2, host: 127.0.0.1, port: 19502, type: byzantine}\n",
                                        "hostile.yaml");
    const int rounds = 12;
    node::RunChoice c;
    c.training.rounds = rounds;
    c.training.batch_size = 16;
    c.training.eval_every = 1000;
    c.metrics_dir = "";
    c.soft_timeout = 300ms;
    c.startup_timeout = 5s;
    launch::ClusterOptions o;
    o.scheme = transport::Scheme::Ipc;
    o.ipc_dir = dir.path().string();
    o.only = {0, 1};

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
    const std::uint32_t dim = static_cast<std::uint32_t>(nn::kSmallCnnParams);
    std::vector<float> small(dim, 0.001f), nans(dim, std::numeric_limits<float>::quiet_NaN());
    auto payload = [](const std::vector<float>& v) { return zmq::message_t(v.data(), v.size() * sizeof(float)); };
    std::uint64_t iteration = 0;
    while (!done) {
        ++iteration;
        const std::uint64_t r = 1 + iteration % rounds;
        for (std::uint32_t peer : {0u, 1u}) {
            send(peer, [] { std::vector<zmq::message_t> f; f.emplace_back("H", 1); return f; }());  // HELLO storm
            std::vector<zmq::message_t> f;
            f.emplace_back("\x93garbage", 8);  // garbage bytes
            f.emplace_back("junk", 4);
            send(peer, std::move(f));
            auto h = grad_header(2, r, dim);
            h.resize(h.size() / 2);  // truncated header
            send(peer, [&] { std::vector<zmq::message_t> v; v.push_back(bytes(h)); v.push_back(payload(small)); return v; }());
            send(peer, [&] {  // wrong dim
                std::vector<zmq::message_t> v;
                v.push_back(bytes(grad_header(2, r, 5)));
                v.emplace_back(small.data(), 5 * sizeof(float));
                return v;
            }());
            send(peer, [&] {  // NaN payload
                std::vector<zmq::message_t> v;
                v.push_back(bytes(grad_header(2, r, dim)));
                v.push_back(payload(nans));
                return v;
            }());
            send(peer, [&] {  // a header claiming a 2^32-element array
                std::vector<zmq::message_t> v;
                v.emplace_back("\xdd\xff\xff\xff\xff", 5);
                v.emplace_back();
                return v;
            }());
            send(peer, [&] {  // far future rounds: a flood the window refuses
                std::vector<zmq::message_t> v;
                v.push_back(bytes(grad_header(2, r + 1000 + iteration, dim)));
                v.push_back(payload(small));
                return v;
            }());
            send(peer, [&] {  // claims to be node 1
                std::vector<zmq::message_t> v;
                v.push_back(bytes(grad_header(1, r, dim)));
                v.push_back(payload(small));
                return v;
            }());
            for (int dup = 0; dup < 2; ++dup)  // a valid gradient for the round, twice
                send(peer, [&] {
                    std::vector<zmq::message_t> v;
                    v.push_back(bytes(grad_header(2, r, dim)));
                    v.push_back(payload(small));
                    return v;
                }());
            if (iteration % 50 == 0) {  // a frame beyond ZMQ_MAXMSGSIZE: libzmq drops the connection
                std::vector<float> huge((17u << 20) / sizeof(float), 1.0f);
                send(peer, [&] {
                    std::vector<zmq::message_t> v;
                    v.push_back(bytes(grad_header(2, r, dim)));
                    v.push_back(payload(huge));
                    return v;
                }());
            }
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
    MESSAGE("hostile iterations " << iteration << ", resident memory " << rss_before / 1024 << " -> " << rss_after / 1024
                                  << " MiB");
    // Bounded: two models, the data, and ZeroMQ queues capped by the high-water marks; nothing
    // allocated on the word of the peer.
    CHECK(rss_after < 800 * 1024);
    spdlog::set_level(spdlog::level::info);
}
