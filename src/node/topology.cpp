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

std::size_t Topology::eccentricity(std::uint32_t id) const {
    auto position = [&](std::uint32_t v) { return static_cast<std::size_t>(std::lower_bound(ids_.begin(), ids_.end(), v) - ids_.begin()); };
    const std::size_t start = position(id);
    if (start >= ids_.size() || ids_[start] != id) return 0;
    std::vector<std::size_t> hops(ids_.size(), SIZE_MAX);
    std::deque<std::size_t> queue{start};
    hops[start] = 0;
    std::size_t farthest = 0;
    while (!queue.empty()) {
        const std::size_t u = queue.front();
        queue.pop_front();
        farthest = std::max(farthest, hops[u]);
        for (auto v : adjacent_[u]) {
            const std::size_t p = position(v);
            if (hops[p] == SIZE_MAX) {
                hops[p] = hops[u] + 1;
                queue.push_back(p);
            }
        }
    }
    return farthest;
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
