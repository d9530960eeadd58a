// Benchmark of every robust rule on random float32 gradients: median milliseconds, the input
// bytes per second, and the ratio to a memcpy of the same bytes measured in the same run (the
// memory-bandwidth limit for a single-pass rule).
// Usage: bench-robust [--threads=T] [REPEATS=7] [RULE...]; T (default 1) is robust::set_threads.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "p2pnode/nn/layers.hpp"
#include "p2pnode/robust/robust.hpp"

namespace {

using Clock = std::chrono::steady_clock;

template <class F>
double median_ms(int repeats, F&& f) {
    std::vector<double> t;
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = Clock::now();
        f();
        t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

struct Case {
    std::size_t n, d, f;
    std::vector<std::string> rules;  // empty: every rule
    std::string pre;                 // a pre-aggregator to time instead of a rule
};

}  // namespace

int main(int argc, char** argv) {
    int threads = 1;
    if (argc > 1 && std::strncmp(argv[1], "--threads=", 10) == 0) {
        threads = std::max(1, std::atoi(argv[1] + 10));
        --argc;
        ++argv;
    }
    const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;
    std::vector<std::string> only(argv + std::min(argc, 2), argv + argc);
    p2p::nn::set_blas_threads(1);
    p2p::robust::set_threads(threads);
    std::printf("threads: %d\n", threads);
    const std::vector<Case> cases = {
        {5, 206922, 1, {}, ""},
        {20, 206922, 4, {}, ""},
        {64, 65536, 8, {}, ""},
        // the shapes the reference publishes figures for
        {80, 65536, 20, {"multi-krum"}, ""},
        {100, 206922, 10, {"median"}, ""},  // the reference measured here: 806 ms
        {30, 2048, 10, {"mda"}, ""},
        {196, 4096, 32, {}, "nnm"},
    };
    std::printf("%-18s %4s %7s %3s %10s %8s %9s\n", "rule", "n", "d", "f", "median ms", "GB/s", "x memcpy");
    std::mt19937 rng(1);
    std::normal_distribution<float> noise(0.0f, 1.0f);
    for (const auto& c : cases) {
        std::vector<std::vector<float>> rows(c.n, std::vector<float>(c.d));
        for (auto& r : rows)
            for (auto& x : r) x = noise(rng);
        std::vector<std::span<const float>> views(rows.begin(), rows.end());
        std::vector<float> out(c.d), sink(c.n * c.d);
        const double bytes = static_cast<double>(c.n * c.d * sizeof(float));
        const double copy_ms = median_ms(repeats, [&] {
            for (std::size_t i = 0; i < c.n; ++i) std::memcpy(sink.data() + i * c.d, rows[i].data(), c.d * sizeof(float));
        });
        std::printf("%-18s %4zu %7zu %3s %10.3f %8.2f %9.2f\n", "(memcpy)", c.n, c.d, "-", copy_ms,
                    bytes / copy_ms / 1e6, 1.0);
        p2p::robust::Params p;
        p.f = c.f;
        if (!c.pre.empty()) {
            auto pre = p2p::robust::make_pre_aggregator<float>(c.pre, p);
            const double ms = median_ms(repeats, [&] { pre->apply(views); });
            std::printf("%-18s %4zu %7zu %3zu %10.3f %8.2f %9.2f\n", c.pre.c_str(), c.n, c.d, c.f, ms,
                        bytes / ms / 1e6, ms / copy_ms);
            continue;
        }
        const auto& rules = c.rules.empty() ? p2p::robust::aggregator_names() : c.rules;
        for (const auto& rule : rules) {
            if (!only.empty() && std::find(only.begin(), only.end(), rule) == only.end()) continue;
            p2p::robust::Params rp = p;
            if (rule == "bulyan") rp.f = std::min(c.f, (c.n - 3) / 4);
            auto agg = p2p::robust::make_aggregator<float>(rule, rp);
            try {
                agg->check(c.n);
            } catch (const p2p::robust::RobustError& e) {
                std::printf("%-18s %4zu %7zu %3zu  refused: %s\n", rule.c_str(), c.n, c.d, rp.f, e.what());
                continue;
            }
            const int reps = (rule == "smea" || rule == "mda") ? std::max(1, repeats / 3) : repeats;
            const double ms = median_ms(reps, [&] { agg->aggregate(views, out); });
            std::printf("%-18s %4zu %7zu %3zu %10.3f %8.2f %9.2f\n", rule.c_str(), c.n, c.d, rp.f, ms,
                        bytes / ms / 1e6, ms / copy_ms);
        }
    }
    return 0;
}
