// The Experiment: every choice of a run in one value, and the table that declares each field
// once (its command-line flag, its config key, its help, its default, its check).
//
// CLI11 flags (cli/), the config loader (the sections of a nodes config), `--help`, the
// resolved experiment file that `launch` hands its children, and every error message about a
// setting are generated from `experiment_fields()`; nothing lists the fields beside it.
// Values are layered: defaults < the config file's sections < an experiment file < flags.
//
// Names that stand for a catalogue row (aggregator, attack, model, ...) are tagged with the
// catalogue they name; this layer knows no catalogue, so the layer that builds the run checks
// them (`check_names` in node/settings.hpp) with the origin of the value in the message.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace p2p {

// rounds, batch, lr, seed, what is exchanged, the self weight, evaluation cadence.
struct TrainingOptions {
    int rounds = 50;
    int batch_size = 64;
    double learning_rate = 0.05;
    std::uint64_t seed = 0;
    int eval_every = 10;
    // What honest nodes send each round: "gradient" (the reference's protocol: send g_i, step on
    // the robust aggregate) or "model" (send the half step theta_i - lr * g_i, adopt the aggregate
    // of half steps: decentralized SGD whose aggregation also pulls the models together).
    std::string exchange = "gradient";
    // How much an honest node's own vector weighs in its step, w in [0, 1]: it steps on
    // w * g_i + (1 - w) * Agg(g) (model exchange: adopts w * h_i + (1 - w) * Agg(h)). w = 0 is the
    // reference's step theta <- theta - lr * Agg(g); w = 1 ignores the neighbours. The default 1/2
    // is the "lazy" mixing of decentralized optimisation: on a ring, stepping on the aggregate alone
    // mixes the nodes with a negative eigenvalue (-0.21 on 5 nodes), which pushes neighbouring
    // models apart along the loss's curved directions; weighing one's own gradient by 1/2 makes
    // every eigenvalue non-negative (see README, "Round protocol").
    double self_weight = 0.5;
    // How the aggregate weighs the vectors: "uniform" (the robust rule over one's own and the
    // neighbours' vectors) or "metropolis" (with the mean only: neighbour j weighs
    // 1/(1 + max(d_i, d_j)), oneself the rest; doubly stochastic mixing on any graph).
    std::string mixing = "uniform";
    // Nodes: worker momentum, m <- beta m + (1 - beta) g, and m is what a node sends (ByzFL,
    // Karimireddy et al.); `train`: PyTorch's SGD momentum (v <- beta v + g). 0: plain SGD.
    double momentum = 0.0;
    double weight_decay = 0.0;  // L2: g <- g + wd * theta (before the momentum)
    // The learning rate is multiplied by lr_gamma after each milestone round (PyTorch's MultiStepLR).
    std::vector<int> lr_milestones;
    double lr_gamma = 0.1;
};

struct Experiment {
    TrainingOptions training;
    struct Robust {
        std::string aggregator = "median";
        std::vector<std::string> pre_aggregators;  // applied in order
        int f = -1;                                // tolerated Byzantine inputs; -1: the most Byzantine neighbours of an honest node
        int q = 0;                                 // multi-krum: vectors averaged (0: n - f)
        double tau = 10.0;                         // centered-clipping radius; clipping threshold
        int iterations = 0;                        // geometric-median / centered-clipping (0: the rule's default)
        int bucket_size = 2;                       // bucketing
        double tolerance = 1e-7;                   // geometric-median: relative step that ends it
        double nu = 1e-9;                          // geometric-median: smoothing
        double max_subsets = 1e8;                  // mda / smea: refuse when C(n, f) exceeds this
    } robust;
    struct Attack {
        std::string name = "empire";  // what Byzantine nodes send
        double scale = -1.0;          // empire / ipm / sign-flip factor (the reference's --byz-scale)
        double mu = 0.0, sigma = 1.0;  // gaussian
        int target = 0;                // mimic: which honest vector it copies
        double lo = -10.0, hi = 10.0;  // optimal-alie / optimal-ipm: the range searched
    } attack;
    struct Model {
        std::string name = "small-cnn";
        std::vector<int> hidden{100};  // mlp: hidden layer sizes
    } model;
    struct Data {
        std::string dataset = "idx";
        std::string root = "auto";  // auto: ./data if it holds the files, else Debian's fashion-mnist
        std::string partition = "strided";  // a row of data::partitions()
        double alpha = 0.5;                 // dirichlet concentration
        int min_size = 0;                   // dirichlet: samples every node gets at least (0: one batch)
        double gamma = 0.5;                 // gamma: the fraction split IID
        int classes_per_node = 2;           // classes: K classes a node
        long long seed = -1;                // the partition's seed (-1: training.seed)
    } data;
    struct Topology {
        std::string type = "ring";
        int k = 1;
        std::vector<std::pair<int, int>> edges;
        int centre = -1;       // star (-1: the lowest id)
        int rows = 0;          // torus (0: the most square grid)
        double p = 0.5;        // erdos-renyi
        int degree = 3;        // random-regular
        int bridges = 1;       // two-cliques
        long long seed = -1;   // random graphs (-1: training.seed)
        int every = 0;         // erdos-renyi: a new draw every R rounds (0: one graph for the run)
    } topology;
    // Which nodes are Byzantine, over the nodes' `type` in the config: the listed ids, or `count`
    // of them placed on the graph (node::place_byzantine); neither: the config's types.
    struct Byzantine {
        std::vector<int> ids;
        int count = -1;                     // -1: the listed ids, else the config's types
        std::string placement = "random";   // random, spread, clustered
        long long seed = -1;                // random placement's seed (-1: training.seed)
    } byzantine;
    struct Transport {
        std::string pattern = "mesh";  // mesh or hub (launch; the node commands are one pattern each)
        std::string endpoint = "tcp";  // tcp, ipc, inproc (launch only)
        std::string ipc_dir = "/tmp/p2pnode-ipc";
    } transport;
    struct Timeouts {
        double round = 5.0;     // seconds a round waits for every neighbour before going on with the quorum
        double hard = 30.0;     // seconds a round waits at most
        double startup = 60.0;  // seconds to wait for the neighbours at start
    } timeouts;
    struct Outputs {
        std::string metrics_dir = "metrics";  // node-<id>.jsonl and the summaries ("" = none)
        std::string checkpoint_dir;           // node-<id>.ckpt ("" = none)
        int checkpoint_every = 10;
    } outputs;

