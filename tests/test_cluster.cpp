// Many machines (issue 18): node ids from the scheduler's rank, and the 5-node example under a
// real engine, OpenMPI's mpirun on loopback, against `launch` with the same config and seed.
#include <doctest/doctest.h>

#include <algorithm>
#include <ctime>
#include <csignal>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <sys/wait.h>
#include <thread>
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

// The first of `count` consecutive free loopback ports, for scripts that give node k the port
// base + k. Drawn below the kernel's ephemeral range (ip_local_port_range), where the outgoing
// connections of tests running beside this one take their ports (seen: one took base + 3
// between this check and the node's bind); each candidate block is bound whole, then released.
int free_block(int count) {
    int low = 32768;
    if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range) range >> low;
    const int top = std::max(low - count, 10001);
    // One stream for the process: two calls in the same second must not draw the same block.
    static std::mt19937 rng(static_cast<unsigned>(::getpid()) ^ static_cast<unsigned>(std::time(nullptr)));
    static std::set<int> given;
    zmq::context_t ctx;
    for (int attempt = 0; attempt < 200; ++attempt) {
        const int base = std::uniform_int_distribution<int>(10000, top - 1)(rng);
        bool all = true;  // nor overlapping a block handed out before (not bound yet, perhaps)
        for (int k = 0; k < count; ++k) all = all && !given.count(base + k);
        if (!all) continue;
        std::vector<zmq::socket_t> held;
        for (int k = 0; k < count && all; ++k) {
            held.emplace_back(ctx, zmq::socket_type::router);
            try {
                held.back().bind(fmt::format("tcp://127.0.0.1:{}", base + k));
            } catch (const zmq::error_t&) {
                all = false;
            }
        }
        for (auto& h : held) h.set(zmq::sockopt::linger, 0);
        if (all) {
            for (int k = 0; k < count; ++k) given.insert(base + k);
            return base;
        }
    }
    FAIL("no block of " << count << " free ports below " << low);
    return 0;
}

// Free loopback ports for a config that must name them (mesh nodes bind their own): a free
// block (above), so that neither another test's connections nor srun's own listening sockets,
// which take ephemeral ports, can take one between this check and the node's bind (seen: srun
// listened on a node's port, the node could not bind it, and ZeroMQ's greetings to it made
// srun log "Insane message length").
std::vector<int> free_ports(int count) {
    const int base = free_block(count);
    std::vector<int> ports;
    for (int k = 0; k < count; ++k) ports.push_back(base + k);
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

// timeout 120 mpirun [as root: --allow-run-as-root] --oversubscribe REST...
std::vector<std::string> mpirun(std::vector<std::string> rest) {
    std::vector<std::string> args{"120", "/usr/bin/mpirun"};
    if (geteuid() == 0) args.emplace_back("--allow-run-as-root");  // CI runs as root
    args.emplace_back("--oversubscribe");
    for (auto& a : rest) args.push_back(std::move(a));
    return args;
}


// A config of five nodes on free loopback ports (node 4 Byzantine) over a small data set in `dir`;
// `ports` holds one port more, for a broker.
std::string five_nodes(const p2p::test::TempDir& dir, const std::vector<int>& ports) {
    std::string cfg = fmt::format("training: {{rounds: 6, batch_size: 16, eval_every: 6}}\n"
                                  "data: {{root: '{}'}}\n"
                                  "nodes:\n",
                                  dir.path().string());
    for (int i = 0; i < 5; ++i)
        cfg += fmt::format("  - {{id: {}, host: 127.0.0.1, port: {}, type: {}}}\n", i, ports[i], i == 4 ? "byzantine" : "honest");
    return dir.write("nodes.yaml", cfg);
}

// Where a run whose metrics go to `run` keeps its checkpoints (the final one written at exit).
std::string checkpoints(const std::filesystem::path& run) { return run.string() + "-ckpt"; }

// `launch` of `config` as a mesh (into `lm`) and as a hub (`lh`): honest nodes 0..3 of an engine's
// mesh run (`mesh`) and hub run (`hub`) end with launch's final losses, the mesh and the hub with
// the same, and the mesh wrote each of its 6 rounds.
void same_finals_as_launch(const std::string& config, const std::filesystem::path& mesh, const std::filesystem::path& hub,
                           const std::filesystem::path& lm, const std::filesystem::path& lh) {
    auto a = p2p::test::run_p2pnode(
        {"launch", "--config", config, "--metrics-dir", lm.string(), "--checkpoint-dir", checkpoints(lm)});
    REQUIRE(a.status == 0);
    auto b = p2p::test::run_p2pnode({"launch", "--config", config, "--pattern", "hub", "--metrics-dir", lh.string(),
                                     "--checkpoint-dir", checkpoints(lh)});
    REQUIRE(b.status == 0);
    auto model = [](const std::filesystem::path& run, int id) {
        const std::string bytes = p2p::test::slurp(fmt::format("{}/node-{}.ckpt", checkpoints(run), id));
        REQUIRE(bytes.size() > 1000);
        return bytes;
    };
    for (int id = 0; id < 4; ++id) {
        CAPTURE(id);
        CHECK(final_loss(mesh, id) == final_loss(lm, id));
        CHECK(final_loss(hub, id) == final_loss(lh, id));
        CHECK(final_loss(mesh, id) == final_loss(hub, id));  // mesh and hub: the same training
        // The same final models: the last checkpoints (parameters, optimizer state, round) byte for byte.
        CHECK(model(mesh, id) == model(lm, id));
        CHECK(model(hub, id) == model(lh, id));
        CHECK(lines_of(mesh / fmt::format("node-{}.jsonl", id)) == 6);
    }
}

// Processes whose command line names `text` (the cluster's folder: its daemons were started with
// paths under it).
std::vector<int> processes_naming(const std::string& text) {
    std::vector<int> found;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
        const std::string name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos || std::stoi(name) == getpid()) continue;
        std::string cmd = p2p::test::slurp(e.path() / "cmdline");
        std::replace(cmd.begin(), cmd.end(), '\0', ' ');
        if (contains(cmd, text)) found.push_back(std::stoi(name));
    }
    return found;
}

