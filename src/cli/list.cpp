// p2pnode list [KIND]: every catalogue, one line per entry, read from the tables themselves.
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/data/partition.hpp"
#include "p2pnode/nn/model.hpp"
#include "p2pnode/node/topology.hpp"
#include "p2pnode/robust/catalogue.hpp"

namespace p2p::cli {

namespace {

struct Row {
    std::string name, bound, params, description;
};

void print(const char* title, const std::vector<Row>& rows) {
    std::printf("%s:\n", title);
    std::size_t w = 0;
    for (const auto& r : rows) w = std::max(w, r.name.size());
    for (const auto& r : rows) {
        std::string extra;
        if (!r.bound.empty()) extra += "bound: " + r.bound;
        if (!r.params.empty()) extra += std::string(extra.empty() ? "" : "; ") + "params: " + r.params;
        std::printf("  %-*s  %s%s\n", static_cast<int>(w), r.name.c_str(), r.description.c_str(),
                    extra.empty() ? "" : fmt::format(" [{}]", extra).c_str());
    }
}

template <class Span, class Fn>
std::vector<Row> rows_of(Span entries, Fn fn) {
    std::vector<Row> out;
    for (const auto& e : entries) out.push_back(fn(e));
    return out;
}

std::string needs_of(const robust::AttackNeeds& n) {
    std::vector<std::string> parts;
    if (n.own_gradient) parts.emplace_back(n.flipped_labels ? "its own gradient on flipped labels" : "its own gradient");
    if (n.honest_inputs) parts.emplace_back("the honest vectors it hears");
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
    return out.empty() ? "nothing" : out;
}

}  // namespace

const std::vector<std::string>& list_kinds() {
    static const std::vector<std::string> kinds = {"aggregators", "pre-aggregators", "attacks",
                                                   "models",      "datasets",        "partitions", "topologies"};
    return kinds;
}

CLI::App* add_list_command(CLI::App& app, std::string& kind) {
    CLI::App* sub = app.add_subcommand("list", "List the catalogues: aggregators, pre-aggregators, attacks, models, "
                                               "data sets, partitions, topologies (one line each, with bound and parameters)");
    sub->add_option("kind", kind, "Only this catalogue")->check(CLI::IsMember(list_kinds()));
    return sub;
}

int run_list(const std::string& kind) {
    auto want = [&](const char* k) { return kind.empty() || kind == k; };
    bool first = true;
    auto section = [&](const char* title, const std::vector<Row>& rows) {
        if (!first) std::printf("\n");
        first = false;
        print(title, rows);
    };
    if (want("aggregators"))
        section("aggregators", rows_of(robust::aggregators(), [](const auto& e) {
                    return Row{std::string(e.name), std::string(e.bound.empty() ? "n >= 1" : e.bound),
                               std::string(e.params), std::string(e.description)};
                }));
    if (want("pre-aggregators"))
        section("pre-aggregators", rows_of(robust::pre_aggregators(), [](const auto& e) {
                    return Row{std::string(e.name), std::string(e.bound), std::string(e.params),
                               std::string(e.description)};
                }));
    if (want("attacks"))
        section("attacks", rows_of(robust::attacks(), [](const auto& e) {
                    return Row{std::string(e.name), "", std::string(e.params),
                               fmt::format("{} (needs {})", e.description, needs_of(e.needs))};
                }));
    if (want("models"))
        section("models", rows_of(nn::models(), [](const auto& e) {
                    const std::string input =
                        e.channels ? fmt::format("{}x{}x{}", e.channels, e.height, e.width) : "any size";
                    const std::string classes = e.classes ? fmt::format("{} classes", e.classes) : "the data's classes";
                    return Row{std::string(e.name), "", e.name == "mlp" ? "hidden" : "",
                               fmt::format("{} (input {}, {})", e.description, input, classes)};
                }));
    if (want("datasets"))
        section("datasets", rows_of(data::datasets(), [](const auto& e) {
                    return Row{std::string(e.name), "", "", std::string(e.description)};
                }));
    if (want("partitions"))
        section("partitions", rows_of(data::partitions(), [](const auto& e) {
                    return Row{std::string(e.name), "", std::string(e.params), std::string(e.description)};
                }));
    if (want("topologies"))
        section("topologies", rows_of(node::topologies(), [](const auto& e) {
                    return Row{std::string(e.name), "", std::string(e.params), std::string(e.description)};
                }));
    return 0;
}

}  // namespace p2p::cli
