// A fixed pool of worker threads for data-parallel loops. The calling thread works too, so a
// pool of n threads keeps n cores busy; with n = 1 everything runs inline.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace strata {

// A non-owning reference to a callable: what std::function does for parallel_for without its heap
// allocation for lambdas that capture more than two pointers (one per call, in every op).
template <class Signature>
class FunctionRef;
template <class R, class... Args>
class FunctionRef<R(Args...)> {
public:
    template <class F>
        requires(!std::is_same_v<std::remove_cv_t<F>, FunctionRef>)
    FunctionRef(F& f)
        : object_(const_cast<void*>(static_cast<const void*>(&f))),
          call_([](void* o, Args... a) -> R { return (*static_cast<F*>(o))(a...); }) {}
    R operator()(Args... a) const { return call_(object_, a...); }

private:
    void* object_;
    R (*call_)(void*, Args...);
};

class ThreadPool {
public:
    // Throws Error when a thread cannot be started (none is left running).
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Calls fn(begin, end, thread_index) over [0, n) split into contiguous chunks, one per
    // thread (or finer when `grain` asks for it); returns when all are done.
    using Body = FunctionRef<void(int64_t, int64_t, int)>;
    template <class F>
    void parallel_for(int64_t n, F&& fn, int64_t grain = 1) {
        run(n, Body(fn), grain);
    }

private:
    void run(int64_t n, Body fn, int64_t grain);

    void worker(int index);
    void stop_workers();

    int n_threads_;
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    const Body* job_ = nullptr;
    int64_t job_n_ = 0, job_chunk_ = 0, next_chunk_ = 0, n_chunks_ = 0;
    int pending_ = 0;
    uint64_t generation_ = 0;
    bool stop_ = false;
};

}  // namespace strata
