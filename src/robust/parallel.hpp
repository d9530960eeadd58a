// Work split over robust::threads(): the helper pool (internal to src/robust).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "p2pnode/robust/robust.hpp"

namespace p2p::robust::detail {

// Runs fn(begin, end) over contiguous ranges of [0, tasks), on up to robust::threads()
// threads when `work` (about one unit per element touched) is large enough to pay for them;
// range 0 runs on the calling thread. Returns when every range is done.
void parallel_for(std::size_t tasks, double work, const std::function<void(std::size_t, std::size_t)>& fn);

// The same, with the split fixed: [0, tasks) in `threads` contiguous ranges, fn(t, begin, end)
// runs range t (range 0 on the calling thread, the others on pool threads, or threads of their
// own when the pool is busy).
void parallel_ranges(std::size_t tasks, std::size_t threads,
                     const std::function<void(std::size_t, std::size_t, std::size_t)>& fn);
// min(robust::threads(), tasks), at least 1.
std::size_t worker_count(std::size_t tasks);

}  // namespace p2p::robust::detail