    // Where each field's value came from, by config key ("nodes.yaml:12", "--rounds",
    // "experiment.yaml:3"); absent: the default. For messages only.
    std::map<std::string, std::string> origin;
};

// Which commands take a field as a flag.
enum Scope : unsigned {
    kNodeFlag = 1,    // mesh, hub-client
    kLaunchFlag = 2,  // launch
    kTrainFlag = 4,   // train
    kFileOnly = 0,    // config and experiment files only
    kAllScopes = 7,   // every command that takes flags
};

// What a field's value names, for the checks and the CLI choices of the layers above.
enum class Catalogue { None, Aggregator, PreAggregator, Attack, Model, Dataset, Partition, Topology };

enum class FieldKind { Int, Double, Text, List, Pairs };

// A value as the flag or the file gives it: text, a list of texts, or integer pairs.
struct FieldValue {
    std::string text;
    std::vector<std::string> list;
    std::vector<std::pair<long long, long long>> pairs;
    long long integer = 0;  // Int / Double: filled by the check from `text`
    double number = 0;
};

struct Field {
    std::string_view key;   // config key, "section.name"
    std::string_view flag;  // "--name", or "" for a file-only field
    std::string_view help;
    unsigned scope;
    FieldKind kind;
    Catalogue catalogue = Catalogue::None;
    double lo = 0, hi = 0;            // Int / Double: the closed range (lo < hi), unchecked when lo == hi
    bool positive = false;            // Double: > 0 (checked before the range)
    std::vector<std::string_view> choices;  // Text: the allowed values (empty: any text without spaces)
    // Stores a checked value (see check_field) in the experiment.
    void (*set)(Experiment&, const FieldValue& v);
    // The value as text (a list comma-separated, pairs as [[a, b], ...]).
    std::string (*get)(const Experiment&);
    // A check beyond the kind's ("" or what is wrong), run before `set`.
    std::string (*check)(const FieldValue& v) = nullptr;
};

// The table, in the order of `--help` and of the written experiment file.
std::span<const Field> experiment_fields();
const Field* find_field(std::string_view key);

// "" or what is wrong with the value, as the messages say it ("must be in 1..10, got 0").
std::string check_field(const Field& field, FieldValue value);
// Checks and sets one field (a List field: one item per value) and records `origin`;
// ConfigError "ORIGIN: KEY: what is wrong" otherwise.
void set_field(Experiment& e, const Field& field, FieldValue value, const std::string& origin);

// The range or choices a Text/Int/Double check enforces, e.g. "in 1..100000000", for help.
std::string describe_check(const Field& field);

// The resolved experiment as YAML, every field of the table grouped by section: what `launch`
// writes once and hands to every node (`--experiment FILE`).
std::string experiment_yaml(const Experiment& e);
// Only the fields `only` keeps (no header line; a section without such a field is left out).
std::string experiment_yaml(const Experiment& e, const std::function<bool(const Field&)>& only);

// The same as JSON: {"training": {"rounds": 50, ...}, ...}, numbers as numbers.
std::string experiment_json(const Experiment& e);

// The sections of the table ("training", "robust", ...), in order.
const std::vector<std::string>& experiment_sections();

// Applies an experiment file (the sections alone, as experiment_yaml writes them; YAML or JSON)
// to `e`; unknown keys go to `warnings` ("FILE:LINE: KEY: unknown key, ignored"), bad values
// raise ConfigError "FILE:LINE: KEY: what is wrong". The sections of a nodes config are read
// by the same code (load_nodes_config).
void apply_experiment_file(Experiment& e, const std::string& path, std::vector<std::string>& warnings);

}  // namespace p2p
