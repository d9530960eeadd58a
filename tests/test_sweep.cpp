// p2pnode sweep: the grid a sweep file describes, its runs, its results and its figures.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <signal.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

#include "p2pnode/config/sweep.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/launch/sweep.hpp"
#include "support.hpp"
#include "training_support.hpp"

using namespace p2p;

namespace {

std::string three_nodes() {
    return "nodes:\n"
           "  - {id: 0, host: 127.0.0.1, port: 21001}\n"
           "  - {id: 1, host: 127.0.0.1, port: 21002}\n"
           "  - {id: 2, host: 127.0.0.1, port: 21003, type: byzantine}\n"
           "topology: {type: complete}\n";
}

std::string error_of(const std::string& text) {
    try {
        expand_sweep(parse_sweep(text, "s.yaml"));
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "(no error)";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a sweep file's lists are axes: product, seeds, exclusions, names") {
    const auto spec = parse_sweep(three_nodes() +
                                      "seeds: 2\n"
                                      "training: {rounds: 3, seed: 10}\n"
                                      "robust:\n"
                                      "  aggregator: [mean, median]\n"
                                      "  pre_aggregators: [[], [nnm, clipping]]\n"
                                      "  attack: alie\n"
                                      "data: {partition: dirichlet, alpha: [0.1, 10]}\n"
                                      "exclude:\n"
                                      "  - {robust.aggregator: mean, robust.pre_aggregators: [nnm, clipping]}\n",
                                  "s.yaml");
    REQUIRE(spec.axes.size() == 3);
    CHECK(spec.axes[1].labels == std::vector<std::string>{"none", "nnm+clipping"});
    CHECK(spec.seeds == std::vector<std::uint64_t>{10, 11});
    CHECK(spec.base.attack.name == "alie");
    const auto points = expand_sweep(spec);
    CHECK(points.size() == (2 * 2 * 2 - 2) * 2);  // one combination of the first two excluded, for both alphas
    CHECK(points[0].name == "aggregator-mean_pre-aggregators-none_alpha-0.1_seed-10");
    CHECK(points[0].group == "aggregator-mean_pre-aggregators-none_alpha-0.1");
    CHECK(points[1].experiment.training.seed == 11);
    CHECK(points[0].experiment.data.alpha == 0.1);
    CHECK(points[0].experiment.robust.aggregator == "mean");
    CHECK(points.back().experiment.robust.pre_aggregators == std::vector<std::string>{"nnm", "clipping"});
    for (const auto& p : points)
        CHECK_FALSE((p.experiment.robust.aggregator == "mean" && !p.experiment.robust.pre_aggregators.empty()));
    // The number and the place of the Byzantine nodes are axes like any other field.
    const auto byz = expand_sweep(parse_sweep(three_nodes() + "byzantine: {count: [0, 1], placement: [spread, clustered]}\n",
                                              "s.yaml"));
    REQUIRE(byz.size() == 4);
    CHECK(byz[1].name == "byzantine-count-0_byzantine-placement-clustered_seed-0");
    CHECK(byz[3].experiment.byzantine.count == 1);
    CHECK(byz[3].experiment.byzantine.placement == "clustered");
    // Explicit seeds; no axes: one point per seed.
    const auto plain = expand_sweep(parse_sweep(three_nodes() + "seeds: [4, 9]\n", "s.yaml"));
    CHECK(plain.size() == 2);
    CHECK(plain[1].name == "run_seed-9");
    // A rule whose bound fails at a point is listed as skipped, with the reason.
    const auto krum = parse_sweep(three_nodes() + "robust: {aggregator: [median, krum]}\n", "s.yaml");
    const std::string grid = launch::describe_grid(krum, expand_sweep(krum));
    CHECK(contains(grid, "aggregator-median_seed-0\n"));
    CHECK(contains(grid, "aggregator-krum_seed-0  [skipped: node 0: n = 3 inputs"));
}

TEST_CASE("a sweep file's mistakes are errors naming the file, the line and the key") {
    CHECK(contains(error_of(three_nodes() + "robust: {agregator: [mean]}\n"), "s.yaml:6: robust.agregator: unknown field"));
    CHECK(contains(error_of(three_nodes() + "robustness: {aggregator: mean}\n"), "s.yaml:6: robustness: unknown key"));
    CHECK(contains(error_of(three_nodes() + "robust: {aggregator: []}\n"), "robust.aggregator: an axis needs at least one value"));
    CHECK(contains(error_of(three_nodes() + "robust: {aggregator: [mean, mean]}\n"), "'mean' is already on this axis"));
    CHECK(contains(error_of(three_nodes() + "training: {rounds: [3, -1]}\n"), "training.rounds: must be in 1..100000000, got -1"));
    CHECK(contains(error_of(three_nodes() + "robust: {aggregator: [mean]}\nexclude: [{robust.aggregator: mean}]\n"),
                   "s.yaml: the grid is empty: every one of its 1 combinations is excluded"));
    CHECK(contains(error_of(three_nodes() + "exclude: [{aggregator: mean}]\n"), "exclude[0].aggregator: unknown field"));
    CHECK(contains(error_of(three_nodes() + "seeds: 0\n"), "seeds: must be in 1..10000, got 0"));
    CHECK(contains(error_of("robust: {aggregator: mean}\n"), "s.yaml: config: missing"));
    CHECK(contains(error_of(three_nodes() + "seeds: [1, 1]\n"), "seeds[1]: seed 1 is given twice"));
    CHECK(contains(error_of(three_nodes() + "data: {root: [/a/b, /a-b]}\n"),
                   "two points would share the run folder root--a-b_seed-0"));
    // An exclusion may name the seed.
    const auto some = expand_sweep(parse_sweep(three_nodes() + "seeds: 3\nexclude: [{training.seed: 1}]\n", "s.yaml"));
    REQUIRE(some.size() == 2);
    CHECK(some[1].seed == 2);
}

// Issue 17: the topology is an axis like any other; each point's row carries its graph's
// figures, and a graph that cannot be made (5 nodes of degree 3: 15 ends) is a point skipped
// with the reason, its run record written with a null graph, not a failed run.
TEST_CASE("a sweep over topologies: the spectral gap beside the accuracy, an impossible graph skipped") {
    p2p::test::QuietLogs quiet;
    p2p::test::TempDir dir;
    p2p::test::write_set(dir, 256, false);
    std::string nodes = "nodes:\n";
    for (int i = 0; i < 5; ++i) nodes += fmt::format("  - {{id: {}, host: 127.0.0.1, port: {}}}\n", i, 21101 + i);
    const std::string file = dir.write(
        "t.yaml", nodes + fmt::format("training: {{rounds: 2, batch_size: 16, eval_every: 2}}\n"
                                      "outputs: {{metrics_dir: ''}}\n"
                                      "data: {{root: '{}'}}\n"
                                      "byzantine: {{count: 1, placement: spread}}\n"
                                      "robust: {{aggregator: mean, attack: sign-flip}}\n"
                                      "topology: {{type: [ring, complete, random-regular]}}\n",
                                      dir.path().string()));
    const auto spec = load_sweep(file);
    const auto points = expand_sweep(spec);
    REQUIRE(points.size() == 3);
    launch::SweepOptions o;
    o.out = (dir.path() / "out").string();
    const auto rows = launch::run_sweep(spec, file, points, o);
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].status == "done");
    CHECK(rows[1].status == "done");
    // The ring's 4 honest nodes form a path (the Byzantine node cuts it), mixing slower than a clique.
    CHECK(rows[0].gap_uniform < rows[1].gap_uniform);
    CHECK(rows[1].gap_uniform == doctest::Approx(1.0));
    CHECK(rows[2].status == "skipped");
    CHECK(contains(rows[2].error, "topology.random-regular"));
    CHECK(contains(rows[2].error, "must be even"));
    const std::string record = p2p::test::slurp(dir.path() / "out" / "runs" / points[2].name / "run.json");
    CHECK(contains(record, "\"graph\": null"));
    const std::string csv = p2p::test::slurp(dir.path() / "out" / "results.csv");
    CHECK(contains(csv, "name,type,seed,status"));
    CHECK(contains(csv, ",random-regular,0,skipped,"));
    // summary.md puts the graph's figures beside the accuracy when the graph is an axis.
    const std::string md = p2p::test::slurp(dir.path() / "out" / "summary.md");
    CHECK(contains(md, "| type | n | mean accuracy | worst honest node | spectral gap (uniform) | most Byzantine neighbours | status |"));
    CHECK(contains(md, fmt::format("| complete | 1 | {:.4f} ± 0.0000 | {:.4f} ± 0.0000 | 1.0000 | 1 | done |", rows[1].acc_mean,
                                   rows[1].acc_worst)));
    CHECK(contains(md, "| random-regular | 0 | - | - | - | - | skipped |"));
}

