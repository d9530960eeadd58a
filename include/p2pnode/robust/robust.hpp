// Robust aggregation, pre-aggregation and attacks: pure functions of float vectors (no
// sockets, no files). Every rule works in the precision of its input: float for gradients on
// the wire, double for `p2pnode aggregate` on float64 .npy files.
//
// Inputs are n vectors of one dimension d, given as spans (the node's received gradients live
// in separate buffers; nothing is copied to stack them). Outputs are written into a span the
// caller owns.
//
// NaN and infinity, per family (tested):
//  - mean: propagates them (it is the non-robust baseline).
//  - coordinate-wise rules (median, trimmed-mean, meamed, mean-of-medians, bulyan's second
//    stage): NaN is ordered as +inf, so up to f non-finite values per coordinate are
//    trimmed away like any other outlier; the Inf attack does not reach the output.
//  - distance and norm based rules (krum, multi-krum, bulyan's selection, mda, monna, smea,
//    cge, caf, geometric-median, centered-clipping): a vector with a non-finite entry is at
//    distance +inf from every other and has norm +inf; selection rules never pick it while
//    enough finite vectors remain, and geometric-median / centered-clipping give it zero
//    weight / clip it to nothing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "p2pnode/robust/runtime.hpp"

namespace p2p::robust {

// A rule that cannot run with these inputs or parameters: the message names the rule, n, f
// and the bound (e.g. "krum needs n > 2f + 2, got n = 5, f = 2").
class RobustError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

template <class T>
using Vectors = std::span<const std::span<const T>>;

// Parameters shared by the rules; each rule reads the ones it documents.
struct Params {
    std::size_t f = 0;                 // tolerated Byzantine inputs
    std::optional<std::size_t> q;      // multi-krum: how many best vectors to average (default n - f)
    double tau = 10.0;                 // centered-clipping radius; clipping threshold
    std::size_t iterations = 0;        // 0 = the rule's default (geometric-median 100, centered-clipping 3)
    double tolerance = 1e-7;           // geometric-median: stop when the step is below tolerance * |z|
    double nu = 1e-9;                  // geometric-median: smoothing (distances below nu count as nu)
    std::size_t reference = 0;         // monna: the index of the node's own vector
    std::size_t bucket_size = 2;       // bucketing
    std::uint64_t seed = 0;            // bucketing's shuffle, gaussian attack
    double max_subsets = 1e8;          // mda / smea: refuse when C(n, f) exceeds this
};

// Names (kebab-case) of everything in the catalogue.
const std::vector<std::string>& aggregator_names();
const std::vector<std::string>& pre_aggregator_names();
const std::vector<std::string>& attack_names();

template <class T>
class Aggregator {
public:
    virtual ~Aggregator() = default;
    const std::string& name() const { return name_; }
    // Checks the bound and the dimensions, then aggregates `in` into `out` (out.size() = d).
    // Stateful rules (centered-clipping) remember their last output for the next call.
    void aggregate(Vectors<T> in, std::span<T> out);
    // Throws RobustError if the rule cannot run on n inputs with its f.
    virtual void check(std::size_t n) const;

protected:
    Aggregator(std::string name, const Params& p) : name_(std::move(name)), p_(p) {}
    virtual void run(Vectors<T> in, std::span<T> out) = 0;
    [[noreturn]] void refuse(std::size_t n, const std::string& bound) const;
    std::string name_;
    Params p_;
};

// A rule by name; RobustError for an unknown name (listing the known ones).
template <class T>
std::unique_ptr<Aggregator<T>> make_aggregator(std::string_view name, const Params& p);

// Transforms the n input vectors into new vectors (possibly fewer: bucketing) before a rule.
template <class T>
class PreAggregator {
public:
    virtual ~PreAggregator() = default;
    const std::string& name() const { return name_; }
    // The transformed vectors, valid until the next call.
    virtual Vectors<T> apply(Vectors<T> in) = 0;
    // How many vectors apply() returns for n inputs; RobustError when it cannot take n.
    virtual std::size_t outputs(std::size_t n) const { return n; }

protected:
    PreAggregator(std::string name, const Params& p) : name_(std::move(name)), p_(p) {}
    // Sizes storage_ for m vectors of dimension d and points views_ at them.
    void reserve(std::size_t m, std::size_t d);
    std::string name_;
    Params p_;
    std::vector<std::vector<T>> storage_;
    std::vector<std::span<const T>> views_;
};

template <class T>
std::unique_ptr<PreAggregator<T>> make_pre_aggregator(std::string_view name, const Params& p);

// Pre-aggregators in order, then a rule.
template <class T>
class Pipeline {
public:
    Pipeline(const std::vector<std::string>& pre, std::string_view rule, const Params& p);
    void aggregate(Vectors<T> in, std::span<T> out);
    // RobustError, before any data, when n inputs cannot pass every stage and the rule's bound
    // (bucketing leaves ceil(n / s) vectors for the rule).
    void check(std::size_t n) const;
    Aggregator<T>& rule() { return *rule_; }

private:
    std::vector<std::unique_ptr<PreAggregator<T>>> pre_;
    std::unique_ptr<Aggregator<T>> rule_;
};

// ---------------------------------------------------------------- attacks

struct AttackParams {
    double scale = -1.0;           // empire/ipm and sign-flip: the factor (the reference's --byz-scale)
    std::size_t n = 0;             // total number of inputs the honest nodes aggregate (alie's z)
    std::size_t f = 0;             // Byzantine inputs among them
    double mu = 0.0, sigma = 1.0;  // gaussian
    std::size_t target = 0;        // mimic: which honest vector to copy
    std::string rule = "median";   // optimal-*: the aggregator to push furthest
    std::vector<std::string> pre;  // optimal-*: its pre-aggregators
    Params rule_params;            // optimal-*: its parameters
    double lo = -10.0, hi = 10.0;  // optimal-*: the scale (ipm) or z (alie) searched
    std::uint64_t seed = 0;        // gaussian
};

template <class T>
struct AttackInput {
    Vectors<T> honest;                   // what the attacker heard this round
    std::span<const T> own;              // the attacker's own honest gradient (sign-flip), may be empty
    // label-flip: fills its argument with the gradient on labels 9 - y (the node provides it)
    std::function<void(std::span<T>)> flipped_gradient;
};

template <class T>
class Attack {
public:
    virtual ~Attack() = default;
    const std::string& name() const { return name_; }
    // Writes the forged vector into out (out.size() = d).
    virtual void forge(const AttackInput<T>& in, std::span<T> out) = 0;

protected:
    Attack(std::string name, const AttackParams& p) : name_(std::move(name)), p_(p) {}
    std::string name_;
    AttackParams p_;
};

template <class T>
std::unique_ptr<Attack<T>> make_attack(std::string_view name, const AttackParams& p);

// A node's step between its own vector and the aggregate: out <- w * own + (1 - w) * out,
// coordinate-wise, for w = self_weight in [0, 1]. w = 0 leaves `out` as it is and w = 1 copies
// `own` (no 0 * inf from the other side); own and out have the same size.
template <class T>
void mix_own(std::span<const T> own, std::span<T> out, double self_weight) {
    if (self_weight <= 0) return;
    if (self_weight >= 1) {
        std::copy(own.begin(), own.end(), out.begin());
        return;
    }
    const T w = static_cast<T>(self_weight);
    const T rest = static_cast<T>(1 - self_weight);
    for (std::size_t k = 0; k < out.size(); ++k) out[k] = w * own[k] + rest * out[k];
}

// z of "a little is enough" (Baruch et al. 2019): s = floor(n/2 + 1) - f, z = Phi^-1((n - s) / n).
double alie_z(std::size_t n, std::size_t f);
// The standard normal quantile function.
double normal_quantile(double p);

}  // namespace p2p::robust
