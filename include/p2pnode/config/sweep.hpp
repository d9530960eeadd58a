// A sweep file: an experiment file where a field given as a list is an axis of a grid.
//
//   config: nodes.yaml          # or an inline `nodes:` list, as in a nodes config
//   seeds: 3                    # or [0, 1, 2]: each point is run once per seed (training.seed)
//   robust:
//     aggregator: [mean, median]          # an axis
//     pre_aggregators: [[], [nnm]]        # a list field's axis is a list of lists
//   data: {partition: dirichlet, alpha: [0.1, 1, 10]}
//   exclude:                    # combinations left out, by field key
//     - {robust.aggregator: mean, data.alpha: 0.1}
//
// Every key is checked: an unknown field, section or top-level key is an error naming the file,
// the line and the key (a typo must not shrink the grid), and so is an empty axis or grid.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "p2pnode/config/experiment.hpp"
#include "p2pnode/config/nodes_config.hpp"

namespace p2p {

struct SweepAxis {
    std::string key;                  // the field's key, "robust.aggregator"
    std::vector<FieldValue> values;   // checked against the field
    std::vector<std::string> labels;  // each value as text ("nnm+clipping", "none" for an empty list)
    std::string origin;               // "sweep.yaml:7"
};

struct SweepSpec {
    std::string source;
    NodesConfig nodes;               // the run's nodes (and the config's own sections, under the file's)
    Experiment base;                 // the settings that are not axes
    std::vector<SweepAxis> axes;     // in file order
    std::vector<std::uint64_t> seeds;
    std::vector<std::vector<std::pair<std::string, std::string>>> exclude;  // key, value text
};

struct SweepPoint {
    Experiment experiment;                                // base + this point's values + its seed
    std::vector<std::pair<std::string, std::string>> at;  // axis key -> label, in axis order
    std::uint64_t seed = 0;
    std::string name;  // a folder name: "aggregator-median_alpha-0.1_seed-0"
    std::string group;  // the same without the seed: the point whose seeds are averaged
};

// ConfigError "FILE:LINE: KEY: what is wrong".
SweepSpec load_sweep(const std::string& path);
SweepSpec parse_sweep(const std::string& text, const std::string& source);

// The grid: the Cartesian product of the axes (the first axis varies slowest), each point once
// per seed, without the excluded combinations. ConfigError when nothing is left.
std::vector<SweepPoint> expand_sweep(const SweepSpec& spec);

// The short name of an axis key in point names and table columns: the part after the section,
// or the whole key when two axes would share it.
std::string axis_label(const SweepSpec& spec, const std::string& key);

}  // namespace p2p