TEST_CASE("a sweep runs its grid, records failures and skips, resumes, and refuses another sweep's folder") {
    p2p::test::QuietLogs quiet;
    p2p::test::TempDir dir;
    p2p::test::write_set(dir, 256, false);
    const std::string root = dir.path().string();
    const std::string file = dir.write(
        "s.yaml", three_nodes() + fmt::format("training: {{rounds: 3, batch_size: 16, eval_every: 3}}\n"
                                              "outputs: {{metrics_dir: ''}}\n"
                                              "robust: {{aggregator: [median, krum], attack: alie}}\n"
                                              "data: {{root: ['{}', '{}/missing']}}\n",
                                              root, root));
    const auto spec = load_sweep(file);
    const auto points = expand_sweep(spec);
    REQUIRE(points.size() == 4);
    launch::SweepOptions o;
    o.out = (dir.path() / "out").string();
    o.jobs = 2;
    auto rows = launch::run_sweep(spec, file, points, o);
    REQUIRE(rows.size() == 4);
    CHECK(rows[0].status == "done");      // median, the data
    CHECK(rows[1].status == "failed");    // median, a missing folder: recorded, the others go on
    CHECK(contains(rows[1].error, "missing"));
    CHECK(rows[2].status == "skipped");   // krum needs n > 2f + 2
    CHECK(contains(rows[2].error, "krum"));
    CHECK(rows[3].status == "skipped");
    CHECK(rows[0].rounds == 3);
    CHECK(rows[0].acc_worst <= rows[0].acc_mean);
    CHECK(rows[0].acc_mean <= rows[0].acc_best);
    CHECK(rows[0].bytes_per_node_round > 0);
    const auto out = dir.path() / "out";
    const auto run0 = out / "runs" / points[0].name;
    for (const char* f : {"experiment.yaml", "node-0.jsonl", "node-1.jsonl", "node-0.summary.json", "status.json"})
        CHECK(std::filesystem::exists(run0 / f));
    // results.csv: a header naming the axes, a row per run, values as the runs' summaries say.
    const std::string csv = p2p::test::slurp(out / "results.csv");
    CHECK(csv.rfind("name,aggregator,root,seed,status,acc_mean,acc_worst,acc_best,loss_mean,rounds,seconds,"
                    "bytes_per_node_round,aggregate_ms_round,gap_uniform,gap_metropolis,byzantine_neighbours_max,error\n",
                    0) == 0);
    // The graph's figures beside the accuracy (issue 17): two honest nodes of a complete graph
    // average each other in one step (gap 1), each with one Byzantine neighbour.
    CHECK(rows[0].gap_uniform == doctest::Approx(1.0));
    CHECK(rows[0].gap_metropolis == doctest::Approx(1.0));
    CHECK(rows[0].byzantine_neighbours_max == 1);
    CHECK(contains(csv, ",1.0000,1.0000,1,"));
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 5);
    const std::string s0 = p2p::test::slurp(run0 / "node-0.summary.json"), s1 = p2p::test::slurp(run0 / "node-1.summary.json");
    auto acc_of = [](const std::string& s) { return std::stod(s.substr(s.find("\"acc\": ") + 7)); };
    CHECK(rows[0].acc_mean == doctest::Approx((acc_of(s0) + acc_of(s1)) / 2));
    CHECK(contains(csv, fmt::format(",{:.4f},", rows[0].acc_mean)));
    const std::string md = p2p::test::slurp(out / "summary.md");
    CHECK(contains(md, "| aggregator | root | n | mean accuracy | worst honest node | status |"));

    // Again: nothing to do, the same results.
    const auto before = std::filesystem::last_write_time(run0 / "status.json");
    auto again = launch::run_sweep(spec, file, points, o);
    CHECK(std::filesystem::last_write_time(run0 / "status.json") == before);
    CHECK(p2p::test::slurp(out / "results.csv") == csv);
    // A deleted run is redone; the failed one is tried again.
    std::filesystem::remove_all(run0);
    again = launch::run_sweep(spec, file, points, o);
    CHECK(again[0].status == "done");
    CHECK(std::filesystem::exists(run0 / "status.json"));
    CHECK(again[0].acc_mean == rows[0].acc_mean);  // same seed, same run

    // The same file over other nodes (a type changed) reruns what is done.
    const auto redone = std::filesystem::last_write_time(run0 / "status.json");
    const std::string edited = p2p::test::slurp(file);
    std::string changed = edited;
    changed.replace(changed.find(", type: byzantine"), 17, "");
    const std::string moved = dir.write("s.yaml", changed);
    const auto honest_spec = load_sweep(moved);
    o.force = true;
    again = launch::run_sweep(honest_spec, moved, expand_sweep(honest_spec), o);
    CHECK(std::filesystem::last_write_time(run0 / "status.json") != redone);
    CHECK(contains(p2p::test::slurp(run0 / "nodes.txt"), "2 honest"));
    dir.write("s.yaml", edited);
    o.force = false;
    const auto spec_back = load_sweep(file);
    launch::SweepOptions forced = o;
    forced.force = true;
    launch::run_sweep(spec_back, file, expand_sweep(spec_back), forced);

    // Another sweep in the same folder is refused, unless forced.
    const std::string other = dir.write("t.yaml", three_nodes() + "training: {rounds: 2}\n");
    const auto other_spec = load_sweep(other);
    CHECK_THROWS_WITH_AS(launch::run_sweep(other_spec, other, expand_sweep(other_spec), o),
                         doctest::Contains("holds another sweep"), ConfigError);
}

