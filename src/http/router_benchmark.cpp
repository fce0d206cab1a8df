#include <benchmark/benchmark.h>

#include "http/router.hpp"

namespace cdx::http {
namespace {

Router& bench_router() {
  static Router router;
  static bool built = [] {
    const char* resources[] = {"contacts", "companies", "deals", "pipelines", "activities"};
    for (const char* res : resources) {
      const std::string base = std::string("/api/v1/crm/") + res;
      router.add_sync(Method::kGet, base, [](Context&) {}, {});
      router.add_sync(Method::kPost, base, [](Context&) {}, {});
      router.add_sync(Method::kGet, base + "/{id}", [](Context&) {}, {});
      router.add_sync(Method::kPatch, base + "/{id}", [](Context&) {}, {});
      router.add_sync(Method::kDelete, base + "/{id}", [](Context&) {}, {});
    }
    router.add_sync(Method::kGet, "/health", [](Context&) {}, {});
    router.add_sync(Method::kGet, "/api/v1/auth/me", [](Context&) {}, {});
    router.add_sync(Method::kGet, "/api/v1/tenants/{id}", [](Context&) {}, {});
    router.add_sync(Method::kPost, "/api/v1/tenants/{id}/suspend", [](Context&) {}, {});
    return true;
  }();
  (void)built;
  return router;
}

void BM_RouterStatic(benchmark::State& state) {
  Router& r = bench_router();
  std::array<std::string_view, 4> params{};
  for (auto _ : state) benchmark::DoNotOptimize(r.match(Method::kGet, "/health", params));
}
BENCHMARK(BM_RouterStatic);

void BM_RouterParam(benchmark::State& state) {
  Router& r = bench_router();
  std::array<std::string_view, 4> params{};
  for (auto _ : state)
    benchmark::DoNotOptimize(r.match(Method::kGet, "/api/v1/crm/activities/01939a3c-0000-7000-8000-000000000001", params));
}
BENCHMARK(BM_RouterParam);

void BM_RouterMiss(benchmark::State& state) {
  Router& r = bench_router();
  std::array<std::string_view, 4> params{};
  for (auto _ : state) benchmark::DoNotOptimize(r.match(Method::kGet, "/api/v1/crm/unknown/x", params));
}
BENCHMARK(BM_RouterMiss);

}  // namespace
}  // namespace cdx::http
