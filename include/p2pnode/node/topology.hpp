// Who talks to whom. Edges are undirected: a node sends its gradient to its neighbours and
// aggregates theirs (in- and out-neighbours are the same set).
#pragma once

#include <cstdint>
#include <functional>
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
    // Every node linked to `centre` only (std::invalid_argument: centre not an id).
    static Topology star(const std::vector<std::uint32_t>& ids, std::uint32_t centre);
    // rows x cols grid with wrap-around, ids row by row; rows * cols must be the node count.
    static Topology torus(const std::vector<std::uint32_t>& ids, std::size_t rows);
    // Each pair linked with probability p, from `seed`.
    static Topology erdos_renyi(const std::vector<std::uint32_t>& ids, double p, std::uint64_t seed);
    // Every node with exactly `degree` neighbours, uniform-ish from `seed` (random pairing of
    // edge ends, restarted when it gets stuck); n * degree must be even and degree < n.
    static Topology random_regular(const std::vector<std::uint32_t>& ids, std::size_t degree, std::uint64_t seed);
    // Position i linked to i +- 2^j (mod n) for every 2^j < n.
    static Topology exponential(const std::vector<std::uint32_t>& ids);
    // The first ceil(n/2) ids and the rest two cliques, joined by `bridges` edges (the k-th id
    // of each side, k < bridges).
    static Topology two_cliques(const std::vector<std::uint32_t>& ids, std::size_t bridges);
    // One round of the one-peer exponential graph: position i linked to i + 2^j (mod n), so
    // that i also hears i - 2^j (degree 2, or 1 where 2^j = n/2).
    static Topology one_peer(const std::vector<std::uint32_t>& ids, std::size_t j);
    // Every edge of any of `graphs` (which share their ids).
    static Topology merged(const std::vector<Topology>& graphs);

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
    // Whether the nodes of `subset` (ids; unknown ones ignored) are connected by paths through
    // `subset` only (true when it holds fewer than two).
    bool connected_within(const std::vector<std::uint32_t>& subset) const;
    std::size_t edge_count() const;

private:
    static Topology from_pairs(const std::vector<std::uint32_t>& ids,
                               const std::vector<std::pair<std::size_t, std::size_t>>& pairs);
    std::vector<std::uint32_t> ids_;                   // sorted
    std::vector<std::vector<std::uint32_t>> adjacent_;  // by position in ids_
};

// The choice of a graph as a config or flags give it; each entry reads the fields it names.
struct TopologySpec {
    std::string type = "ring";
    std::size_t k = 1;                                           // ring
    std::vector<std::pair<std::uint32_t, std::uint32_t>> edges;  // edges
    long long centre = -1;                                       // star (-1: the lowest id)
    std::size_t rows = 0;                                        // torus (0: the most square)
    double p = 0.5;                                              // erdos-renyi
    std::size_t degree = 3;                                      // random-regular
    std::size_t bridges = 1;                                     // two-cliques
    std::uint64_t seed = 0;                                      // random graphs: this draw's seed
    std::size_t every = 0;                                       // erdos-renyi: a new draw every R rounds (0: never)
};