TEST_CASE("sweep and plot on the command line: dry run, errors, results and PNG figures") {
    p2p::test::TempDir dir;
    p2p::test::write_set(dir, 256, false);
    const std::string root = dir.path().string();
    const std::string file = dir.write(
        "grid.yaml", three_nodes() + fmt::format("seeds: 2\n"
                                                 "training: {{rounds: 4, batch_size: 16, eval_every: 2}}\n"
                                                 "robust: {{aggregator: [mean, median], attack: [alie, sign-flip]}}\n"
                                                 "data: {{root: '{}'}}\n",
                                                 root));
    auto dry = p2p::test::run_p2pnode({"sweep", file, "--dry-run"});
    CHECK(dry.status == 0);
    CHECK(contains(dry.out, "2 axes, 2 seed(s), 8 runs of 3 nodes"));
    CHECK(contains(dry.out, "  axis attack (robust.attack): alie, sign-flip"));
    CHECK(!std::filesystem::exists(dir.path() / "sweeps"));
    const std::string out = (dir.path() / "res").string();
    auto r = p2p::test::run_p2pnode({"sweep", file, "--out", out});
    REQUIRE_MESSAGE(r.status == 0, r.err);
    CHECK(contains(r.out, "sweep: 8 done, 0 failed, 0 skipped, 0 not finished"));
    CHECK(contains(r.err, "sweep: [8/8] "));  // plain progress lines when not on a terminal
    const std::string md = p2p::test::slurp(std::filesystem::path(out) / "summary.md");
    CHECK(contains(md, "## Worst case over attacks"));
    CHECK(contains(md, "| median | "));
    // The figures: valid PNG files of a readable size.
    for (const char* name : {"accuracy_vs_round.png", "heatmap_aggregator_attack.png", "time_per_round.png"}) {
        CAPTURE(name);
        const std::string png = p2p::test::slurp(std::filesystem::path(out) / name);
        REQUIRE(png.size() > 1000);
        CHECK(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
        auto be = [&](std::size_t at) {
            return (std::uint32_t(std::uint8_t(png[at])) << 24) | (std::uint32_t(std::uint8_t(png[at + 1])) << 16) |
                   (std::uint32_t(std::uint8_t(png[at + 2])) << 8) | std::uint32_t(std::uint8_t(png[at + 3]));
        };
        CHECK(png.substr(12, 4) == "IHDR");
        CHECK(be(16) >= 500);  // width in pixels
        CHECK(be(20) >= 300);  // height
    }
    // A single run's metrics folder: its per-node curves.
    auto one = p2p::test::run_p2pnode({"plot", (std::filesystem::path(out) / "runs" / "aggregator-median_attack-alie_seed-0").string()});
    CHECK(one.status == 0);
    CHECK(std::filesystem::exists(std::filesystem::path(out) / "runs" / "aggregator-median_attack-alie_seed-0" / "curves.png"));
    // Mistakes: exit 2 with the file and the key.
    const std::string bad = dir.write("bad.yaml", three_nodes() + "robust: {aggregator: [mean], atack: alie}\n");
    auto b = p2p::test::run_p2pnode({"sweep", bad});
    CHECK(b.status == 2);
    CHECK(contains(b.err, "bad.yaml:6: robust.atack: unknown field"));
    auto nodir = p2p::test::run_p2pnode({"plot", (dir.path() / "nowhere").string()});
    CHECK(nodir.status == 2);
}

// PNG width in pixels (the IHDR chunk), 0 if `png` is not a PNG file.
static std::uint32_t png_width(const std::string& png) {
    if (png.size() < 24 || png.substr(0, 8) != std::string("\x89PNG\r\n\x1a\n", 8) || png.substr(12, 4) != "IHDR") return 0;
    std::uint32_t w = 0;
    for (int i = 16; i < 20; ++i) w = (w << 8) | std::uint8_t(png[i]);
    return w;
}

// A grid of more than 10 points draws accuracy in one panel per value of the axes other than
// the rule (a wide figure), and a rule with its pre-aggregators is one defence; a small grid
// draws one axes (narrower).
TEST_CASE("plot: a grid of many points draws a panel per the other axes, one line per defence") {
    p2p::test::TempDir dir;
    p2p::test::write_set(dir, 256, false);
    const std::string root = dir.path().string();
    const std::string file = dir.write(
        "many.yaml", three_nodes() + fmt::format("training: {{rounds: 2, batch_size: 16, eval_every: 1}}\n"
                                                 "robust: {{aggregator: [mean, median, trimmed-mean], pre_aggregators: [[], [nnm]],"
                                                 " attack: [alie, sign-flip]}}\n"
                                                 "data: {{root: '{}'}}\n",
                                                 root));
    const auto out = dir.path() / "many";
    auto r = p2p::test::run_p2pnode({"sweep", file, "--out", out.string()});
    REQUIRE_MESSAGE(r.status == 0, r.err);
    CHECK(contains(r.out, "sweep: 12 done, 0 failed"));
    const std::uint32_t wide = png_width(p2p::test::slurp(out / "accuracy_vs_round.png"));
    CHECK(wide >= 1100);  // two panels side by side (attack alie, attack sign-flip), 5.2 in each
    CHECK(png_width(p2p::test::slurp(out / "heatmap_aggregator_attack.png")) >= 500);
    CHECK(png_width(p2p::test::slurp(out / "time_per_round.png")) >= 500);
    // The same runs' first four points alone: one axes, narrower.
    const std::string few = dir.write(
        "few.yaml", three_nodes() + fmt::format("training: {{rounds: 2, batch_size: 16, eval_every: 1}}\n"
                                                "robust: {{aggregator: [mean, median], attack: [alie, sign-flip]}}\n"
                                                "data: {{root: '{}'}}\n",
                                                root));
    auto f = p2p::test::run_p2pnode({"sweep", few, "--out", (dir.path() / "few").string()});
    REQUIRE_MESSAGE(f.status == 0, f.err);
    const std::uint32_t narrow = png_width(p2p::test::slurp(dir.path() / "few" / "accuracy_vs_round.png"));
    CHECK(narrow >= 500);
    CHECK(narrow < wide);
}

// Issue 16: Ctrl-C stops a sweep cleanly: the finished runs stay whole, results.csv lists every
// point, and running the sweep again keeps the finished runs and redoes the rest.
TEST_CASE("a sweep interrupted by SIGINT leaves finished runs whole and resumes the rest") {
    p2p::test::TempDir dir;
    p2p::test::write_set(dir, 256, false);
    constexpr int kRounds = 250;
    const std::string file = dir.write(
        "long.yaml", three_nodes() + fmt::format("training: {{rounds: {}, batch_size: 16, eval_every: 1000}}\n"
                                                 "robust: {{aggregator: [mean, median], attack: [alie, sign-flip]}}\n"
                                                 "data: {{root: '{}'}}\n",
                                                 kRounds, dir.path().string()));
    const auto out = dir.path() / "out";
    const std::string log = (dir.path() / "sweep.log").string();
    const std::string bin = p2p::test::required_env("P2PNODE_BIN");
    const pid_t pid = p2p::test::spawn_program({bin, "sweep", file, "--out", out.string(), "--jobs", "1", "--no-plot"},
                                               log, log + ".err");
    // The first run's status says done: interrupt the second.
    auto done_runs = [&] {
        std::set<std::string> done;
        std::error_code ec;
        for (const auto& d : std::filesystem::directory_iterator(out / "runs", ec))
            if (contains(p2p::test::slurp(d.path() / "status.json"), "\"status\": \"done\"")) done.insert(d.path().filename());
        return done;
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (done_runs().empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polls a file the child writes
    REQUIRE(!done_runs().empty());
    REQUIRE(kill(pid, SIGINT) == 0);
    int wstatus = 0;
    for (auto stop = std::chrono::steady_clock::now() + std::chrono::seconds(60);
         waitpid(pid, &wstatus, WNOHANG) == 0 && std::chrono::steady_clock::now() < stop;)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (waitpid(pid, &wstatus, WNOHANG) == 0 && !WIFEXITED(wstatus)) {
        kill(pid, SIGKILL);
        waitpid(pid, &wstatus, 0);
        FAIL("the sweep did not stop within 60 s of SIGINT");
    }
    CHECK(WIFEXITED(wstatus));
    CHECK(WEXITSTATUS(wstatus) == 0);
    const std::string said = p2p::test::slurp(log);
    CAPTURE(said);
    CAPTURE(p2p::test::slurp(log + ".err"));
    const auto finished = done_runs();
    CHECK(finished.size() < 4);
    CHECK(contains(said, fmt::format("sweep: {} done, 0 failed, 0 skipped, {} not finished", finished.size(),
                                     4 - finished.size())));
    // Finished runs are whole: every round of every node; results.csv has every point.
    for (const auto& name : finished) {
        CAPTURE(name);
        for (int id : {0, 1, 2}) {
            const std::string rows = p2p::test::slurp(out / "runs" / name / fmt::format("node-{}.jsonl", id));
            CHECK(std::count(rows.begin(), rows.end(), '\n') == kRounds);
        }
    }
    const std::string csv = p2p::test::slurp(out / "results.csv");
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 5);
    CHECK(std::count_if(finished.begin(), finished.end(), [&](const std::string& n) { return contains(csv, n + ",") ; }) ==
          static_cast<long>(finished.size()));
    // Again: the finished runs are kept (not rerun), the others run to the end.
    std::map<std::string, std::filesystem::file_time_type> stamps;
    for (const auto& name : finished) stamps[name] = std::filesystem::last_write_time(out / "runs" / name / "status.json");
    auto again = p2p::test::run_p2pnode({"sweep", file, "--out", out.string(), "--jobs", "1", "--no-plot"});
    CHECK(again.status == 0);
    CHECK(contains(again.err, fmt::format("sweep: 4 runs, {} already done, {} to run", finished.size(), 4 - finished.size())));
    CHECK(contains(again.out, "sweep: 4 done, 0 failed, 0 skipped, 0 not finished"));
    for (const auto& [name, stamp] : stamps) CHECK(std::filesystem::last_write_time(out / "runs" / name / "status.json") == stamp);
    CHECK(done_runs().size() == 4);
}
