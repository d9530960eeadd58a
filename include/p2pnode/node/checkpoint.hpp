// Node checkpoints: the model, the optimizer's state, the round and the batch sampler's RNG
// state, so a restarted node resumes where it stopped. Written to a temporary file, fsynced
// and renamed over the old one (a crash leaves the old or the new checkpoint, never half of
// one); a CRC-32 over the whole content detects corruption and truncation, which are refused
// with IoError, never half-loaded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace p2p::node {

struct Checkpoint {
    std::uint32_t node = 0;
    std::uint64_t round = 0;        // the last round completed
    std::vector<float> params;
    std::vector<float> velocity;    // SGD momentum buffer (empty without momentum)
    std::string sampler_state;      // data::BatchSampler::save()
};

void save_checkpoint(const std::string& path, const Checkpoint& c);
Checkpoint load_checkpoint(const std::string& path);

std::string checkpoint_path(const std::string& dir, std::uint32_t node);

}  // namespace p2p::node
