#include "common/worker_pool.hpp"

#include "common/error.hpp"
#include "common/log.hpp"

namespace cdx {

namespace {
constexpr int kSpins = 200;  // sched_yield rounds (tens of microseconds) before a worker sleeps
}

Error WorkerPool::overloaded() {
  return Error(Code::kServiceUnavailable, "The server is overloaded; retry shortly.")
      .with_header("Retry-After", "1");
}

WorkerPool::WorkerPool(size_t threads, size_t max_queued) : max_queued_(max_queued) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

void WorkerPool::push_job(std::unique_ptr<Job> job) {
  std::lock_guard lock(mutex_);
  if (stopped_) throw Error(Code::kServiceUnavailable, "The server is shutting down.");
  jobs_.push_back(std::move(job));
  const size_t pending = pending_.fetch_add(1, std::memory_order_release) + 1;
  // Decided under the lock, so a worker between its spin and its sleep cannot miss the job.
  if (sleeping_ > 0 && pending > static_cast<size_t>(spinning_.load(std::memory_order_acquire)))
    wake_.notify_one();
}

void WorkerPool::work() {
  for (;;) {
    if (pending_.load(std::memory_order_acquire) == 0) {
      spinning_.fetch_add(1, std::memory_order_acq_rel);
      for (int i = 0; i < kSpins && pending_.load(std::memory_order_acquire) == 0; ++i)
        std::this_thread::yield();
      spinning_.fetch_sub(1, std::memory_order_acq_rel);
    }
    std::unique_ptr<Job> job;
    {
      std::unique_lock lock(mutex_);
      while (jobs_.empty() && !stopping_) {
        ++sleeping_;
        wake_.wait(lock);
        --sleeping_;
      }
      if (jobs_.empty()) return;  // stopping, and nothing left to run
      job = std::move(jobs_.front());
      jobs_.pop_front();
      pending_.fetch_sub(1, std::memory_order_release);
    }
    try {
      job->run();  // run() jobs catch their own; this is for post()
    } catch (const std::exception& e) {
      log::error("background job failed", {{"error", e.what()}});
    } catch (...) {
      log::error("background job failed", {{"error", "non-standard exception"}});
    }
  }
}

void WorkerPool::stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    threads.swap(threads_);  // a second caller finds none to join
  }
  wake_.notify_all();
  for (auto& t : threads) t.join();
  std::lock_guard lock(mutex_);
  stopped_ = true;
}

}  // namespace cdx
