// Runs blocking work (database calls, password hashing) off the I/O threads and resumes the awaiting
// coroutine on its own executor.
//   int n = co_await workers.run([&] { return db->read(scope, [&](db::Tx& tx) { … }); });
#pragma once
#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)

#include "common/error.hpp"
#include "common/task.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

namespace cdx {

class WorkerPool {
 public:
  // max_queued: jobs that may wait for a worker before run() refuses more with 503 (0: no bound).
  explicit WorkerPool(size_t threads, size_t max_queued = 0);
  ~WorkerPool() { stop(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  template <class F>
  Task<std::invoke_result_t<F>> run(F fn) {
    using R = std::invoke_result_t<F>;
    // Overloaded: refuse at once (503, Retry-After) rather than queue without end, memory and latency
    // growing with the queue.
    if (max_queued_ > 0 && pending_.load(std::memory_order_relaxed) >= max_queued_) throw overloaded();
    std::exception_ptr error;
    std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
    co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<Executor>, void()>(
        [&](auto handler) {
          push([&, handler = std::move(handler)]() mutable {
            try {
              if constexpr (std::is_void_v<R>) {
                fn();
              } else {
                result.emplace(fn());
              }
            } catch (...) {
              error = std::current_exception();
            }
            resume_on_own_executor(std::move(handler));
          });
        },
        use_task);
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<R>) co_return std::move(*result);
  }

  // Fire and forget (e.g. sending mail after the answer). An exception it throws is logged.
  template <class F>
  void post(F fn) {
    push(std::move(fn));
  }

  // Jobs waiting for a worker (cdx_worker_queue_depth).
  int64_t queued() const { return static_cast<int64_t>(pending_.load(std::memory_order_relaxed)); }
  // Runs what is queued (and what those jobs queue), then joins the threads. A job offered afterwards is
  // refused with 503: nothing would run it. Safe to call more than once, from any thread.
  void stop();

 private:
  // A worker that just finished a job spins briefly (yielding the core) before it sleeps, and a new job
  // wakes a sleeper only when no spinning worker will take it: under load one hot worker takes job after
  // job without a futex wake-up per job, while a burst still wakes as many workers as it needs.
  struct Job {
    virtual ~Job() = default;
    virtual void run() = 0;
  };
  template <class F>
  struct JobOf final : Job {
    explicit JobOf(F&& f) : fn(std::move(f)) {}
    void run() override { fn(); }
    F fn;
  };
  template <class F>
  void push(F fn) {  // move-only callables welcome (an awaiting coroutine's handler is one)
    push_job(std::make_unique<JobOf<F>>(std::move(fn)));
  }
  void push_job(std::unique_ptr<Job> job);
  void work();
  static Error overloaded();
  size_t max_queued_ = 0;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> jobs_;
  std::atomic<size_t> pending_{0};  // jobs_.size(), readable without the lock by spinners
  int sleeping_ = 0;                // guarded by mutex_
  std::atomic<int> spinning_{0};
  bool stopping_ = false;  // guarded by mutex_
  bool stopped_ = false;   // guarded by mutex_: the workers are gone
  std::vector<std::thread> threads_;
};

}  // namespace cdx
