#include <doctest/doctest.h>

#include <set>

#include <sys/stat.h>

#include <string>

#include <fmt/format.h>

#include "p2pnode/config/nodes_config.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/node/settings.hpp"
#include "support.hpp"

using p2p::ConfigError;
using p2p::NodeType;

namespace {

std::string error_of(const std::string& text) {
    try {
        p2p::parse_nodes_config(text, "bad.yaml");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "(no error)";
}

const char* kGoodYaml = R"(training:
  rounds: 20
  batch_size: 32
  learning_rate: 0.1
nodes:
  - id: 0
    host: 127.0.0.1
    port: 8880
    type: honest
  - id: 1
    host: 127.0.0.1
    port: 8881
    type: byzantine
    bind_host: 0.0.0.0
)";

}  // namespace

TEST_CASE("a valid YAML config loads with every field") {
    auto cfg = p2p::parse_nodes_config(kGoodYaml, "good.yaml");
    REQUIRE(cfg.nodes.size() == 2);
    CHECK(cfg.nodes[0].id == 0);
    CHECK(cfg.nodes[0].host == "127.0.0.1");
    CHECK(cfg.nodes[0].port == 8880);
    CHECK(cfg.nodes[0].type == NodeType::Honest);
    CHECK_FALSE(cfg.nodes[0].bind_host.has_value());
    CHECK(cfg.nodes[1].type == NodeType::Byzantine);
    CHECK(cfg.nodes[1].bind_host == "0.0.0.0");
    CHECK(cfg.nodes[1].line == 10);
    CHECK(cfg.experiment.training.rounds == 20);
    CHECK(cfg.experiment.training.batch_size == 32);
    CHECK(cfg.experiment.training.learning_rate == doctest::Approx(0.1));
    CHECK(cfg.honest_count() == 1);
    CHECK(cfg.warnings.empty());
    CHECK(cfg.find(1) != nullptr);
    CHECK(cfg.find(7) == nullptr);
}

TEST_CASE("the shipped examples hold the same five nodes in YAML and JSON") {
    const std::string root = p2p::test::required_env("P2PNODE_SOURCE_ROOT");
    auto yaml = p2p::load_nodes_config(root + "/configs/nodes_example.yaml");
    auto json = p2p::load_nodes_config(root + "/configs/nodes_example.json");
    REQUIRE(yaml.nodes.size() == 5);
    REQUIRE(json.nodes.size() == 5);
    for (size_t i = 0; i < 5; ++i) {
        CHECK(yaml.nodes[i].id == static_cast<int>(i));
        CHECK(yaml.nodes[i].port == 8880 + static_cast<int>(i));
        CHECK(yaml.nodes[i].id == json.nodes[i].id);
        CHECK(yaml.nodes[i].host == json.nodes[i].host);
        CHECK(yaml.nodes[i].port == json.nodes[i].port);
        CHECK(yaml.nodes[i].type == json.nodes[i].type);
    }
    CHECK(yaml.nodes[4].type == NodeType::Byzantine);
    CHECK(yaml.honest_count() == 4);
    CHECK(yaml.experiment.training.rounds == json.experiment.training.rounds);
    CHECK(yaml.experiment.training.batch_size == json.experiment.training.batch_size);
    CHECK(yaml.experiment.training.learning_rate == json.experiment.training.learning_rate);
    CHECK(yaml.experiment.robust.aggregator == json.experiment.robust.aggregator);
    CHECK(yaml.experiment.attack.name == json.experiment.attack.name);
    CHECK(yaml.experiment.robust.aggregator == "median");
    CHECK(yaml.warnings.empty());
    CHECK(json.warnings.empty());
}

