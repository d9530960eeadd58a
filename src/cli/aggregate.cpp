// p2pnode aggregate: a rule applied to saved gradients (.npy), in the file's precision.
#include <cstdio>

#include <fmt/format.h>

#include "commands.hpp"
#include "node_commands.hpp"
#include "p2pnode/data/npy.hpp"
#include "p2pnode/errors.hpp"
#include "p2pnode/robust/robust.hpp"

namespace p2p::cli {

namespace {

template <class T>
void aggregate_as(const AggregateFlags& f, std::size_t rows, std::size_t cols, const std::vector<T>& values) {
    robust::Params p;
    p.f = f.f;
    if (f.q) p.q = f.q;
    p.tau = f.tau;
    p.iterations = f.iterations;
    p.reference = f.reference;
    p.bucket_size = f.bucket_size;
    p.seed = f.seed;
    robust::Pipeline<T> pipeline(f.pre, f.rule, p);
    std::vector<std::span<const T>> views;
    for (std::size_t r = 0; r < rows; ++r) views.emplace_back(values.data() + r * cols, cols);
    std::vector<T> out(cols);
    pipeline.aggregate(views, out);
    data::write_npy_vector(f.output, std::span<const T>(out));
}

}  // namespace

CLI::App* add_aggregate_command(CLI::App& app, AggregateFlags& f) {
    CLI::App* sub = app.add_subcommand(
        "aggregate", "Apply a robust rule to an (n, d) float32/float64 .npy matrix; write the (d,) result");
    sub->add_option("--rule", f.rule, "Aggregation rule: " + join(robust::aggregator_names()))
        ->required()
        ->check(CLI::IsMember(robust::aggregator_names()));
    sub->add_option("--f", f.f, "Tolerated Byzantine inputs");
    sub->add_option("--q", f.q, "multi-krum: vectors averaged (0: n - f)");
    sub->add_option("--tau", f.tau, "centered-clipping radius; clipping threshold")->check(CLI::PositiveNumber);
    sub->add_option("--iterations", f.iterations,
                    "geometric-median / centered-clipping iterations (0: 100 / 3)");
    sub->add_option("--reference", f.reference, "monna: the row that plays the node's own vector");
    sub->add_option("--bucket-size", f.bucket_size, "bucketing: vectors per bucket")->check(CLI::PositiveNumber);
    sub->add_option("--seed", f.seed, "bucketing: shuffle seed");
    sub->add_option("--threads", f.threads,
                    "Threads for the Gram matrices, NNM and the coordinate-wise rules (large inputs only)")
        ->check(CLI::Range(1, 256));
    sub->add_option("--pre", f.pre, "Pre-aggregator, applied in the order given (repeatable): " +
                                         join(robust::pre_aggregator_names()))
        ->check(CLI::IsMember(robust::pre_aggregator_names()))
        ->take_all()
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    sub->add_option("input", f.input, "IN.npy: an (n, d) float32 or float64 matrix")->required();
    sub->add_option("output", f.output, "OUT.npy: the (d,) result, in the input's dtype")->required();
    return sub;
}

int run_aggregate(const AggregateFlags& f) {
    try {
        robust::set_threads(f.threads);
        const data::NpyMatrix m = data::read_npy_matrix(f.input);
        if (m.is_double)
            aggregate_as<double>(f, m.rows, m.cols, m.f64);
        else
            aggregate_as<float>(f, m.rows, m.cols, m.f32);
        std::printf("aggregate: %s of %zu x %zu %s -> %s\n", f.rule.c_str(), m.rows, m.cols,
                    m.is_double ? "float64" : "float32", f.output.c_str());
        return 0;
    } catch (const robust::RobustError& e) {
        std::fprintf(stderr, "p2pnode aggregate: error: %s\n", e.what());
        return kExitUsage;
    } catch (const IoError& e) {
        std::fprintf(stderr, "p2pnode aggregate: error: %s\n", e.what());
        return kExitUsage;
    }
}

}  // namespace p2p::cli
