// End to end with real processes: `p2pnode launch` starting node processes (and a broker),
// over ipc sockets in a temporary folder, on Fashion-MNIST.
#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <sstream>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>

#include "p2pnode/node/checkpoint.hpp"
#include "support.hpp"

using p2p::test::run_p2pnode;

namespace {

bool contains(const std::string& s, const std::string& n) { return s.find(n) != std::string::npos; }

std::vector<std::string> run_flags(const p2p::test::TempDir& dir, int rounds) {
    return {"--endpoint", "ipc",          "--ipc-dir", dir.path().string(), "--metrics-dir", (dir.path() / "m").string(),
            "--rounds",   std::to_string(rounds), "--batch-size", "32", "--eval-every", std::to_string(rounds)};
}

// Node `id`'s summary JSON, which launch writes beside the metrics.
std::string summary_of(const p2p::test::TempDir& dir, int id) {
    return p2p::test::slurp(dir.path() / "m" / ("node-" + std::to_string(id) + ".summary.json"));
}

// The number after "key": in a flat JSON object.
double json_number(const std::string& json, const std::string& key) {
    const auto at = json.find("\"" + key + "\": ");
    REQUIRE(at != std::string::npos);
    return std::stod(json.substr(at + key.size() + 4));
}

// Lines in a file (0 if it does not exist yet).
std::size_t lines_in(const std::filesystem::path& p) {
    const std::string s = p2p::test::slurp(p);
    return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

std::size_t node_checkpoint_round(const std::filesystem::path& p) {
    return static_cast<std::size_t>(p2p::node::load_checkpoint(p.string()).round);
}

}  // namespace

TEST_CASE("launch: the mesh example (4 honest + 1 Empire attacker) as processes, with its summary table") {
    p2p::test::TempDir dir;
    auto args = std::vector<std::string>{"launch", "--config",
                                         p2p::test::required_env("P2PNODE_SOURCE_ROOT") + "/configs/nodes_example.yaml"};
    auto flags = run_flags(dir, 30);
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = run_p2pnode(args);
    CHECK(r.status == 0);
    CHECK(contains(r.out, "node  type       rounds  final loss  final acc  s/round"));
    for (int id = 0; id < 4; ++id) CHECK(contains(r.out, "[Node " + std::to_string(id) + "] Final: loss="));
    CHECK(contains(r.out, "4     byzantine  30"));
    // every honest node learned: accuracy well above chance (0.1)
    for (int id = 0; id < 4; ++id) {
        const std::string summary = summary_of(dir, id);
        CHECK(json_number(summary, "acc") > 0.18);  // chance: 0.1
        CHECK(lines_in(dir.path() / "m" / ("node-" + std::to_string(id) + ".jsonl")) == 30);
        // the table's time columns: wall per round covers the rounds' own time and the evaluations
        const double wall = 30 * json_number(summary, "seconds_per_round");
        const double rounds = 30 * json_number(summary, "round_ms") / 1000;
        const double eval = json_number(summary, "seconds_eval");
        CHECK(rounds > 0);
        CHECK(eval > 0);  // the evaluation of the test set after the last round
        CHECK(wall >= rounds + eval);
    }
    CHECK(contains(r.out, "s/round  round ms  eval s"));
}

TEST_CASE("launch: the hub example (2 honest + 1 Byzantine) through a broker process") {
    p2p::test::TempDir dir;
    const std::string cfg = dir.write("hub.yaml", "nodes:\n  - {id: 0, host: 127.0.0.1, port: 9100, type: honest}\n"
                                                  "  - {id: 1, host: 127.0.0.1, port: 9101, type: honest}\n"
                                                  "  - {id: 2, host: 127.0.0.1, port: 9102, type: byzantine}\n"
                                                  "topology: {type: complete}\n");
    auto args = std::vector<std::string>{"launch", "--config", cfg, "--pattern", "hub", "--f", "0", "--self-weight", "1"};
    auto flags = run_flags(dir, 10);
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = run_p2pnode(args);
    CHECK(r.status == 0);
    CHECK(contains(r.out, "[Node 0] Round 10/10 (aggregated 3 gradients)"));
    CHECK(contains(r.out, "[Node 2] Final: byzantine node, 10 rounds"));
    CHECK(contains(r.out, "gradient exchange, self weight 1\n"));  // launch's flag reached the processes
    CHECK(contains(r.out, "2     byzantine  10"));
}

TEST_CASE("launch: node processes take the config's training and robust sections; the table without metrics") {
    p2p::test::TempDir dir;
    const std::string cfg = dir.write("hub.yaml", "training: {rounds: 6, exchange: model, self_weight: 0.25}\n"
                                                  "robust: {aggregator: trimmed-mean, attack: alie, f: 0}\n"
                                                  "nodes:\n  - {id: 0, host: 127.0.0.1, port: 9100, type: honest}\n"
                                                  "  - {id: 1, host: 127.0.0.1, port: 9101, type: honest}\n"
                                                  "  - {id: 2, host: 127.0.0.1, port: 9102, type: byzantine}\n"
                                                  "topology: {type: complete}\n");
    auto r = run_p2pnode({"launch", "--config", cfg, "--pattern", "hub", "--endpoint", "ipc", "--ipc-dir",
                          dir.path().string(), "--metrics-dir", "", "--batch-size", "32", "--eval-every", "6"});
    CHECK(r.status == 0);
    CHECK(contains(r.out, "[Node 0] honest node, neighbours 1, 2, aggregator trimmed-mean"));
    CHECK(contains(r.out, "[Node 2] byzantine node, neighbours 0, 1, attack alie"));
    CHECK(contains(r.out, "[Node 1] Round 6/6 (aggregated 3 models)"));
    CHECK(contains(r.out, "model exchange, self weight 0.25\n"));
    CHECK(contains(r.out, "2     byzantine  6"));
    CHECK(contains(r.out, "0     honest     6"));
    CHECK(!contains(r.out, "Round 7/"));  // the file's 6 rounds, not the flag's default 50
}

TEST_CASE("launch hands every node one resolved experiment file; a node started by hand reads the same") {
    p2p::test::TempDir dir;
    const std::string cfg = p2p::test::required_env("P2PNODE_SOURCE_ROOT") + "/configs/nodes_example.yaml";
    auto args = std::vector<std::string>{"launch", "--config", cfg, "--aggregator", "trimmed-mean", "--attack", "alie",
                                         "--pre-aggregator", "clipping", "--tau", "7.5"};
    auto flags = run_flags(dir, 3);
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = run_p2pnode(args);
    CHECK(r.status == 0);
    const auto file = dir.path() / "m" / "experiment.yaml";
    const std::string written = p2p::test::slurp(file);
    for (const char* line : {"  rounds: 3\n", "  batch_size: 32\n", "  aggregator: \"trimmed-mean\"\n",
                             "  pre_aggregators: [\"clipping\"]\n", "  tau: 7.5\n", "  attack: \"alie\"\n",
                             "  endpoint: \"ipc\"\n", "  self_weight: 0.5\n"})
        CHECK(contains(written, line));
    for (int id = 0; id < 4; ++id)
        CHECK(contains(r.out, "[Node " + std::to_string(id) + "] honest node, rounds 3, batch 32"));
    CHECK(contains(r.out, "clipping -> trimmed-mean (f=1: the most Byzantine neighbours of any honest node), attack alie"));

    // By hand, with the same file: the same settings; flags still win (short timeouts: it runs alone).
    auto alone = run_p2pnode({"mesh", "--config", cfg, "--node-id", "1", "--experiment", file.string(), "--ipc-dir",
                              (dir.path() / "solo").string(), "--metrics-dir", (dir.path() / "solo").string(),
                              "--startup-timeout", "0.2", "--round-timeout", "0.2", "--hard-timeout", "0.3"});
    CHECK(alone.status == 0);
    CHECK(contains(alone.out, "[Node 1] honest node, rounds 3, batch 32"));
    CHECK(contains(alone.out, "clipping -> trimmed-mean (f=1: the most Byzantine neighbours of any honest node), attack alie"));

    // A broken experiment file is a usage error naming the file, the line and the key.
    const std::string bad = dir.write("bad.yaml", "robust:\n  aggregator: krum\n  f: many\n");
    auto broken = run_p2pnode({"mesh", "--config", cfg, "--node-id", "1", "--experiment", bad});
    CHECK(broken.status == 2);
    CHECK(contains(broken.err, "bad.yaml:3: robust.f: must be an integer, got 'many'"));
}

TEST_CASE("a node killed mid-run: the others finish within their round deadlines") {
    p2p::test::TempDir dir;
    const std::string cfg = p2p::test::required_env("P2PNODE_SOURCE_ROOT") + "/configs/nodes_example.yaml";
    const std::string bin = p2p::test::required_env("P2PNODE_BIN");
    std::vector<pid_t> pids;
    for (int id = 0; id < 5; ++id) {
        std::vector<std::string> a = {bin, "mesh", "--config", cfg, "--node-id", std::to_string(id), "--round-timeout", "1"};
        auto flags = run_flags(dir, 25);
        a.insert(a.end(), flags.begin(), flags.end());
        std::vector<char*> argv;
        for (auto& s : a) argv.push_back(s.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        pid_t pid = 0;
        REQUIRE(posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ) == 0);
        posix_spawn_file_actions_destroy(&fa);
        pids.push_back(pid);
    }
    // Kill node 2 once it has finished 5 rounds (its metrics file says so).
    const auto metrics2 = dir.path() / "m" / "node-2.jsonl";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (lines_in(metrics2) < 5 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a file for an event, with a deadline
    REQUIRE(lines_in(metrics2) >= 5);
    kill(pids[2], SIGKILL);
    int killed_status = 0;
    waitpid(pids[2], &killed_status, 0);
    CHECK(WIFSIGNALED(killed_status));
    for (int id : {0, 1, 3, 4}) {
        int status = 0;
        waitpid(pids[id], &status, 0);
        CAPTURE(id);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
        CHECK(lines_in(dir.path() / "m" / ("node-" + std::to_string(id) + ".jsonl")) == 25);
    }
}

namespace {

// Starts a[0] with arguments a, standard output appended to `log`; returns at once.
pid_t spawn_logged(std::vector<std::string> a, const std::string& log) { return p2p::test::spawn_program(std::move(a), log); }

pid_t start_node(const std::string& cfg, int id, const p2p::test::TempDir& dir, int rounds,
                 std::vector<std::string> extra = {}) {
    const std::string bin = p2p::test::required_env("P2PNODE_BIN");
    std::vector<std::string> a = {bin, "mesh", "--config", cfg, "--node-id", std::to_string(id), "--round-timeout", "1",
                                  "--checkpoint-dir", (dir.path() / "ck").string(), "--checkpoint-every", "2"};
    auto flags = run_flags(dir, rounds);
    a.insert(a.end(), flags.begin(), flags.end());
    a.insert(a.end(), extra.begin(), extra.end());
    return spawn_logged(a, (dir.path() / ("node-" + std::to_string(id) + ".log")).string());
}

void wait_rows(const std::filesystem::path& p, std::size_t rows) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (lines_in(p) < rows && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a file for an event, with a deadline
    REQUIRE(lines_in(p) >= rows);
}

int exit_code(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("kill -9, then --resume: the node reloads its checkpoint, rejoins, and everyone finishes") {
    p2p::test::TempDir dir;
    const std::string cfg = p2p::test::required_env("P2PNODE_SOURCE_ROOT") + "/configs/nodes_example.yaml";
    const int rounds = 300;  // long enough that the others are still running when node 1 is back
    std::vector<pid_t> pids;
    for (int id = 0; id < 5; ++id) pids.push_back(start_node(cfg, id, dir, rounds));
    wait_rows(dir.path() / "m" / "node-1.jsonl", 6);
    kill(pids[1], SIGKILL);
    CHECK(exit_code(pids[1]) == -1);
    CHECK(std::filesystem::exists(dir.path() / "ck" / "node-1.ckpt"));
    pids[1] = start_node(cfg, 1, dir, rounds, {"--resume"});
    for (int id = 0; id < 5; ++id) {
        CAPTURE(id);
        CHECK(exit_code(pids[id]) == 0);
    }
    const std::string log = p2p::test::slurp(dir.path() / "node-1.log");
    CHECK(contains(log, "[Node 1] resumed from"));
    CHECK(contains(log, "[Node 1] rejoining at round"));
    CHECK(contains(log, "[Node 1] Final: loss="));
    // the resumed node's metrics continue the file; in its last round it heard both neighbours again
    const std::string rows = p2p::test::slurp(dir.path() / "m" / "node-1.jsonl");
    const auto last = rows.rfind("{\"round\": " + std::to_string(rounds) + ",");
    REQUIRE(last != std::string::npos);
    CHECK(contains(rows.substr(last), "\"peers_heard\": 2"));
    // The rounds after the checkpoint, which the node redid, appear once: every row's round is
    // above the one before, and every line is a whole row.
    std::istringstream lines(rows);
    long previous = 0;
    std::size_t count = 0;
    for (std::string line; std::getline(lines, line); ++count) {
        CAPTURE(line);
        REQUIRE(line.rfind("{\"round\": ", 0) == 0);
        REQUIRE(line.back() == '}');
        const long round = std::stol(line.substr(10));
        CHECK(round > previous);
        previous = round;
    }
    CHECK(count >= 6);
}

// Issue 19, item 9: every node killed between checkpoints and every node resumed: the rounds
// each redoes appear once in its metrics (before, the rows after the checkpoint stayed and
// were written again).
TEST_CASE("kill -9 of every node, then --resume of all: each round appears once in every metrics file") {
    p2p::test::TempDir dir;
    const std::string cfg = p2p::test::required_env("P2PNODE_SOURCE_ROOT") + "/configs/nodes_example.yaml";
    const int rounds = 40;
    const std::string bin = p2p::test::required_env("P2PNODE_BIN");
    auto start = [&](int id, bool resume) {
        std::vector<std::string> a = {bin, "mesh", "--config", cfg, "--node-id", std::to_string(id), "--round-timeout",
                                      "1", "--checkpoint-dir", (dir.path() / "ck").string(), "--checkpoint-every",
                                      "5"};
        auto flags = run_flags(dir, rounds);
        a.insert(a.end(), flags.begin(), flags.end());
        if (resume) a.push_back("--resume");
        return spawn_logged(a, (dir.path() / ("node-" + std::to_string(id) + (resume ? "-b" : "-a") + ".log")).string());
    };
    std::vector<pid_t> pids;
    for (int id = 0; id < 5; ++id) pids.push_back(start(id, false));
    for (int id = 0; id < 4; ++id) wait_rows(dir.path() / "m" / ("node-" + std::to_string(id) + ".jsonl"), 7);
    for (auto pid : pids) kill(pid, SIGKILL);
    std::size_t beyond = 0;  // rows after a checkpoint (round 5 or 10): redone after the resume
    for (int id = 0; id < 5; ++id) {
        CHECK(exit_code(pids[id]) == -1);
        const auto n = lines_in(dir.path() / "m" / ("node-" + std::to_string(id) + ".jsonl"));
        beyond += n % 5;
    }
    CHECK(beyond > 0);
    for (int id = 0; id < 5; ++id) pids[id] = start(id, true);
    for (int id = 0; id < 5; ++id) {
        CAPTURE(id);
        CHECK(exit_code(pids[id]) == 0);
        if (id == 4) continue;  // the Byzantine node writes rows too, but only the honest ones are asserted
        std::istringstream lines(p2p::test::slurp(dir.path() / "m" / ("node-" + std::to_string(id) + ".jsonl")));
        long previous = 0;
        std::size_t count = 0;
        for (std::string line; std::getline(lines, line); ++count) {
            CAPTURE(line);
            REQUIRE(line.rfind("{\"round\": ", 0) == 0);
            const long round = std::stol(line.substr(10));
            CHECK(round > previous);
            previous = round;
        }
        CHECK(previous == rounds);
    }
}

TEST_CASE("SIGINT: the node stops after its round, writes metrics and a checkpoint, exits 0") {
    p2p::test::TempDir dir;
    const std::string cfg = p2p::test::required_env("P2PNODE_SOURCE_ROOT") + "/configs/nodes_example.yaml";
    std::vector<pid_t> pids;
    for (int id = 0; id < 5; ++id) pids.push_back(start_node(cfg, id, dir, 40));
    wait_rows(dir.path() / "m" / "node-3.jsonl", 3);
    const auto t0 = std::chrono::steady_clock::now();
    kill(pids[3], SIGINT);
    CHECK(exit_code(pids[3]) == 0);
    // 2e + 1 = 5 rounds on, then the final evaluation: seconds, not the run's 40 rounds.
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
    const std::size_t done = lines_in(dir.path() / "m" / "node-3.jsonl");
    CHECK(done < 40);
    const auto ck = node_checkpoint_round(dir.path() / "ck" / "node-3.ckpt");
    CHECK(ck == done);  // the checkpoint holds the last round it finished
    for (int id : {0, 1, 2, 4}) {
        CAPTURE(id);
        CHECK(exit_code(pids[id]) == 0);
    }
}

TEST_CASE("Ctrl-C on launch: every node process stops after its round, exits 0, and the table is printed") {
    p2p::test::TempDir dir;
    const std::string cfg = p2p::test::required_env("P2PNODE_SOURCE_ROOT") + "/configs/nodes_example.yaml";
    std::vector<std::string> a = {p2p::test::required_env("P2PNODE_BIN"), "launch", "--config", cfg};
    auto flags = run_flags(dir, 400);
    a.insert(a.end(), flags.begin(), flags.end());
    const std::string log = (dir.path() / "launch.log").string();
    const pid_t launch = spawn_logged(a, log);
    wait_rows(dir.path() / "m" / "node-0.jsonl", 3);
    const auto t0 = std::chrono::steady_clock::now();
    kill(launch, SIGINT);  // only launch: it must pass the stop on to its children
    CHECK(exit_code(launch) == 0);
    // The nodes agree on a round 2e + 1 = 5 rounds on, then evaluate: seconds, not the run's 400 rounds.
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
    const std::string out = p2p::test::slurp(log);
    CHECK(contains(out, "node  type       rounds  final loss  final acc  s/round"));
    for (int id = 0; id < 5; ++id) {
        CAPTURE(id);
        const double rounds = json_number(summary_of(dir, id), "rounds");
        CHECK(rounds >= 3);
        CHECK(rounds < 400);
    }
}

// Issue 19, item 11: Ctrl-C on launch stops every node after the same round; `launch --resume`
// restarts them all from their checkpoints and the run finishes without anyone waiting out a
// timeout for a neighbour a round behind.
TEST_CASE("Ctrl-C, then launch --resume: the whole run stops at one round and resumes") {
    p2p::test::TempDir dir;
    const std::string cfg = p2p::test::required_env("P2PNODE_SOURCE_ROOT") + "/configs/nodes_example.yaml";
    const int rounds = 60;
    std::vector<std::string> a = {p2p::test::required_env("P2PNODE_BIN"), "launch", "--config", cfg,
                                  "--checkpoint-dir", (dir.path() / "ck").string(), "--checkpoint-every", "1000"};
    auto flags = run_flags(dir, rounds);
    a.insert(a.end(), flags.begin(), flags.end());
    const pid_t first = spawn_logged(a, (dir.path() / "first.log").string());
    wait_rows(dir.path() / "m" / "node-0.jsonl", 3);
    kill(first, SIGINT);
    CHECK(exit_code(first) == 0);
    const double stopped = json_number(summary_of(dir, 0), "rounds");
    CHECK(stopped < rounds);
    for (int id = 0; id < 5; ++id) {
        CAPTURE(id);
        CHECK(json_number(summary_of(dir, id), "rounds") == stopped);
        CHECK(node_checkpoint_round(dir.path() / "ck" / ("node-" + std::to_string(id) + ".ckpt")) == stopped);
    }
    a.push_back("--resume");
    const pid_t second = spawn_logged(a, (dir.path() / "second.log").string());
    CHECK(exit_code(second) == 0);
    const std::string log = p2p::test::slurp(dir.path() / "second.log");
    for (int id = 0; id < 5; ++id) {
        CAPTURE(id);
        CHECK(json_number(summary_of(dir, id), "rounds") == rounds);
        CHECK(contains(log, "[Node " + std::to_string(id) + "] resumed from"));
        CHECK(lines_in(dir.path() / "m" / ("node-" + std::to_string(id) + ".jsonl")) == static_cast<std::size_t>(rounds));
    }
    CHECK_FALSE(contains(log, "no gradient from node"));
}

TEST_CASE("keygen and a CURVE launch: same results as without, key files guarded") {
    p2p::test::TempDir dir;
    const auto keys = dir.path() / "keys";
    std::string yaml = "nodes:\n";
    for (int id = 0; id < 3; ++id) {
        auto r = run_p2pnode({"keygen", "--out", (keys / ("node-" + std::to_string(id))).string()});
        REQUIRE(r.status == 0);
        CHECK(contains(r.out, "(secret, mode 0600)"));
        std::string pub = p2p::test::slurp(keys / ("node-" + std::to_string(id) + ".pub"));
        pub.erase(pub.find_last_not_of("\n") + 1);
        CHECK_FALSE(contains(r.out, p2p::test::slurp(keys / ("node-" + std::to_string(id) + ".key")).substr(0, 40)));
        yaml += "  - {id: " + std::to_string(id) + ", host: 127.0.0.1, port: " + std::to_string(9300 + id) +
                ", type: " + (id == 2 ? "byzantine" : "honest") + ", public_key: \"" + pub + "\"}\n";
    }
    CHECK((std::filesystem::status(keys / "node-0.key").permissions() & std::filesystem::perms::others_read) ==
          std::filesystem::perms::none);
    CHECK(run_p2pnode({"keygen", "--out", (keys / "node-0").string()}).status != 0);  // no silent overwrite
    const std::string cfg = dir.write("secure.yaml", yaml);
    auto table = [&](std::vector<std::string> extra) {
        std::vector<std::string> a = {"launch", "--config", cfg};
        auto flags = run_flags(dir, 4);
        a.insert(a.end(), flags.begin(), flags.end());
        a.insert(a.end(), extra.begin(), extra.end());
        auto r = run_p2pnode(a);
        CHECK(r.status == 0);
        return r.out.substr(r.out.find("node  type"));
    };
    const std::string plain = table({});
    const std::string secure = table({"--keys-dir", keys.string()});
    // the same final losses and accuracies (the s/round column differs)
    auto cut = [](const std::string& t) {
        std::string out;
        std::istringstream in(t);
        for (std::string line; std::getline(in, line);) out += line.substr(0, std::min<std::size_t>(line.size(), 45)) + "\n";
        return out;
    };
    CHECK(cut(plain) == cut(secure));
    std::filesystem::permissions(keys / "node-1.key", std::filesystem::perms::others_read, std::filesystem::perm_options::add);
    auto warned = run_p2pnode({"mesh", "--config", cfg, "--node-id", "1", "--secret-key", (keys / "node-1.key").string(),
                               "--startup-timeout", "0.2", "--rounds", "1", "--endpoint", "ipc", "--ipc-dir",
                               dir.path().string(), "--batch-size", "8", "--round-timeout", "0.1", "--hard-timeout", "0.2"});
    CHECK(contains(warned.err, "readable by others"));
}

TEST_CASE("broker killed and restarted on the same endpoint: hub clients reconnect and training finishes") {
    p2p::test::TempDir dir;
    const std::string bin = p2p::test::required_env("P2PNODE_BIN");
    const std::string cfg = dir.write("hub.yaml", "nodes:\n  - {id: 0, host: 127.0.0.1, port: 9200, type: honest}\n"
                                                  "  - {id: 1, host: 127.0.0.1, port: 9201, type: honest}\n"
                                                  "  - {id: 2, host: 127.0.0.1, port: 9202, type: honest}\n"
                                                  "topology: {type: complete}\n");
    auto spawn = [&](std::vector<std::string> a, const std::string& log) {
        a.insert(a.begin(), bin);
        std::vector<char*> argv;
        for (auto& s : a) argv.push_back(s.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, (dir.path() / log).c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        pid_t pid = 0;
        posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        return pid;
    };
    const std::vector<std::string> broker_args = {"broker", "--port", "9299", "--endpoint", "ipc", "--ipc-dir",
                                                  dir.path().string()};
    pid_t broker = spawn(broker_args, "broker.log");
    std::vector<pid_t> nodes;
    for (int id = 0; id < 3; ++id) {
        std::vector<std::string> a = {"hub-client", "--config", cfg, "--server-host", "127.0.0.1", "--server-port",
                                      "9299", "--node-id", std::to_string(id), "--round-timeout", "1", "--f", "0"};
        auto flags = run_flags(dir, 20);
        a.insert(a.end(), flags.begin(), flags.end());
        nodes.push_back(spawn(a, "node-" + std::to_string(id) + ".log"));
    }
    wait_rows(dir.path() / "m" / "node-0.jsonl", 4);
    kill(broker, SIGKILL);
    CHECK(exit_code(broker) == -1);
    broker = spawn(broker_args, "broker.log");  // back on the same endpoint
    // Every node finishes every round with both neighbours' gradients: what was lost with the
    // broker (a node's gradient of the round, or of the round before when it was a round ahead)
    // is sent again when the nodes register with the new broker, so no round waits out the hard
    // timeout and goes on without a neighbour (before that fix, one round did, 30 s).
    for (int id = 0; id < 3; ++id) {
        CAPTURE(id);
        CHECK(exit_code(nodes[id]) == 0);
        const std::string rows = p2p::test::slurp(dir.path() / "m" / ("node-" + std::to_string(id) + ".jsonl"));
        CAPTURE(rows);
        std::istringstream lines(rows);
        long previous = 0;
        for (std::string line; std::getline(lines, line);) {
            const long round = std::stol(line.substr(10));
            CHECK(round == previous + 1);
            CHECK(contains(line, "\"peers_heard\": 2,"));
            previous = round;
        }
        CHECK(previous == 20);
    }
    kill(broker, SIGTERM);
    CHECK(exit_code(broker) == 0);
}
