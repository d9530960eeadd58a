#include "p2pnode/config/nodes_config.hpp"
#include "p2pnode/config/sweep.hpp"

#include <algorithm>
#include <cctype>
#include <optional>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "p2pnode/errors.hpp"

namespace p2p {

std::string_view to_string(NodeType type) {
    return type == NodeType::Honest ? "honest" : "byzantine";
}

std::optional<NodeType> parse_node_type(std::string_view text) {
    if (text == "honest") return NodeType::Honest;
    if (text == "byzantine") return NodeType::Byzantine;
    return std::nullopt;
}

bool is_z85_key(std::string_view s) {
    static constexpr std::string_view alphabet =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    return s.size() == 40 && s.find_first_not_of(alphabet) == std::string_view::npos;
}

const NodeSpec* NodesConfig::find(int id) const {
    for (const auto& n : nodes)
        if (n.id == id) return &n;
    return nullptr;
}

const NodeSpec& NodesConfig::require(int id) const {
    if (const NodeSpec* n = find(id)) return *n;
    throw ConfigError(fmt::format("{}: node id {} is not in the file (ids there: {})", source, id, ids_text()));
}

std::string NodesConfig::ids_text() const {
    std::string ids;
    for (const auto& n : nodes) ids += (ids.empty() ? "" : ", ") + std::to_string(n.id);
    return ids;
}

int NodesConfig::honest_count() const {
    int count = 0;
    for (const auto& n : nodes) count += n.type == NodeType::Honest;
    return count;
}

namespace {

// Reads one document with the file name in every message. yaml-cpp is lenient, so every
// scalar is checked here: plain (unquoted) decimal integers only, no duplicate keys.
class Reader {
public:
    explicit Reader(std::string source) : source_(std::move(source)) {}

    [[noreturn]] void fail(const YAML::Node& at, const std::string& field, const std::string& what) const {
        fail(line_of(at), field, what);
    }
    [[noreturn]] void fail(int line, const std::string& field, const std::string& what) const {
        throw ConfigError(fmt::format("{}:{}: {}: {}", source_, line, field, what));
    }

    // 1-based line of a node; 0 when yaml-cpp has no position for it (an empty flow value).
    static int line_of(const YAML::Node& node) { return node.Mark().is_null() ? 0 : node.Mark().line + 1; }

    // Keys of a mapping in file order; a key given twice is an error (yaml-cpp keeps the first
    // silently). `field` names the mapping in messages.
    struct Entry {
        std::string key;
        YAML::Node value;
        int line;  // the value's line, or its key's when the value has none
    };
    std::vector<Entry> entries(const YAML::Node& map, const std::string& field) const {
        std::vector<Entry> out;
        std::map<std::string, int> seen;
        for (auto it = map.begin(); it != map.end(); ++it) {
            if (!it->first.IsScalar()) fail(it->first, field, "keys must be plain names");
            std::string key = it->first.Scalar();
            auto [pos, fresh] = seen.emplace(key, line_of(it->first));
            if (!fresh)
                fail(it->first, field.empty() ? key : field + "." + key,
                     fmt::format("duplicate key (first given at line {})", pos->second));
            int line = line_of(it->second);
            out.push_back({key, it->second, line ? line : line_of(it->first)});
        }
        return out;
    }

    long long integer(const Entry& e, const std::string& field, long long lo, long long hi) const {
        const YAML::Node& node = e.value;
        if (!node.IsScalar()) fail(e.line, field, "must be an integer");
        const std::string& text = node.Scalar();
        if (node.Tag() == "!") fail(e.line, field, fmt::format("must be an integer, got the string \"{}\"", text));
        long long value = 0;
        const char* first = text.data();
        const char* last = text.data() + text.size();
        if (!text.empty() && *first == '+') ++first;
        auto [ptr, ec] = std::from_chars(first, last, value);
        if (text.empty() || ec != std::errc() || ptr != last)
            fail(e.line, field, fmt::format("must be an integer, got '{}'", text));
        if (value < lo || value > hi)
            fail(e.line, field, fmt::format("must be in {}..{}, got {}", lo, hi, value));
        return value;
    }

