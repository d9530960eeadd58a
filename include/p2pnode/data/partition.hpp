// How a training set is split among the honest nodes: the partition catalogue
// (`data.partition` / `--partition`, `p2pnode list partitions`, `p2pnode partition`).
//
// Pure math over the labels: no files, no sockets. Every split is a function of the labels,
// the number of nodes and the spec (its seed included): the same inputs give the same shards
// on every node, so nodes compute their own shard without talking. Shards are disjoint;
// `strided`, `iid`, `extreme` and `gamma` use every sample, `dirichlet` too, and `classes`
// leaves out the classes no node was dealt (when nodes x K < classes).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace p2p::data {

struct PartitionSpec {
    std::string name = "strided";
    double alpha = 0.5;              // dirichlet: concentration (small: few classes a node)
    std::size_t min_size = 0;        // dirichlet: re-draw until every shard has this many (0: `batch`)
    double gamma = 0.5;              // gamma: fraction split IID, the rest by label
    std::size_t classes_per_node = 2;  // classes: K classes a node
    std::uint64_t seed = 0;
    std::size_t batch = 1;           // the batch size, the floor of dirichlet's re-draws when min_size is 0
};

using Shards = std::vector<std::vector<std::uint32_t>>;

// The catalogue: one row per way of splitting.
struct PartitionEntry {
    std::string_view name;
    std::string_view description;
    std::string_view params;  // the spec fields it reads, for `list`
    Shards (*split)(std::span<const std::uint8_t> labels, std::size_t classes, std::size_t nodes,
                    const PartitionSpec& spec);
};
std::span<const PartitionEntry> partitions();
const PartitionEntry* find_partition(std::string_view name);

// The shards of `nodes` honest nodes, each sorted. std::invalid_argument names what cannot be
// done (an unknown name, 0 nodes, K > classes, a dirichlet min size no draw reached).
Shards partition(std::span<const std::uint8_t> labels, std::size_t classes, std::size_t nodes,
                 const PartitionSpec& spec);

// counts[node][class]: how many samples of each class a shard holds.
std::vector<std::vector<std::size_t>> class_counts(const Shards& shards, std::span<const std::uint8_t> labels,
                                                   std::size_t classes);

}  // namespace p2p::data
