#include <benchmark/benchmark.h>

#include "kit/rate_limiter.hpp"

namespace cdx::kit {
namespace {

// The per-request cost: a bucket already found through the credential cache, then take().
void BM_RateLimitCheck(benchmark::State& state) {
  Bucket b(1'000'000'000);
  for (auto _ : state) benchmark::DoNotOptimize(b.take(now_us()));
}
BENCHMARK(BM_RateLimitCheck);

void BM_RateLimitCheckContended(benchmark::State& state) {
  static Bucket b(1'000'000'000);
  for (auto _ : state) benchmark::DoNotOptimize(b.take(now_us()));
}
BENCHMARK(BM_RateLimitCheckContended)->Threads(2);

}  // namespace
}  // namespace cdx::kit
