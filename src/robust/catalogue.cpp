// The catalogue rows: one per aggregator, pre-aggregator and attack. Adding one is its own file
// (the class and its factory, see factories.hpp) plus its declaration and row here.
#include "p2pnode/robust/catalogue.hpp"

#include <algorithm>
#include <type_traits>

#include <fmt/format.h>

#include "factories.hpp"
#include "p2pnode/catalogue.hpp"

namespace p2p::robust {

namespace factory {
// aggregators.cpp
P2P_AGGREGATOR_FACTORY(mean);
P2P_AGGREGATOR_FACTORY(median);
P2P_AGGREGATOR_FACTORY(trimmed_mean);
P2P_AGGREGATOR_FACTORY(meamed);
P2P_AGGREGATOR_FACTORY(geometric_median);
P2P_AGGREGATOR_FACTORY(krum);
P2P_AGGREGATOR_FACTORY(multi_krum);
P2P_AGGREGATOR_FACTORY(bulyan);
P2P_AGGREGATOR_FACTORY(mda);
P2P_AGGREGATOR_FACTORY(monna);
P2P_AGGREGATOR_FACTORY(smea);
P2P_AGGREGATOR_FACTORY(centered_clipping);
P2P_AGGREGATOR_FACTORY(cge);
P2P_AGGREGATOR_FACTORY(caf);
// pre_aggregators.cpp
P2P_PRE_AGGREGATOR_FACTORY(clipping);
P2P_PRE_AGGREGATOR_FACTORY(bucketing);
P2P_PRE_AGGREGATOR_FACTORY(nnm);
P2P_PRE_AGGREGATOR_FACTORY(arc);
// attacks.cpp
P2P_ATTACK_FACTORY(empire);
P2P_ATTACK_FACTORY(sign_flip);
P2P_ATTACK_FACTORY(label_flip);
P2P_ATTACK_FACTORY(alie);
P2P_ATTACK_FACTORY(gaussian);
P2P_ATTACK_FACTORY(inf);
P2P_ATTACK_FACTORY(mimic);
P2P_ATTACK_FACTORY(optimal_alie);
P2P_ATTACK_FACTORY(optimal_ipm);
}  // namespace factory

namespace {

#define P2P_BOTH(fn) factory::fn<float>, factory::fn<double>

const AggregatorEntry kAggregators[] = {
    {"mean", "the plain average (the non-robust baseline)", "", "", P2P_BOTH(mean)},
    {"median", "coordinate-wise median (even n: the mean of the two middle values)", "2f < n", "f", P2P_BOTH(median)},
    {"trimmed-mean", "coordinate-wise mean after dropping the f largest and f smallest", "2f < n", "f",
     P2P_BOTH(trimmed_mean)},
    {"meamed", "coordinate-wise mean of the n - f values closest to the median", "2f < n", "f", P2P_BOTH(meamed)},
    {"mean-of-medians", "the reference tool's name for meamed", "2f < n", "f", P2P_BOTH(meamed)},
    {"geometric-median", "smoothed Weiszfeld from the coordinate-wise median", "", "iterations (0: 100), tolerance, nu",
     P2P_BOTH(geometric_median)},
    {"krum", "the vector with the smallest sum of its n - f - 1 nearest squared distances", "n > 2f + 2", "f",
     P2P_BOTH(krum)},
    {"multi-krum", "the mean of the q best vectors by Krum score", "n > 2f + 2", "f, q (0: n - f)",
     P2P_BOTH(multi_krum)},
    {"bulyan", "Krum selection of n - 2f vectors, then a coordinate-wise trimmed mean", "n >= 4f + 3", "f",
     P2P_BOTH(bulyan)},
    {"mda", "the mean of the n - f vectors of smallest diameter", "2f < n, C(n, f) <= max_subsets", "f, max_subsets",
     P2P_BOTH(mda)},
    {"monna", "the mean of the n - f vectors nearest the node's own", "f < n", "f, reference", P2P_BOTH(monna)},
    {"smea", "the mean of the n - f vectors whose mean has the smallest top eigenvalue",
     "2f < n, C(n, f) <= max_subsets", "f, max_subsets", P2P_BOTH(smea)},
    {"centered-clipping", "clipped steps around the previous aggregate", "", "tau, iterations (0: 3)",
     P2P_BOTH(centered_clipping)},
    {"cge", "the mean of the n - f vectors of smallest norm", "f < n", "f", P2P_BOTH(cge)},
    {"caf", "covariance-bound agnostic filter (down-weights along the top eigenvector)", "2f < n", "f",
     P2P_BOTH(caf)},
};

const PreAggregatorEntry kPreAggregators[] = {
    {"clipping", "scales every vector to norm at most tau", "any n; leaves n", "tau", P2P_BOTH(clipping)},
    {"bucketing", "averages shuffled buckets of bucket_size vectors", "any n; leaves ceil(n / bucket_size)",
     "bucket_size, seed", P2P_BOTH(bucketing)},
    {"nnm", "replaces each vector by the mean of its n - f nearest", "f < n; leaves n", "f", P2P_BOTH(nnm)},
    {"arc", "clips the floor(2f(n - f) / n) largest vectors to the norm of the next largest", "f < n; leaves n", "f",
     P2P_BOTH(arc)},
};

const AttackEntry kAttacks[] = {
    {"empire", "scale x the mean of the honest vectors (the reference's, scale -1)", "scale", {}, P2P_BOTH(empire)},
    {"ipm", "inner-product manipulation: the same as empire", "scale", {}, P2P_BOTH(empire)},
    {"sign-flip", "scale x the attacker's own honest gradient", "scale", {true, false, false}, P2P_BOTH(sign_flip)},
    {"label-flip", "the gradient on the attacker's batch with labels classes - 1 - y", "", {true, true, false},
     P2P_BOTH(label_flip)},
    {"alie", "a little is enough: mean - z x std of the honest vectors", "n, f", {}, P2P_BOTH(alie)},
    {"gaussian", "a random vector, N(mu, sigma^2) per coordinate", "mu, sigma, seed", {false, false, false},
     P2P_BOTH(gaussian)},
    {"inf", "a vector of +infinity", "", {false, false, false}, P2P_BOTH(inf)},
    {"mimic", "a copy of one honest vector", "target", {}, P2P_BOTH(mimic)},
    {"optimal-alie", "alie with the z that moves the defence's output furthest", "n, f, rule, lo, hi",
     {}, P2P_BOTH(optimal_alie)},
    {"optimal-ipm", "empire with the scale that moves the defence's output furthest", "rule, lo, hi", {},
     P2P_BOTH(optimal_ipm)},
};

#undef P2P_BOTH

template <class Entry>
const Entry& require_in(std::span<const Entry> table, std::string_view name, std::string_view kind) {
    if (const Entry* e = find_row(table, name)) return *e;
    throw RobustError(fmt::format("unknown {} '{}' (known: {})", kind, name, joined_names(table)));
}

}  // namespace

std::span<const AggregatorEntry> aggregators() { return kAggregators; }
std::span<const PreAggregatorEntry> pre_aggregators() { return kPreAggregators; }
std::span<const AttackEntry> attacks() { return kAttacks; }

const AggregatorEntry* find_aggregator(std::string_view name) { return find_row(aggregators(), name); }
const PreAggregatorEntry* find_pre_aggregator(std::string_view name) { return find_row(pre_aggregators(), name); }
const AttackEntry* find_attack(std::string_view name) { return find_row(attacks(), name); }

const AggregatorEntry& aggregator(std::string_view name) { return require_in(aggregators(), name, "aggregator"); }
const PreAggregatorEntry& pre_aggregator(std::string_view name) {
    return require_in(pre_aggregators(), name, "pre-aggregator");
}
const AttackEntry& attack(std::string_view name) { return require_in(attacks(), name, "attack"); }

const std::vector<std::string>& aggregator_names() {
    static const std::vector<std::string> names = row_names(aggregators());
    return names;
}
const std::vector<std::string>& pre_aggregator_names() {
    static const std::vector<std::string> names = row_names(pre_aggregators());
    return names;
}
const std::vector<std::string>& attack_names() {
    static const std::vector<std::string> names = row_names(attacks());
    return names;
}

template <class T>
std::unique_ptr<Aggregator<T>> make_aggregator(std::string_view name, const Params& p) {
    const AggregatorEntry& e = aggregator(name);
    if constexpr (std::is_same_v<T, float>) return e.make_float(name, p);
    else return e.make_double(name, p);
}
template <class T>
std::unique_ptr<PreAggregator<T>> make_pre_aggregator(std::string_view name, const Params& p) {
    const PreAggregatorEntry& e = pre_aggregator(name);
    if constexpr (std::is_same_v<T, float>) return e.make_float(p);
    else return e.make_double(p);
}
template <class T>
std::unique_ptr<Attack<T>> make_attack(std::string_view name, const AttackParams& p) {
    const AttackEntry& e = attack(name);
    if constexpr (std::is_same_v<T, float>) return e.make_float(name, p);
    else return e.make_double(name, p);
}

template std::unique_ptr<Aggregator<float>> make_aggregator<float>(std::string_view, const Params&);
template std::unique_ptr<Aggregator<double>> make_aggregator<double>(std::string_view, const Params&);
template std::unique_ptr<PreAggregator<float>> make_pre_aggregator<float>(std::string_view, const Params&);
template std::unique_ptr<PreAggregator<double>> make_pre_aggregator<double>(std::string_view, const Params&);
template std::unique_ptr<Attack<float>> make_attack<float>(std::string_view, const AttackParams&);
template std::unique_ptr<Attack<double>> make_attack<double>(std::string_view, const AttackParams&);

}  // namespace p2p::robust
