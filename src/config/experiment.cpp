#include "p2pnode/config/experiment.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "p2pnode/errors.hpp"

namespace p2p {

namespace {

std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// "300,600" -> {300, 600}; "" -> {}. milestones_error / sizes_error say first what is wrong.
std::vector<int> parse_ints(const std::string& text) {
    std::vector<int> out;
    for (std::size_t b = 0; b < text.size();) {
        const std::size_t c = std::min(text.find(',', b), text.size());
        int v = 0;
        std::from_chars(text.data() + b, text.data() + c, v);
        out.push_back(v);
        b = c + 1;
    }
    return out;
}

std::string milestones_error(const std::string& text) {
    long long last = 0;
    for (std::size_t b = 0; b < text.size();) {
        const std::size_t c = std::min(text.find(',', b), text.size());
        long long v = 0;
        auto [ptr, ec] = std::from_chars(text.data() + b, text.data() + c, v);
        if (c == b || ec != std::errc() || ptr != text.data() + c || v < 1 || v > 100'000'000)
            return fmt::format("must be rounds in 1..100000000, comma-separated, got '{}'", text);
        if (v <= last) return fmt::format("must be increasing, got '{}'", text);
        last = v;
        b = c + 1;
    }
    return {};
}

std::string sizes_error(const std::string& text) {
    if (text.empty()) return "must be one or more layer sizes, comma-separated";
    for (std::size_t b = 0; b <= text.size();) {
        const std::size_t c = std::min(text.find(',', b), text.size());
        long long v = 0;
        auto [ptr, ec] = std::from_chars(text.data() + b, text.data() + c, v);
        if (c == b || ec != std::errc() || ptr != text.data() + c || v < 1 || v > 65536)
            return fmt::format("must be layer sizes in 1..65536, comma-separated, got '{}'", text);
        b = c + 1;
        if (c == text.size()) break;
    }
    return {};
}

// Node ids: each item an integer in 0..1000000, none twice (a CLI item arrives as text alone).
std::string ids_error(const FieldValue& v) {
    std::vector<std::string> items = v.list;
    if (items.empty() && !v.text.empty()) items.push_back(v.text);
    std::vector<long long> seen;
    for (const auto& item : items) {
        long long id = -1;
        auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
        if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || id < 0 || id > 1'000'000)
            return fmt::format("must be node ids (integers in 0..1000000), got '{}'", item);
        if (std::find(seen.begin(), seen.end(), id) != seen.end()) return fmt::format("lists node {} twice", id);
        seen.push_back(id);
    }
    return {};
}

#define P2P_INT(key, flag, help, scope, lo, hi, member)                                                         \
    Field {                                                                                                     \
        key, flag, help, scope, FieldKind::Int, Catalogue::None, lo, hi, false, {},                            \
            [](Experiment& e, const FieldValue& v) {                                                            \
                e.member = static_cast<decltype(e.member)>(v.integer);                                          \
            },                                                                                                  \
            [](const Experiment& e) { return fmt::format("{}", e.member); }                                    \
    }
#define P2P_DOUBLE(key, flag, help, scope, lo, hi, positive, member)                                             \
    Field {                                                                                                     \
        key, flag, help, scope, FieldKind::Double, Catalogue::None, lo, hi, positive, {},                      \
            [](Experiment& e, const FieldValue& v) {                                                            \
                e.member = v.number;                                                                            \
            },                                                                                                  \
            [](const Experiment& e) { return fmt::format("{}", e.member); }                                    \
    }
#define P2P_TEXT(key, flag, help, scope, catalogue, choices, member)                                            \
    Field {                                                                                                     \
        key, flag, help, scope, FieldKind::Text, catalogue, 0, 0, false, choices,                              \
            [](Experiment& e, const FieldValue& v) {                                                            \
                e.member = v.text;                                                                              \
            },                                                                                                  \
            [](const Experiment& e) { return e.member; }                                                        \
    }

constexpr unsigned kRun = kNodeFlag | kLaunchFlag;
constexpr double kDay = 86400;  // no timeout is longer: 1e300 seconds is a typo, not a setting
constexpr unsigned kAll = kNodeFlag | kLaunchFlag | kTrainFlag;
using C = Catalogue;
using Choices = std::vector<std::string_view>;

const Field kFields[] = {
    P2P_INT("training.rounds", "--rounds", "Training rounds", kAll, 1, 100'000'000, training.rounds),
    P2P_INT("training.batch_size", "--batch-size", "Batch size", kAll, 1, 1'000'000, training.batch_size),
    P2P_DOUBLE("training.learning_rate", "--lr", "Learning rate", kAll, 0, 1000, true, training.learning_rate),
    P2P_INT("training.seed", "--seed", "Random seed (model init, shuffling, attacks)", kAll, 0,
            9'007'199'254'740'992.0, training.seed),
    P2P_INT("training.eval_every", "--eval-every", "Evaluate on the test set every N rounds (and at the end)", kAll,
            1, 100'000'000, training.eval_every),
    P2P_TEXT("training.exchange", "--exchange",
             "What honest nodes send: gradient (send g, step on the robust aggregate of gradients: the reference's "
             "protocol) or model (send the half step theta - lr*g, adopt the aggregate of half steps; keeps the "
             "nodes' models together)",
             kRun, C::None, (Choices{"gradient", "model"}), training.exchange),
    P2P_DOUBLE("training.self_weight", "--self-weight",
               "Weight w of an honest node's own vector (its gradient; its half step with --exchange model) in its "
               "step, w*own + (1-w)*aggregate: 0 is the reference's step on the aggregate alone, 1 ignores the "
               "neighbours",
               kRun, 0, 1, false, training.self_weight),
    P2P_TEXT("training.mixing", "--mixing",
             "How the aggregate weighs the vectors: uniform (the robust rule over one's own and the neighbours') or "
             "metropolis (--aggregator mean only: neighbour j weighs 1/(1 + max(d_i, d_j)), oneself the rest)",
             kRun, C::None, (Choices{"uniform", "metropolis"}), training.mixing),
    P2P_DOUBLE("training.momentum", "--momentum",
               "Momentum beta: nodes send their worker momentum m = beta*m + (1-beta)*g (ByzFL's); train uses "
               "PyTorch's SGD momentum (0: plain SGD, like the reference)",
               kAll, 0, 0.999999, false, training.momentum),
    P2P_DOUBLE("training.weight_decay", "--weight-decay", "Weight decay (L2): g + wd*theta, before the momentum", kAll,
               0, 1e9, false, training.weight_decay),
    Field{"training.lr_milestones", "--lr-milestones",
          "Rounds after which the learning rate is multiplied by --lr-gamma, increasing, comma-separated ('' = none)",
          kAll, FieldKind::Text, Catalogue::None, 0, 0, false, {},
          [](Experiment& e, const FieldValue& v) { e.training.lr_milestones = parse_ints(v.text); },
          [](const Experiment& e) { return fmt::format("{}", fmt::join(e.training.lr_milestones, ",")); },
          [](const FieldValue& v) { return milestones_error(v.text); }},
    P2P_DOUBLE("training.lr_gamma", "--lr-gamma", "Factor of the learning rate at each milestone", kAll, 0, 1, true,
               training.lr_gamma),
    P2P_TEXT("robust.aggregator", "--aggregator", "Robust aggregation rule of honest nodes", kRun, C::Aggregator,
             {}, robust.aggregator),
    Field{"robust.pre_aggregators", "--pre-aggregator",
          "Pre-aggregator before the rule, in the order given (repeatable)", kRun, FieldKind::List,
          C::PreAggregator, 0, 0, false, {},
          [](Experiment& e, const FieldValue& v) { e.robust.pre_aggregators = v.list; },
          [](const Experiment& e) {
              std::string out;
              for (const auto& p : e.robust.pre_aggregators) out += (out.empty() ? "" : ",") + p;
              return out;
          }},
    P2P_INT("robust.f", "--f", "Tolerated Byzantine inputs (-1: the most Byzantine neighbours any honest node has)", kRun, -1, 100000,
            robust.f),
    P2P_INT("robust.q", "--q", "multi-krum: vectors averaged (0: n - f)", kRun, 0, 100000, robust.q),
    P2P_DOUBLE("robust.tau", "--tau", "centered-clipping radius / clipping threshold", kRun, 0, 1e30, true,
               robust.tau),
    P2P_INT("robust.iterations", "--iterations",
            "geometric-median / centered-clipping iterations (0: the rule's default)", kRun, 0, 1'000'000,
            robust.iterations),
    P2P_INT("robust.bucket_size", "--bucket-size", "bucketing: vectors per bucket", kRun, 1, 100000,
            robust.bucket_size),
    P2P_DOUBLE("robust.tolerance", "--tolerance", "geometric-median: stop when a step is below tolerance x |z|", kRun,
               0, 1, true, robust.tolerance),
    P2P_DOUBLE("robust.nu", "--nu", "geometric-median: distances below nu count as nu", kRun, 0, 1, true, robust.nu),
    P2P_DOUBLE("robust.max_subsets", "--max-subsets", "mda / smea: refuse when C(n, f) exceeds this", kRun, 1, 1e15,
               false, robust.max_subsets),
    P2P_TEXT("robust.attack", "--attack", "What Byzantine nodes send", kRun, C::Attack, {}, attack.name),
    P2P_DOUBLE("attack.scale", "--byz-scale", "Byzantine attack scale (Empire: scale x mean of honest gradients)",
               kRun, -1e30, 1e30, false, attack.scale),
    P2P_DOUBLE("attack.mu", "--gaussian-mu", "gaussian attack: mean of each coordinate", kRun, -1e30, 1e30, false,
               attack.mu),
    P2P_DOUBLE("attack.sigma", "--gaussian-sigma", "gaussian attack: standard deviation of each coordinate", kRun, 0,
               1e30, false, attack.sigma),
    P2P_INT("attack.target", "--mimic-target", "mimic attack: which honest vector (by sender order) it copies", kRun, 0,
            100000, attack.target),
    P2P_DOUBLE("attack.lo", "--search-lo", "optimal-alie / optimal-ipm: lower end of the z / scale searched", kRun,
               -1e30, 1e30, false, attack.lo),
    P2P_DOUBLE("attack.hi", "--search-hi", "optimal-alie / optimal-ipm: upper end of the z / scale searched", kRun,
               -1e30, 1e30, false, attack.hi),
    P2P_TEXT("model.name", "--model", "Model every node trains", kAll, C::Model, {}, model.name),
    Field{"model.hidden", "--hidden", "mlp: hidden layer sizes, comma-separated (ReLU between layers)", kAll,
          FieldKind::Text, Catalogue::None, 0, 0, false, {},
          [](Experiment& e, const FieldValue& v) { e.model.hidden = parse_ints(v.text); },
          [](const Experiment& e) { return fmt::format("{}", fmt::join(e.model.hidden, ",")); },
          [](const FieldValue& v) { return sizes_error(v.text); }},
    P2P_TEXT("data.dataset", "--dataset", "Data set format of --data-root", kAll, C::Dataset, {}, data.dataset),
    P2P_TEXT("data.root", "--data-root",
             "Folder with the data set's files (idx: MNIST-format, raw or .gz; cifar10: the binary batches); 'auto' = "
             "./data if it holds IDX files, else /usr/share/datasets/fashion-mnist",
             kAll, C::None, {}, data.root),
    P2P_TEXT("data.partition", "--partition", "How the training set is split among the honest nodes", kAll,
             C::Partition, {}, data.partition),
    P2P_DOUBLE("data.alpha", "--alpha", "dirichlet partition: concentration (small: each node holds few classes)",
               kAll, 1e-4, 1e6, false, data.alpha),
    P2P_INT("data.min_size", "--min-size",
            "dirichlet partition: re-draw until every node holds this many samples (0: one batch)", kAll, 0,
            1'000'000'000, data.min_size),
    P2P_DOUBLE("data.gamma", "--gamma", "gamma partition: fraction of the samples split IID (the rest by label)",
               kAll, 0, 1, false, data.gamma),
    P2P_INT("data.classes_per_node", "--classes-per-node", "classes partition: classes each node holds", kAll, 1,
            100000, data.classes_per_node),
    P2P_INT("data.seed", "--data-seed", "Seed of the partition (-1: the run's --seed)", kAll, -1,
            9'007'199'254'740'992.0, data.seed),
    P2P_TEXT("topology.type", "--topology", "Graph of the nodes (the config's topology section)", kRun,
             C::Topology, {}, topology.type),
    P2P_INT("topology.k", "--k", "ring: neighbours on each side", kRun, 1, 100000, topology.k),
    P2P_INT("topology.centre", "--centre", "star: the centre's id (-1: the lowest id)", kRun, -1, 1'000'000'000,
            topology.centre),
    P2P_INT("topology.rows", "--rows", "torus: rows of the grid, dividing the node count (0: the most square)", kRun, 0,
            1'000'000, topology.rows),
    P2P_DOUBLE("topology.p", "--p", "erdos-renyi: probability of each edge", kRun, 0.0, 1.0, false, topology.p),
    P2P_INT("topology.degree", "--degree", "random-regular: every node's degree", kRun, 1, 100000, topology.degree),
    P2P_INT("topology.bridges", "--bridges", "two-cliques: edges between the two cliques", kRun, 1, 100000,
            topology.bridges),
    P2P_INT("topology.seed", "--topology-seed", "random graphs: the draw's seed (-1: the run's --seed)", kRun, -1,
            9'007'199'254'740'992.0, topology.seed),
    P2P_INT("topology.every", "--every",
            "erdos-renyi: a new draw every R rounds, a time-varying graph (0: one graph for the run)", kRun, 0,
            1'000'000'000, topology.every),
    Field{"topology.edges", "", "edges: the undirected edges [[a, b], ...]", kFileOnly, FieldKind::Pairs, C::None,
          0, 1'000'000, false, {},
          [](Experiment& e, const FieldValue& v) {
              e.topology.edges.clear();
              for (const auto& [a, b] : v.pairs) e.topology.edges.emplace_back(static_cast<int>(a), static_cast<int>(b));
          },
          [](const Experiment& e) {
              std::string out;
              for (const auto& [a, b] : e.topology.edges) out += fmt::format("{}[{}, {}]", out.empty() ? "" : ", ", a, b);
              return "[" + out + "]";
          }},
    Field{"byzantine.ids", "--byzantine",
          "Ids of the Byzantine nodes, over the config's node types (repeatable; a config may write byzantine: [ids])",
          kRun, FieldKind::List, C::None, 0, 0, false, {},
          [](Experiment& e, const FieldValue& v) {
              e.byzantine.ids.clear();
              for (const auto& item : v.list) e.byzantine.ids.push_back(std::stoi(item));
              std::sort(e.byzantine.ids.begin(), e.byzantine.ids.end());
          },
          [](const Experiment& e) { return fmt::format("{}", fmt::join(e.byzantine.ids, ",")); },
          [](const FieldValue& v) { return ids_error(v); }},
    P2P_INT("byzantine.count", "--byzantine-count",
            "Number of Byzantine nodes, placed on the graph by --placement over the config's node types (-1: the "
            "config's types or --byzantine)",
            kRun, -1, 1'000'000, byzantine.count),
    P2P_TEXT("byzantine.placement", "--placement",
             "Where --byzantine-count nodes sit: random (seeded), spread (farthest apart in hops), clustered (one "
             "breadth-first block from the lowest id)",
             kRun, C::None, (Choices{"random", "spread", "clustered"}), byzantine.placement),
    P2P_INT("byzantine.seed", "--placement-seed", "Seed of the random placement (-1: the run's --seed)", kRun, -1,
            9'007'199'254'740'992.0, byzantine.seed),
    P2P_TEXT("transport.pattern", "--pattern", "mesh or hub", kLaunchFlag, C::None, (Choices{"mesh", "hub"}),
             transport.pattern),
    P2P_TEXT("transport.endpoint", "--endpoint",
             "Transport: tcp (between machines), ipc (one machine; child processes), inproc (threads of one "
             "process: launch only)",
             kRun, C::None, (Choices{"tcp", "ipc", "inproc"}), transport.endpoint),
    P2P_TEXT("transport.ipc_dir", "--ipc-dir", "Folder for ipc:// socket files", kRun, C::None, {},
             transport.ipc_dir),
    P2P_DOUBLE("timeouts.round", "--round-timeout",
               "Seconds a round waits for all neighbours before going on with the quorum", kRun, 0, kDay, true,
               timeouts.round),
    P2P_DOUBLE("timeouts.hard", "--hard-timeout", "Seconds a round waits at most", kRun, 0, kDay, true,
               timeouts.hard),
    P2P_DOUBLE("timeouts.startup", "--startup-timeout", "Seconds to wait for neighbours at start", kRun, 0, kDay,
               true, timeouts.startup),
    P2P_TEXT("outputs.metrics_dir", "--metrics-dir",
             "Folder for node-<id>.jsonl metrics and the run summary ('' = none)", kRun, C::None, {},
             outputs.metrics_dir),
    P2P_TEXT("outputs.checkpoint_dir", "--checkpoint-dir",
             "Write node-<id>.ckpt here every --checkpoint-every rounds and at exit ('' = none)", kRun, C::None, {},
             outputs.checkpoint_dir),
    P2P_INT("outputs.checkpoint_every", "--checkpoint-every", "Rounds between checkpoints", kRun, 1, 100'000'000,
            outputs.checkpoint_every),
};

#undef P2P_INT
#undef P2P_DOUBLE
#undef P2P_TEXT

std::string or_list(const std::vector<std::string_view>& choices) {
    std::string out;
    for (std::size_t i = 0; i < choices.size(); ++i)
        out += fmt::format("{}{}", i == 0 ? "" : (i + 1 == choices.size() ? " or " : ", "), choices[i]);
    return out;
}

std::string range_text(double v) { return fmt::format("{}", v); }

// "" or what is wrong with `v` for `f`; fills v.integer / v.number.
std::string check_value(const Field& f, FieldValue& v) {
    switch (f.kind) {
        case FieldKind::Int: {
            const std::string& t = v.text;
            const char* first = t.data();
            const char* last = t.data() + t.size();
            if (!t.empty() && *first == '+') ++first;
            long long value = 0;
            auto [ptr, ec] = std::from_chars(first, last, value);
            if (t.empty() || ec != std::errc() || ptr != last) return fmt::format("must be an integer, got '{}'", t);
            if (f.lo != f.hi && (static_cast<double>(value) < f.lo || static_cast<double>(value) > f.hi))
                return fmt::format("must be in {}..{}, got {}", range_text(f.lo), range_text(f.hi), value);
            v.integer = value;
            return {};
        }
        case FieldKind::Double: {
            const std::string& t = v.text;
            double value = 0;
            auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
            if (t.empty() || ec != std::errc() || ptr != t.data() + t.size() || !std::isfinite(value))
                return fmt::format("must be a number, got '{}'", t);
            if (f.positive && !(value > 0)) return fmt::format("must be a positive number, got {}", t);
            if (f.positive && f.lo != f.hi && value > f.hi)
                return fmt::format("must be a positive number up to {}, got {}", range_text(f.hi), t);
            if (f.lo != f.hi && (value < f.lo || value > f.hi))
                return fmt::format("must be a number in {}..{}, got {}", range_text(f.lo), range_text(f.hi), t);
            v.number = value;
            return {};
        }
        case FieldKind::Text:
            if (!f.choices.empty() &&
                std::find(f.choices.begin(), f.choices.end(), std::string_view(v.text)) == f.choices.end())
                return fmt::format("must be {}, got '{}'", or_list(f.choices), v.text);
            return {};
        case FieldKind::List:
            for (const auto& item : v.list)
                if (item.empty()) return "must be a list of names";
            return {};
        case FieldKind::Pairs:
            for (const auto& [a, b] : v.pairs)
                if (a < f.lo || a > f.hi || b < f.lo || b > f.hi)
                    return fmt::format("ids must be in {}..{}, got [{}, {}]", range_text(f.lo), range_text(f.hi), a, b);
            return {};
    }
    return {};
}

}  // namespace

std::span<const Field> experiment_fields() { return kFields; }

const std::vector<std::string>& experiment_sections() {
    static const std::vector<std::string> sections = [] {
        std::vector<std::string> out;
        for (const auto& f : kFields) {
            std::string sec(f.key.substr(0, f.key.find('.')));
            if (std::find(out.begin(), out.end(), sec) == out.end()) out.push_back(sec);
        }
        return out;
    }();
    return sections;
}

const Field* find_field(std::string_view key) {
    for (const auto& f : kFields)
        if (f.key == key) return &f;
    return nullptr;
}

std::string describe_check(const Field& f) {
    if (f.kind == FieldKind::Double && f.positive)
        return f.lo != f.hi && f.hi < 1e15 ? fmt::format("> 0, <= {}", range_text(f.hi)) : "> 0";
    if ((f.kind == FieldKind::Int || f.kind == FieldKind::Double) && f.lo != f.hi)
        return f.hi >= 1e15 ? std::string() : fmt::format("in {}..{}", range_text(f.lo), range_text(f.hi));
    if (f.kind == FieldKind::Text && !f.choices.empty()) return or_list(f.choices);
    return {};
}

std::string check_field(const Field& f, FieldValue v) {
    std::string wrong = check_value(f, v);
    if (wrong.empty() && f.check) wrong = f.check(v);
    return wrong;
}

void set_field(Experiment& e, const Field& f, FieldValue v, const std::string& origin) {
    std::string wrong = check_value(f, v);
    if (wrong.empty() && f.check) wrong = f.check(v);
    if (!wrong.empty()) throw ConfigError(fmt::format("{}: {}: {}", origin, f.key, wrong));
    f.set(e, v);
    e.origin[std::string(f.key)] = origin;
}

namespace {

// "a,b" -> ["a", "b"] (valid YAML and JSON).
std::string list_text(const std::string& items) {
    std::string value;
    for (std::size_t b = 0; b < items.size();) {
        const std::size_t c = std::min(items.find(',', b), items.size());
        value += (value.empty() ? "" : ", ") + quoted(items.substr(b, c - b));
        b = c + 1;
    }
    return "[" + value + "]";
}

// A field's value as YAML and JSON both write it: numbers bare, texts quoted, lists in brackets.
std::string value_text(const Field& f, const Experiment& e) {
    switch (f.kind) {
        case FieldKind::Text: return quoted(f.get(e));
        case FieldKind::List: return list_text(f.get(e));
        default: return f.get(e);
    }
}

}  // namespace

std::string experiment_yaml(const Experiment& e) {
    return "# The resolved experiment: every setting of the run (p2pnode; --experiment reads it).\n" +
           experiment_yaml(e, [](const Field&) { return true; });
}

std::string experiment_yaml(const Experiment& e, const std::function<bool(const Field&)>& only) {
    std::string out;
    std::string_view section;
    for (const auto& f : kFields) {
        if (!only(f)) continue;
        const std::size_t dot = f.key.find('.');
        const std::string_view sec = f.key.substr(0, dot), name = f.key.substr(dot + 1);
        if (sec != section) {
            out += fmt::format("{}:\n", sec);
            section = sec;
        }
        const std::string value = value_text(f, e);
        out += fmt::format("  {}: {}\n", name, value);
    }
    return out;
}

std::string experiment_json(const Experiment& e) {
    std::string out = "{";
    std::string_view section;
    for (const auto& f : kFields) {
        const std::size_t dot = f.key.find('.');
        const std::string_view sec = f.key.substr(0, dot), name = f.key.substr(dot + 1);
        if (sec != section) {
            out += fmt::format("{}\"{}\": {{", section.empty() ? "" : "}, ", sec);
            section = sec;
        } else {
            out += ", ";
        }
        const std::string value = value_text(f, e);
        out += fmt::format("\"{}\": {}", name, value);
    }
    return out + "}}";
}

}  // namespace p2p
