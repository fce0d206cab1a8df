#include "db/outbox.hpp"

#include <cctype>
#include <chrono>
#include <deque>
#include <future>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"

namespace cdx::db {

namespace {

constexpr const char* kColumns = "seq, id, tenant_id, type, payload, created_at";

void parse_payload(OutboxEvent& e) {
  e.payload = nlohmann::json::parse(e.payload_text, nullptr, false);
  if (!e.payload.is_object()) e.payload = nlohmann::json::object();
}

// The row with its payload as text; parsed too unless `parse` is false (the relay moves the text as it is).
OutboxEvent event_from(const Row& r, const std::string& schema, bool parse = true) {
  OutboxEvent e;
  e.seq = r.integer(0);
  e.id = r.text(1);
  e.schema = schema;
  e.tenant_id = r.text(2);
  e.type = r.text(3);
  e.payload_text = r.text(4);
  if (parse) parse_payload(e);
  e.created_at = r.text(5);
  return e;
}

// A reader that follows JSON text's structure without building it: where values start and end. Numbers and
// literals are taken as runs of their characters, not checked further.
struct Scanner {
  std::string_view s;
  size_t i = 0;

  void space() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
  }
  bool eat(char c) {
    space();
    if (i < s.size() && s[i] == c) return ++i, true;
    return false;
  }
  bool at(char c) {
    space();
    return i < s.size() && s[i] == c;
  }
  // A string: its raw text between the quotes, and whether it holds an escape.
  bool string(std::string_view& out, bool& escaped) {
    if (!at('"')) return false;
    const size_t start = ++i;
    escaped = false;
    while (i < s.size()) {
      const char c = s[i];
      if (c == '"') {
        out = s.substr(start, i - start);
        ++i;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c == '\\') {
        escaped = true;
        ++i;
      }
      ++i;
    }
    return false;
  }
  bool value() {
    space();
    if (i >= s.size()) return false;
    std::string_view text;
    bool escaped;
    if (s[i] == '"') return string(text, escaped);
    if (s[i] == '{' || s[i] == '[') {
      std::string closers;  // the brackets still open, innermost last
      while (i < s.size()) {
        const char c = s[i];
        if (c == '"') {
          if (!string(text, escaped)) return false;
          continue;
        }
        if (c == '{' || c == '[') {
          closers.push_back(c == '{' ? '}' : ']');
        } else if (c == '}' || c == ']') {
          if (closers.empty() || closers.back() != c) return false;
          closers.pop_back();
          if (closers.empty()) return ++i, true;
        }
        ++i;
      }
      return false;
    }
    const size_t start = i;
    while (i < s.size() &&
           (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '-' || s[i] == '+' || s[i] == '.'))
      ++i;
    return i > start;
  }
  // An object's members; fn(name, scanner) reads the value (at its start) and answers false on failure.
  template <class F>
  bool object(F&& fn) {
    if (!eat('{')) return false;
    if (eat('}')) return true;
    do {
      std::string_view name;
      bool escaped;
      if (!string(name, escaped) || escaped || !eat(':')) return false;
      space();
      if (!fn(name)) return false;
    } while (eat(','));
    return eat('}');
  }
};

std::string ago(int64_t seconds) { return format_rfc3339(Clock::now() - std::chrono::seconds(seconds)); }

}  // namespace

nlohmann::json to_json(const OutboxEvent& e) {
  return {{"id", e.id},
          {"type", e.type},
          {"tenant_id", e.tenant_id},
          {"data", e.payload},
          {"created_at", e.created_at}};
}

