// The Experiment's flags on a subcommand, generated from the field table (config/experiment.hpp):
// one CLI11 option per field in the command's scope, with its help, default, type and check.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "p2pnode/config/experiment.hpp"

namespace p2p::cli {

struct ExperimentFlags {
    struct Bound {
        const Field* field;
        CLI::Option* option;
        std::string* text;               // Int, Double, Text
        std::vector<std::string>* list;  // List
    };
    std::vector<Bound> bound;
    std::deque<std::string> texts;  // stable storage for the options
    std::deque<std::vector<std::string>> lists;
    std::string experiment_file;    // --experiment: a resolved experiment (launch writes one)
};

// Adds the fields whose scope includes `scope` (and, when `only` is given, that it accepts),
// plus --experiment FILE when `with_file`.
void add_experiment_flags(CLI::App* sub, ExperimentFlags& flags, unsigned scope, bool with_file = true,
                          bool (*only)(const Field&) = nullptr);

// `base` (defaults, or defaults < a config file's sections) < --experiment FILE < the flags given.
Experiment resolve_experiment(const ExperimentFlags& flags, Experiment base, std::vector<std::string>& warnings);

// Whether the flag of that key was given on the command line.
bool given(const ExperimentFlags& flags, std::string_view key);

// The names of a catalogue (for CLI choices), from its table.
std::vector<std::string> catalogue_names(Catalogue c);

}  // namespace p2p::cli
