#include "p2pnode/node/topology.hpp"

#include "p2pnode/catalogue.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <stdexcept>
#include <string>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xtensor.hpp>

namespace p2p::node {

namespace {

std::vector<std::uint32_t> sorted_unique(std::vector<std::uint32_t> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

// The graphs' streams start away from the random placement's (seed ^ the golden ratio), so the
// two draws of one seed are unrelated.
constexpr std::uint64_t kGraphSalt = 0x6A09E667F3BCC909ull;

// splitmix64: the random graphs' stream (the same draw on every machine and compiler).
struct SplitMix {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
};

}  // namespace

// Edges by position over the sorted ids.
Topology Topology::from_pairs(const std::vector<std::uint32_t>& ids, const std::vector<std::pair<std::size_t, std::size_t>>& pairs) {
    Topology t;
    t.ids_ = sorted_unique(ids);
    t.adjacent_.assign(t.ids_.size(), {});
    for (const auto& [a, b] : pairs) {
        if (a == b) continue;
        t.adjacent_[a].push_back(t.ids_[b]);
        t.adjacent_[b].push_back(t.ids_[a]);
    }
    for (auto& a : t.adjacent_) a = sorted_unique(a);
    return t;
}

Topology Topology::star(const std::vector<std::uint32_t>& ids, std::uint32_t centre) {
    const auto sorted = sorted_unique(ids);
    const auto it = std::lower_bound(sorted.begin(), sorted.end(), centre);
    if (it == sorted.end() || *it != centre)
        throw std::invalid_argument("centre " + std::to_string(centre) + " is not in the node list");
    const auto c = static_cast<std::size_t>(it - sorted.begin());
    std::vector<std::pair<std::size_t, std::size_t>> pairs;
    for (std::size_t i = 0; i < sorted.size(); ++i) pairs.emplace_back(c, i);
    return from_pairs(sorted, pairs);
}

Topology Topology::torus(const std::vector<std::uint32_t>& ids, std::size_t rows) {
    const auto sorted = sorted_unique(ids);
    const std::size_t n = sorted.size();
    if (rows == 0 || n % rows != 0)
        throw std::invalid_argument("rows " + std::to_string(rows) + " does not divide the " + std::to_string(n) +
                                    " nodes into a rows x cols grid");
    const std::size_t cols = n / rows;
    std::vector<std::pair<std::size_t, std::size_t>> pairs;
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) {
            pairs.emplace_back(r * cols + c, r * cols + (c + 1) % cols);
            pairs.emplace_back(r * cols + c, ((r + 1) % rows) * cols + c);
        }
    return from_pairs(sorted, pairs);
}

Topology Topology::erdos_renyi(const std::vector<std::uint32_t>& ids, double p, std::uint64_t seed) {
    if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument("p must be in [0, 1]");
    const auto sorted = sorted_unique(ids);
    SplitMix rng{seed ^ kGraphSalt};
    std::vector<std::pair<std::size_t, std::size_t>> pairs;
    for (std::size_t i = 0; i < sorted.size(); ++i)
        for (std::size_t j = i + 1; j < sorted.size(); ++j)
            if (rng.uniform() < p) pairs.emplace_back(i, j);
    return from_pairs(sorted, pairs);
}

Topology Topology::random_regular(const std::vector<std::uint32_t>& ids, std::size_t degree, std::uint64_t seed) {
    const auto sorted = sorted_unique(ids);
    const std::size_t n = sorted.size();
    if (degree >= n) throw std::invalid_argument("degree " + std::to_string(degree) + " must be below the " +
                                                 std::to_string(n) + " nodes");
    if ((n * degree) % 2 != 0)
        throw std::invalid_argument("nodes x degree (" + std::to_string(n) + " x " + std::to_string(degree) +
                                    ") must be even");
    SplitMix rng{seed ^ kGraphSalt};
    // Pair the free edge ends at random, never a loop or a second edge between the same two;
    // when no allowed pair is left among the ends, start again (a bounded number of times).
    for (int attempt = 0; attempt < 1000; ++attempt) {
        std::vector<std::size_t> ends;
        for (std::size_t i = 0; i < n; ++i) ends.insert(ends.end(), degree, i);
        std::vector<std::vector<bool>> linked(n, std::vector<bool>(n, false));
        std::vector<std::pair<std::size_t, std::size_t>> pairs;
        bool stuck = false;
        while (!ends.empty() && !stuck) {
            stuck = true;
            for (int tries = 0; tries < 100; ++tries) {
                const std::size_t a = rng.below(ends.size()), b = rng.below(ends.size());
                const std::size_t u = ends[a], v = ends[b];
                if (u == v || linked[u][v]) continue;
                linked[u][v] = linked[v][u] = true;
                pairs.emplace_back(u, v);
                for (std::size_t k : {std::max(a, b), std::min(a, b)}) {  // swap with the last, then drop it
                    ends[k] = ends.back();
                    ends.pop_back();
                }
                stuck = false;
                break;
            }
        }
        if (!stuck) return from_pairs(sorted, pairs);
    }
    throw std::invalid_argument("no " + std::to_string(degree) + "-regular graph on " + std::to_string(n) +
                                " nodes found in 1000 attempts");
}

Topology Topology::exponential(const std::vector<std::uint32_t>& ids) {
    const auto sorted = sorted_unique(ids);
    const std::size_t n = sorted.size();
    std::vector<std::pair<std::size_t, std::size_t>> pairs;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t hop = 1; hop < n; hop *= 2) pairs.emplace_back(i, (i + hop) % n);
    return from_pairs(sorted, pairs);
}

