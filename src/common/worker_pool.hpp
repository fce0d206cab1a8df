// Runs blocking work (database calls, password hashing) off the I/O threads and resumes the awaiting
// coroutine on its own executor.
//   int n = co_await workers.run([&] { return db->read(scope, [&](db::Tx& tx) { … }); });
#pragma once
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/task.hpp"

#include <atomic>
#include <exception>
#include <optional>
#include <type_traits>

namespace cdx {

class WorkerPool {
 public:
  explicit WorkerPool(size_t threads) : pool_(threads), threads_(threads) {}
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
          boost::asio::post(pool_, [&, handler = std::move(handler)]() mutable {
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
    boost::asio::post(pool_, std::move(fn));
  }

  size_t threads() const { return threads_; }
  int64_t queued() const { return queued_.load(std::memory_order_relaxed); }
  void stop() {
    pool_.join();
  }

 private:
  boost::asio::thread_pool pool_;
  size_t threads_;
  std::atomic<int64_t> queued_{0};
};

}  // namespace cdx
