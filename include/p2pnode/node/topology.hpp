// Who talks to whom. Edges are undirected: a node sends its gradient to its neighbours and
// aggregates theirs (in- and out-neighbours are the same set).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace p2p::node {

class Topology {
public:
    // ring with k: each node is linked to the k nodes on either side (ids in order); k >= N/2
    // is the complete graph. The reference's default is a ring with k = 1.
    static Topology ring(const std::vector<std::uint32_t>& ids, std::size_t k);
    static Topology complete(const std::vector<std::uint32_t>& ids);
    // Explicit undirected edges between ids; ConfigError-style std::invalid_argument for an edge
    // naming an unknown id or a self-loop.
    static Topology edges(const std::vector<std::uint32_t>& ids,
                          const std::vector<std::pair<std::uint32_t, std::uint32_t>>& edges);

    // Sorted neighbour ids of `id` (empty for an unknown id).
    const std::vector<std::uint32_t>& neighbours(std::uint32_t id) const;
    const std::vector<std::uint32_t>& ids() const { return ids_; }
    // The position of `id` in ids() (ids().size() for an unknown id).
    std::size_t index_of(std::uint32_t id) const;
    // The most hops from `id` to any node it can reach (0 alone or unknown): one search.
    std::size_t eccentricity(std::uint32_t id) const;
    // Hops from `id` to every node, by position in ids() (SIZE_MAX: unreachable; all SIZE_MAX
    // for an unknown id): one breadth-first search.
    std::vector<std::size_t> hops_from(std::uint32_t id) const;

private:
    std::vector<std::uint32_t> ids_;                   // sorted
    std::vector<std::vector<std::uint32_t>> adjacent_;  // by position in ids_
};

// The choice of a graph as a config or flags give it; each entry reads the fields it names.
struct TopologySpec {
    std::string type = "ring";
    std::size_t k = 1;                                           // ring
    std::vector<std::pair<std::uint32_t, std::uint32_t>> edges;  // edges
};

// The topology catalogue: one row per graph (name, description, parameters, factory); the
// config's `topology.type`, `p2pnode list topologies` and the errors read it.
struct TopologyEntry {
    std::string_view name;
    std::string_view description;
    std::string_view params;
    // std::invalid_argument when the spec does not fit the ids (an unknown id, a self-loop).
    Topology (*make)(const std::vector<std::uint32_t>& ids, const TopologySpec& spec);
};
std::span<const TopologyEntry> topologies();

// Where `count` Byzantine nodes sit on a graph (sorted ids); std::invalid_argument when count is
// not below the number of nodes. `placement`:
//   random     a seeded uniform choice;
//   spread     far apart: evenly spaced in id order, or farthest first (the lowest id, then each
//              time the node farthest in hops from those chosen), whichever keeps its closest
//              two farther apart (on a ring: evenly spaced; across components: one in each);
//   clustered  a breadth-first search from the lowest id, in id order (on a ring: one block).
std::vector<std::uint32_t> place_byzantine(const Topology& graph, std::size_t count, std::string_view placement,
                                           std::uint64_t seed);
inline constexpr std::string_view kPlacements[] = {"random", "spread", "clustered"};
const TopologyEntry* find_topology(std::string_view name);

}  // namespace p2p::node
