// Runs blocking work (database calls, password hashing) off the I/O threads and resumes the awaiting
// coroutine on its own executor.
//   int n = co_await workers.run([&] { return db->read(scope, [&](db::Tx& tx) { … }); });
#pragma once
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

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
  explicit WorkerPool(size_t threads);
  ~WorkerPool() { stop(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  template <class F>
  Task<std::invoke_result_t<F>> run(F fn) {
    using R = std::invoke_result_t<F>;
    std::exception_ptr error;
    std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
    queued_.fetch_add(1, std::memory_order_relaxed);
    co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<Executor>, void()>(
        [&](auto handler) {
          push([&, handler = std::move(handler)]() mutable {
            queued_.fetch_sub(1, std::memory_order_relaxed);
            try {
              if constexpr (std::is_void_v<R>) {
                fn();
              } else {
                result.emplace(fn());
              }
            } catch (...) {
              error = std::current_exception();
            }
            auto ex = boost::asio::get_associated_executor(handler);
            boost::asio::post(ex, std::move(handler));
          });
        },
        use_task);
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<R>) co_return std::move(*result);
  }

  // Fire and forget (e.g. sending mail after the answer): errors are the job's to log.
  template <class F>
  void post(F fn) {
    push(std::move(fn));
  }

  size_t threads() const { return threads_.size(); }
  int64_t queued() const { return queued_.load(std::memory_order_relaxed); }
  void stop();  // runs what is queued, then joins the threads

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

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> jobs_;
  std::atomic<size_t> pending_{0};  // jobs_.size(), readable without the lock by spinners
  int sleeping_ = 0;                // guarded by mutex_
  std::atomic<int> spinning_{0};
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::atomic<int64_t> queued_{0};
};

}  // namespace cdx
