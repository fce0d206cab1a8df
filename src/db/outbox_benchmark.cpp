// The relay's throughput: a module outbox holding N CRM contact events (about 700 bytes of JSON each, with an
// actor) drained by OutboxRelay::poll() into a real platform event log through core::Store::record_events, on
// SQLite files (as the platform opens them) and on PostgreSQL (CDX_TEST_DATABASE_URL, e.g. from
// scripts/pg-temp; a database of its own is created and dropped). items_per_second is events moved per
// second.
//   build/release/cdx_benchmarks --benchmark_filter=Relay
#include <benchmark/benchmark.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <filesystem>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "core/store.hpp"
#include "db/outbox.hpp"
#include "db/testing.hpp"

namespace cdx::db {
namespace {

using nlohmann::json;

// core's migration 5 (src/core/migrations.cpp), which needs a whole CoreModule to reach.
std::string events_table(const std::string& seq) {
  return "CREATE TABLE cdx_db.events (\n  seq " + seq +
         ",\n  id TEXT NOT NULL UNIQUE,\n  tenant_id TEXT NOT NULL,\n  type TEXT NOT NULL,\n  source TEXT "
         "NOT NULL,\n"
         "  subject TEXT,\n  actor TEXT,\n  payload TEXT NOT NULL,\n  created_at TEXT NOT NULL,\n"
         "  recorded_at TEXT NOT NULL\n);\nCREATE INDEX events_tenant ON cdx_db.events (tenant_id, seq);\n"
         "CREATE INDEX events_type ON cdx_db.events (type, seq);\n"
         "CREATE INDEX events_created ON cdx_db.events (created_at);\n";
}

// What the kit writes for POST /api/v1/crm/contacts: the row as created, and who created it.
json contact_event(int i) {
  const std::string id = new_uuid_v7();
  json contact = {{"id", id},
                  {"tenant_id", "0193a5c0-0000-7000-8000-00000000000a"},
                  {"first_name", "Firstname" + std::to_string(i)},
                  {"last_name", "Lastname-Example"},
                  {"email", "person" + std::to_string(i) + "@example-company.com"},
                  {"phone", "+33 1 23 45 67 89"},
                  {"title", "Head of Procurement, EMEA"},
                  {"company_id", "0193a5c0-1111-7000-8000-0000000000b1"},
                  {"owner_id", nullptr},
                  {"lifecycle_stage", "lead"},
                  {"tags", {"imported", "csv", "q3-campaign"}},
                  {"custom", {{"source", "trade fair 2026"}, {"score", 42}, {"region", "Île-de-France"}}},
                  {"created_at", "2026-12-05T08:00:00.123456Z"},
                  {"updated_at", "2026-12-05T08:00:00.123456Z"},
                  {"version", 1}};
  return {{"contact", std::move(contact)},
          {"actor", {{"type", "user"}, {"id", "0193a5c0-2222-7000-8000-0000000000c1"}}}};
}

class RelayBench {
 public:
  RelayBench(std::unique_ptr<ConnectionFactory> factory, Backend backend) : factory_(std::move(factory)) {
    crm_ = factory_->open("crm_db");
    crm_->migrate({Outbox::migration(1, "crm_db"), Outbox::pending_index_migration(2, "crm_db"),
                   Outbox::queue_migration(3, "crm_db")});
    cdx_ = factory_->open("cdx_db");
    const bool pg = backend == Backend::kPostgres;
    cdx_->migrate({{1,
                    "platform event log",
                    "",
                    {},
                    pg ? events_table("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY") : "",
                    pg ? "" : events_table("INTEGER PRIMARY KEY AUTOINCREMENT")}});
    store_ = std::make_unique<core::Store>(cdx_);
    relay_.add_source(crm_);
    relay_.set_sink([this](const std::vector<OutboxEvent>& events) { store_->record_events(events); });
  }

