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

// The row with its payload as text; parsed too unless `parse` is false (the relay parses what a subscriber
// takes).
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

bool matches(const std::string& prefix, const std::string& type) {
  if (prefix.empty()) return true;
  if (prefix.back() == '.') return type.compare(0, prefix.size(), prefix) == 0;
  return type == prefix;
}

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
  tx.query("INSERT INTO " + schema_ +
               ".outbox (id, tenant_id, type, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
           {e.id, e.tenant_id, e.type, text, e.created_at});
  note_outbox_write();
  return e;
}

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

void OutboxRelay::subscribe(std::string prefix, Subscriber fn, Reads reads) {
  std::lock_guard lock(mu_);
  subscribers_.push_back({std::move(prefix), std::move(fn), reads});
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

namespace {

// The updates after a batch on SQLite, as a write the module's writer runs (a group-commit job): the relay
// moves the next batch meanwhile.
class MarkJob final : public WriteJob {
 public:
  explicit MarkJob(std::vector<std::function<void(Tx&)>> updates) : updates_(std::move(updates)) {}
  void run(Tx& tx) override {
    for (auto& f : updates_) f(tx);
  }
  void finish(std::exception_ptr error) noexcept override {
    if (error)
      done_.set_exception(error);
    else
      done_.set_value();
  }
  std::future<void> outcome() { return done_.get_future(); }

 private:
  std::vector<std::function<void(Tx&)>> updates_;
  std::promise<void> done_;
};

}  // namespace

size_t OutboxRelay::poll_source(Database& db) {
  if (db.backend() != Backend::kPostgres) return poll_sqlite(db);
  size_t delivered = 0;
  for (int batch = 0; batch < kMaxBatchesPerPoll; ++batch) {
    const Moved m = db.write_platform([&](Tx& tx) { return move_claimed(db, tx); });
    delivered += m.delivered;
    delivered_.fetch_add(static_cast<int64_t>(m.delivered), std::memory_order_relaxed);
    if (m.stopped || m.read < static_cast<size_t>(kBatch)) break;
  }
  return delivered;
}

size_t OutboxRelay::poll_sqlite(Database& db) {
  // One process per file, and one relay per process: nothing to claim. A batch is read and moved in a read
  // transaction (the sink writes another database, whose writer must not wait on this one's); its marks are a
  // write the module's writer runs while the next batch, after the last seq read, is read and moved. Each
  // mark covers every row delivered since the poll began ([first, last], where still pending: one writer
  // hands out seqs in commit order, so the pending rows up to the last one read are the rows read), so a mark
  // that fails is made good by the next one, and a row delivered later is never marked while an earlier one
  // stays pending.
  struct InFlight {
    std::future<void> done;
    size_t delivered;  // in this poll, up to and with this mark
  };
  std::deque<InFlight> inflight;
  size_t delivered = 0, confirmed = 0;
  auto settle = [&](size_t keep) {
    while (inflight.size() > keep) {
      try {
        inflight.front().done.get();
        confirmed = inflight.front().delivered;
      } catch (const std::exception& e) {
        log::error("outbox rows could not be marked delivered; they go again",
                   {{"schema", db.schema()}, {"error", e.what()}});
      }
      inflight.pop_front();
    }
  };
  std::exception_ptr error;
  try {
    int64_t after = 0;
    std::optional<int64_t> first;
    for (int batch = 0; batch < kMaxBatchesPerPoll; ++batch) {
      std::vector<std::function<void(Tx&)>> marks;
      const Moved m = db.read_platform([&](Tx& tx) { return move_read(db, tx, after, first, marks); });
      after = m.last_read;
      delivered += m.delivered;
      if (!marks.empty()) {
        auto job = std::make_unique<MarkJob>(std::move(marks));
        inflight.push_back({job->outcome(), delivered});
        db.submit(nullptr, std::move(job));
      }
      settle(1);  // one mark in flight while the next batch moves
      if (m.stopped || m.read < static_cast<size_t>(kBatch)) break;
    }
  } catch (...) {
    error = std::current_exception();
  }
  settle(0);
  delivered_.fetch_add(static_cast<int64_t>(confirmed), std::memory_order_relaxed);
  if (error) std::rethrow_exception(error);
  return confirmed;
}

std::vector<OutboxEvent> OutboxRelay::read_batch(Database& db, Tx& tx, bool claim, int64_t after,
                                                 std::vector<int64_t>& attempts, std::vector<bool>& taken,
                                                 const std::vector<Subscription>& subscribers) {
  const std::string& schema = db.schema();
  std::vector<OutboxEvent> events;
  {
    // ORDER BY the pending index's own order (delivered_at is NULL throughout): PostgreSQL then walks the
    // index instead of sorting every pending row (60 ms for 20 000 of them, against 3).
    const Result res =
        tx.query(std::string("SELECT ") + kColumns + ", attempts FROM " + schema +
                     ".outbox WHERE delivered_at IS NULL AND seq > $2 ORDER BY delivered_at, seq LIMIT $1" +
                     (claim ? " FOR UPDATE SKIP LOCKED" : ""),
                 {kBatch, after});
    events.reserve(res.rows.size());
    attempts.reserve(res.rows.size());
    for (const auto& r : res.rows) {
      events.push_back(event_from(r, schema, false));
      attempts.push_back(r.integer(6));
    }
  }
  // The sink records the payloads' text as it is; only the events a subscriber reads the payload of are
  // parsed.
  taken.assign(events.size(), false);
  for (size_t i = 0; i < events.size(); ++i) {
    bool parse = false;
    for (const auto& s : subscribers)
      if (matches(s.prefix, events[i].type)) {
        taken[i] = true;
        parse = parse || s.reads == Reads::kPayload;
      }
    if (parse) parse_payload(events[i]);
  }
  return events;
}

size_t OutboxRelay::deliver(const std::string& schema, const std::vector<OutboxEvent>& events,
                            const std::vector<int64_t>& attempts, const std::vector<bool>& taken,
                            const std::vector<Subscription>& subscribers,
                            std::vector<std::function<void(Tx&)>>& updates, size_t& parked) {
  for (size_t i = 0; i < events.size(); ++i) {
    if (!taken[i]) continue;
    const OutboxEvent& e = events[i];
    std::string error;
    for (const auto& s : subscribers) {
      if (!matches(s.prefix, e.type)) continue;
      try {
        s.fn(e);
      } catch (const std::exception& ex) {
        error = ex.what();
      } catch (...) {
        error = "non-standard exception";
      }
      if (!error.empty()) break;
    }
    if (error.empty()) continue;
    failed_.fetch_add(1, std::memory_order_relaxed);
    const bool park = attempts[i] + 1 >= kMaxAttempts;
    log::error(park ? "outbox event parked after repeated delivery failures" : "outbox delivery failed",
               {{"schema", schema}, {"event_id", e.id}, {"type", e.type}, {"error", error}});
    updates.push_back([schema, seq = e.seq, error, park](Tx& t) {
      if (park)
        t.query("UPDATE " + schema +
                    ".outbox SET attempts = attempts + 1, last_error = $2, delivered_at = $3 "
                    "WHERE seq = $1",
                {seq, error, format_rfc3339(Clock::now())});
      else
        t.query("UPDATE " + schema + ".outbox SET attempts = attempts + 1, last_error = $2 WHERE seq = $1",
                {seq, error});
    });
    if (!park) return i;  // keep the order: nothing after it goes out before it
    ++parked;
  }
  return events.size();
}

OutboxRelay::Moved OutboxRelay::move_claimed(Database& db, Tx& tx) {
  const std::string& schema = db.schema();
  std::vector<Subscription> subscribers;
  {
    std::lock_guard lock(mu_);
    subscribers = subscribers_;
  }
  Moved m;
  std::vector<int64_t> attempts;
  std::vector<bool> taken;
  const std::vector<OutboxEvent> events = read_batch(db, tx, true, 0, attempts, taken, subscribers);
  m.read = events.size();
  if (events.empty()) return m;
  m.last_read = events.back().seq;
  // A claimed batch is no range of seqs (rows other replicas claimed, or rows that commit late with a lower
  // seq, lie between its seqs): its seqs go as one array parameter.
  auto seqs = [&](size_t from) {
    std::string list = "{";
    for (size_t i = from; i < events.size(); ++i)
      (list += i > from ? "," : "") += std::to_string(events[i].seq);
    return list + "}";
  };
  // The batch is marked delivered in tx while the sink records it (both mostly the database's work, on two
  // connections); the mark commits only with the rest, after the sink took the batch.
  {
    std::future<void> sunk;
    if (sink_) sunk = std::async(std::launch::async, [&] { sink_(events); });
    tx.query("UPDATE " + schema + ".outbox SET delivered_at = $1 WHERE seq = ANY($2::bigint[])",
             {format_rfc3339(Clock::now()), seqs(0)});  // throws: ~future waits for the sink first
    if (sunk.valid()) sunk.get();  // throws: the whole batch stays pending (the transaction rolls back)
  }
  std::vector<std::function<void(Tx&)>> updates;
  size_t parked = 0;
  const size_t stop = deliver(schema, events, attempts, taken, subscribers, updates, parked);
  for (auto& f : updates) f(tx);
  if (stop < events.size()) {
    m.stopped = true;
    tx.query("UPDATE " + schema + ".outbox SET delivered_at = NULL WHERE seq = ANY($1::bigint[])",
             {seqs(stop)});
  }
  m.delivered = stop - parked;
  return m;
}

OutboxRelay::Moved OutboxRelay::move_read(Database& db, Tx& tx, int64_t after, std::optional<int64_t>& first,
                                          std::vector<std::function<void(Tx&)>>& marks) {
  const std::string& schema = db.schema();
  std::vector<Subscription> subscribers;
  {
    std::lock_guard lock(mu_);
    subscribers = subscribers_;
  }
  Moved m;
  std::vector<int64_t> attempts;
  std::vector<bool> taken;
  const std::vector<OutboxEvent> events = read_batch(db, tx, false, after, attempts, taken, subscribers);
  m.read = events.size();
  if (events.empty()) return m;
  m.last_read = events.back().seq;
  if (!first) first = events.front().seq;
  if (sink_) sink_(events);  // throws: the whole batch stays pending
  size_t parked = 0;
  const size_t stop = deliver(schema, events, attempts, taken, subscribers, marks, parked);
  m.stopped = stop < events.size();
  m.delivered = stop - parked;
  // After the failures' updates (a parked row is stamped with its error first).
  if (stop > 0)
    marks.push_back(
        [sql = "UPDATE " + schema +
               ".outbox SET delivered_at = $1 WHERE seq >= $2 AND seq <= $3 AND delivered_at IS NULL",
         from = *first, to = events[stop - 1].seq](Tx& t) {
          t.query(sql, {format_rfc3339(Clock::now()), from, to});
        });
  return m;
}

void OutboxRelay::prune(Database& db) {
  const std::string cutoff = ago(kRetentionSeconds);
  db.write_platform([&](Tx& tx) {
    tx.query("DELETE FROM " + db.schema() + ".outbox WHERE delivered_at IS NOT NULL AND delivered_at < $1",
             {cutoff});
  });
}

}  // namespace cdx::db