TEST_CASE("the experiment table: defaults, the file's sections, a written experiment read back") {
    const p2p::Experiment defaults;
    CHECK(defaults.training.rounds == 50);
    CHECK(defaults.training.batch_size == 64);
    CHECK(defaults.training.learning_rate == doctest::Approx(0.05));
    CHECK(defaults.attack.scale == doctest::Approx(-1.0));
    CHECK(defaults.training.seed == 0);
    CHECK(defaults.training.exchange == "gradient");
    CHECK(defaults.training.self_weight == 0.5);
    CHECK(defaults.robust.aggregator == "median");
    CHECK(defaults.attack.name == "empire");
    CHECK(defaults.topology.type == "ring");

    // Every field has a key "section.name", help, and flags are unique.
    std::set<std::string> flags;
    for (const auto& f : p2p::experiment_fields()) {
        CAPTURE(std::string(f.key));
        CHECK(f.key.find('.') != std::string_view::npos);
        CHECK(!f.help.empty());
        CHECK(p2p::find_field(f.key) == &f);
        if (!f.flag.empty()) CHECK(flags.insert(std::string(f.flag)).second);
    }

    const auto parsed = p2p::parse_nodes_config(
        "training: {self_weight: 0.25, rounds: 7}\nrobust: {q: 3, bucket_size: 4}\nattack: {scale: 2.5}\n"
        "timeouts: {round: 1.5}\nnodes:\n  - {id: 0, host: a, port: 1}\n",
        "w.yaml");
    const p2p::Experiment& e = parsed.experiment;
    CHECK(e.training.self_weight == 0.25);
    CHECK(e.training.rounds == 7);
    CHECK(e.training.batch_size == 64);  // not in the file: the default
    CHECK(e.robust.q == 3);
    CHECK(e.robust.bucket_size == 4);
    CHECK(e.attack.scale == 2.5);
    CHECK(e.timeouts.round == 1.5);
    CHECK(e.origin.at("training.rounds") == "w.yaml:1");

    // What launch writes, read back over the defaults, gives the same experiment, field by field.
    p2p::Experiment changed = e;
    changed.robust.pre_aggregators = {"clipping", "nnm"};
    changed.topology.type = "edges";
    changed.topology.edges = {{0, 1}, {1, 2}};
    changed.outputs.metrics_dir = "";
    changed.data.root = "/data with space/x";
    changed.training.learning_rate = 0.1 + 0.2;  // not a short decimal: must round-trip exactly
    p2p::test::TempDir dir;
    const std::string file = dir.write("experiment.yaml", p2p::experiment_yaml(changed));
    p2p::Experiment back;
    std::vector<std::string> warnings;
    p2p::apply_experiment_file(back, file, warnings);
    CHECK(warnings.empty());
    for (const auto& f : p2p::experiment_fields()) {
        CAPTURE(std::string(f.key));
        CHECK(f.get(back) == f.get(changed));
    }
    CHECK(back.training.learning_rate == changed.training.learning_rate);

    // A bad value in an experiment file names the file, the line and the key.
    const std::string bad = dir.write("bad.yaml", "training:\n  rounds: 0\n");
    CHECK_THROWS_WITH_AS(p2p::apply_experiment_file(back, bad, warnings),
                         doctest::Contains("bad.yaml:2: training.rounds: must be in 1..100000000, got 0"),
                         ConfigError);
}