  // n events committed by one tenant, a thousand to a transaction (the import's own batches). The rows are
  // what Outbox::append writes; their text is made once, so a profile of the run shows the relay.
  void fill(int n) {
    const TenantScope scope = testing::TestScopes::mint("0193a5c0-0000-7000-8000-00000000000a");
    const std::string text = contact_event(0).dump();
    const std::string created_at = format_rfc3339(Clock::now());
    for (int at = 0; at < n; at += 1000)
      crm_->write(scope, [&](Tx& tx) {
        for (int i = at; i < std::min(n, at + 1000); ++i)
          tx.query(
              "INSERT INTO crm_db.outbox (id, tenant_id, type, payload, created_at) VALUES ($1, $2, $3, $4, "
              "$5)",
              {new_uuid_v7(), scope.tenant_id(), "crm.contact.created", text, created_at});
      });
  }
  size_t drain() {
    size_t moved = 0;
    while (size_t n = relay_.poll()) moved += n;
    return moved;
  }
  int64_t logged() {
    return cdx_->read_platform(
        [](Tx& tx) { return tx.query("SELECT COUNT(*) FROM cdx_db.events").rows.at(0).integer(0); });
  }

 private:
  std::unique_ptr<ConnectionFactory> factory_;
  std::shared_ptr<Database> crm_, cdx_;
  std::unique_ptr<core::Store> store_;
  Outbox outbox_{"crm_db"};
  OutboxRelay relay_;
};

void run(benchmark::State& state, RelayBench& bench) {
  const int n = static_cast<int>(state.range(0));
  int64_t moved = 0;
  for (auto _ : state) {
    state.PauseTiming();
    bench.fill(n);
    state.ResumeTiming();
    const size_t got = bench.drain();
    moved += static_cast<int64_t>(got);
    if (got != static_cast<size_t>(n)) state.SkipWithError("the relay did not move every event");
  }
  state.SetItemsProcessed(moved);
  if (bench.logged() < moved) state.SkipWithError("the event log is missing events");
}

void BM_RelaySqlite(benchmark::State& state) {
  init_crypto();
  const auto dir = std::filesystem::temp_directory_path() / ("cdx-relay-bench-" + random_token(10));
  {
    RelayBench bench(make_sqlite_factory(dir.string()), Backend::kSqlite);
    run(state, bench);
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_RelaySqlite)
    ->Arg(20000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->Iterations(3);

// A fresh database on the server of CDX_TEST_DATABASE_URL, dropped afterwards.
class PgDatabase {
 public:
  explicit PgDatabase(std::string url) : url_(std::move(url)), name_("cdx_relay_bench_" + random_token(8)) {
    for (char& c : name_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    admin("CREATE DATABASE " + name_);
  }
  ~PgDatabase() { admin("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)"); }
  std::string url() const {
    const auto slash = url_.rfind('/');
    const auto query = url_.find('?', slash);
    return url_.substr(0, slash + 1) + name_ + (query == std::string::npos ? "" : url_.substr(query));
  }

 private:
  void admin(const std::string& sql) {
    PGconn* c = PQconnectdb(url_.c_str());
    PQclear(PQexec(c, sql.c_str()));
    PQfinish(c);
  }
  std::string url_, name_;
};

void BM_RelayPostgres(benchmark::State& state) {
  init_crypto();
  const char* url = std::getenv("CDX_TEST_DATABASE_URL");
  if (!url || !*url) {
    state.SkipWithError("CDX_TEST_DATABASE_URL is not set (scripts/pg-temp start)");
    for (auto _ : state) {
    }
    return;
  }
  PgDatabase database(url);
  {
    StorageConfig config;
    config.database_url = database.url();
    config.pool_size = 4;
    RelayBench bench(make_postgres_factory(config), Backend::kPostgres);
    run(state, bench);
  }
}
BENCHMARK(BM_RelayPostgres)
    ->Arg(20000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->Iterations(3);

}  // namespace
}  // namespace cdx::db
