// Sharding and batching as the reference does it: honest node h of H trains on indices
// h, h+H, h+2H, ... of the training set; it reshuffles its shard every epoch with its own
// seeded RNG; the last partial batch of an epoch is dropped.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "p2pnode/data/idx.hpp"

namespace p2p::data {

// Indices of shard `h` of `count_of_shards` over a data set of `n` items.
std::vector<std::uint32_t> shard_indices(std::size_t n, std::size_t h, std::size_t count_of_shards);

// Yields batches of indices from a shard forever, epoch after epoch. Deterministic for a seed.
class BatchSampler {
public:
    BatchSampler(std::vector<std::uint32_t> indices, std::size_t batch_size, std::uint64_t seed);

    // The next batch (batch_size indices), valid until the next call.
    std::span<const std::uint32_t> next();
    std::uint64_t epoch() const { return epoch_; }
    std::size_t batches_per_epoch() const { return indices_.size() / batch_size_; }
    // The full state (order, position, epoch, RNG) as text, and back (std::invalid_argument if
    // the text does not fit this sampler).
    std::string save() const;
    void restore(const std::string& state);

private:
    void shuffle();
    std::vector<std::uint32_t> indices_;
    std::size_t batch_size_;
    std::size_t pos_ = 0;
    std::uint64_t epoch_ = 0;
    std::mt19937_64 rng_;
};

// Copies the images at `indices` into `out` (indices.size() * image_size floats, x/255, in the
// layers' {C, B, H, W} order: channel by channel, the batch inside each) and their labels into
// `labels`. Neither output is reallocated when it is already large enough.
void gather_batch(const Dataset& ds, std::span<const std::uint32_t> indices, std::vector<float>& out,
                  std::vector<std::uint8_t>& labels);

}  // namespace p2p::data