Topology Topology::one_peer(const std::vector<std::uint32_t>& ids, std::size_t j) {
    const auto sorted = sorted_unique(ids);
    const std::size_t n = sorted.size();
    if (n < 2) throw std::invalid_argument("one-peer exponential needs at least 2 nodes");
    std::vector<std::pair<std::size_t, std::size_t>> pairs;
    const std::size_t hop = std::size_t{1} << j;
    for (std::size_t i = 0; i < n; ++i) pairs.emplace_back(i, (i + hop) % n);
    return from_pairs(sorted, pairs);
}

Topology Topology::merged(const std::vector<Topology>& graphs) {
    Topology t;
    if (graphs.empty()) return t;
    t.ids_ = graphs.front().ids_;
    t.adjacent_.assign(t.ids_.size(), {});
    for (const auto& g : graphs)
        for (std::size_t p = 0; p < t.ids_.size() && p < g.adjacent_.size(); ++p)
            t.adjacent_[p].insert(t.adjacent_[p].end(), g.adjacent_[p].begin(), g.adjacent_[p].end());
    for (auto& a : t.adjacent_) a = sorted_unique(a);
    return t;
}

TimeVarying::TimeVarying(std::uint64_t period, std::uint64_t cycle, std::size_t flood, Make make)
    : period_(std::max<std::uint64_t>(1, period)), cycle_(cycle), flood_(flood), make_(std::move(make)) {}

std::uint64_t TimeVarying::epoch_of(std::uint64_t round) const {
    const std::uint64_t e = (std::max<std::uint64_t>(round, 1) - 1) / period_;
    return cycle_ ? e % cycle_ : e;
}

std::vector<std::uint64_t> TimeVarying::epochs_in(std::uint64_t rounds) const {
    std::uint64_t count = (std::max<std::uint64_t>(rounds, 1) + period_ - 1) / period_;
    if (cycle_) count = std::min(count, cycle_);
    std::vector<std::uint64_t> out;
    for (std::uint64_t e = 0; e < count; ++e) out.push_back(e);
    return out;
}

Topology TimeVarying::union_over(std::uint64_t rounds) const {
    std::vector<Topology> graphs;
    for (auto e : epochs_in(rounds)) graphs.push_back(make_(e));
    return Topology::merged(graphs);
}

TimeVarying one_peer_exponential(const std::vector<std::uint32_t>& ids) {
    std::size_t cycle = 0;
    for (std::size_t hop = 1; hop < ids.size(); hop *= 2) ++cycle;
    if (cycle == 0) throw std::invalid_argument("one-peer exponential needs at least 2 nodes");
    // Round r = e + 1 of a cycle uses j = r mod J.
    return TimeVarying(1, cycle, cycle, [ids, cycle](std::uint64_t e) { return Topology::one_peer(ids, (e + 1) % cycle); });
}