    double number(const Entry& e, const std::string& field) const {
        const YAML::Node& node = e.value;
        if (!node.IsScalar() || node.Tag() == "!")
            fail(e.line, field, "must be a number");
        const std::string& text = node.Scalar();
        double value = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(value))
            fail(e.line, field, fmt::format("must be a number, got '{}'", text));
        return value;
    }

    double positive_number(const Entry& e, const std::string& field) const {
        const double value = number(e, field);
        if (value <= 0) fail(e.line, field, fmt::format("must be a positive number, got {}", e.value.Scalar()));
        return value;
    }

    double number_in(const Entry& e, const std::string& field, double lo, double hi) const {
        const double value = number(e, field);
        if (value < lo || value > hi)
            fail(e.line, field, fmt::format("must be in {}..{}, got {}", lo, hi, e.value.Scalar()));
        return value;
    }

    std::string text(const Entry& e, const std::string& field) const {
        const YAML::Node& node = e.value;
        if (!node.IsScalar() || node.Scalar().empty()) fail(e.line, field, "must be a non-empty string");
        const std::string& s = node.Scalar();
        for (char c : s)
            if (c == ' ' || c == '\t' || c == '\n') fail(e.line, field, fmt::format("must not contain spaces, got \"{}\"", s));
        return s;
    }

    void warn_unknown(const Entry& e, const std::string& field, std::vector<std::string>& warnings) const {
        warnings.push_back(fmt::format("{}:{}: {}: unknown key, ignored", source_, e.line, field));
    }