TEST_CASE("malformed configs name the file, the line and the field") {
    struct Case {
        const char* name;
        const char* text;
        const char* expected;
    };
    const Case cases[] = {
        {"missing nodes", "training:\n  rounds: 3\n", "bad.yaml: nodes: missing"},
        {"nodes not a list", "nodes: 3\n", "bad.yaml:1: nodes: must be a non-empty list"},
        {"empty nodes", "nodes: []\n", "bad.yaml:1: nodes: must be a non-empty list"},
        {"node without id", "nodes:\n  - host: a\n    port: 1\n", "bad.yaml:2: nodes[0]: missing required key 'id'"},
        {"node without host", "nodes:\n  - id: 0\n    port: 1\n", "bad.yaml:2: nodes[0]: missing required key 'host'"},
        {"node without port", "nodes:\n  - id: 0\n    host: a\n", "bad.yaml:2: nodes[0]: missing required key 'port'"},
        {"duplicate ids", "nodes:\n  - {id: 0, host: a, port: 1}\n  - {id: 0, host: a, port: 2}\n",
         "bad.yaml:3: nodes[1].id: duplicate node id 0 (also at line 2)"},
        {"duplicate host:port", "nodes:\n  - {id: 0, host: a, port: 1}\n  - {id: 1, host: a, port: 1}\n",
         "bad.yaml:3: nodes[1]: duplicate host:port a:1 (also at line 2)"},
        {"port zero", "nodes:\n  - {id: 0, host: a, port: 0}\n", "bad.yaml:2: nodes[0].port: must be in 1..65535, got 0"},
        {"unknown exchange", "training:\n  exchange: weights\nnodes:\n  - {id: 0, host: a, port: 1}\n",
         "bad.yaml:2: training.exchange: must be gradient or model, got 'weights'"},
        {"self weight above 1", "training:\n  self_weight: 1.5\nnodes:\n  - {id: 0, host: a, port: 1}\n",
         "bad.yaml:2: training.self_weight: must be a number in 0..1, got 1.5"},
        {"self weight not a number", "training:\n  self_weight: half\nnodes:\n  - {id: 0, host: a, port: 1}\n",
         "bad.yaml:2: training.self_weight: must be a number, got 'half'"},
        {"infinite learning rate", "training:\n  learning_rate: inf\nnodes:\n  - {id: 0, host: a, port: 1}\n",
         "bad.yaml:2: training.learning_rate: must be a number, got 'inf'"},
        {"port too big", "nodes:\n  - {id: 0, host: a, port: 70000}\n",
         "bad.yaml:2: nodes[0].port: must be in 1..65535, got 70000"},
        {"bad type", "nodes:\n  - {id: 0, host: a, port: 1, type: evil}\n",
         "bad.yaml:2: nodes[0].type: must be honest or byzantine, got 'evil'"},
        {"yes as type", "nodes:\n  - {id: 0, host: a, port: 1, type: yes}\n",
         "nodes[0].type: must be honest or byzantine, got 'yes'"},
        {"non-integer id", "nodes:\n  - {id: 1.5, host: a, port: 1}\n", "bad.yaml:2: nodes[0].id: must be an integer, got '1.5'"},
        {"quoted id", "nodes:\n  - {id: \"1\", host: a, port: 1}\n",
         "bad.yaml:2: nodes[0].id: must be an integer, got the string \"1\""},
        {"hex id", "nodes:\n  - {id: 0x10, host: a, port: 1}\n", "nodes[0].id: must be an integer, got '0x10'"},
        {"negative id", "nodes:\n  - {id: -1, host: a, port: 1}\n", "nodes[0].id: must be in 0..1000000, got -1"},
        {"duplicate key in a node", "nodes:\n  - id: 0\n    id: 1\n    host: a\n    port: 1\n",
         "bad.yaml:3: nodes[0].id: duplicate key (first given at line 2)"},
        {"duplicate top-level key", "nodes:\n  - {id: 0, host: a, port: 1}\nnodes:\n  - {id: 1, host: a, port: 2}\n",
         "bad.yaml:3: nodes: duplicate key (first given at line 1)"},
        {"node not a map", "nodes:\n  - 3\n", "bad.yaml:2: nodes[0]: each node must be a mapping"},
        {"top level a list", "- 1\n- 2\n", "bad.yaml:1: (top level): must be a mapping"},
        {"bad rounds", "training:\n  rounds: 0\nnodes:\n  - {id: 0, host: a, port: 1}\n",
         "bad.yaml:2: training.rounds: must be in 1..100000000, got 0"},
        {"bad learning rate", "training:\n  learning_rate: fast\nnodes:\n  - {id: 0, host: a, port: 1}\n",
         "bad.yaml:2: training.learning_rate: must be a number, got 'fast'"},
        {"host with spaces", "nodes:\n  - {id: 0, host: \"a b\", port: 1}\n", "nodes[0].host: must not contain spaces"},
        {"empty file", "", "bad.yaml: the file is empty"},
        {"syntax error", "nodes: [\n", "bad.yaml:2: not valid YAML/JSON"},
        {"JSON duplicate id", R"({"nodes": [{"id": 0, "host": "a", "port": 1}, {"id": 0, "host": "b", "port": 1}]})",
         "bad.yaml:1: nodes[1].id: duplicate node id 0"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        CHECK(error_of(c.text).find(c.expected) != std::string::npos);
        if (error_of(c.text).find(c.expected) == std::string::npos) MESSAGE(error_of(c.text));
    }
}

TEST_CASE("unknown keys are warned about with their line, not fatal") {
    auto cfg = p2p::parse_nodes_config(
        "topologyy: ring\nnodes:\n  - {id: 0, host: a, port: 1, colour: red}\ntraining:\n  epochs: 3\n", "w.yaml");
    REQUIRE(cfg.warnings.size() == 3);
    CHECK(cfg.warnings[0] == "w.yaml:1: topologyy: unknown key, ignored");
    CHECK(cfg.warnings[1] == "w.yaml:3: nodes[0].colour: unknown key, ignored");
    CHECK(cfg.warnings[2] == "w.yaml:5: training.epochs: unknown key, ignored");
}

TEST_CASE("a node id absent from the file is an error listing the ids there") {
    auto cfg = p2p::parse_nodes_config(kGoodYaml, "good.yaml");
    CHECK_THROWS_WITH_AS(cfg.require(5), "good.yaml: node id 5 is not in the file (ids there: 0, 1)", ConfigError);
    CHECK(cfg.require(1).port == 8881);
}

TEST_CASE("missing, empty and directory paths are clear errors") {
    p2p::test::TempDir dir;
    CHECK_THROWS_WITH_AS(p2p::load_nodes_config((dir.path() / "nope.yaml").string()),
                         doctest::Contains("nope.yaml: cannot read the file"), ConfigError);
    CHECK_THROWS_WITH_AS(p2p::load_nodes_config(dir.write("empty.yaml", "")),
                         doctest::Contains("empty.yaml: the file is empty"), ConfigError);
    CHECK_THROWS_WITH_AS(p2p::load_nodes_config(dir.path().string()), doctest::Contains("is a directory"),
                         ConfigError);
}

TEST_CASE("only regular files of a bounded size are read as configs") {
    p2p::test::TempDir dir;
    CHECK_THROWS_WITH_AS(p2p::load_nodes_config("/dev/zero"), doctest::Contains("/dev/zero: not a regular file"),
                         ConfigError);
    const std::string fifo = (dir.path() / "fifo").string();
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THROWS_WITH_AS(p2p::load_nodes_config(fifo), doctest::Contains("fifo: not a regular file"), ConfigError);
    const std::string big = dir.write("big.yaml", std::string((16u << 20) + 1, '#'));
    CHECK_THROWS_WITH_AS(p2p::load_nodes_config(big), doctest::Contains("more than a config can be"), ConfigError);
    p2p::Experiment e;
    std::vector<std::string> warnings;
    CHECK_THROWS_WITH_AS(p2p::apply_experiment_file(e, fifo, warnings), doctest::Contains("not a regular file"),
                         ConfigError);
}

TEST_CASE("the robust section is read with its lines; bad values name the field") {
    auto cfg = p2p::parse_nodes_config("robust:\n  aggregator: krum\n  pre_aggregators: [clipping, nnm]\n"
                                       "  attack: alie\n  f: 2\n  tau: 0.5\n  iterations: 4\n"
                                       "nodes:\n  - {id: 0, host: a, port: 1}\n",
                                       "r.yaml");
    CHECK(cfg.experiment.robust.aggregator == "krum");
    CHECK(cfg.experiment.origin.at("robust.aggregator") == "r.yaml:2");
    CHECK(cfg.experiment.robust.pre_aggregators == std::vector<std::string>{"clipping", "nnm"});
    CHECK(cfg.experiment.attack.name == "alie");
    CHECK(cfg.experiment.robust.f == 2);
    CHECK(cfg.experiment.robust.tau == doctest::Approx(0.5));
    CHECK(cfg.experiment.robust.iterations == 4);
    CHECK(error_of("robust: 3\nnodes:\n  - {id: 0, host: a, port: 1}\n").find("bad.yaml:1: robust: must be a mapping") !=
          std::string::npos);
    CHECK(error_of("robust:\n  f: -2\nnodes:\n  - {id: 0, host: a, port: 1}\n")
              .find("bad.yaml:2: robust.f: must be in -1..100000, got -2") != std::string::npos);
    CHECK(error_of("robust:\n  pre_aggregators: nnm\nnodes:\n  - {id: 0, host: a, port: 1}\n")
              .find("bad.yaml:2: robust.pre_aggregators: must be a list of names") != std::string::npos);
}

TEST_CASE("the experiment's rule and attack parameters reach a node's settings") {
    const auto cfg = p2p::parse_nodes_config("nodes:\n  - {id: 0, host: a, port: 1}\n  - {id: 1, host: a, port: 2}\n"
                                             "  - {id: 2, host: a, port: 3}\n  - {id: 3, host: a, port: 4, type: byzantine}\n"
                                             "robust: {aggregator: geometric-median, q: 2, tau: 3, iterations: 7, bucket_size: 3,"
                                             " tolerance: 0.001, nu: 0.01, max_subsets: 1000}\n"
                                             "attack: {scale: 2, mu: 0.5, sigma: 4, target: 1, lo: -2, hi: 3}\n"
                                             "topology: {type: complete}\n",
                                             "p.yaml");
    const auto s = p2p::node::settings_for(cfg, 0, cfg.experiment);
    CHECK(s.aggregator == "geometric-median");
    CHECK(s.robust.f == 1);  // -1: the most Byzantine neighbours of an honest node (complete: all 1)
    CHECK(s.robust.q == std::optional<std::size_t>(2));
    CHECK(s.robust.tau == 3);
    CHECK(s.robust.iterations == 7);
    CHECK(s.robust.bucket_size == 3);
    CHECK(s.robust.tolerance == 0.001);
    CHECK(s.robust.nu == 0.01);
    CHECK(s.robust.max_subsets == 1000);
    CHECK(s.attack_params.scale == 2);
    CHECK(s.attack_params.mu == 0.5);
    CHECK(s.attack_params.sigma == 4);
    CHECK(s.attack_params.target == 1);
    CHECK(s.attack_params.lo == -2);
    CHECK(s.attack_params.hi == 3);
    CHECK(s.attack_params.rule_params.tolerance == 0.001);
    CHECK(s.neighbours == std::vector<std::uint32_t>{1, 2, 3});
    CHECK(s.attack_params.n == 4);
}

// Issue 15: f defaults to the most Byzantine neighbours any honest node has, so a sparse graph
// with several attackers starts; an explicit f is kept, and a bound that fails names the node.
TEST_CASE("f defaults to the worst honest node's Byzantine neighbours; a failing bound names the node") {
    auto ring = [](const std::string& extra) {
        std::string text = "nodes:\n";
        for (int i = 0; i < 16; ++i)
            text += fmt::format("  - {{id: {}, host: a, port: {}{}}}\n", i, 1000 + i,
                                i == 3 || i == 8 || i == 13 ? ", type: byzantine" : "");
        return p2p::parse_nodes_config(text + extra, "ring16.yaml");
    };
    const auto cfg = ring("");
    for (std::uint32_t id : {0u, 2u, 4u, 3u}) {
        const auto s = p2p::node::settings_for(cfg, id, cfg.experiment);  // median: 2f < n = 3
        CHECK(s.robust.f == 1);
        CHECK(s.f_reason == "the most Byzantine neighbours of any honest node");
    }
    // k = 3: a node hears the 6 nearest, which hold at most 2 of the attackers 3, 8, 13 (0 hears 3 and 13).
    const auto wide = ring("topology: {type: ring, k: 3}\n");
    CHECK(p2p::node::settings_for(wide, 0, wide.experiment).robust.f == 2);
    const auto explicit_f = ring("robust: {f: 3}\n");
    const auto s = p2p::node::settings_for(explicit_f, 3, explicit_f.experiment);  // Byzantine: no bound to check
    CHECK(s.robust.f == 3);
    CHECK(s.f_reason == "ring16.yaml:18");
    // f = 3 on a ring of k = 1: median's 2f < n fails at every honest node; the first one is named.
    try {
        p2p::node::settings_for(explicit_f, 0, explicit_f.experiment);
        FAIL("expected a bound error");
    } catch (const p2p::robust::RobustError& e) {
        CHECK(std::string(e.what()).find("node 0: n = 3 inputs (itself and 2 neighbours, 0 Byzantine), f = 3 "
                                         "(ring16.yaml:18): ") == 0);
    }
}

TEST_CASE("momentum, weight decay and the learning-rate milestones are checked and written back") {
    const auto cfg = p2p::parse_nodes_config("nodes:\n  - {id: 0, host: a, port: 1}\n"
                                             "training: {momentum: 0.9, weight_decay: 0.0005, lr_milestones: '30,60', "
                                             "lr_gamma: 0.2}\n",
                                             "m.yaml");
    CHECK(cfg.experiment.training.momentum == 0.9);
    CHECK(cfg.experiment.training.lr_milestones == std::vector<int>{30, 60});
    CHECK(cfg.experiment.training.lr_gamma == 0.2);
    CHECK(p2p::experiment_yaml(cfg.experiment).find("  lr_milestones: \"30,60\"\n") != std::string::npos);
    for (const char* bad : {"60,30", "0", "x", "30,,60"}) {
        CAPTURE(bad);
        try {
            p2p::parse_nodes_config(fmt::format("nodes:\n  - {{id: 0, host: a, port: 1}}\ntraining: {{lr_milestones: '{}'}}\n", bad),
                                    "m.yaml");
            FAIL("expected an error");
        } catch (const p2p::ConfigError& e) {
            CHECK(std::string(e.what()).find("m.yaml:3: training.lr_milestones: must be") == 0);
        }
    }
}