Topology Topology::two_cliques(const std::vector<std::uint32_t>& ids, std::size_t bridges) {
    const auto sorted = sorted_unique(ids);
    const std::size_t n = sorted.size(), first = (n + 1) / 2, second = n - first;
    if (n < 2) throw std::invalid_argument("two cliques need at least 2 nodes");
    if (bridges < 1 || bridges > second)
        throw std::invalid_argument("bridges must be 1.." + std::to_string(second) + " (the smaller clique's size)");
    std::vector<std::pair<std::size_t, std::size_t>> pairs;
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = i + 1; j < n; ++j)
            if ((i < first) == (j < first)) pairs.emplace_back(i, j);
    for (std::size_t k = 0; k < bridges; ++k) pairs.emplace_back(k, first + k);
    return from_pairs(sorted, pairs);
}

bool Topology::connected_within(const std::vector<std::uint32_t>& subset) const {
    std::vector<bool> in(ids_.size(), false), seen(ids_.size(), false);
    std::size_t members = 0, start = ids_.size();
    for (auto id : subset) {
        const std::size_t p = index_of(id);
        if (p == ids_.size() || in[p]) continue;
        in[p] = true, ++members, start = std::min(start, p);
    }
    if (members < 2) return true;
    std::deque<std::size_t> queue{start};
    seen[start] = true;
    std::size_t reached = 1;
    while (!queue.empty()) {
        const std::size_t u = queue.front();
        queue.pop_front();
        for (auto v : adjacent_[u]) {
            const std::size_t q = index_of(v);
            if (in[q] && !seen[q]) seen[q] = true, ++reached, queue.push_back(q);
        }
    }
    return reached == members;
}

std::size_t Topology::edge_count() const {
    std::size_t ends = 0;
    for (const auto& a : adjacent_) ends += a.size();
    return ends / 2;
}

std::vector<double> mixing_matrix(const Topology& graph, const std::vector<std::uint32_t>& members,
                                  std::string_view weights) {
    const std::size_t n = members.size();
    std::vector<std::size_t> degree(n, 0);
    std::vector<std::vector<std::size_t>> within(n);  // neighbours among the members, by position
    std::vector<std::size_t> member_at(graph.ids().size(), n);  // graph position -> position in members
    for (std::size_t i = 0; i < n; ++i)
        if (const std::size_t p = graph.index_of(members[i]); p < member_at.size()) member_at[p] = i;
    for (std::size_t i = 0; i < n; ++i)
        for (auto v : graph.neighbours(members[i]))
            if (const std::size_t j = member_at[graph.index_of(v)]; j < n) within[i].push_back(j);
    for (std::size_t i = 0; i < n; ++i) degree[i] = within[i].size();
    std::vector<double> w(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        if (weights == "uniform") {
            const double share = 1.0 / static_cast<double>(degree[i] + 1);
            w[i * n + i] = share;
            for (auto j : within[i]) w[i * n + j] = share;
        } else if (weights == "metropolis") {
            double rest = 1.0;
            for (auto j : within[i]) {
                w[i * n + j] = 1.0 / static_cast<double>(1 + std::max(degree[i], degree[j]));
                rest -= w[i * n + j];
            }
            w[i * n + i] = rest;
        } else {
            throw std::invalid_argument("unknown mixing '" + std::string(weights) + "' (known: uniform, metropolis)");
        }
    }
    return w;
}

double spectral_gap(const Topology& graph, const std::vector<std::uint32_t>& members, std::string_view weights) {
    const std::size_t n = members.size();
    if (n < 2) return 1.0;
    if (!graph.connected_within(members)) return 0.0;
    const auto w = mixing_matrix(graph, members, weights);
    // uniform: W = D^-1 (A + I) with D = diag(d + 1) is similar to D^(1/2) W D^(-1/2), symmetric.
    xt::xtensor<double, 2> s = xt::zeros<double>({n, n});
    std::vector<double> scale(n, 1.0);
    if (weights == "uniform")
        for (std::size_t i = 0; i < n; ++i) scale[i] = std::sqrt(1.0 / w[i * n + i]);  // sqrt(d_i + 1)
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) s(i, j) = scale[i] * w[i * n + j] / scale[j];
    auto values = xt::eval(xt::linalg::eigvalsh(s));  // ascending; the largest is 1
    double second = 0.0;
    for (std::size_t k = 0; k + 1 < n; ++k) second = std::max(second, std::abs(values(k)));
    return std::max(0.0, 1.0 - second);
}