    const std::string& source() const { return source_; }

private:
    std::string source_;
};

constexpr long long kMaxNodeId = 1'000'000;


// One value of the file as the table's field wants it; ConfigError naming the line and field.
FieldValue value_of(const Reader& r, const Field& f, const Reader::Entry& e, const std::string& field) {
    FieldValue v;
    const YAML::Node& node = e.value;
    switch (f.kind) {
        case FieldKind::Int:
            if (!node.IsScalar()) r.fail(e.line, field, "must be an integer");
            if (node.Tag() == "!")
                r.fail(e.line, field, fmt::format("must be an integer, got the string \"{}\"", node.Scalar()));
            v.text = node.Scalar();
            break;
        case FieldKind::Double:
            if (!node.IsScalar() || node.Tag() == "!") r.fail(e.line, field, "must be a number");
            v.text = node.Scalar();
            break;
        case FieldKind::Text:
            if (!node.IsScalar()) r.fail(e.line, field, "must be a string");
            v.text = node.Scalar();
            break;
        case FieldKind::List:
            if (!node.IsSequence()) r.fail(e.line, field, "must be a list of names");
            for (std::size_t i = 0; i < node.size(); ++i) {
                if (!node[i].IsScalar() || node[i].Scalar().empty()) r.fail(e.line, field, "must be a list of names");
                v.list.push_back(node[i].Scalar());
            }
            break;
        case FieldKind::Pairs:
            if (!node.IsSequence()) r.fail(e.line, field, "must be a list of [a, b] pairs");
            for (std::size_t i = 0; i < node.size(); ++i) {
                const YAML::Node pair = node[i];
                const int l = Reader::line_of(pair) ? Reader::line_of(pair) : e.line;
                if (!pair.IsSequence() || pair.size() != 2) r.fail(l, fmt::format("{}[{}]", field, i), "must be a pair [a, b]");
                Reader::Entry a{"", pair[0], l}, b{"", pair[1], l};
                v.pairs.emplace_back(r.integer(a, fmt::format("{}[{}][0]", field, i), static_cast<long long>(f.lo),
                                               static_cast<long long>(f.hi)),
                                     r.integer(b, fmt::format("{}[{}][1]", field, i), static_cast<long long>(f.lo),
                                               static_cast<long long>(f.hi)));
            }
            break;
    }
    return v;
}

bool is_section(const std::string& key) {
    const auto& s = experiment_sections();
    return std::find(s.begin(), s.end(), key) != s.end();
}

// One section (training:, robust:, ...) through the experiment table.
void read_section(const Reader& r, const Reader::Entry& section, Experiment& e, std::vector<std::string>& warnings) {
    if (section.key == "byzantine" && section.value.IsSequence()) {  // byzantine: [ids], short for {ids: [...]}
        const Field& ids = *find_field("byzantine.ids");
        set_field(e, ids, value_of(r, ids, section, "byzantine.ids"), fmt::format("{}:{}", r.source(), section.line));
        return;
    }
    if (!section.value.IsMap()) {
        std::string keys;
        for (const auto& f : experiment_fields())
            if (f.key.substr(0, f.key.find('.')) == section.key)
                keys += fmt::format("{}{}", keys.empty() ? "" : ", ", f.key.substr(f.key.find('.') + 1));
        r.fail(section.line, section.key, fmt::format("must be a mapping {{{}}}", keys));
    }
    for (const auto& entry : r.entries(section.value, section.key)) {
        const std::string key = section.key + "." + entry.key;
        const Field* f = find_field(key);
        if (!f) {
            r.warn_unknown(entry, key, warnings);
            continue;
        }
        set_field(e, *f, value_of(r, *f, entry, key), fmt::format("{}:{}", r.source(), entry.line));
    }
}

NodeSpec read_node(const Reader& r, const YAML::Node& node, size_t index, std::vector<std::string>& warnings) {
    const std::string where = fmt::format("nodes[{}]", index);
    if (!node.IsMap()) r.fail(node, where, "each node must be a mapping {id, host, port, type}");
    NodeSpec spec;
    spec.line = Reader::line_of(node);
    bool has_id = false, has_host = false, has_port = false;
    for (const auto& e : r.entries(node, where)) {
        const std::string& key = e.key;
        std::string field = where + "." + key;
        if (key == "id") {
            spec.id = static_cast<int>(r.integer(e, field, 0, kMaxNodeId));
            has_id = true;
        } else if (key == "host") {
            spec.host = r.text(e, field);
            has_host = true;
        } else if (key == "port") {
            spec.port = static_cast<int>(r.integer(e, field, 1, 65535));
            has_port = true;
        } else if (key == "type") {
            std::string t = e.value.IsScalar() ? e.value.Scalar() : std::string();
            auto parsed = parse_node_type(t);
            if (!parsed) r.fail(e.line, field, fmt::format("must be honest or byzantine, got '{}'", t));
            spec.type = *parsed;
        } else if (key == "bind_host") {
            spec.bind_host = r.text(e, field);
        } else if (key == "public_key") {
            spec.public_key = r.text(e, field);
            if (!is_z85_key(*spec.public_key)) r.fail(e.line, field, "must be a CURVE public key (40 Z85 characters, from p2pnode keygen)");
        } else {
            r.warn_unknown(e, field, warnings);
        }
    }
    if (!has_id) r.fail(node, where, "missing required key 'id'");
    if (!has_host) r.fail(node, where, "missing required key 'host'");
    if (!has_port) r.fail(node, where, "missing required key 'port'");
    return spec;
}

void read_nodes(const Reader& r, const Reader::Entry& entry, NodesConfig& cfg) {
    const YAML::Node& nodes = entry.value;
    if (!nodes.IsSequence() || nodes.size() == 0) r.fail(entry.line, "nodes", "must be a non-empty list of nodes");
    std::map<int, int> id_lines;
    std::map<std::string, int> endpoint_lines;
    for (size_t i = 0; i < nodes.size(); ++i) {
        NodeSpec spec = read_node(r, nodes[i], i, cfg.warnings);
        auto [id_pos, id_fresh] = id_lines.emplace(spec.id, spec.line);
        if (!id_fresh)
            r.fail(nodes[i], fmt::format("nodes[{}].id", i),
                   fmt::format("duplicate node id {} (also at line {})", spec.id, id_pos->second));
        std::string endpoint = fmt::format("{}:{}", spec.host, spec.port);
        auto [ep_pos, ep_fresh] = endpoint_lines.emplace(endpoint, spec.line);
        if (!ep_fresh)
            r.fail(nodes[i], fmt::format("nodes[{}]", i),
                   fmt::format("duplicate host:port {} (also at line {})", endpoint, ep_pos->second));
        cfg.nodes.push_back(std::move(spec));
    }
}

}  // namespace