// A one-host Slurm cluster of the test's own (Debian's slurm-wlm and munge, as root): munged,
// slurmctld and slurmd in the foreground as this process's children, with the munge key, state,
// spool, logs and pid files under `dir` and the two Slurm ports free on loopback. The node is
// called 127.0.0.1 (so SLURM_JOB_NODELIST names a host that resolves without /etc/hosts, which a
// fresh chroot lacks) and declares 8 CPUs, so 5 and 6 tasks fit on 2 cores. SLURM_CONF points srun, sbatch and scontrol at it while it lives;
// on destruction every daemon gets SIGTERM (SIGKILL after 10 s) and is reaped.
class SlurmCluster {
public:
    explicit SlurmCluster(std::filesystem::path dir) : dir_(std::move(dir)) {
        namespace fs = std::filesystem;
        for (const char* d : {"state", "spool", "log"}) fs::create_directories(dir_ / d);
        fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace);  // munged's check
        const std::string key = (dir_ / "munge.key").string(), sock = (dir_ / "munge.sock").string();
        {
            std::random_device rd;
            std::string bytes(1024, '\0');
            for (auto& b : bytes) b = static_cast<char>(rd());
            std::ofstream(key, std::ios::binary) << bytes;
            fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
        }
        char host[256] = {};
        REQUIRE(gethostname(host, sizeof host - 1) == 0);
        std::string controller = host;
        controller = controller.substr(0, controller.find('.'));
        const auto ports = free_ports(2);
        const std::string d = dir_.string(), log = (dir_ / "log").string();
        conf_ = (dir_ / "slurm.conf").string();
        std::ofstream(conf_) << fmt::format(
            "ClusterName=p2ptest\nSlurmctldHost={0}(127.0.0.1)\nSlurmctldPort={1}\nSlurmdPort={2}\n"
            "SlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\nAuthInfo=socket={3}\nCredType=cred/munge\n"
            "StateSaveLocation={4}/state\nSlurmdSpoolDir={4}/spool\nSlurmctldPidFile={4}/slurmctld.pid\n"
            "SlurmdPidFile={4}/slurmd.pid\nSlurmctldLogFile={5}/slurmctld.log\nSlurmdLogFile={5}/slurmd.log\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSelectType=select/cons_tres\n"
            "SelectTypeParameters=CR_Core\nMpiDefault=none\nJobAcctGatherType=jobacct_gather/none\n"
            "AccountingStorageType=accounting_storage/none\nSwitchType=switch/none\n"
            "SlurmdParameters=config_overrides\nReturnToService=2\n"
            "NodeName=127.0.0.1 NodeAddr=127.0.0.1 CPUs=8 State=UNKNOWN\n"
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            controller, ports[0], ports[1], sock, d, log);
        ::setenv("SLURM_CONF", conf_.c_str(), 1);
        start({"/usr/sbin/munged", "-F", "--force", "--key-file=" + key, "--socket=" + sock,
               "--pid-file=" + d + "/munged.pid", "--log-file=" + log + "/munged.log", "--seed-file=" + d + "/munged.seed"},
              "munged");
        wait_for("munged", [&] { return p2p::test::run_program("/usr/bin/munge", {"-n", "-S", sock}).status == 0; });
        start({"/usr/sbin/slurmctld", "-D", "-f", conf_}, "slurmctld");
        wait_for("slurmctld", [&] { return contains(p2p::test::run_program("/usr/bin/scontrol", {"ping"}).out, "is UP"); });
        start({"/usr/sbin/slurmd", "-D", "-f", conf_, "-N", "127.0.0.1"}, "slurmd");
    }
    SlurmCluster(const SlurmCluster&) = delete;
    SlurmCluster& operator=(const SlurmCluster&) = delete;
    ~SlurmCluster() {
        for (auto it = daemons_.rbegin(); it != daemons_.rend(); ++it) ::kill(*it, SIGTERM);
        for (auto it = daemons_.rbegin(); it != daemons_.rend(); ++it) {
            int status = 0;
            for (int i = 0; i < 1000 && waitpid(*it, &status, WNOHANG) == 0; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            if (waitpid(*it, &status, WNOHANG) == 0) {
                ::kill(*it, SIGKILL);
                waitpid(*it, &status, 0);
            }
        }
        ::unsetenv("SLURM_CONF");
    }
    // A daemon's log, for a failing check's message.
    std::string logs() const {
        std::string all;
        for (const char* f : {"munged.out", "slurmctld.out", "slurmd.out"})
            all += fmt::format("--- {}\n{}", f, p2p::test::slurp(dir_ / "log" / f));
        return all;
    }

private:
    void start(std::vector<std::string> argv, const std::string& name) {
        const std::string out = (dir_ / "log" / (name + ".out")).string();
        daemons_.push_back(p2p::test::spawn_program(std::move(argv), out, out));
    }
    // Readiness, polled: up to 30 s, and fails with the daemons' logs.
    void wait_for(const std::string& what, const std::function<bool()>& ready) {
        for (int i = 0; i < 300; ++i) {
            if (ready()) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        FAIL(what << " did not come up in 30 s\n" << logs());
    }
    std::filesystem::path dir_;
    std::string conf_;
    std::vector<pid_t> daemons_;
};

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
    const std::string config = five_nodes(dir, ports);
    const std::string bin = p2p::test::required_env("P2PNODE_BIN");
    const auto m = dir.path() / "mpi-mesh", h = dir.path() / "mpi-hub", lm = dir.path() / "launch-mesh",
               lh = dir.path() / "launch-hub";

    auto mesh = p2p::test::run_program(
        "/usr/bin/timeout", mpirun({"-np", "5", bin, "mesh", "--config", config, "--node-id", "auto", "--metrics-dir", m.string(),
                   "--checkpoint-dir", checkpoints(m)}));
    CAPTURE(mesh.err);
    REQUIRE(mesh.status == 0);
    CHECK(contains(mesh.err + mesh.out, "[Node 3] id from OMPI_COMM_WORLD_RANK=3"));
    // The hub: the broker is rank 0 of the same mpirun line, the nodes ranks 1..5.
    const std::string port = std::to_string(ports[5]);
    auto hub = p2p::test::run_program(
        "/usr/bin/timeout", mpirun({"-np", "1", bin, "broker", "--host", "127.0.0.1", "--port", port, "--config", config,
                          "--exit-when-done", ":", "-np", "5", bin, "hub-client", "--config", config, "--server-host",
                          "127.0.0.1", "--server-port", port, "--node-id", "auto", "--rank-offset", "1",
                          "--metrics-dir", h.string(), "--checkpoint-dir", checkpoints(h)}));
    CAPTURE(hub.err);
    REQUIRE(hub.status == 0);
    CHECK(contains(hub.err + hub.out, "broker: all 5 nodes registered and left; stopping"));
    same_finals_as_launch(config, m, h, lm, lh);
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
    // A random graph: the config names the draw the Byzantine nodes were placed on (seed 0's
    // first draws leave the honest nodes apart), so the nodes build that graph, not another.
    const std::string er = (dir.path() / "er.yaml").string();
    auto g = p2p::test::run_p2pnode({"config", "--nodes", "8", "--topology", "erdos-renyi", "--p", "0.25",
                                     "--byzantine-count", "2", "--placement", "spread", "--out", er});
    REQUIRE_MESSAGE(g.status == 0, g.err);
    const auto er_cfg = p2p::load_nodes_config(er);
    CHECK(er_cfg.experiment.topology.seed > 0);
    auto from_file = p2p::test::run_p2pnode({"topology", "--config", er, "--json"});
    auto direct = p2p::test::run_p2pnode({"topology", "--config", out, "--topology", "erdos-renyi", "--p", "0.25",
                                          "--byzantine-count", "2", "--placement", "spread", "--seed", "0", "--json"});
    REQUIRE(from_file.status == 0);
    CHECK(contains(from_file.out, "\"honest_connected\": true"));
    CHECK(from_file.out == direct.out);  // the same edges, types and figures
    const std::string hostfile = dir.write("hosts", "x slots=1\ny slots=1\n");
    auto many = p2p::test::run_p2pnode({"config", "--hostfile", hostfile, "--nodes", "3"});
    CHECK(many.status == 2);
    CHECK(contains(many.err, "--nodes 3: more nodes than the 2 slots of the 2 hosts"));
    auto from = p2p::test::run_p2pnode({"config", "--hostfile", hostfile});
    CHECK(from.status == 0);
    CHECK(contains(from.out, "  - {id: 1, host: y, port: 8880, type: honest, bind_host: 0.0.0.0}\n"));
}

