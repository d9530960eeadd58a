// Subcommands that live in their own files (shared declarations for main.cpp).
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace p2p::cli {

inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

struct AggregateFlags {
    std::string rule;
    std::size_t f = 0;
    std::size_t q = 0;  // 0: the rule's default (n - f)
    double tau = 10.0;
    std::size_t iterations = 0;
    std::size_t reference = 0;
    std::size_t bucket_size = 2;
    std::uint64_t seed = 0;
    std::vector<std::string> pre;
    int threads = 1;
    std::string input, output;
};

CLI::App* add_aggregate_command(CLI::App& app, AggregateFlags& f);
// Exit status: 0, or kExitUsage for a bad file, shape, dtype, rule or parameter.
int run_aggregate(const AggregateFlags& f);

// p2pnode list [KIND]
const std::vector<std::string>& list_kinds();
CLI::App* add_list_command(CLI::App& app, std::string& kind);
int run_list(const std::string& kind);

}  // namespace p2p::cli
