// The physical limit of logins: Argon2id at our parameters. Logins per second are judged against it.
#include <benchmark/benchmark.h>

#include "common/ids.hpp"
#include "common/password.hpp"

namespace cdx {
namespace {

void BM_Argon2idVerify(benchmark::State& state) {
  init_crypto();
  static const std::string hash = hash_password("correct horse battery staple");
  for (auto _ : state) benchmark::DoNotOptimize(verify_password(hash, "correct horse battery staple"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Argon2idVerify)->Unit(benchmark::kMillisecond)->UseRealTime()->Threads(1)->Threads(2);

void BM_Argon2idHash(benchmark::State& state) {
  init_crypto();
  for (auto _ : state) benchmark::DoNotOptimize(hash_password("correct horse battery staple"));
}
BENCHMARK(BM_Argon2idHash)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace cdx
