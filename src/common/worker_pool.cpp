#include "common/worker_pool.hpp"

namespace cdx {

namespace {
constexpr int kSpins = 200;  // sched_yield rounds (tens of microseconds) before a worker sleeps
}

WorkerPool::WorkerPool(size_t threads) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

void WorkerPool::push_job(std::unique_ptr<Job> job) {
  std::lock_guard lock(mutex_);
  jobs_.push_back(std::move(job));
  const size_t pending = pending_.fetch_add(1, std::memory_order_release) + 1;
  // Decided under the lock, so a worker between its spin and its sleep cannot miss the job.
  if (sleeping_ > 0 && pending > static_cast<size_t>(spinning_.load(std::memory_order_acquire))) wake_.notify_one();
}

void WorkerPool::work() {
  for (;;) {
    if (pending_.load(std::memory_order_acquire) == 0) {
      spinning_.fetch_add(1, std::memory_order_acq_rel);
      for (int i = 0; i < kSpins && pending_.load(std::memory_order_acquire) == 0; ++i) std::this_thread::yield();
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
    job->run();
  }
}

void WorkerPool::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace cdx