GraphStats graph_stats(const Topology& graph, const std::vector<std::uint32_t>& byzantine) {
    GraphStats g;
    const auto& ids = graph.ids();
    g.nodes = ids.size();
    g.edges = graph.edge_count();
    auto is_byzantine = [&](std::uint32_t id) { return std::find(byzantine.begin(), byzantine.end(), id) != byzantine.end(); };
    std::vector<std::uint32_t> honest;
    std::size_t degrees = 0, exposure = 0;
    g.degree_min = SIZE_MAX;
    g.byzantine_min = SIZE_MAX;
    for (auto id : ids) {
        const auto& nb = graph.neighbours(id);
        const auto bad = static_cast<std::size_t>(std::count_if(nb.begin(), nb.end(), is_byzantine));
        const bool b = is_byzantine(id);
        g.per_node.push_back({id, b, nb.size(), bad});
        degrees += nb.size();
        g.degree_min = std::min(g.degree_min, nb.size());
        g.degree_max = std::max(g.degree_max, nb.size());
        if (b) continue;
        honest.push_back(id);
        exposure += bad;
        g.byzantine_min = std::min(g.byzantine_min, bad);
        g.byzantine_max = std::max(g.byzantine_max, bad);
    }
    if (g.nodes == 0) g.degree_min = 0;
    if (honest.empty()) g.byzantine_min = 0;
    g.degree_mean = g.nodes ? static_cast<double>(degrees) / static_cast<double>(g.nodes) : 0.0;
    g.honest = honest.size();
    g.byzantine_mean = honest.empty() ? 0.0 : static_cast<double>(exposure) / static_cast<double>(honest.size());
    for (const auto& n : g.per_node)
        if (!n.byzantine && g.byzantine_max > 0 && n.byzantine_neighbours == g.byzantine_max) g.most_exposed.push_back(n.id);
    g.honest_connected = graph.connected_within(honest);
    g.gaps_computed = honest.size() <= kMaxGapNodes;
    if (g.gaps_computed) {
        g.gap_uniform = spectral_gap(graph, honest, "uniform");
        g.gap_metropolis = spectral_gap(graph, honest, "metropolis");
    }
    return g;
}

Topology Topology::ring(const std::vector<std::uint32_t>& ids, std::size_t k) {
    Topology t;
    t.ids_ = sorted_unique(ids);
    const std::size_t n = t.ids_.size();
    t.adjacent_.assign(n, {});
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t step = 1; step <= k && step < n; ++step) {
            t.adjacent_[i].push_back(t.ids_[(i + step) % n]);
            t.adjacent_[i].push_back(t.ids_[(i + n - step % n) % n]);
        }
        auto& a = t.adjacent_[i];
        a = sorted_unique(a);
        a.erase(std::remove(a.begin(), a.end(), t.ids_[i]), a.end());
    }
    return t;
}

Topology Topology::complete(const std::vector<std::uint32_t>& ids) { return ring(ids, ids.size()); }

Topology Topology::edges(const std::vector<std::uint32_t>& ids,
                         const std::vector<std::pair<std::uint32_t, std::uint32_t>>& edges) {
    Topology t;
    t.ids_ = sorted_unique(ids);
    t.adjacent_.assign(t.ids_.size(), {});
    auto index = [&](std::uint32_t id) {
        auto it = std::lower_bound(t.ids_.begin(), t.ids_.end(), id);
        if (it == t.ids_.end() || *it != id)
            throw std::invalid_argument("edge names node " + std::to_string(id) + ", which is not in the node list");
        return static_cast<std::size_t>(it - t.ids_.begin());
    };
    for (const auto& [a, b] : edges) {
        if (a == b) throw std::invalid_argument("edge " + std::to_string(a) + "-" + std::to_string(b) + " is a self-loop");
        t.adjacent_[index(a)].push_back(b);
        t.adjacent_[index(b)].push_back(a);
    }
    for (auto& a : t.adjacent_) a = sorted_unique(a);
    return t;
}