TEST_CASE("Slurm: a one-host cluster of the test's own; srun -n 5 (mesh), srun --multi-prog (hub) and the batch "
          "script give the finals of launch, and nothing is left running") {
    p2p::test::TempDir dir;
    p2p::test::write_set(dir, 256, false);
    const auto ports = free_ports(6);
    const std::string config = five_nodes(dir, ports);
    const std::string bin = p2p::test::required_env("P2PNODE_BIN");
    const std::string root = p2p::test::required_env("P2PNODE_SOURCE_ROOT");
    const auto s = dir.path() / "srun-mesh", h = dir.path() / "srun-hub", lm = dir.path() / "launch-mesh",
               lh = dir.path() / "launch-hub", runs = dir.path() / "runs", hub_runs = dir.path() / "hub-runs", cluster_dir = dir.path() / "slurm";
    std::string job_out;
    {
        SlurmCluster slurm(cluster_dir);
        // -I60: give up if the node has not registered within a minute.
        auto mesh = p2p::test::run_program("/usr/bin/timeout", {"120", "/usr/bin/srun", "-n", "5", "-I60", bin, "mesh", "--config", config,
                                                             "--node-id", "auto", "--metrics-dir", s.string(),
                                                             "--checkpoint-dir", checkpoints(s)});
        CAPTURE(mesh.err);
        CAPTURE(slurm.logs());
        REQUIRE(mesh.status == 0);
        CHECK(contains(mesh.err + mesh.out, "[Node 3] id from SLURM_PROCID=3"));
        // The hub: task 0 the broker, tasks 1..5 the nodes (srun --multi-prog).
        const std::string port = std::to_string(ports[5]);
        const std::string prog = dir.write(
            "hub.conf", fmt::format("0 {0} broker --host 127.0.0.1 --port {1} --config {2} --exit-when-done\n"
                                    "1-5 {0} hub-client --config {2} --server-host 127.0.0.1 --server-port {1} "
                                    "--node-id auto --rank-offset 1 --metrics-dir {3} --checkpoint-dir {4}\n",
                                    bin, port, config, h.string(), checkpoints(h)));
        auto hub = p2p::test::run_program("/usr/bin/timeout", {"120", "/usr/bin/srun", "-n", "6", "-I60", "--multi-prog", prog});
        CAPTURE(hub.err);
        REQUIRE(hub.status == 0);
        CHECK(contains(hub.err + hub.out, "broker: all 5 nodes registered and left; stopping"));
        // The batch script of configs/cluster: config from the allocation, one srun, the table.
        const std::string base = std::to_string(free_block(8));  // node k binds base + k
        ::setenv("P2PNODE", bin.c_str(), 1);
        ::setenv("P2PNODE_RUNS", runs.c_str(), 1);
        ::setenv("P2PNODE_BASE_PORT", base.c_str(), 1);
        auto batch = p2p::test::run_program(
            "/usr/bin/timeout",
            {"120", "/usr/bin/sbatch", "--wait", "--ntasks=5", "--chdir", dir.path().string(), "--output", (dir.path() / "job-%j.out").string(),
             root + "/configs/cluster/p2pnode.sbatch", "--byzantine", "4", "--bind-host", "127.0.0.1", "--rounds", "6",
             "--batch-size", "16", "--eval-every", "6", "--data-root", dir.path().string()});
        CAPTURE(batch.err);
        CAPTURE(slurm.logs());
        REQUIRE(batch.status == 0);
        for (const auto& e : std::filesystem::directory_iterator(dir.path()))
            if (e.path().filename().string().rfind("job-", 0) == 0) job_out = p2p::test::slurp(e.path());
        // The same script as a hub: the broker task 0, one task more than nodes.
        const std::string broker_port = std::to_string(free_ports(1)[0]);
        ::setenv("P2PNODE_RUNS", hub_runs.c_str(), 1);
        ::setenv("P2PNODE_PATTERN", "hub", 1);
        ::setenv("P2PNODE_BROKER_PORT", broker_port.c_str(), 1);
        ::setenv("P2PNODE_BROKER_BIND", "127.0.0.1", 1);
        auto hub_batch = p2p::test::run_program(
            "/usr/bin/timeout",
            {"120", "/usr/bin/sbatch", "--wait", "--ntasks=6", "--chdir", dir.path().string(), "--output", (dir.path() / "hubjob-%j.out").string(),
             root + "/configs/cluster/p2pnode.sbatch", "--byzantine", "4", "--bind-host", "127.0.0.1", "--rounds", "6",
             "--batch-size", "16", "--eval-every", "6", "--data-root", dir.path().string()});
        for (const char* v : {"P2PNODE", "P2PNODE_RUNS", "P2PNODE_BASE_PORT", "P2PNODE_PATTERN", "P2PNODE_BROKER_PORT",
                              "P2PNODE_BROKER_BIND"})
            ::unsetenv(v);
        CAPTURE(hub_batch.err);
        REQUIRE(hub_batch.status == 0);
    }
    CHECK(processes_naming(cluster_dir.string()).empty());  // munged, slurmctld, slurmd: all gone

    same_finals_as_launch(config, s, h, lm, lh);
    // The job's folder: the generated config (5 nodes on 127.0.0.1), every node's metrics, the
    // summary table; its training is the same as the test's config (same sections and seed).
    CAPTURE(job_out);
    std::filesystem::path job;
    for (const auto& e : std::filesystem::directory_iterator(runs)) job = e.path();
    REQUIRE(!job.empty());
    const auto generated = p2p::load_nodes_config((job / "nodes.yaml").string());
    REQUIRE(generated.nodes.size() == 5);
    CHECK(generated.nodes[2].host == "127.0.0.1");
    CHECK(generated.find(4)->type == p2p::NodeType::Byzantine);
    const std::string table = p2p::test::slurp(job / "summary.txt");
    CHECK(contains(job_out, table));
    for (int id = 0; id < 4; ++id) {
        CAPTURE(id);
        CHECK(final_loss(job / "metrics", id) == final_loss(lm, id));
        CHECK(contains(table, fmt::format("{:<5} {:<10} {:<7}", id, "honest", 6)));
    }
    CHECK(contains(table, fmt::format("{:<5} {:<10} {:<7}", 4, "byzantine", 6)));
    std::filesystem::path hub_job;
    for (const auto& e : std::filesystem::directory_iterator(hub_runs)) hub_job = e.path();
    REQUIRE(!hub_job.empty());
    CHECK(p2p::load_nodes_config((hub_job / "nodes.yaml").string()).nodes.size() == 5);  // 6 tasks: the broker and 5
    for (int id = 0; id < 4; ++id) {
        CAPTURE(id);
        CHECK(final_loss(hub_job / "metrics", id) == final_loss(lh, id));
    }
}