NodesConfig parse_nodes_config(std::string_view text, const std::string& source) {
    Reader r(source);
    YAML::Node root;
    try {
        root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        throw ConfigError(fmt::format("{}:{}: not valid YAML/JSON: {}", source, e.mark.line + 1, e.msg));
    }
    if (!root || root.IsNull())
        throw ConfigError(fmt::format("{}: the file is empty (expected a mapping with a 'nodes' list)", source));
    if (!root.IsMap())
        r.fail(root, "(top level)", "must be a mapping with a 'nodes' list");

    NodesConfig cfg;
    cfg.source = source;
    bool has_nodes = false;
    for (const auto& e : r.entries(root, "")) {
        if (e.key == "nodes") {
            read_nodes(r, e, cfg);
            has_nodes = true;
        } else if (is_section(e.key)) {
            read_section(r, e, cfg.experiment, cfg.warnings);
        } else if (e.key == "broker_public_key") {
            cfg.broker_public_key = r.text(e, e.key);
            if (!is_z85_key(*cfg.broker_public_key))
                r.fail(e.line, e.key, "must be a CURVE public key (40 Z85 characters, from p2pnode keygen)");
        } else {
            r.warn_unknown(e, e.key, cfg.warnings);
        }
    }
    if (!has_nodes) throw ConfigError(fmt::format("{}: nodes: missing (the file must list its nodes)", source));
    return cfg;
}

namespace {

// Far above any real config (a 100,000-node list is ~6 MB).
constexpr std::uintmax_t kMaxConfigBytes = 16u << 20;

}  // namespace

std::string read_config_file(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw ConfigError(fmt::format("{}: is a directory, not a config file", path));
    // Only regular files: a FIFO would block and /dev/zero never ends.
    if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
        throw ConfigError(fmt::format("{}: not a regular file (a config is read from a file)", path));
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (!ec && size > kMaxConfigBytes)
        throw ConfigError(fmt::format("{}: {} bytes, more than a config can be ({} bytes at most)", path, size,
                                      kMaxConfigBytes));
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError(fmt::format("{}: cannot read the file", path));
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.bad()) throw ConfigError(fmt::format("{}: cannot read the file", path));
    return buf.str();
}

NodesConfig load_nodes_config(const std::string& path) { return parse_nodes_config(read_config_file(path), path); }

}  // namespace p2p

namespace p2p {

void apply_experiment_file(Experiment& e, const std::string& path, std::vector<std::string>& warnings) {
    const std::string text = read_config_file(path);
    Reader r(path);
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& ex) {
        throw ConfigError(fmt::format("{}:{}: not valid YAML/JSON: {}", path, ex.mark.line + 1, ex.msg));
    }
    if (!root || root.IsNull()) throw ConfigError(fmt::format("{}: the file is empty (expected the experiment's sections)", path));
    if (!root.IsMap()) r.fail(root, "(top level)", "must be a mapping of sections (training, robust, ...)");
    for (const auto& entry : r.entries(root, "")) {
        if (is_section(entry.key))
            read_section(r, entry, e, warnings);
        else
            r.warn_unknown(entry, entry.key, warnings);
    }
}

}  // namespace p2p