std::string payload_text_of(const OutboxEvent& e) {
  if (!e.payload_text.empty()) return e.payload_text;
  return e.payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<PayloadFacts> scan_payload(std::string_view text) {
  Scanner p{text};
  PayloadFacts facts;
  std::optional<std::string_view> own_id;
  const bool ok = p.object([&](std::string_view name) {
    const size_t start = p.i;
    if (name == "actor") {
      if (!p.value()) return false;
      facts.actor = text.substr(start, p.i - start);
      return true;
    }
    if (name == "id" && p.at('"')) {  // the payload's own id (a deletion's) comes first
      std::string_view v;
      bool escaped;
      if (!p.string(v, escaped) || escaped) return false;
      own_id = v;
      return true;
    }
    if (facts.subject || !p.at('{')) return p.value();
    // A member object: its "id", when that is a string.
    std::optional<std::string_view> id;
    const bool inner = p.object([&](std::string_view key) {
      if (key != "id" || !p.at('"')) return p.value();
      std::string_view v;
      bool escaped;
      if (!p.string(v, escaped) || escaped) return false;
      id = v;
      return true;
    });
    if (!inner) return false;
    facts.subject = id;
    return true;
  });
  p.space();
  if (!ok || p.i != text.size()) return std::nullopt;
  if (own_id) facts.subject = own_id;
  return facts;
}

Migration Outbox::migration(int version, const std::string& schema) {
  // Everything but the sequence column is shared text; the column is where the two databases differ.
  // attempts and last_error are no longer written (the relay delivered to subscribers of its own once); they
  // stay so that every database's outbox has the one shape its migration gave it.
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

Migration Outbox::pending_index_migration(int version, const std::string& schema) {
  Migration m;
  m.version = version;
  m.name = "outbox pending index: pending rows only";
  m.postgres_sql = "DROP INDEX " + schema + ".outbox_pending;\nCREATE INDEX outbox_pending ON " + schema +
                   ".outbox (seq) WHERE delivered_at IS NULL;\n";
  return m;
}

Migration Outbox::queue_migration(int version, const std::string& schema) {
  // The trigger is per statement, over the statement's new rows: Outbox::append's insert and a CSV import's
  // thousand-row insert alike enqueue what they wrote, and nothing that inserts into the outbox can forget.
  // delivered_at becomes 'queued' on what was pending and on every row written from now on, and the partial
  // pending index stays (empty): a replica of the version before, still running during a rolling upgrade,
  // then finds nothing to claim (at once, from that index) and prunes nothing it should not, while its own
  // writes are queued by the trigger like any other. The lock comes first: it is the one the trigger and the
  // default need, and a row committed between the copy and the trigger would be in neither.
  Migration m;
  m.version = version;
  m.name = "outbox queue: pending rows by seq, deleted when moved";
  std::string sql = R"SQL(
LOCK TABLE S.outbox IN ACCESS EXCLUSIVE MODE;
CREATE TABLE S.outbox_queue (seq BIGINT PRIMARY KEY);
INSERT INTO S.outbox_queue SELECT seq FROM S.outbox WHERE delivered_at IS NULL;
UPDATE S.outbox SET delivered_at = 'queued' WHERE delivered_at IS NULL;
ALTER TABLE S.outbox ALTER COLUMN delivered_at SET DEFAULT 'queued';
CREATE FUNCTION S.outbox_enqueue() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  INSERT INTO S.outbox_queue SELECT seq FROM written;
  RETURN NULL;
END
$f$;
CREATE TRIGGER outbox_enqueue AFTER INSERT ON S.outbox REFERENCING NEW TABLE AS written
  FOR EACH STATEMENT EXECUTE FUNCTION S.outbox_enqueue();
)SQL";
  // "S." stands for the schema.
  for (size_t at = sql.find("S."); at != std::string::npos; at = sql.find("S.", at + schema.size()))
    sql.replace(at, 1, schema);
  m.postgres_sql = std::move(sql);
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
  tx.query("INSERT INTO " + schema_ +
               ".outbox (id, tenant_id, type, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
           {e.id, e.tenant_id, e.type, text, e.created_at});
  mark_written(tx);
  return e;
}

void Outbox::mark_written(Tx&) const { note_outbox_write(); }

std::vector<OutboxEvent> Outbox::list(Tx& tx, const TenantScope& scope,
                                      const std::optional<std::string>& type, int limit,
                                      std::optional<int64_t> before_seq) const {
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

size_t OutboxRelay::poll() {
  std::lock_guard poll_lock(poll_mu_);
  std::vector<std::shared_ptr<Database>> sources;
  {
    std::lock_guard lock(mu_);
    sources = sources_;
  }
  // By time, not by count: polls come on every commit that wrote events (many a second under load, none for
  // a long while when idle).
  const auto now = std::chrono::steady_clock::now();
  const bool prune_now = !last_prune_ || now - *last_prune_ >= prune_every_;
  if (prune_now) last_prune_ = now;
  size_t n = 0;
  for (const auto& db : sources) {
    size_t moved = 0;  // what this source's batches moved before a failure, if one comes
    try {
      if (db->backend() == Backend::kPostgres)
        poll_claimed(*db, moved);
      else
        poll_sqlite(*db, moved);
    } catch (const std::exception& e) {
      log::error("outbox relay failed", {{"schema", db->schema()}, {"error", e.what()}});
    }
    n += moved;
    try {
      if (prune_now) prune(*db);  // also while the sink is down: what was moved before still ages out
    } catch (const std::exception& e) {
      log::error("outbox prune failed", {{"schema", db->schema()}, {"error", e.what()}});
    }
  }
  return n;
}

namespace {

// A batch's mark on SQLite, as a write the module's writer runs (a group-commit job): the relay moves the
// next batch meanwhile.
class MarkJob final : public WriteJob {
 public:
  MarkJob(std::string sql, int64_t from, int64_t to) : sql_(std::move(sql)), from_(from), to_(to) {}
  void run(Tx& tx) override { tx.query(sql_, {format_rfc3339(Clock::now()), from_, to_}); }
  void finish(std::exception_ptr error) noexcept override {
    if (error)
      done_.set_exception(error);
    else
      done_.set_value();
  }
  std::future<void> outcome() { return done_.get_future(); }

 private:
  std::string sql_;
  int64_t from_, to_;
  std::promise<void> done_;
};

}  // namespace

std::vector<OutboxEvent> OutboxRelay::read_batch(Database& db, Tx& tx, int64_t after) {
  // ORDER BY the pending index's own order (delivered_at is NULL throughout): SQLite then walks the index
  // instead of sorting every pending row (60 ms for 20 000 of them, against 3).
  const Result res =
      tx.query(std::string("SELECT ") + kColumns + " FROM " + db.schema() +
                   ".outbox WHERE delivered_at IS NULL AND seq > $2 ORDER BY delivered_at, seq "
                   "LIMIT $1",
               {kBatch, after});
  std::vector<OutboxEvent> events;
  events.reserve(res.rows.size());
  for (const auto& r : res.rows) events.push_back(event_from(r, db.schema(), false));
  return events;
}

void OutboxRelay::poll_claimed(Database& db, size_t& moved) {
  // Pending is a row in <schema>.outbox_queue (Outbox::queue_migration). A batch is claimed there, recorded
  // by the sink and deleted from the queue in one transaction: a delete only marks the row's version dead,
  // where setting delivered_at wrote a new version of every outbox row and an entry in each of its indexes
  // (4 ms a batch, against 47-65). A queued seq whose outbox row is gone (a purged tenant's) is dropped.
  const std::string claim = "SELECT q.seq, o.id, o.tenant_id, o.type, o.payload, o.created_at FROM " +
                            db.schema() + ".outbox_queue q LEFT JOIN " + db.schema() +
                            ".outbox o ON o.seq = q.seq ORDER BY q.seq LIMIT $1 FOR UPDATE OF q SKIP LOCKED";
  const std::string mark = "DELETE FROM " + db.schema() + ".outbox_queue WHERE seq = ANY($1::bigint[])";
  for (int batch = 0; batch < kMaxBatchesPerPoll; ++batch) {
    const size_t n = db.write_platform([&](Tx& tx) -> size_t {
      const Result res = tx.query(claim, {kBatch});
      if (res.rows.empty()) return 0;
      std::vector<OutboxEvent> events;
      events.reserve(res.rows.size());
      // A claimed batch is no range of seqs (rows other replicas claimed, or rows that commit late with a
      // lower seq, lie between its seqs): its seqs go as one array parameter.
      std::string seqs = "{";
      for (const auto& r : res.rows) {
        if (seqs.size() > 1) seqs += ',';
        seqs += std::to_string(r.integer(0));
        if (!r.is_null(1)) events.push_back(event_from(r, db.schema(), false));
      }
      seqs += '}';
      if (sink_ && !events.empty()) sink_(events);  // throws: the whole batch stays queued (rolled back)
      tx.query(mark, {seqs});
      return res.rows.size();
    });
    moved += n;
    delivered_.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
    if (n < static_cast<size_t>(kBatch)) break;
  }
}

void OutboxRelay::poll_sqlite(Database& db, size_t& moved) {
  // One process per file, and one relay per process: nothing to claim. A batch is read and moved in a read
  // transaction (the sink writes another database, whose writer must not wait on this one's); its mark is a
  // write the module's writer runs while the next batch, after the last seq read, is read and moved. Each
  // mark covers every row moved since the poll began ([first, last], where still pending: one writer hands
  // out seqs in commit order, so the pending rows up to the last one read are the rows read), so a mark that
  // fails is made good by the next one.
  const std::string mark =
      "UPDATE " + db.schema() +
      ".outbox SET delivered_at = $1 WHERE seq >= $2 AND seq <= $3 AND delivered_at IS NULL";
  struct InFlight {
    std::future<void> done;
    size_t moved;  // in this poll, up to and with this mark
  };
  std::deque<InFlight> inflight;
  size_t read = 0, confirmed = 0;
  auto settle = [&](size_t keep) {
    while (inflight.size() > keep) {
      try {
        inflight.front().done.get();
        confirmed = inflight.front().moved;
      } catch (const std::exception& e) {
        log::error("outbox rows could not be marked delivered; they go again",
                   {{"schema", db.schema()}, {"error", e.what()}});
      }
      inflight.pop_front();
    }
  };
  std::exception_ptr error;
  try {
    int64_t after = 0, first = 0;
    for (int batch = 0; batch < kMaxBatchesPerPoll; ++batch) {
      const size_t n = db.read_platform([&](Tx& tx) -> size_t {
        const std::vector<OutboxEvent> events = read_batch(db, tx, after);
        if (events.empty()) return 0;
        if (sink_) sink_(events);  // throws: the whole batch stays pending
        if (batch == 0) first = events.front().seq;
        after = events.back().seq;
        return events.size();
      });
      if (n == 0) break;
      read += n;
      auto job = std::make_unique<MarkJob>(mark, first, after);
      inflight.push_back({job->outcome(), read});
      db.submit(nullptr, std::move(job));
      settle(1);  // one mark in flight while the next batch moves
      if (n < static_cast<size_t>(kBatch)) break;
    }
  } catch (...) {
    error = std::current_exception();
  }
  settle(0);
  moved = confirmed;
  delivered_.fetch_add(static_cast<int64_t>(confirmed), std::memory_order_relaxed);
  if (error) std::rethrow_exception(error);
}

void OutboxRelay::prune(Database& db) {
  const std::string cutoff = ago(kRetentionSeconds);
  if (db.backend() != Backend::kPostgres) {
    db.write_platform([&](Tx& tx) {
      tx.query("DELETE FROM " + db.schema() + ".outbox WHERE delivered_at IS NOT NULL AND delivered_at < $1",
               {cutoff});
    });
    return;
  }
  // On PostgreSQL delivered_at says nothing ('queued', Outbox::queue_migration): a row is moved when its seq
  // is below every queued one. Walk the oldest of those by seq and delete the run of them old enough, a page
  // at a time; a row not old enough ends the walk, and what follows it waits for the next prune.
  constexpr int64_t kPage = 10'000;
  // The delete checks the queue again: a row that commits late with a lower seq may have been queued since.
  const std::string moved =
      " seq < COALESCE((SELECT min(seq) FROM " + db.schema() + ".outbox_queue), 9223372036854775807)";
  const std::string page =
      "SELECT seq, created_at FROM " + db.schema() + ".outbox WHERE" + moved + " ORDER BY seq LIMIT $1";
  for (;;) {
    const int64_t deleted = db.write_platform([&](Tx& tx) -> int64_t {
      const Result rows = tx.query(page, {kPage});
      int64_t last = -1, n = 0;
      for (const auto& r : rows.rows) {
        if (r.text(1) >= cutoff) break;
        last = r.integer(0);
        ++n;
      }
      if (n > 0) tx.query("DELETE FROM " + db.schema() + ".outbox WHERE seq <= $1 AND" + moved, {last});
      return n;
    });
    if (deleted < kPage) break;
  }
}

}  // namespace cdx::db
