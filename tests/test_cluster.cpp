// Many machines (issue 18): node ids from the scheduler's rank, and the 5-node example under a
// real engine, OpenMPI's mpirun on loopback, against `launch` with the same config and seed.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <string>
#include <unistd.h>

#include <fmt/format.h>
#include <zmq.hpp>

#include "p2pnode/config/nodes_config.hpp"
#include "p2pnode/launch/allocation.hpp"
#include "p2pnode/launch/rank.hpp"
#include "support.hpp"

using p2p::launch::resolve_node_id;

namespace {

bool contains(const std::string& s, const std::string& n) { return s.find(n) != std::string::npos; }

// Free loopback ports for a config that must name them (mesh nodes bind their own): bound on
// port 0 by ZeroMQ, read back, and released.
std::vector<int> free_ports(int count) {
    zmq::context_t ctx;
    std::vector<zmq::socket_t> held;
    std::vector<int> ports;
    for (int i = 0; i < count; ++i) {
        held.emplace_back(ctx, zmq::socket_type::router);
        held.back().bind("tcp://127.0.0.1:*");
        const std::string ep = held.back().get(zmq::sockopt::last_endpoint);
        ports.push_back(std::stoi(ep.substr(ep.rfind(':') + 1)));
    }
    return ports;
}

// The "loss" of node `id`'s summary in `dir`, as written (every digit: equal models give equal text).
std::string final_loss(const std::filesystem::path& dir, int id) {
    const std::string s = p2p::test::slurp(dir / fmt::format("node-{}.summary.json", id));
    const auto at = s.find("\"loss\": ");
    REQUIRE(at != std::string::npos);
    return s.substr(at + 8, s.find(',', at) - at - 8);
}

std::size_t lines_of(const std::filesystem::path& p) {
    const std::string s = p2p::test::slurp(p);
    return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

std::vector<std::string> mpirun(std::vector<std::string> rest) {
    std::vector<std::string> args;
    if (geteuid() == 0) args.emplace_back("--allow-run-as-root");  // CI runs as root
    args.emplace_back("--oversubscribe");
    for (auto& a : rest) args.push_back(std::move(a));
    return args;
}

}  // namespace

TEST_CASE("--node-id auto: the rank from SLURM_PROCID, else OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK") {
    std::map<std::string, const char*> env;  // what the scheduler would have set
    auto lookup = [&](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second;
    };
    CHECK(resolve_node_id("3", 0, lookup).id == 3);
    CHECK(resolve_node_id("3", 0, lookup).source == "--node-id");
    CHECK_THROWS_WITH(resolve_node_id("auto", 0, lookup),
                      doctest::Contains("none of SLURM_PROCID, OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK is set"));
    env["PMI_RANK"] = "4";
    CHECK(resolve_node_id("auto", 0, lookup).id == 4);
    env["PMIX_RANK"] = "2";
    CHECK(resolve_node_id("auto", 0, lookup).source == "PMIX_RANK=2");
    env["OMPI_COMM_WORLD_RANK"] = "1";
    CHECK(resolve_node_id("auto", 0, lookup).id == 1);
    env["SLURM_PROCID"] = "6";
    const auto id = resolve_node_id("auto", 1, lookup);  // rank 0 is the broker
    CHECK(id.id == 5);
    CHECK(id.source == "SLURM_PROCID=6 - 1");
    env["SLURM_PROCID"] = "0";
    CHECK_THROWS_WITH(resolve_node_id("auto", 1, lookup), doctest::Contains("SLURM_PROCID=0 is below --rank-offset 1"));
    env["SLURM_PROCID"] = "x1";
    CHECK_THROWS_WITH(resolve_node_id("auto", 0, lookup), doctest::Contains("SLURM_PROCID='x1' is not a rank"));
    CHECK_THROWS_WITH(resolve_node_id("-1", 0, lookup), doctest::Contains("must be a node id (0, 1, 2, ...) or auto"));
    CHECK_THROWS(resolve_node_id("", 0, lookup));
}

TEST_CASE("mpirun -np 5 runs the 5-node example with --node-id auto, mesh and hub: the finals of launch") {
    p2p::test::TempDir dir;
    p2p::test::write_set(dir, 256, false);
    const auto ports = free_ports(6);
    std::string cfg = fmt::format("training: {{rounds: 6, batch_size: 16, eval_every: 6}}\n"
                                  "data: {{root: '{}'}}\n"
                                  "nodes:\n",
                                  dir.path().string());
    for (int i = 0; i < 5; ++i)
        cfg += fmt::format("  - {{id: {}, host: 127.0.0.1, port: {}, type: {}}}\n", i, ports[i], i == 4 ? "byzantine" : "honest");
    const std::string config = dir.write("nodes.yaml", cfg);
    const std::string bin = p2p::test::required_env("P2PNODE_BIN");
    const auto m = dir.path() / "mpi-mesh", h = dir.path() / "mpi-hub", lm = dir.path() / "launch-mesh",
               lh = dir.path() / "launch-hub";

    auto mesh = p2p::test::run_program(
        "/usr/bin/mpirun", mpirun({"-np", "5", bin, "mesh", "--config", config, "--node-id", "auto", "--metrics-dir", m.string()}));
    CAPTURE(mesh.err);
    REQUIRE(mesh.status == 0);
    CHECK(contains(mesh.err + mesh.out, "[Node 3] id from OMPI_COMM_WORLD_RANK=3"));
    // The hub: the broker is rank 0 of the same mpirun line, the nodes ranks 1..5.
    const std::string port = std::to_string(ports[5]);
    auto hub = p2p::test::run_program(
        "/usr/bin/mpirun", mpirun({"-np", "1", bin, "broker", "--host", "127.0.0.1", "--port", port, "--config", config,
                          "--exit-when-done", ":", "-np", "5", bin, "hub-client", "--config", config, "--server-host",
                          "127.0.0.1", "--server-port", port, "--node-id", "auto", "--rank-offset", "1",
                          "--metrics-dir", h.string()}));
    CAPTURE(hub.err);
    REQUIRE(hub.status == 0);
    CHECK(contains(hub.err + hub.out, "broker: all 5 nodes registered and left; stopping"));
    auto a = p2p::test::run_p2pnode({"launch", "--config", config, "--metrics-dir", lm.string()});
    REQUIRE(a.status == 0);
    auto b = p2p::test::run_p2pnode({"launch", "--config", config, "--pattern", "hub", "--metrics-dir", lh.string()});
    REQUIRE(b.status == 0);
    for (int id = 0; id < 4; ++id) {
        CAPTURE(id);
        CHECK(final_loss(m, id) == final_loss(lm, id));
        CHECK(final_loss(h, id) == final_loss(lh, id));
        CHECK(final_loss(m, id) == final_loss(h, id));  // mesh and hub: the same training
        CHECK(lines_of(m / fmt::format("node-{}.jsonl", id)) == 6);
    }
}

TEST_CASE("p2pnode config: host lists, hostfiles, Slurm's task counts, placement, ports and their errors") {
    using namespace p2p::launch;
    const auto hf = parse_hostfile("n1 slots=2\n# a comment\n\nn2 slots=3 max_slots=4  # trailing\n", "hosts");
    REQUIRE(hf.size() == 2);
    CHECK(hf[1].host == "n2");
    CHECK(hf[1].slots == 3);
    CHECK_THROWS_WITH(parse_hostfile("n1 slots=2\nn2\n", "hosts"), doctest::Contains("hosts:2: host n2 has no slots=N"));
    CHECK_THROWS_WITH(parse_hostfile("n1 slots=0\n", "hosts"), doctest::Contains("hosts:1: host n1: slots must be a count"));
    CHECK_THROWS_WITH(parse_hostfile("n1 cpus=2\n", "hosts"), doctest::Contains("unknown word 'cpus=2'"));
    CHECK(expand_tasks_per_node("2(x3),1") == std::vector<int>{2, 2, 2, 1});
    CHECK(expand_tasks_per_node("4") == std::vector<int>{4});
    CHECK_THROWS(expand_tasks_per_node("2(x3"));
    CHECK_THROWS(expand_tasks_per_node(""));
    const auto filled = spread_nodes(hf, 4, 9000, "0.0.0.0");  // slots in order: n1 takes 2, n2 the rest
    REQUIRE(filled.size() == 4);
    CHECK(filled[1].host == "n1");
    CHECK(filled[2].host == "n2");
    CHECK(filled[2].port == 9000);
    CHECK(filled[3].port == 9001);
    CHECK(filled[3].bind_host == std::optional<std::string>("0.0.0.0"));
    const auto even = spread_nodes({{"a", 0}, {"b", 0}}, 5, 8000, "");  // a list: split evenly, the first one more
    CHECK(std::count_if(even.begin(), even.end(), [](const auto& n) { return n.host == "a"; }) == 3);
    CHECK_FALSE(even[0].bind_host.has_value());
    CHECK_THROWS_WITH(spread_nodes(hf, 6, 9000, ""), doctest::Contains("more nodes than the 5 slots"));
    CHECK_THROWS_WITH(spread_nodes({{"a", 0}}, 3, 65534, ""), doctest::Contains("past 65535"));

    // The command: a local config that loads back, with its Byzantine nodes placed and its sections.
    p2p::test::TempDir dir;
    const std::string out = (dir.path() / "gen.yaml").string();
    auto r = p2p::test::run_p2pnode({"config", "--nodes", "8", "--byzantine-count", "2", "--placement", "spread",
                                     "--topology", "complete", "--rounds", "30", "--out", out});
    REQUIRE_MESSAGE(r.status == 0, r.err);
    const auto cfg = p2p::load_nodes_config(out);
    REQUIRE(cfg.nodes.size() == 8);
    CHECK(cfg.honest_count() == 6);
    CHECK(cfg.find(0)->type == p2p::NodeType::Byzantine);
    CHECK(cfg.find(4)->type == p2p::NodeType::Byzantine);
    CHECK(cfg.nodes[7].port == 8887);
    CHECK(cfg.nodes[7].host == "127.0.0.1");
    CHECK(cfg.experiment.training.rounds == 30);
    CHECK(cfg.experiment.topology.type == "complete");
    CHECK(cfg.warnings.empty());
    const std::string hostfile = dir.write("hosts", "x slots=1\ny slots=1\n");
    auto many = p2p::test::run_p2pnode({"config", "--hostfile", hostfile, "--nodes", "3"});
    CHECK(many.status == 2);
    CHECK(contains(many.err, "--nodes 3: more nodes than the 2 slots of the 2 hosts"));
    auto from = p2p::test::run_p2pnode({"config", "--hostfile", hostfile});
    CHECK(from.status == 0);
    CHECK(contains(from.out, "  - {id: 1, host: y, port: 8880, type: honest, bind_host: 0.0.0.0}\n"));
}