// A graph that changes with the round. Round r (from 1) uses the graph of epoch (r - 1) / period,
// and epochs repeat after `cycle` of them (0: they never repeat). The graphs come from `make`
// (epoch -> graph; it must give the same graph for the same epoch on every node).
//   one-peer-exponential: period 1, cycle J = the number of j with 2^j < n (ceil(log2 n));
//                         round r is Topology::one_peer(ids, r mod J);
//   erdos-renyi, every R: period R, never repeating, a fresh seeded draw each epoch.
// `flood` bounds the rounds news needs to reach every node from any node, a hop a round along
// each round's edges (one-peer: J, since any J rounds in a row use every 2^j; a connected draw
// every round: n - 1): what a Ctrl-C's agreed stop waits for.
class TimeVarying {
public:
    using Make = std::function<Topology(std::uint64_t epoch)>;
    TimeVarying(std::uint64_t period, std::uint64_t cycle, std::size_t flood, Make make);
    std::uint64_t period() const { return period_; }
    std::uint64_t cycle() const { return cycle_; }
    std::size_t flood() const { return flood_; }
    std::uint64_t epoch_of(std::uint64_t round) const;
    Topology epoch(std::uint64_t e) const { return make_(e); }
    Topology at(std::uint64_t round) const { return make_(epoch_of(round)); }
    // The distinct epochs of rounds 1..rounds, in order.
    std::vector<std::uint64_t> epochs_in(std::uint64_t rounds) const;
    // Every edge used in rounds 1..rounds: the peers a node's transport connects to.
    Topology union_over(std::uint64_t rounds) const;

private:
    std::uint64_t period_, cycle_;
    std::size_t flood_;
    Make make_;
};
// The one-peer exponential graph over `ids` as a TimeVarying.
TimeVarying one_peer_exponential(const std::vector<std::uint32_t>& ids);

// The topology catalogue: one row per graph (name, description, parameters, factory); the
// config's `topology.type`, `p2pnode list topologies` and the errors read it.
struct TopologyEntry {
    std::string_view name;
    std::string_view description;
    std::string_view params;
    // std::invalid_argument when the spec does not fit the ids (an unknown id, a self-loop).
    Topology (*make)(const std::vector<std::uint32_t>& ids, const TopologySpec& spec);
    bool random = false;  // drawn from spec.seed: redrawn until the honest nodes are connected
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

// Mixing matrices of a graph over `members` (ids, in that order; edges to others ignored), and
// their spectral gap. uniform: a node averages itself and its neighbours, W_ij = 1/(d_i + 1)
// for j = i or a neighbour (what the mean over one's own and the neighbours' vectors does);
// metropolis: W_ij = 1/(1 + max(d_i, d_j)) for a neighbour, W_ii the rest of the row (doubly
// stochastic on any undirected graph). Row-major, members.size() squared.
std::vector<double> mixing_matrix(const Topology& graph, const std::vector<std::uint32_t>& members,
                                  std::string_view weights);
inline constexpr std::string_view kMixings[] = {"uniform", "metropolis"};
// 1 - the second largest eigenvalue magnitude of that mixing matrix (real eigenvalues:
// metropolis is symmetric, uniform similar to a symmetric matrix); 0 when `members` are not
// connected among themselves, 1 for a single member.
double spectral_gap(const Topology& graph, const std::vector<std::uint32_t>& members, std::string_view weights);

// What a graph means for robustness, with `byzantine` (ids) placed on it: degrees, whether the
// honest nodes are connected among themselves, the spectral gaps of the honest mixing matrices,
// and each honest node's Byzantine neighbours.
struct GraphStats {
    std::size_t nodes = 0, edges = 0;
    std::size_t degree_min = 0, degree_max = 0;
    double degree_mean = 0;
    std::size_t honest = 0;
    bool honest_connected = true;
    bool gaps_computed = true;                   // false above kMaxGapNodes honest nodes
    double gap_uniform = 0, gap_metropolis = 0;  // of the honest subgraph's matrices
    std::size_t byzantine_min = 0, byzantine_max = 0;  // Byzantine neighbours of an honest node
    double byzantine_mean = 0;
    std::vector<std::uint32_t> most_exposed;  // honest ids with byzantine_max Byzantine neighbours (if > 0)
    struct Node {
        std::uint32_t id;
        bool byzantine;
        std::size_t degree, byzantine_neighbours;
    };
    std::vector<Node> per_node;  // by id
};
// The gaps take an eigen-decomposition (cubic in the honest nodes): not above this many.
inline constexpr std::size_t kMaxGapNodes = 2048;
GraphStats graph_stats(const Topology& graph, const std::vector<std::uint32_t>& byzantine);

}  // namespace p2p::node
