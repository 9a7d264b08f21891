#include "util/thread_pool.h"

#include <algorithm>
#include <exception>

#include "util/error.h"

namespace strata {

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
    // A thread that cannot start (ulimit -v, -u, a huge -t) is an error naming the count, after
    // the started ones are stopped: a throwing constructor runs no destructor, and a vector of
    // joinable threads would end the program.
    try {
        workers_.reserve(static_cast<size_t>(n_threads_ - 1));
        for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
    } catch (const std::exception& e) {
        const size_t started = workers_.size();
        stop_workers();
        fail("cannot start thread ", started + 2, " of ", n_threads_, " (", e.what(),
             "); use fewer threads (-t)");
    }
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::stop_workers() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
}

void ThreadPool::run(int64_t n, Body fn, int64_t grain) {
    if (n <= 0) return;
    if (n_threads_ == 1 || n <= grain) {
        fn(0, n, 0);
        return;
    }
    std::unique_lock lock(mutex_);
    job_ = &fn;
    job_n_ = n;
    // Chunks are handed out dynamically so uneven work (attention rows) balances itself.
    int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, 4 * static_cast<int64_t>(n_threads_));
    job_chunk_ = (n + chunks - 1) / chunks;
    n_chunks_ = (n + job_chunk_ - 1) / job_chunk_;
    next_chunk_ = 0;
    pending_ = static_cast<int>(workers_.size());
    ++generation_;
    lock.unlock();
    wake_.notify_all();

    auto run_chunks = [&](int thread_index) {
        while (true) {
            int64_t c;
            {
                std::lock_guard g(mutex_);
                if (next_chunk_ >= n_chunks_) return;
                c = next_chunk_++;
            }
            int64_t begin = c * job_chunk_;
            fn(begin, std::min(n, begin + job_chunk_), thread_index);
        }
    };
    run_chunks(0);
    lock.lock();
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
}

void ThreadPool::worker(int index) {
    uint64_t seen = 0;
    while (true) {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        const auto* fn = job_;
        int64_t n = job_n_, chunk = job_chunk_;
        while (next_chunk_ < n_chunks_) {
            int64_t c = next_chunk_++;
            lock.unlock();
            int64_t begin = c * chunk;
            (*fn)(begin, std::min(n, begin + chunk), index);
            lock.lock();
        }
        if (--pending_ == 0) done_.notify_all();
    }
}

}  // namespace strata
