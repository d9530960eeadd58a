// A node's id from the scheduler that started it: `--node-id auto` under srun, mpirun or any
// PMI launcher. The id is the process's rank (minus an offset, for an MPMD line whose first
// ranks are the broker), read from the first of these that is set.
#pragma once

#include <functional>
#include <string>

namespace p2p::launch {

// In the order they are read: Slurm, OpenMPI, PMIx, then PMI (MPICH, Intel MPI).
inline constexpr const char* kRankVariables[] = {"SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"};

struct NodeId {
    int id = 0;
    std::string source;  // "--node-id", or "SLURM_PROCID=3" (with " - 1" for an offset)
};

// `text` is a non-negative integer or "auto"; `env` looks a variable up (std::getenv by
// default). std::invalid_argument, with the variables named, when auto finds none set, a
// variable that is no rank, or a rank below the offset.
NodeId resolve_node_id(const std::string& text, int rank_offset,
                       const std::function<const char*(const char*)>& env = {});

}  // namespace p2p::launch