namespace p2p {

namespace {

bool is_axis(const Field& f, const YAML::Node& node) {
    if (!node.IsSequence()) return false;
    if (f.kind == FieldKind::Pairs) return false;  // edges are a list already; not an axis
    if (f.kind == FieldKind::List) return node.size() > 0 && node[0].IsSequence();
    return true;
}

// A checked value's text as the table writes it ("0.1", "nnm+clipping", "none").
std::string label_of(const Field& f, const FieldValue& v, const std::string& origin) {
    Experiment scratch;
    set_field(scratch, f, v, origin);  // checks it
    if (f.kind == FieldKind::List) {
        std::string out;
        for (const auto& item : v.list) out += (out.empty() ? "" : "+") + item;
        return out.empty() ? "none" : out;
    }
    return f.get(scratch);
}

std::string known_fields(const std::string& section) {
    std::string keys;
    for (const auto& f : experiment_fields())
        if (f.key.substr(0, f.key.find('.')) == section)
            keys += fmt::format("{}{}", keys.empty() ? "" : ", ", f.key.substr(f.key.find('.') + 1));
    return keys;
}

}  // namespace

SweepSpec parse_sweep(const std::string& text, const std::string& source) {
    Reader r(source);
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& ex) {
        throw ConfigError(fmt::format("{}:{}: not valid YAML/JSON: {}", source, ex.mark.line + 1, ex.msg));
    }
    if (!root || root.IsNull()) throw ConfigError(fmt::format("{}: the file is empty (expected a sweep)", source));
    if (!root.IsMap()) r.fail(root, "(top level)", "must be a mapping (config or nodes, seeds, exclude, sections)");
    SweepSpec s;
    s.source = source;
    std::optional<Reader::Entry> config, seeds, exclude;
    std::vector<Reader::Entry> sections;
    bool inline_nodes = false;
    for (const auto& e : r.entries(root, "")) {
        if (e.key == "nodes") {
            s.nodes.source = source;
            read_nodes(r, e, s.nodes);
            inline_nodes = true;
        } else if (e.key == "config") {
            config = e;
        } else if (e.key == "seeds") {
            seeds = e;
        } else if (e.key == "exclude") {
            exclude = e;
        } else if (is_section(e.key)) {
            sections.push_back(e);
        } else {
            std::string known;
            for (const auto& sec : experiment_sections()) known += ", " + sec;
            r.fail(e.line, e.key, fmt::format("unknown key (a sweep holds config or nodes, seeds, exclude{})", known));
        }
    }
    if (config && inline_nodes) r.fail(config->line, "config", "give either config: FILE or a nodes: list, not both");
    if (config) {
        std::filesystem::path p = r.text(*config, "config");
        if (p.is_relative()) p = std::filesystem::path(source).parent_path() / p;
        s.nodes = load_nodes_config(p.string());
    } else if (!inline_nodes) {
        throw ConfigError(fmt::format("{}: config: missing (a sweep names its nodes config, or lists nodes:)", source));
    }
    s.base = s.nodes.experiment;
    for (const auto& section : sections) {
        if (!section.value.IsMap())
            r.fail(section.line, section.key, fmt::format("must be a mapping {{{}}}", known_fields(section.key)));
        for (const auto& entry : r.entries(section.value, section.key)) {
            const std::string key = section.key + "." + entry.key;
            const Field* f = find_field(key);
            if (!f)
                r.fail(entry.line, key,
                       fmt::format("unknown field (known in {}: {})", section.key, known_fields(section.key)));
            const std::string origin = fmt::format("{}:{}", source, entry.line);
            if (!is_axis(*f, entry.value)) {
                set_field(s.base, *f, value_of(r, *f, entry, key), origin);
                continue;
            }
            SweepAxis axis;
            axis.key = key;
            axis.origin = origin;
            for (std::size_t i = 0; i < entry.value.size(); ++i) {
                const int line = Reader::line_of(entry.value[i]);
                Reader::Entry item{entry.key, entry.value[i], line ? line : entry.line};
                FieldValue v = value_of(r, *f, item, fmt::format("{}[{}]", key, i));
                const std::string label = label_of(*f, v, fmt::format("{}:{}: {}[{}]", source, item.line, key, i));
                if (std::find(axis.labels.begin(), axis.labels.end(), label) != axis.labels.end())
                    r.fail(item.line, fmt::format("{}[{}]", key, i), fmt::format("'{}' is already on this axis", label));
                axis.values.push_back(std::move(v));
                axis.labels.push_back(label);
            }
            if (axis.values.empty()) r.fail(entry.line, key, "an axis needs at least one value");
            s.axes.push_back(std::move(axis));
        }
    }
    if (seeds) {
        if (seeds->value.IsSequence()) {
            for (std::size_t i = 0; i < seeds->value.size(); ++i) {
                Reader::Entry item{"seeds", seeds->value[i], seeds->line};
                const auto seed = static_cast<std::uint64_t>(
                    r.integer(item, fmt::format("seeds[{}]", i), 0, 9'007'199'254'740'992LL));
                if (std::find(s.seeds.begin(), s.seeds.end(), seed) != s.seeds.end())
                    r.fail(seeds->line, fmt::format("seeds[{}]", i), fmt::format("seed {} is given twice", seed));
                s.seeds.push_back(seed);
            }
            if (s.seeds.empty()) r.fail(seeds->line, "seeds", "must name at least one seed");
        } else {
            const auto n = r.integer(*seeds, "seeds", 1, 10000);
            for (long long i = 0; i < n; ++i) s.seeds.push_back(s.base.training.seed + static_cast<std::uint64_t>(i));
        }
    } else {
        s.seeds.push_back(s.base.training.seed);
    }
    if (exclude) {
        if (!exclude->value.IsSequence()) r.fail(exclude->line, "exclude", "must be a list of {key: value} mappings");
        for (std::size_t i = 0; i < exclude->value.size(); ++i) {
            const YAML::Node rule = exclude->value[i];
            const std::string where = fmt::format("exclude[{}]", i);
            if (!rule.IsMap()) r.fail(Reader::line_of(rule) ? Reader::line_of(rule) : exclude->line, where,
                                      "must be a mapping {section.key: value, ...}");
            std::vector<std::pair<std::string, std::string>> parts;
            for (const auto& entry : r.entries(rule, where)) {
                const Field* f = find_field(entry.key);
                if (!f) r.fail(entry.line, where + "." + entry.key, "unknown field (exclusions name fields as section.key)");
                const FieldValue v = value_of(r, *f, entry, where + "." + entry.key);
                parts.emplace_back(entry.key, label_of(*f, v, fmt::format("{}:{}: {}", source, entry.line, where)));
            }
            s.exclude.push_back(std::move(parts));
        }
    }
    return s;
}

SweepSpec load_sweep(const std::string& path) { return parse_sweep(read_config_file(path), path); }

std::string axis_label(const SweepSpec& spec, const std::string& key) {
    const std::string name = key.substr(key.find('.') + 1);
    if (key.rfind("byzantine.", 0) == 0) return "byzantine-" + name;  // "count" alone says nothing
    int same = 0;
    for (const auto& a : spec.axes) same += a.key.substr(a.key.find('.') + 1) == name;
    return same > 1 ? key : name;
}

std::vector<SweepPoint> expand_sweep(const SweepSpec& spec) {
    std::vector<SweepPoint> out;
    std::vector<std::size_t> at(spec.axes.size(), 0);
    auto folder_safe = [](std::string t) {
        for (char& c : t)
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+')) c = '-';
        return t;
    };
    std::size_t skipped = 0;
    std::map<std::string, std::string> names;  // folder name -> the point it was first given to
    for (;;) {
        SweepPoint p;
        p.experiment = spec.base;
        for (std::size_t a = 0; a < spec.axes.size(); ++a) {
            const auto& axis = spec.axes[a];
            set_field(p.experiment, *find_field(axis.key), axis.values[at[a]], axis.origin);
            p.at.emplace_back(axis.key, axis.labels[at[a]]);
        }
        auto excluded = [&](const Experiment& e) {
            for (const auto& rule : spec.exclude) {
                bool all = true;
                for (const auto& [key, text] : rule) {
                    const Field* f = find_field(key);
                    std::string have = f->get(e);
                    if (f->kind == FieldKind::List) {
                        for (char& c : have)
                            if (c == ',') c = '+';
                        if (have.empty()) have = "none";
                    }
                    all = all && have == text;
                }
                if (all) return true;
            }
            return false;
        };
        std::string group;
        for (const auto& [key, label] : p.at)
            group += (group.empty() ? "" : "_") + folder_safe(axis_label(spec, key) + "-" + label);
        for (auto seed : spec.seeds) {
            SweepPoint q = p;
            FieldValue v;
            v.text = std::to_string(seed);
            set_field(q.experiment, *find_field("training.seed"), v, spec.source + ": seeds");
            if (excluded(q.experiment)) {  // checked with the seed set: an exclusion may name training.seed
                ++skipped;
                continue;
            }
            q.seed = seed;
            q.group = group.empty() ? "run" : group;
            q.name = q.group + "_seed-" + std::to_string(seed);
            std::string what;
            for (const auto& [key, label] : q.at) what += fmt::format("{}{} = {}", what.empty() ? "" : ", ", key, label);
            if (auto [it, fresh] = names.emplace(q.name, what); !fresh)
                throw ConfigError(fmt::format("{}: two points would share the run folder {} ({} and {}): make the "
                                              "values differ in letters, digits, '.', '-' or '+'",
                                              spec.source, q.name, it->second, what));
            out.push_back(std::move(q));
        }
        std::size_t a = spec.axes.size();  // the last axis varies fastest
        while (a > 0 && ++at[a - 1] == spec.axes[a - 1].values.size()) at[--a] = 0;
        if (a == 0) break;
    }
    if (out.empty())
        throw ConfigError(fmt::format("{}: the grid is empty: every one of its {} combinations is excluded", spec.source,
                                      skipped));
    return out;
}

}  // namespace p2p
