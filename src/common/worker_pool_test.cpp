#include "common/worker_pool.hpp"

#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

#include "common/error.hpp"

namespace cdx {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Runs `n` coroutines that each hand `per` jobs to the pool, on one I/O thread; answers the sum.
int64_t hop_many(WorkerPool& pool, int n, int per) {
  asio::io_context ioc;
  std::atomic<int64_t> sum{0};
  std::vector<std::future<void>> done;
  for (int i = 0; i < n; ++i)
    done.push_back(asio::co_spawn(
        ioc,
        [&pool, &sum, i, per]() -> Task<void> {
          for (int j = 0; j < per; ++j) {
            const int64_t v = co_await pool.run([i, j] { return static_cast<int64_t>(i) * 1000 + j; });
            sum += v;
          }
        },
        asio::use_future));
  ioc.run();
  for (auto& f : done) f.get();
  return sum.load();
}

TEST(WorkerPool, EveryJobRunsOnceUnderConcurrentHops) {
  WorkerPool pool(3);
  constexpr int kN = 64, kPer = 500;
  int64_t want = 0;
  for (int i = 0; i < kN; ++i)
    for (int j = 0; j < kPer; ++j) want += static_cast<int64_t>(i) * 1000 + j;
  // Bursts and pauses: workers go from spinning to sleeping between them, where a lost wake-up would hang.
  for (int round = 0; round < 5; ++round) {
    EXPECT_EQ(hop_many(pool, kN, kPer), want);
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(pool.queued(), 0);
}

TEST(WorkerPool, AFullQueueRefusesRunWith503AtOnce) {
  WorkerPool pool(1, 2);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  pool.post([gate] { gate.wait(); });  // holds the one worker
  std::this_thread::sleep_for(20ms);
  pool.post([] {});
  pool.post([] {});  // two queued: the bound
  asio::io_context ioc;
  auto refused = asio::co_spawn(
      ioc, [&]() -> Task<int> { co_return co_await pool.run([] { return 1; }); }, asio::use_future);
  ioc.run();
  try {
    refused.get();
    ADD_FAILURE() << "run() queued past the bound";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::kServiceUnavailable);
    ASSERT_EQ(e.headers().size(), 1u);
    EXPECT_EQ(e.headers()[0].first, "Retry-After");
  }
  release.set_value();
  std::this_thread::sleep_for(50ms);
  asio::io_context again;
  auto ok = asio::co_spawn(
      again, [&]() -> Task<int> { co_return co_await pool.run([] { return 7; }); }, asio::use_future);
  again.run();
  EXPECT_EQ(ok.get(), 7);  // room again once the queue drained
}

TEST(WorkerPool, RunRethrowsTheJobsException) {
  WorkerPool pool(1);
  asio::io_context ioc;
  auto f = asio::co_spawn(
      ioc,
      [&]() -> Task<int> { co_return co_await pool.run([]() -> int { throw std::runtime_error("boom"); }); },
      asio::use_future);
  ioc.run();
  EXPECT_THROW(f.get(), std::runtime_error);
}

TEST(WorkerPool, AFailedPostedJobDoesNotStopTheWorker) {
  WorkerPool pool(1);
  std::promise<void> ran;
  pool.post([] { throw std::runtime_error("background failure"); });
  pool.post([&] { ran.set_value(); });
  EXPECT_EQ(ran.get_future().wait_for(5s), std::future_status::ready);
}

TEST(WorkerPool, StopRunsWhatIsQueuedThenRefusesNewJobs) {
  WorkerPool pool(1);
  std::atomic<int> ran{0};
  std::promise<void> release;
  auto gate = release.get_future().share();
  pool.post([gate] { gate.wait(); });  // holds the only worker while more jobs queue behind it
  for (int i = 0; i < 10; ++i) pool.post([&] { ++ran; });
  EXPECT_GE(pool.queued(), 10);
  std::thread stopper([&] { pool.stop(); });
  std::this_thread::sleep_for(20ms);
  release.set_value();
  stopper.join();
  EXPECT_EQ(ran.load(), 10);
  try {
    pool.post([] {});
    FAIL() << "a job offered to a stopped pool was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::kServiceUnavailable);
  }
  pool.stop();  // again: nothing to do
}

}  // namespace
}  // namespace cdx
