#include "p2pnode/launch/rank.hpp"

#include <charconv>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

namespace p2p::launch {

namespace {

bool parse_id(const std::string& text, long long& out) {
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return !text.empty() && ec == std::errc() && ptr == text.data() + text.size() && out >= 0 && out <= 1'000'000;
}

}  // namespace

NodeId resolve_node_id(const std::string& text, int rank_offset, const std::function<const char*(const char*)>& env) {
    long long value = 0;
    if (text != "auto") {
        if (!parse_id(text, value))
            throw std::invalid_argument(fmt::format("--node-id: must be a node id (0, 1, 2, ...) or auto, got '{}'", text));
        return {static_cast<int>(value), "--node-id"};
    }
    auto lookup = env ? env : [](const char* name) -> const char* { return std::getenv(name); };
    for (const char* name : kRankVariables) {
        const char* v = lookup(name);
        if (!v) continue;
        if (!parse_id(v, value))
            throw std::invalid_argument(fmt::format("--node-id auto: {}='{}' is not a rank", name, v));
        if (value < rank_offset)
            throw std::invalid_argument(fmt::format("--node-id auto: {}={} is below --rank-offset {}: that rank is "
                                                    "not a node (the broker?)",
                                                    name, value, rank_offset));
        const std::string source = rank_offset ? fmt::format("{}={} - {}", name, value, rank_offset)
                                               : fmt::format("{}={}", name, value);
        return {static_cast<int>(value - rank_offset), source};
    }
    throw std::invalid_argument(
        "--node-id auto: no rank in the environment (none of SLURM_PROCID, OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK "
        "is set): start the nodes with srun or mpirun, or give --node-id N");
}

}  // namespace p2p::launch
