// Bit-for-bit guard of the training path: the final models of the README's examples, trained
// with their default settings, digested and compared with digests recorded on main before the
// Experiment redesign (commit 01aa970). A refactor that changes one bit of one honest model
// fails here. Recorded on this project's machines (x86-64, Debian 12's OpenBLAS), with OpenBLAS's
// Haswell kernels: OpenBLAS picks its kernels by CPU (an AMD EPYC takes the Cooperlake ones and
// other last bits), so tests/meson.build runs this test with OPENBLAS_CORETYPE=Haswell.
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "p2pnode/data/idx.hpp"
#include "p2pnode/launch/cluster.hpp"
#include "p2pnode/nn/layers.hpp"
#include "support.hpp"
#include "training_support.hpp"

using namespace p2p;

namespace {

using p2p::test::QuietLogs;
using p2p::test::real_data;

// FNV-1a over the float32 bytes of a model.
std::string digest(const std::vector<float>& params) {
    std::uint64_t h = 1469598103934665603ULL;
    const auto* b = reinterpret_cast<const unsigned char*>(params.data());
    for (std::size_t i = 0; i < params.size() * sizeof(float); ++i) h = (h ^ b[i]) * 1099511628211ULL;
    return fmt::format("{:016x}", h);
}

// "id:digest" of every honest node, in id order.
std::string run_digests(const NodesConfig& cfg, const Experiment& choice, launch::Pattern pattern,
                        const data::MnistData& data) {
    launch::ClusterOptions o;
    o.pattern = pattern;
    o.scheme = transport::Scheme::Inproc;
    const auto results = launch::run_threads(cfg, choice, o, data);
    std::string out;
    for (const auto& [id, r] : results) {
        if (r.params.empty()) continue;
        REQUIRE(r.rounds_done == choice.training.rounds);
        out += fmt::format("{}{}:{}", out.empty() ? "" : " ", id, digest(r.params));
    }
    return out;
}

Experiment defaults(const NodesConfig& cfg) {
    Experiment c = cfg.experiment;  // the file's sections, as a node started from it reads them
    c.training.eval_every = 1000;  // evaluation does not touch the model; only the final one runs
    c.outputs.metrics_dir = "";
    return c;
}

}  // namespace

TEST_CASE("the examples' final models are bit-identical to those recorded before the redesign") {
    QuietLogs quiet;
    nn::set_blas_threads(1);
    auto data = real_data();
    const std::string root = p2p::test::required_env("P2PNODE_SOURCE_ROOT");
    const NodesConfig example = load_nodes_config(root + "/configs/nodes_example.yaml");

    SUBCASE("5-node example, gradient exchange (the defaults)") {
        const auto got = run_digests(example, defaults(example), launch::Pattern::Mesh, *data);
        CHECK(got == "0:c0fdbd12d59e9dfe 1:7dd1e72f801b81e3 2:7adf9f4238d5c1e6 3:84fdcb48722e29e7");
    }
    SUBCASE("5-node example, model exchange") {
        auto c = defaults(example);
        c.training.exchange = "model";
        const auto got = run_digests(example, c, launch::Pattern::Mesh, *data);
        CHECK(got == "0:68fb40f63f5fab3c 1:15d51056f575724b 2:3d4ea6f56448319a 3:b57719159228d8be");
    }
    SUBCASE("hub example: 3 nodes, 2 honest + 1 Empire attacker, complete graph") {
        const NodesConfig hub = parse_nodes_config(R"(nodes:
  - {id: 0, host: 127.0.0.1, port: 1, type: honest}
  - {id: 1, host: 127.0.0.1, port: 2, type: honest}
  - {id: 2, host: 127.0.0.1, port: 3, type: byzantine}
topology: {type: complete}
)",
                                                   "hub-example");
        const auto got = run_digests(hub, defaults(hub), launch::Pattern::Hub, *data);
        CHECK(got == "0:96dbc14874967491 1:f6cc78ae2386fc21");
    }
}
