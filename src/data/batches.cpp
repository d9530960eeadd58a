#include "p2pnode/data/batches.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

namespace p2p::data {

std::vector<std::uint32_t> shard_indices(std::size_t n, std::size_t h, std::size_t count_of_shards) {
    if (count_of_shards == 0 || h >= count_of_shards) throw std::invalid_argument("shard index out of range");
    std::vector<std::uint32_t> out;
    out.reserve(n / count_of_shards + 1);
    for (std::size_t i = h; i < n; i += count_of_shards) out.push_back(static_cast<std::uint32_t>(i));
    return out;
}

BatchSampler::BatchSampler(std::vector<std::uint32_t> indices, std::size_t batch_size, std::uint64_t seed)
    : indices_(std::move(indices)), batch_size_(batch_size), rng_(seed) {
    if (batch_size_ == 0 || indices_.size() < batch_size_)
        throw std::invalid_argument(fmt::format("the shard holds {} items, fewer than one batch of {}", indices_.size(),
                                                batch_size_));
    shuffle();
}

void BatchSampler::shuffle() {
    // Fisher-Yates with our own draws: std::shuffle's use of the engine is not specified.
    for (std::size_t i = indices_.size() - 1; i > 0; --i) {
        std::size_t j = rng_() % (i + 1);
        std::swap(indices_[i], indices_[j]);
    }
}

std::span<const std::uint32_t> BatchSampler::next() {
    if (pos_ + batch_size_ > indices_.size()) {  // drop the partial batch, start a new epoch
        ++epoch_;
        pos_ = 0;
        shuffle();
    }
    std::span<const std::uint32_t> batch(indices_.data() + pos_, batch_size_);
    pos_ += batch_size_;
    return batch;
}

std::string BatchSampler::save() const {
    std::ostringstream out;
    out << batch_size_ << ' ' << pos_ << ' ' << epoch_ << ' ' << indices_.size();
    for (auto i : indices_) out << ' ' << i;
    out << ' ' << rng_;
    return out.str();
}

void BatchSampler::restore(const std::string& state) {
    std::istringstream in(state);
    std::size_t batch = 0, pos = 0, count = 0;
    std::uint64_t epoch = 0;
    in >> batch >> pos >> epoch >> count;
    if (!in || batch != batch_size_ || count != indices_.size() || pos > count)
        throw std::invalid_argument("sampler state does not match this shard and batch size");
    std::vector<std::uint32_t> order(count);
    for (auto& i : order) in >> i;
    std::mt19937_64 rng;
    in >> rng;
    if (!in) throw std::invalid_argument("sampler state is incomplete");
    // The order must be a permutation of this shard's samples: an index from elsewhere would
    // read outside the data set.
    auto mine = indices_, theirs = order;
    std::sort(mine.begin(), mine.end());
    std::sort(theirs.begin(), theirs.end());
    if (mine != theirs) throw std::invalid_argument("sampler state holds sample indices that are not this shard's");
    indices_ = std::move(order);
    pos_ = pos;
    epoch_ = epoch;
    rng_ = rng;
}

void gather_batch(const Dataset& ds, std::span<const std::uint32_t> indices, std::vector<float>& out,
                  std::vector<std::uint8_t>& labels) {
    const std::size_t img = ds.image_size(), plane = ds.rows * ds.cols, batch = indices.size();
    if (out.size() < batch * img) out.resize(batch * img);
    if (labels.size() < batch) labels.resize(batch);
    for (std::size_t b = 0; b < batch; ++b) {
        const std::uint8_t* src = ds.pixels.data() + std::size_t{indices[b]} * img;
        for (std::size_t c = 0; c < ds.channels; ++c) {  // {C, B, H, W}: channel c of image b
            float* dst = out.data() + (c * batch + b) * plane;
            const std::uint8_t* from = src + c * plane;
            for (std::size_t k = 0; k < plane; ++k) dst[k] = static_cast<float>(from[k]) / 255.0f;  // as ToTensor
        }
        labels[b] = ds.labels[indices[b]];
    }
}

}  // namespace p2p::data
