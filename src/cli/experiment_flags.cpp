#include "experiment_flags.hpp"

#include "node_commands.hpp"

#include <fmt/format.h>

#include "p2pnode/catalogue.hpp"
#include "p2pnode/data/idx.hpp"
#include "p2pnode/data/partition.hpp"
#include "p2pnode/nn/model.hpp"
#include "p2pnode/node/topology.hpp"
#include "p2pnode/robust/catalogue.hpp"

namespace p2p::cli {

std::vector<std::string> catalogue_names(Catalogue c) {
    switch (c) {
        case Catalogue::Aggregator: return row_names(robust::aggregators());
        case Catalogue::PreAggregator: return row_names(robust::pre_aggregators());
        case Catalogue::Attack: return row_names(robust::attacks());
        case Catalogue::Model: return row_names(nn::models());
        case Catalogue::Dataset: return row_names(data::datasets());
        case Catalogue::Partition: return row_names(data::partitions());
        case Catalogue::Topology: return row_names(node::topologies());
        case Catalogue::None: break;
    }
    return {};
}

void add_experiment_flags(CLI::App* sub, ExperimentFlags& flags, unsigned scope, bool with_file,
                          bool (*only)(const Field&)) {
    const Experiment defaults;
    for (const Field& f : experiment_fields()) {
        if (!(f.scope & scope) || f.flag.empty() || (only && !only(f))) continue;
        std::string help(f.help);
        const auto choices = catalogue_names(f.catalogue);
        if (!choices.empty()) help += ": " + join(choices);
        ExperimentFlags::Bound b{&f, nullptr, nullptr, nullptr};
        const std::string flag(f.flag);
        if (f.kind == FieldKind::List) {
            b.list = &flags.lists.emplace_back();
            b.option = sub->add_option(flag, *b.list, help)
                           ->take_all()
                           ->expected(1)
                           ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
        } else {
            b.text = &flags.texts.emplace_back(f.get(defaults));
            b.option = sub->add_option(flag, *b.text, help);
            b.option->type_name(f.kind == FieldKind::Int ? (f.lo >= 0 ? "UINT" : "INT")
                                : f.kind == FieldKind::Double ? "FLOAT"
                                                              : "TEXT");
        }
        if (!choices.empty()) {
            b.option->check(CLI::IsMember(choices));
        } else {
            // The table's own check, with the table's message: "--rounds: must be in 1..100000000, got 0".
            b.option->check(CLI::Validator(
                [field = &f](std::string& in) {
                    FieldValue v;
                    v.text = in;
                    return check_field(*field, v);
                },
                describe_check(f)));
        }
        flags.bound.push_back(b);
    }
    if (with_file)
        sub->add_option("--experiment", flags.experiment_file,
                        "A resolved experiment file (as launch writes it): its settings replace the config's "
                        "sections; flags still override it");
}

bool given(const ExperimentFlags& flags, std::string_view key) {
    for (const auto& b : flags.bound)
        if (b.field->key == key) return b.option->count() > 0;
    return false;
}

Experiment resolve_experiment(const ExperimentFlags& flags, Experiment base, std::vector<std::string>& warnings) {
    if (!flags.experiment_file.empty()) apply_experiment_file(base, flags.experiment_file, warnings);
    for (const auto& b : flags.bound) {
        if (!b.option->count()) continue;
        FieldValue v;
        if (b.list)
            v.list = *b.list;
        else
            v.text = *b.text;
        set_field(base, *b.field, v, std::string(b.field->flag));
    }
    return base;
}

}  // namespace p2p::cli