const std::vector<std::uint32_t>& Topology::neighbours(std::uint32_t id) const {
    static const std::vector<std::uint32_t> none;
    auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
    if (it == ids_.end() || *it != id) return none;
    return adjacent_[static_cast<std::size_t>(it - ids_.begin())];
}

std::size_t Topology::index_of(std::uint32_t id) const {
    // ids 0..n-1 (sorted and unique: the usual config) are their own positions.
    if (!ids_.empty() && ids_.front() == 0 && ids_.back() + 1 == ids_.size()) return id < ids_.size() ? id : ids_.size();
    auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
    return it != ids_.end() && *it == id ? static_cast<std::size_t>(it - ids_.begin()) : ids_.size();
}

std::vector<std::size_t> Topology::hops_from(std::uint32_t id) const {
    std::vector<std::size_t> hops(ids_.size(), SIZE_MAX);
    const std::size_t start = index_of(id);
    if (start == ids_.size()) return hops;
    std::vector<std::size_t> queue{start};  // a breadth-first order: read from the front, appended at the back
    queue.reserve(ids_.size());
    hops[start] = 0;
    for (std::size_t head = 0; head < queue.size(); ++head) {
        const std::size_t u = queue[head];
        for (auto v : adjacent_[u]) {
            const std::size_t p = index_of(v);
            if (hops[p] == SIZE_MAX) {
                hops[p] = hops[u] + 1;
                queue.push_back(p);
            }
        }
    }
    return hops;
}

std::size_t Topology::eccentricity(std::uint32_t id) const {
    std::size_t farthest = 0;
    for (auto h : hops_from(id))
        if (h != SIZE_MAX) farthest = std::max(farthest, h);
    return farthest;
}

std::vector<std::uint32_t> place_byzantine(const Topology& graph, std::size_t count, std::string_view placement,
                                           std::uint64_t seed) {
    const auto& ids = graph.ids();
    const std::size_t n = ids.size();
    if (count >= n)
        throw std::invalid_argument("needs at least one honest node: " + std::to_string(count) + " Byzantine of " +
                                    std::to_string(n) + " nodes");
    std::vector<std::uint32_t> chosen;
    if (count == 0) return chosen;
    if (placement == "random") {
        // Fisher-Yates with our own draws (std::uniform_int_distribution differs between libraries).
        std::vector<std::uint32_t> order = ids;
        std::uint64_t state = seed ^ 0x9e3779b97f4a7c15ULL;
        auto next = [&state] {  // splitmix64
            std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            return z ^ (z >> 31);
        };
        for (std::size_t i = 0; i < count; ++i) std::swap(order[i], order[i + next() % (n - i)]);
        chosen.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(count));
    } else if (placement == "spread") {
        // Two candidates, the one whose closest pair is farther apart wins (a tie: the first):
        // evenly spaced in id order (right on rings and grids numbered in order), and farthest
        // first from the lowest id (right on graphs whose ids say nothing of where nodes sit).
        std::vector<std::uint32_t> even;
        for (std::size_t c = 0; c < count; ++c) even.push_back(ids[c * n / count]);
        std::vector<std::uint32_t> farthest;
        std::vector<std::size_t> nearest(n, SIZE_MAX);  // hops to the closest chosen node
        std::size_t pick = 0;
        for (std::size_t c = 0; c < count; ++c) {
            farthest.push_back(ids[pick]);
            const auto hops = graph.hops_from(ids[pick]);
            for (std::size_t i = 0; i < n; ++i) nearest[i] = std::min(nearest[i], hops[i]);
            // Unreachable nodes (SIZE_MAX) are the farthest of all: another component first.
            std::size_t best = n;
            for (std::size_t i = 0; i < n; ++i)
                if (nearest[i] != 0 && (best == n || nearest[i] > nearest[best])) best = i;
            pick = best;
        }
        auto closest_pair = [&](const std::vector<std::uint32_t>& set) {
            std::size_t least = SIZE_MAX;
            for (auto a : set) {
                const auto hops = graph.hops_from(a);
                for (auto b : set)
                    if (b != a) least = std::min(least, hops[graph.index_of(b)]);
            }
            return least;
        };
        chosen = closest_pair(farthest) > closest_pair(even) ? farthest : even;
    } else if (placement == "clustered") {
        std::vector<bool> seen(n, false);
        std::deque<std::size_t> queue;
        for (std::size_t root = 0; root < n && chosen.size() < count; ++root) {  // next component if one is used up
            if (seen[root]) continue;
            seen[root] = true;
            queue.push_back(root);
            while (!queue.empty() && chosen.size() < count) {
                const std::size_t u = queue.front();
                queue.pop_front();
                chosen.push_back(ids[u]);
                for (auto v : graph.neighbours(ids[u])) {
                    const std::size_t p = graph.index_of(v);
                    if (!seen[p]) seen[p] = true, queue.push_back(p);
                }
            }
            queue.clear();
        }
    } else {
        throw std::invalid_argument("unknown placement '" + std::string(placement) + "' (known: random, spread, clustered)");
    }
    std::sort(chosen.begin(), chosen.end());
    return chosen;
}

