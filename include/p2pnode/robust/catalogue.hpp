// The catalogues of the robust library: one row per aggregator, pre-aggregator and attack,
// holding everything about it (name, one-line description, the bound it checks, the
// parameters it reads, what it needs from the node, its factories). Name lists, `--help`
// choices, unknown-name errors, `p2pnode list` and the tests that loop over every entry all read
// these tables; nothing lists the names beside them.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "p2pnode/robust/robust.hpp"

namespace p2p::robust {

template <class T>
using AggregatorFactory = std::unique_ptr<Aggregator<T>> (*)(std::string_view name, const Params&);
template <class T>
using PreAggregatorFactory = std::unique_ptr<PreAggregator<T>> (*)(const Params&);
template <class T>
using AttackFactory = std::unique_ptr<Attack<T>> (*)(std::string_view name, const AttackParams&);

struct AggregatorEntry {
    std::string_view name;
    std::string_view description;
    std::string_view bound;   // on n inputs and f, as the rule checks it ("" = any n >= 1)
    std::string_view params;  // the Params fields it reads, comma-separated ("" = none)
    AggregatorFactory<float> make_float;
    AggregatorFactory<double> make_double;
};

struct PreAggregatorEntry {
    std::string_view name;
    std::string_view description;
    std::string_view bound;   // on n, and how many vectors it leaves for the rule
    std::string_view params;
    PreAggregatorFactory<float> make_float;
    PreAggregatorFactory<double> make_double;
};

// What an attack needs from the node that plays it; the node asks this, never the name.
struct AttackNeeds {
    bool own_gradient = false;    // AttackInput::own: the attacker's gradient on its own batch
    bool flipped_labels = false;  // that gradient taken on labels (classes - 1 - y) instead
    bool honest_inputs = true;    // forges from what it heard: with nothing heard it sends nothing
};

struct AttackEntry {
    std::string_view name;
    std::string_view description;
    std::string_view params;  // the AttackParams fields it reads
    AttackNeeds needs;
    AttackFactory<float> make_float;
    AttackFactory<double> make_double;
};

std::span<const AggregatorEntry> aggregators();
std::span<const PreAggregatorEntry> pre_aggregators();
std::span<const AttackEntry> attacks();

// The entry of that name, or nullptr.
const AggregatorEntry* find_aggregator(std::string_view name);
const PreAggregatorEntry* find_pre_aggregator(std::string_view name);
const AttackEntry* find_attack(std::string_view name);

// The entry of that name; RobustError "unknown <kind> 'x' (known: a, b, ...)" otherwise.
const AggregatorEntry& aggregator(std::string_view name);
const PreAggregatorEntry& pre_aggregator(std::string_view name);
const AttackEntry& attack(std::string_view name);

}  // namespace p2p::robust
