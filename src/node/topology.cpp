#include "p2pnode/node/topology.hpp"

#include "p2pnode/catalogue.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <stdexcept>
#include <string>

namespace p2p::node {

namespace {

std::vector<std::uint32_t> sorted_unique(std::vector<std::uint32_t> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

}  // namespace

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
    auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
    return it != ids_.end() && *it == id ? static_cast<std::size_t>(it - ids_.begin()) : ids_.size();
}

std::vector<std::size_t> Topology::hops_from(std::uint32_t id) const {
    std::vector<std::size_t> hops(ids_.size(), SIZE_MAX);
    const std::size_t start = index_of(id);
    if (start == ids_.size()) return hops;
    std::deque<std::size_t> queue{start};
    hops[start] = 0;
    while (!queue.empty()) {
        const std::size_t u = queue.front();
        queue.pop_front();
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
};

}  // namespace

std::span<const TopologyEntry> topologies() { return kTopologies; }

const TopologyEntry* find_topology(std::string_view name) { return find_row(topologies(), name); }

}  // namespace p2p::node
