#include "db/outbox.hpp"

#include <chrono>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"

namespace cdx::db {

namespace {

constexpr const char* kColumns = "seq, id, tenant_id, type, payload, created_at";

OutboxEvent event_from(const Row& r, const std::string& schema) {
  OutboxEvent e;
  e.seq = r.integer(0);
  e.id = r.text(1);
  e.schema = schema;
  e.tenant_id = r.text(2);
  e.type = r.text(3);
  e.payload = nlohmann::json::parse(r.text(4), nullptr, false);
  if (e.payload.is_discarded()) e.payload = nlohmann::json::object();
  e.created_at = r.text(5);
  return e;
}

bool matches(const std::string& prefix, const std::string& type) {
  if (prefix.empty()) return true;
  if (prefix.back() == '.') return type.compare(0, prefix.size(), prefix) == 0;
  return type == prefix;
}

std::string ago(int64_t seconds) { return format_rfc3339(Clock::now() - std::chrono::seconds(seconds)); }

}  // namespace

nlohmann::json to_json(const OutboxEvent& e) {
  return {{"id", e.id}, {"type", e.type}, {"tenant_id", e.tenant_id}, {"data", e.payload},
          {"created_at", e.created_at}};
}

Migration Outbox::migration(int version, const std::string& schema) {
  // Everything but the sequence column is shared text; the column is where the two databases differ.
  auto table = [&](const std::string& seq_column) {
    return "CREATE TABLE " + schema + ".outbox (\n  seq " + seq_column +
           ",\n  id TEXT NOT NULL UNIQUE,\n  tenant_id TEXT NOT NULL,\n  type TEXT NOT NULL,\n"
           "  payload TEXT NOT NULL,\n  created_at TEXT NOT NULL,\n  delivered_at TEXT,\n"
           "  attempts INTEGER NOT NULL DEFAULT 0,\n  last_error TEXT\n);\n";
  };
  Migration m;
  m.version = version;
  m.name = "transactional outbox";
  m.sql = "";  // nothing portable: see the two dialect-specific parts
  m.postgres_sql = table("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY") +
                   "CREATE INDEX outbox_pending ON " + schema + ".outbox (delivered_at, seq);\n" +
                   "CREATE INDEX outbox_tenant ON " + schema + ".outbox (tenant_id, seq);\n";
  // AUTOINCREMENT: never reuse a seq after pruning, so seq order stays append order.
  m.sqlite_sql = table("INTEGER PRIMARY KEY AUTOINCREMENT") + "CREATE INDEX " + schema +
                 ".outbox_pending ON outbox (delivered_at, seq);\n" + "CREATE INDEX " + schema +
                 ".outbox_tenant ON outbox (tenant_id, seq);\n";
  return m;
}

OutboxEvent Outbox::append(Tx& tx, const std::string& tenant_id, std::string_view type,
                           nlohmann::json payload) const {
  OutboxEvent e;
  e.id = new_uuid_v7();
  e.schema = schema_;
  e.tenant_id = tenant_id;
  e.type = std::string(type);
  e.payload = std::move(payload);
  e.created_at = format_rfc3339(Clock::now());
  const std::string text = e.payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  tx.query("INSERT INTO " + schema_ + ".outbox (id, tenant_id, type, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
           {e.id, e.tenant_id, e.type, text, e.created_at});
  note_outbox_write();
  return e;
}

std::vector<OutboxEvent> Outbox::list(Tx& tx, const TenantScope& scope, const std::optional<std::string>& type,
                                      int limit, std::optional<int64_t> before_seq) const {
  std::string sql = std::string("SELECT ") + kColumns + " FROM " + schema_ + ".outbox WHERE tenant_id = $1";
  Params params{scope.tenant_id()};
  std::string type_text;
  if (type) {
    type_text = *type;
    if (!type_text.empty() && type_text.back() == '.') {
      sql += " AND substr(type, 1, $2) = $3";
    } else {
      sql += " AND type = $3";
    }
  }
  params.push_back(static_cast<int64_t>(type_text.size()));
  params.push_back(type_text);
  if (before_seq) sql += " AND seq < $4";
  params.push_back(before_seq.value_or(0));
  sql += " ORDER BY seq DESC LIMIT $5";
  params.push_back(static_cast<int64_t>(limit) + 1);
  std::vector<OutboxEvent> out;
  for (const auto& r : tx.query(sql, params).rows) out.push_back(event_from(r, schema_));
  return out;
}

void Outbox::purge_tenant(Tx& tx, const TenantScope& scope) const {
  tx.query("DELETE FROM " + schema_ + ".outbox WHERE tenant_id = $1", {scope.tenant_id()});
}

void OutboxRelay::add_source(std::shared_ptr<Database> db) {
  std::lock_guard lock(mu_);
  sources_.push_back(std::move(db));
}

void OutboxRelay::subscribe(std::string prefix, Subscriber fn) {
  std::lock_guard lock(mu_);
  subscribers_.emplace_back(std::move(prefix), std::move(fn));
}

size_t OutboxRelay::poll() {
  std::lock_guard poll_lock(poll_mu_);
  std::vector<std::shared_ptr<Database>> sources;
  {
    std::lock_guard lock(mu_);
    sources = sources_;
  }
  size_t n = 0;
  const bool prune_now = polls_++ % 60 == 0;
  for (const auto& db : sources) {
    try {
      n += poll_source(*db);
      if (prune_now) prune(*db);
    } catch (const std::exception& e) {
      log::error("outbox relay failed", {{"schema", db->schema()}, {"error", e.what()}});
    }
  }
  return n;
}

size_t OutboxRelay::poll_source(Database& db) {
  size_t delivered = 0;
  for (int batch = 0; batch < kMaxBatchesPerPoll; ++batch) {
    Moved m;
    if (db.backend() == Backend::kPostgres) {
      m = db.write_platform([&](Tx& tx) { return move_batch(db, tx, true); });
    } else {
      // One process per file, and one relay per process: no claim needed. The batch is read, moved (the sink
      // writes another database, whose writer must not wait on this one's), then marked.
      std::vector<std::function<void(Tx&)>> marks;
      m = db.read_platform([&](Tx& tx) { return move_batch(db, tx, false, &marks); });
      if (!marks.empty())
        db.write_platform([&](Tx& tx) {
          for (auto& f : marks) f(tx);
        });
    }
    delivered += m.delivered;
    delivered_.fetch_add(static_cast<int64_t>(m.delivered), std::memory_order_relaxed);
    if (m.stopped || m.read < static_cast<size_t>(kBatch)) break;
  }
  return delivered;
}

OutboxRelay::Moved OutboxRelay::move_batch(Database& db, Tx& tx, bool claim,
                                           std::vector<std::function<void(Tx&)>>* later) {
  const std::string& schema = db.schema();
  std::vector<std::pair<std::string, Subscriber>> subscribers;
  {
    std::lock_guard lock(mu_);
    subscribers = subscribers_;
  }
  Moved m;
  std::vector<OutboxEvent> events;
  std::vector<int64_t> attempts;
  auto res = tx.query(std::string("SELECT ") + kColumns + ", attempts FROM " + schema +
                          ".outbox WHERE delivered_at IS NULL ORDER BY seq LIMIT $1" +
                          (claim ? " FOR UPDATE SKIP LOCKED" : ""),
                      {kBatch});
  for (const auto& r : res.rows) {
    events.push_back(event_from(r, schema));
    attempts.push_back(r.integer(6));
  }
  m.read = events.size();
  if (events.empty()) return m;
  if (sink_) sink_(events);  // throws: the whole batch stays pending (the transaction rolls back)

  // The updates run in tx, or, when `later` is given, are handed back for a write transaction.
  auto update = [&](std::function<void(Tx&)> f) {
    if (later)
      later->push_back(std::move(f));
    else
      f(tx);
  };
  std::vector<int64_t> done;
  for (size_t i = 0; i < events.size(); ++i) {
    const OutboxEvent& e = events[i];
    std::string error;
    for (const auto& [prefix, fn] : subscribers) {
      if (!matches(prefix, e.type)) continue;
      try {
        fn(e);
      } catch (const std::exception& ex) {
        error = ex.what();
      } catch (...) {
        error = "non-standard exception";
      }
      if (!error.empty()) break;
    }
    if (error.empty()) {
      done.push_back(e.seq);
      continue;
    }
    failed_.fetch_add(1, std::memory_order_relaxed);
    const bool park = attempts[i] + 1 >= kMaxAttempts;
    log::error(park ? "outbox event parked after repeated delivery failures" : "outbox delivery failed",
               {{"schema", schema}, {"event_id", e.id}, {"type", e.type}, {"error", error}});
    update([schema, seq = e.seq, error, park](Tx& t) {
      if (park)
        t.query("UPDATE " + schema + ".outbox SET attempts = attempts + 1, last_error = $2, delivered_at = $3 "
                "WHERE seq = $1",
                {seq, error, format_rfc3339(Clock::now())});
      else
        t.query("UPDATE " + schema + ".outbox SET attempts = attempts + 1, last_error = $2 WHERE seq = $1",
                {seq, error});
    });
    if (!park) {
      m.stopped = true;  // keep the order: nothing after it goes out before it
      break;
    }
  }
  if (!done.empty()) {
    // The seqs as one array parameter: one statement text whatever the batch (SQLite caches statements by it).
    const bool pg = db.backend() == Backend::kPostgres;
    std::string list = pg ? "{" : "[";
    for (size_t i = 0; i < done.size(); ++i) list += (i ? "," : "") + std::to_string(done[i]);
    list += pg ? "}" : "]";
    const std::string sql = "UPDATE " + schema + ".outbox SET delivered_at = $1 WHERE seq " +
                            (pg ? "= ANY($2::bigint[])" : "IN (SELECT value FROM json_each($2))");
    update([sql, list](Tx& t) { t.query(sql, {format_rfc3339(Clock::now()), list}); });
    m.delivered = done.size();
  }
  return m;
}

void OutboxRelay::prune(Database& db) {
  const std::string cutoff = ago(kRetentionSeconds);
  db.write_platform([&](Tx& tx) {
    tx.query("DELETE FROM " + db.schema() + ".outbox WHERE delivered_at IS NOT NULL AND delivered_at < $1", {cutoff});
  });
}

}  // namespace cdx::db