TEST_CASE("configs/cluster/mpirun.sh: a hostfile's slots, mpirun --node-id auto, the table; p2pnode summary") {
    p2p::test::TempDir dir;
    p2p::test::write_set(dir, 256, false);
    const std::string bin = p2p::test::required_env("P2PNODE_BIN");
    const std::string root = p2p::test::required_env("P2PNODE_SOURCE_ROOT");
    const std::string hosts = dir.write("hosts", "127.0.0.1 slots=5\n");  // no /etc/hosts in a fresh chroot
    const auto runs = dir.path() / "runs";
    const std::string base = std::to_string(free_block(8));  // node k binds base + k
    ::setenv("P2PNODE", bin.c_str(), 1);
    ::setenv("P2PNODE_RUNS", runs.c_str(), 1);
    ::setenv("P2PNODE_BASE_PORT", base.c_str(), 1);
    ::setenv("MPIRUN_ARGS", geteuid() == 0 ? "--allow-run-as-root --oversubscribe" : "--oversubscribe", 1);
    auto r = p2p::test::run_program("/usr/bin/timeout", {"180", "/bin/bash", root + "/configs/cluster/mpirun.sh", hosts, "--byzantine", "4",
                                                  "--bind-host", "127.0.0.1", "--rounds", "6", "--batch-size", "16",
                                                  "--eval-every", "6", "--data-root", dir.path().string()});
    for (const char* v : {"P2PNODE", "P2PNODE_RUNS", "P2PNODE_BASE_PORT", "MPIRUN_ARGS"}) ::unsetenv(v);
    CAPTURE(r.err);
    REQUIRE(r.status == 0);
    std::filesystem::path run;
    for (const auto& e : std::filesystem::directory_iterator(runs)) run = e.path();
    REQUIRE(!run.empty());
    const auto lm = dir.path() / "launch";
    // The same experiment by launch: the generated config's sections and seed.
    auto a = p2p::test::run_p2pnode({"launch", "--config", (run / "nodes.yaml").string(), "--metrics-dir", lm.string()});
    REQUIRE(a.status == 0);
    for (int id = 0; id < 4; ++id) {
        CAPTURE(id);
        CHECK(final_loss(run / "metrics", id) == final_loss(lm, id));
        CHECK(contains(r.out, fmt::format("{:<5} {:<10} {:<7}", id, "honest", 6)));
    }
    CHECK(contains(p2p::test::slurp(run / "summary.txt"), fmt::format("{:<5} {:<10} {:<7}", 4, "byzantine", 6)));

    // p2pnode summary alone: a folder without run.json lists the summaries it finds; a node that
    // left none makes it exit 1; a folder of no run is an error naming it.
    std::filesystem::remove(run / "metrics" / "run.json");
    std::filesystem::remove(run / "metrics" / "node-2.summary.json");
    auto partial = p2p::test::run_p2pnode({"summary", (run / "metrics").string()});
    CHECK(partial.status == 0);  // node 2 is unknown without the record: four nodes, all finished
    CHECK_FALSE(contains(partial.out, "\n2 "));
    auto record = p2p::test::run_p2pnode({"summary", (lm).string()});
    CHECK(record.status == 0);
    std::filesystem::remove(lm / "node-1.summary.json");
    auto missing = p2p::test::run_p2pnode({"summary", (lm).string()});
    CHECK(missing.status == 1);
    CHECK(contains(missing.out, "1     honest     (no summary: the node did not finish)"));
    CHECK(contains(missing.err, "summary: 1 of 5 node(s) did not finish"));
    auto none = p2p::test::run_p2pnode({"summary", dir.path().string()});
    CHECK(none.status == 2);
    CHECK(contains(none.err, "no run.json and no node-<id>.summary.json"));
}