namespace {

const TopologyEntry kTopologies[] = {
    {"ring", "each node linked to the k nodes on either side, by id order (k >= N/2: complete)", "k (default 1)",
     [](const std::vector<std::uint32_t>& ids, const TopologySpec& t) { return Topology::ring(ids, t.k); }},
    {"complete", "every node linked to every other", "",
     [](const std::vector<std::uint32_t>& ids, const TopologySpec&) { return Topology::complete(ids); }},
    {"edges", "the undirected edges listed, [[a, b], ...]", "edges",
     [](const std::vector<std::uint32_t>& ids, const TopologySpec& t) {
         if (t.edges.empty()) throw std::invalid_argument("type edges needs an edges list");
         return Topology::edges(ids, t.edges);
     }},
    {"star", "every node linked to the centre only", "centre (default: the lowest id)",
     [](const std::vector<std::uint32_t>& ids, const TopologySpec& t) {
         const auto lowest = ids.empty() ? 0u : *std::min_element(ids.begin(), ids.end());
         return Topology::star(ids, t.centre >= 0 ? static_cast<std::uint32_t>(t.centre) : lowest);
     }},
    {"torus", "a rows x cols grid with wrap-around, ids row by row", "rows (default: the most square grid)",
     [](const std::vector<std::uint32_t>& ids, const TopologySpec& t) {
         std::size_t rows = t.rows;
         if (rows == 0)  // the largest divisor of n not above its square root
             for (std::size_t r = 1; r * r <= ids.size(); ++r)
                 if (ids.size() % r == 0) rows = r;
         return Topology::torus(ids, rows);
     }},
    {"erdos-renyi", "each pair linked with probability p, redrawn until the honest nodes are connected",
     "p (default 0.5), topology seed (default: the run's), every (a new draw every R rounds; default 0: never)",
     [](const std::vector<std::uint32_t>& ids, const TopologySpec& t) { return Topology::erdos_renyi(ids, t.p, t.seed); },
     true},
    {"random-regular", "every node with exactly degree neighbours, drawn at random (honest nodes connected)",
     "degree (default 3), topology seed",
     [](const std::vector<std::uint32_t>& ids, const TopologySpec& t) {
         return Topology::random_regular(ids, t.degree, t.seed);
     },
     true},
    {"exponential", "node i linked to i +- 2^j (positions in id order, mod n)", "",
     [](const std::vector<std::uint32_t>& ids, const TopologySpec&) { return Topology::exponential(ids); }},
    {"two-cliques", "two cliques (the lower and upper half of the ids) joined by bridges edges",
     "bridges (default 1)",
     [](const std::vector<std::uint32_t>& ids, const TopologySpec& t) { return Topology::two_cliques(ids, t.bridges); }},
    {"one-peer-exponential",
     "time-varying: in round r node i is linked to i + 2^j, j = r mod ceil(log2 n) (positions in id order, mod n)",
     "",
     [](const std::vector<std::uint32_t>& ids, const TopologySpec&) { return one_peer_exponential(ids).at(1); }},
};

}  // namespace

std::span<const TopologyEntry> topologies() { return kTopologies; }

const TopologyEntry* find_topology(std::string_view name) { return find_row(topologies(), name); }

}  // namespace p2p::node
