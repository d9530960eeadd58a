#include "p2pnode/data/partition.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "p2pnode/catalogue.hpp"

namespace p2p::data {

namespace {

using Rng = std::mt19937_64;

// Our own draws throughout (std::shuffle and std::gamma_distribution use the engine in ways
// the standard leaves open): the same seed gives the same split with any standard library.
double uniform01(Rng& rng) { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; }  // (0, 1)

void shuffle(std::vector<std::uint32_t>& v, Rng& rng) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

double normal(Rng& rng) {  // Box-Muller
    return std::sqrt(-2.0 * std::log(uniform01(rng))) * std::cos(6.283185307179586 * uniform01(rng));
}

// log of a Gamma(a, 1) draw (Marsaglia-Tsang; for a < 1, Gamma(a + 1) x U^(1/a)). In logs, a
// concentration like 0.001 does not underflow every coordinate to 0.
double log_gamma_draw(double a, Rng& rng) {
    double boost = 0;
    if (a < 1) {
        boost = std::log(uniform01(rng)) / a;
        a += 1;
    }
    const double d = a - 1.0 / 3, c = 1 / std::sqrt(9 * d);
    for (;;) {
        double x = 0, v = 0;
        do {
            x = normal(rng);
            v = 1 + c * x;
        } while (v <= 0);
        v = v * v * v;
        const double u = uniform01(rng);
        if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return std::log(d * v) + boost;
    }
}

// Dirichlet(alpha, ..., alpha) over `k` coordinates.
std::vector<double> dirichlet(double alpha, std::size_t k, Rng& rng) {
    std::vector<double> logs(k);
    for (auto& l : logs) l = log_gamma_draw(alpha, rng);
    const double top = *std::max_element(logs.begin(), logs.end());
    std::vector<double> p(k, 0.0);
    if (!std::isfinite(top)) {  // every draw underflowed: the alpha -> 0 limit, all on one node
        p[rng() % k] = 1.0;
        return p;
    }
    double sum = 0;
    for (std::size_t i = 0; i < k; ++i) sum += p[i] = std::exp(logs[i] - top);
    for (auto& x : p) x /= sum;
    return p;
}

// NumPy's array_split: `parts` contiguous pieces, the first (n mod parts) one longer.
void deal_contiguous(const std::vector<std::uint32_t>& items, std::size_t parts, Shards& out) {
    const std::size_t n = items.size(), base = n / parts, extra = n % parts;
    std::size_t at = 0;
    for (std::size_t p = 0; p < parts; ++p) {
        const std::size_t len = base + (p < extra ? 1 : 0);
        out[p].insert(out[p].end(), items.begin() + static_cast<std::ptrdiff_t>(at),
                      items.begin() + static_cast<std::ptrdiff_t>(at + len));
        at += len;
    }
}

std::vector<std::uint32_t> all_indices(std::size_t n) {
    std::vector<std::uint32_t> v(n);
    std::iota(v.begin(), v.end(), 0u);
    return v;
}

// Indices ordered by label, ties in index order.
std::vector<std::uint32_t> by_label(std::vector<std::uint32_t> v, std::span<const std::uint8_t> labels) {
    std::stable_sort(v.begin(), v.end(), [&](std::uint32_t a, std::uint32_t b) { return labels[a] < labels[b]; });
    return v;
}

Shards strided(std::span<const std::uint8_t> labels, std::size_t, std::size_t nodes, const PartitionSpec&) {
    Shards out(nodes);
    for (std::size_t i = 0; i < labels.size(); ++i) out[i % nodes].push_back(static_cast<std::uint32_t>(i));
    return out;
}

Shards iid(std::span<const std::uint8_t> labels, std::size_t, std::size_t nodes, const PartitionSpec& spec) {
    Rng rng(spec.seed);
    auto v = all_indices(labels.size());
    shuffle(v, rng);
    Shards out(nodes);
    deal_contiguous(v, nodes, out);
    return out;
}

Shards extreme(std::span<const std::uint8_t> labels, std::size_t, std::size_t nodes, const PartitionSpec&) {
    Shards out(nodes);
    deal_contiguous(by_label(all_indices(labels.size()), labels), nodes, out);
    return out;
}

Shards gamma_similarity(std::span<const std::uint8_t> labels, std::size_t, std::size_t nodes,
                        const PartitionSpec& spec) {
    if (!(spec.gamma >= 0 && spec.gamma <= 1))
        throw std::invalid_argument(fmt::format("gamma must be in 0..1, got {}", spec.gamma));
    Rng rng(spec.seed);
    auto v = all_indices(labels.size());
    shuffle(v, rng);
    const auto similar = static_cast<std::size_t>(std::floor(spec.gamma * static_cast<double>(v.size())));
    Shards out(nodes);
    deal_contiguous(std::vector<std::uint32_t>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(similar)), nodes,
                    out);
    deal_contiguous(by_label(std::vector<std::uint32_t>(v.begin() + static_cast<std::ptrdiff_t>(similar), v.end()),
                             labels),
                    nodes, out);
    return out;
}

std::vector<std::vector<std::uint32_t>> per_class(std::span<const std::uint8_t> labels, std::size_t classes) {
    std::vector<std::vector<std::uint32_t>> out(classes);
    for (std::size_t i = 0; i < labels.size(); ++i)
        if (labels[i] < classes) out[labels[i]].push_back(static_cast<std::uint32_t>(i));
    return out;
}

constexpr int kDirichletDraws = 1000;

Shards dirichlet_split(std::span<const std::uint8_t> labels, std::size_t classes, std::size_t nodes,
                       const PartitionSpec& spec) {
    if (!(spec.alpha > 0)) throw std::invalid_argument(fmt::format("alpha must be > 0, got {}", spec.alpha));
    const std::size_t floor = spec.min_size > 0 ? spec.min_size : std::max<std::size_t>(spec.batch, 1);
    if (floor * nodes > labels.size())
        throw std::invalid_argument(fmt::format("{} nodes cannot each get {} of {} samples", nodes, floor,
                                                labels.size()));
    Rng rng(spec.seed);
    const auto groups = per_class(labels, classes);
    std::size_t smallest = 0;
    for (int draw = 0; draw < kDirichletDraws; ++draw) {
        Shards out(nodes);
        for (auto idx : groups) {  // a copy: each draw shuffles afresh
            shuffle(idx, rng);
            const auto p = dirichlet(spec.alpha, nodes, rng);
            double cum = 0;
            std::size_t at = 0;
            for (std::size_t j = 0; j < nodes; ++j) {
                cum += p[j];
                const std::size_t end =
                    j + 1 == nodes ? idx.size()
                                   : std::min(idx.size(), static_cast<std::size_t>(cum * static_cast<double>(idx.size())));
                if (end > at)
                    out[j].insert(out[j].end(), idx.begin() + static_cast<std::ptrdiff_t>(at),
                                  idx.begin() + static_cast<std::ptrdiff_t>(end));
                at = std::max(at, end);
            }
        }
        smallest = labels.size();
        for (const auto& s : out) smallest = std::min(smallest, s.size());
        if (smallest >= floor) return out;
    }
    throw std::invalid_argument(fmt::format(
        "dirichlet with alpha {}: after {} draws a node still held only {} samples, fewer than {}{}; raise --alpha, "
        "lower --min-size or use fewer nodes",
        spec.alpha, kDirichletDraws, smallest, floor, spec.min_size > 0 ? "" : " (one batch)"));
}

Shards pathological(std::span<const std::uint8_t> labels, std::size_t classes, std::size_t nodes,
                    const PartitionSpec& spec) {
    const std::size_t k = spec.classes_per_node;
    if (k == 0 || k > classes)
        throw std::invalid_argument(fmt::format("classes per node must be in 1..{} (the data set's classes), got {}",
                                                classes, k));
    Rng rng(spec.seed);
    std::vector<std::uint32_t> order = all_indices(classes);
    shuffle(order, rng);
    // Node h is dealt classes order[h*K], ..., order[h*K + K - 1] (mod C): K distinct classes,
    // every class dealt when nodes x K >= C, each to as few nodes as the deal allows.
    std::vector<std::vector<std::size_t>> holders(classes);
    for (std::size_t h = 0; h < nodes; ++h)
        for (std::size_t j = 0; j < k; ++j) holders[order[(h * k + j) % classes]].push_back(h);
    auto groups = per_class(labels, classes);
    Shards out(nodes);
    for (std::size_t c = 0; c < classes; ++c) {
        if (holders[c].empty()) continue;
        shuffle(groups[c], rng);
        Shards piece(holders[c].size());
        deal_contiguous(groups[c], holders[c].size(), piece);
        for (std::size_t i = 0; i < holders[c].size(); ++i)
            out[holders[c][i]].insert(out[holders[c][i]].end(), piece[i].begin(), piece[i].end());
    }
    return out;
}

const PartitionEntry kPartitions[] = {
    {"strided", "honest node h of H takes samples h, h+H, h+2H, ... (the reference's split)", "", strided},
    {"iid", "a seeded random equal split (sizes differ by at most 1)", "data-seed", iid},
    {"dirichlet",
     "per class, its samples split among the nodes by Dirichlet(alpha) proportions; re-drawn until every node has "
     "min-size samples (0: one batch)",
     "alpha, min-size, data-seed", dirichlet_split},
    {"gamma",
     "ByzFL's gamma similarity: a fraction gamma of the samples split IID, the rest sorted by label and cut in "
     "contiguous blocks",
     "gamma, data-seed", gamma_similarity},
    {"extreme", "sorted by label and cut in contiguous blocks (ByzFL's extreme non-IID)", "", extreme},
    {"classes",
     "pathological: each node is dealt K distinct classes (seeded), a class's samples split equally among the nodes "
     "holding it",
     "classes-per-node, data-seed", pathological},
};

}  // namespace

std::span<const PartitionEntry> partitions() { return kPartitions; }
const PartitionEntry* find_partition(std::string_view name) { return find_row(partitions(), name); }

Shards partition(std::span<const std::uint8_t> labels, std::size_t classes, std::size_t nodes,
                 const PartitionSpec& spec) {
    const PartitionEntry* e = find_partition(spec.name);
    if (!e)
        throw std::invalid_argument(
            fmt::format("unknown partition '{}' (known: {})", spec.name, joined_names(partitions())));
    if (nodes == 0) throw std::invalid_argument("a partition needs at least one node");
    Shards out = e->split(labels, classes, nodes, spec);
    for (auto& s : out) std::sort(s.begin(), s.end());
    return out;
}

std::vector<std::vector<std::size_t>> class_counts(const Shards& shards, std::span<const std::uint8_t> labels,
                                                   std::size_t classes) {
    std::vector<std::vector<std::size_t>> out(shards.size(), std::vector<std::size_t>(classes, 0));
    for (std::size_t h = 0; h < shards.size(); ++h)
        for (auto i : shards[h])
            if (labels[i] < classes) ++out[h][labels[i]];
    return out;
}

}  // namespace p2p::data
