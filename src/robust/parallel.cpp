// The helper-thread pool behind parallel_for and the process-wide thread count (set_threads).
#include "common.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include <immintrin.h>

namespace p2p::robust::detail {

namespace {

std::atomic<int> g_threads{1};

}  // namespace

std::size_t worker_count(std::size_t tasks) {
    return std::clamp<std::size_t>(static_cast<std::size_t>(g_threads.load()), 1, std::max<std::size_t>(tasks, 1));
}

namespace {

// Helper threads kept between parallel regions: starting threads per region cost ~50 us and
// page faults in their fresh heaps. Waking a sleeping thread costs another ~40 us on these VMs,
// so a helper spins for a short while after each job (regions often come back to back) and the
// caller spins while the helpers finish, each for at most kSpin before sleeping. One region
// uses the pool at a time; a region that finds it busy (nodes run as threads of one process
// aggregate at once) starts threads of its own.
class Pool {
public:
    ~Pool() {
        {
            std::lock_guard<std::mutex> lock(m_);
            stop_ = true;
        }
        wake_.notify_all();
        for (auto& t : threads_) t.join();
    }

    // Runs job(t) for t in [1, helpers] on pool threads and job(0) on the caller; returns
    // false, running nothing, when the pool is busy.
    bool run(std::size_t helpers, const std::function<void(std::size_t)>& job) {
        std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
        if (!busy.owns_lock()) return false;
        {
            std::lock_guard<std::mutex> lock(m_);
            while (threads_.size() < helpers) {
                const std::size_t id = threads_.size() + 1;
                threads_.emplace_back([this, id] { work(id); });
            }
            job_ = &job;
            helpers_ = helpers;
            error_ = nullptr;
            pending_.store(helpers);
            generation_.fetch_add(1);
        }
        wake_.notify_all();
        std::exception_ptr own;
        try {
            job(0);
        } catch (...) {
            own = std::current_exception();
        }
        spin_until([&] { return pending_.load() == 0; });
        std::unique_lock<std::mutex> lock(m_);
        done_.wait(lock, [&] { return pending_.load() == 0; });
        job_ = nullptr;
        if (!own) own = error_;
        lock.unlock();
        if (own) std::rethrow_exception(own);
        return true;
    }

private:
    static constexpr auto kSpin = std::chrono::microseconds(200);

    template <class Ready>
    static void spin_until(Ready ready) {
        const auto until = std::chrono::steady_clock::now() + kSpin;
        while (!ready()) {
            for (int i = 0; i < 64 && !ready(); ++i) _mm_pause();
            if (std::chrono::steady_clock::now() > until) return;
        }
    }

    void work(std::size_t id) {
        std::uint64_t seen = 0;
        for (;;) {
            spin_until([&] { return generation_.load() != seen; });
            const std::function<void(std::size_t)>* job = nullptr;
            {
                std::unique_lock<std::mutex> lock(m_);
                wake_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
                if (stop_) return;
                seen = generation_.load();
                if (id <= helpers_) job = job_;  // else a smaller region: not needed this time
            }
            if (!job) continue;
            std::exception_ptr error;
            try {
                (*job)(id);
            } catch (...) {
                error = std::current_exception();
            }
            if (error) {
                std::lock_guard<std::mutex> lock(m_);
                if (!error_) error_ = error;
            }
            if (pending_.fetch_sub(1) == 1) {
                std::lock_guard<std::mutex> lock(m_);  // the caller checks pending_ under m_
                done_.notify_one();
            }
        }
    }

    std::mutex busy_;  // held by the region using the pool
    std::mutex m_;
    std::condition_variable wake_, done_;
    std::vector<std::thread> threads_;
    const std::function<void(std::size_t)>* job_ = nullptr;
    std::size_t helpers_ = 0;
    std::atomic<std::size_t> pending_{0};
    std::atomic<std::uint64_t> generation_{0};
    std::exception_ptr error_;
    bool stop_ = false;
};

Pool& pool() {
    static Pool instance;
    return instance;
}

// Splits [0, tasks) into `threads` contiguous ranges: fn(t, begin, end) runs range t, range 0 on
// the caller's thread, the others on pool threads (or threads of their own when the pool is
// busy). Returns when every range is done.
}  // namespace

void parallel_ranges(std::size_t tasks, std::size_t threads,
                     const std::function<void(std::size_t, std::size_t, std::size_t)>& fn) {
    auto range = [&](std::size_t t) { return std::make_pair(tasks * t / threads, tasks * (t + 1) / threads); };
    const std::function<void(std::size_t)> job = [&](std::size_t t) {
        const auto [b, e] = range(t);
        fn(t, b, e);
    };
    if (threads <= 1) {
        job(0);
        return;
    }
    if (pool().run(threads - 1, job)) return;
    std::vector<std::thread> workers;
    for (std::size_t t = 1; t < threads; ++t) workers.emplace_back(job, t);
    job(0);
    for (auto& w : workers) w.join();
}



void parallel_for(std::size_t tasks, double work, const std::function<void(std::size_t, std::size_t)>& fn) {
    const std::size_t threads = work < 5e5 ? 1 : worker_count(tasks);
    parallel_ranges(tasks, threads, [&](std::size_t, std::size_t b, std::size_t e) {
        if (b < e) fn(b, e);
    });
}

}  // namespace p2p::robust::detail

namespace p2p::robust {

void set_threads(int threads) { detail::g_threads.store(std::max(1, threads)); }
int threads() { return detail::g_threads.load(); }

}  // namespace p2p::robust
