// PostgreSQL backend. One connection pool per server URL, shared by every module schema on that server.
// Requests run as cdx_app inside a transaction that sets cdx.tenant_id locally, so row-level security holds
// even where a query forgets its tenant filter. Migrations run on their own connection as the login role.
#include "db/postgres/postgres_database.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/worker_pool.hpp"
#include "db/database.hpp"

namespace cdx::db {
namespace {

// A caller waiting this long for a pooled connection gets Unavailable (503) instead of pinning its worker
// forever, e.g. when a transaction opens a second one on an exhausted pool.
constexpr auto kCheckoutTimeout = std::chrono::seconds(30);
constexpr const char* kConnectTimeoutSeconds = "10";
constexpr const char* kApplicationName = "cdx";
constexpr const char* kMigrationApplicationName = "cdx-migrate";

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultClearer {
  void operator()(PGresult* r) const { PQclear(r); }
};
struct ConninfoFreer {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};
struct PqFreer {
  void operator()(char* p) const { PQfreemem(p); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnCloser>;
using ResultPtr = std::unique_ptr<PGresult, ResultClearer>;
using ConninfoPtr = std::unique_ptr<PQconninfoOption, ConninfoFreer>;
using PqString = std::unique_ptr<char, PqFreer>;

// ---- URLs and error text ------------------------------------------------------------------------------

struct UrlParts {
  bool valid = false;
  std::string user, password, host, hostaddr, port, dbname;
};

UrlParts parse_url(const std::string& url) {
  UrlParts out;
  char* raw_error = nullptr;
  ConninfoPtr options(PQconninfoParse(url.c_str(), &raw_error));
  PqString error(raw_error);  // freed unread: libpq's parse error may quote the password
  if (!options) return out;
  out.valid = true;
  for (const PQconninfoOption* o = options.get(); o->keyword; ++o) {
    if (!o->val) continue;
    const std::string_view key = o->keyword;
    if (key == "user") out.user = o->val;
    if (key == "password") out.password = o->val;
    if (key == "host") out.host = o->val;
    if (key == "hostaddr") out.hostaddr = o->val;
    if (key == "port") out.port = o->val;
    if (key == "dbname") out.dbname = o->val;
  }
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// libpq's connection errors do not quote the password today; this keeps it that way if one ever does.
std::string scrub(std::string message, const std::string& password) {
  if (password.empty()) return message;
  for (size_t at = message.find(password); at != std::string::npos; at = message.find(password, at + 3)) {
    message.replace(at, password.size(), "***");
  }
  return message;
}

std::string_view sqlstate(const PGresult* r) {
  const char* s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  return s ? s : "";
}

// The server's primary message and detail, never the statement or its parameters (they may hold secrets).
std::string error_text(PGconn* c, const PGresult* r, bool with_detail = true) {
  std::string msg;
  if (r) {
    if (const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)) {
      msg = primary;
      const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
      if (with_detail && detail) msg += std::string(" (") + detail + ")";
      msg += " [SQLSTATE " + std::string(sqlstate(r)) + "]";
      return msg;
    }
    msg = trim(PQresultErrorMessage(r));  // a client-side error: lost connection, out of memory
  }
  if (msg.empty()) msg = trim(PQerrorMessage(c));
  return msg.empty() ? "unknown libpq error" : msg;
}

bool succeeded(const PGresult* r) {
  if (!r) return false;
  const ExecStatusType s = PQresultStatus(r);
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY;
}

// Errors that mean "the server is gone or refusing us", as opposed to a fault in the statement. Not the
// whole 08 class: 08P01 is also what a parameter-count mismatch reports.
bool connection_failed(PGconn* c, const PGresult* r) {
  if (PQstatus(c) != CONNECTION_OK || !r) return true;
  static const std::set<std::string_view> kStates = {"08000", "08001", "08003", "08004", "08006",
                                                     "53300", "57P01", "57P02", "57P03"};
  return kStates.count(sqlstate(r)) > 0;
}

[[noreturn]] void throw_error(PGconn* c, const PGresult* r) {
  if (connection_failed(c, r)) throw Unavailable("PostgreSQL connection failed: " + error_text(c, r));
  // Without the detail: it quotes the duplicate key's value, which may be personal data headed for a log.
  if (sqlstate(r) == "23505") throw UniqueViolation(error_text(c, r, false));
  // 22021: a byte sequence invalid in UTF-8. Without the detail: it quotes the bytes.
  if (sqlstate(r) == "22021") throw InvalidInput(error_text(c, r, false));
  if (sqlstate(r) == "42P08" || sqlstate(r) == "42P18") {
    // SQLite never asks; shared SQL trips on this with "($2 IS NULL OR id < $2)".
    throw std::runtime_error(
        error_text(c, r) +
        ": PostgreSQL types a parameter where it is first used, and IS NULL gives no type; "
        "write CAST($n AS TEXT) IS NULL, or put the comparison first");
  }
  throw std::runtime_error(error_text(c, r));
}

// ---- statements ---------------------------------------------------------------------------------------

// Text without parameters; may hold several statements (migrations).
ResultPtr exec(PGconn* c, const std::string& sql) {
  ResultPtr r(PQexec(c, sql.c_str()));
  if (!succeeded(r.get())) throw_error(c, r.get());
  return r;
}

bool is_word_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
         ch == '$' || static_cast<unsigned char>(ch) >= 0x80;
}

// Which of $1..$n the statement references outside string literals, quoted names, dollar quotes and
// comments. SQLite ignores a parameter the statement does not use; PostgreSQL rejects one it cannot type.
std::vector<bool> referenced_params(std::string_view sql, size_t n) {
  std::vector<bool> used(n, false);
  const size_t size = sql.size();
  auto at = [&](size_t k) { return k < size ? sql[k] : '\0'; };
  size_t i = 0;
  while (i < size) {
    const char ch = sql[i];
    if (ch == '\'') {
      // E'...' strings take backslash escapes; standard ones only double the quote.
      const bool escapes =
          i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') && (i < 2 || !is_word_char(sql[i - 2]));
      for (++i; i < size; ++i) {
        if (escapes && sql[i] == '\\') {
          ++i;
        } else if (sql[i] == '\'') {
          if (at(i + 1) != '\'') break;
          ++i;
        }
      }
      ++i;
    } else if (ch == '"') {
      const size_t end = sql.find('"', i + 1);
      i = end == std::string_view::npos ? size : end + 1;
    } else if (ch == '-' && at(i + 1) == '-') {
      const size_t end = sql.find('\n', i);
      i = end == std::string_view::npos ? size : end + 1;
    } else if (ch == '/' && at(i + 1) == '*') {
      int depth = 1;  // PostgreSQL block comments nest
      for (i += 2; i < size && depth > 0; ++i) {
        if (sql[i] == '/' && at(i + 1) == '*') {
          ++depth;
          ++i;
        } else if (sql[i] == '*' && at(i + 1) == '/') {
          --depth;
          ++i;
        }
      }
    } else if (ch == '$' && !(i > 0 && is_word_char(sql[i - 1]))) {
      size_t j = i + 1;
      if (at(j) >= '0' && at(j) <= '9') {
        size_t number = 0;
        for (; at(j) >= '0' && at(j) <= '9'; ++j) number = number * 10 + static_cast<size_t>(at(j) - '0');
        if (number >= 1 && number <= n) used[number - 1] = true;
        i = j;
        continue;
      }
      while (j < size && is_word_char(sql[j]) && sql[j] != '$') ++j;
      if (at(j) == '$') {  // $tag$ ... $tag$
        const std::string_view tag = sql.substr(i, j - i + 1);
        const size_t end = sql.find(tag, j + 1);
        i = end == std::string_view::npos ? size : end + tag.size();
      } else {
        ++i;
      }
    } else {
      ++i;
    }
  }
  return used;
}

// Parameters go as text with no declared type, so the server types each one from its context, the way it
// would a quoted literal: an int parameter compared with a TEXT column, or a text one given to an INTEGER
// column, behave as they do on SQLite. A parameter the statement never mentions is declared text, which
// PostgreSQL then accepts and ignores, as SQLite does.
ResultPtr exec_params(PGconn* c, std::string_view sql, const Params& params) {
  std::vector<std::string> texts(params.size());
  std::vector<const char*> values(params.size(), nullptr);
  for (size_t i = 0; i < params.size(); ++i) {
    const Param& p = params[i];
    switch (p.kind()) {
      case Param::Kind::kNull:
        continue;
      case Param::Kind::kInt:
        texts[i] = std::to_string(p.as_int());
        break;
      case Param::Kind::kText:
        // libpq takes text parameters as C strings; a NUL would silently cut the value short.
        if (p.as_text().find('\0') != std::string_view::npos) {
          throw std::invalid_argument("parameter $" + std::to_string(i + 1) +
                                      " holds a NUL byte, which PostgreSQL text cannot store");
        }
        texts[i] = std::string(p.as_text());
        break;
    }
    values[i] = texts[i].c_str();
  }
  constexpr Oid kTextOid = 25;  // pg_type.h is a server header; the OID is fixed in the catalog
  std::vector<Oid> types;
  const std::vector<bool> used = referenced_params(sql, params.size());
  for (size_t i = 0; i < used.size(); ++i) {
    if (used[i]) continue;
    types.resize(params.size(), 0);
    types[i] = kTextOid;
  }
  const std::string text(sql);
  ResultPtr r(PQexecParams(c, text.c_str(), static_cast<int>(params.size()),
                           types.empty() ? nullptr : types.data(), values.data(), nullptr, nullptr, 0));
  if (!succeeded(r.get())) throw_error(c, r.get());
  return r;
}

Result to_result(PGresult* r) {
  Result out;
  const int rows = PQntuples(r);
  const int cols = PQnfields(r);
  out.rows.reserve(rows);
  for (int i = 0; i < rows; ++i) {
    std::vector<std::optional<std::string>> row(cols);
    for (int j = 0; j < cols; ++j) {
      if (!PQgetisnull(r, i, j)) {
        row[j].emplace(PQgetvalue(r, i, j), static_cast<size_t>(PQgetlength(r, i, j)));
      }
    }
    out.rows.emplace_back(std::move(row));
  }
  // PQcmdTuples also counts the rows a SELECT returned; Result::affected promises only changed rows.
  const std::string_view status = PQcmdStatus(r);
  for (std::string_view verb : {"INSERT", "UPDATE", "DELETE", "MERGE"}) {
    if (status.substr(0, verb.size()) == verb) {
      const std::string_view n = PQcmdTuples(r);
      std::from_chars(n.data(), n.data() + n.size(), out.affected);
    }
  }
  return out;
}

std::string quote_literal(PGconn* c, const std::string& s) {
  PqString q(PQescapeLiteral(c, s.data(), s.size()));
  if (!q) throw std::runtime_error("cannot quote a literal: " + error_text(c, nullptr));
  return q.get();
}

std::string quote_identifier(PGconn* c, const std::string& s) {
  PqString q(PQescapeIdentifier(c, s.data(), s.size()));
  if (!q) throw std::runtime_error("cannot quote an identifier: " + error_text(c, nullptr));
  return q.get();
}

void rollback(PGconn* c) {
  // Best effort: if this fails the connection is broken or stuck, and the pool drops it on return.
  ResultPtr r(PQexec(c, "ROLLBACK"));
}

ConnPtr connect(const std::string& url, const char* application_name, bool as_app_role) {
  const UrlParts parts = parse_url(url);
  if (!parts.valid) throw Unavailable("cannot connect to PostgreSQL: invalid database URL (not shown)");
  const std::string where = redact_database_url(url);
  // Order matters: the URL (dbname, expanded) overrides the timeout and the name is only a fallback, so an
  // operator's connect_timeout or application_name in the URL wins.
  const char* keys[] = {"connect_timeout", "dbname", "fallback_application_name", nullptr};
  const char* values[] = {kConnectTimeoutSeconds, url.c_str(), application_name, nullptr};
  ConnPtr conn(PQconnectdbParams(keys, values, 1));
  if (!conn) throw Unavailable("cannot connect to PostgreSQL at " + where + ": out of memory");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw Unavailable("cannot connect to PostgreSQL at " + where + ": " +
                      scrub(trim(PQerrorMessage(conn.get())), parts.password));
  }
  // Notices ("relation already exists, skipping") would otherwise go to stderr, outside our JSON logs.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  if (as_app_role) {
    ResultPtr r(PQexec(conn.get(), "SET ROLE cdx_app"));
    if (!succeeded(r.get())) {
      const std::string user = PQuser(conn.get());
      throw Unavailable("connected to PostgreSQL at " + where +
                        " but cannot SET ROLE cdx_app: " + error_text(conn.get(), r.get()) +
                        ". Run the migrations first (they create the role and make the login role a member), "
                        "or as a superuser run: GRANT cdx_app TO " +
                        user + ";");
    }
  }
  return conn;
}

bool is_identifier(std::string_view s) {
  if (s.empty() || s.size() > 63 || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char ch : s) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) return false;
  }
  return true;
}

// Stable across processes and builds (unlike std::hash), so every process takes the same lock.
int64_t lock_key(std::string_view name) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  return static_cast<int64_t>(h);
}

std::string advisory_lock_sql(std::string_view name) {
  return "SELECT pg_advisory_xact_lock(" + std::to_string(lock_key(name)) + ")";
}

void in_transaction(PGconn* c, const std::function<void()>& fn) {
  exec(c, "BEGIN");
  try {
    fn();
    exec(c, "COMMIT");
  } catch (...) {
    rollback(c);
    throw;
  }
}

// ---- pool ---------------------------------------------------------------------------------------------

class Pool {
 public:
  // A checked-out connection; goes back to the pool (or is closed, if broken) when it goes out of scope.
  class Lease {
   public:
    Lease(Pool& pool, ConnPtr conn, bool reused) : pool_(&pool), conn_(std::move(conn)), reused_(reused) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (conn_) pool_->give_back(std::move(conn_));
    }
    PGconn* get() const { return conn_.get(); }
    bool reused() const { return reused_; }

   private:
    Pool* pool_;
    ConnPtr conn_;
    bool reused_;
  };

  Pool(std::string url, int capacity) : url_(std::move(url)), capacity_(capacity) {}

  Lease acquire() {
    std::unique_lock lock(mu_);
    if (idle_.empty() && open_ >= capacity_) {
      ++waits_;
      if (!cv_.wait_for(lock, kCheckoutTimeout, [&] { return !idle_.empty() || open_ < capacity_; })) {
        throw Unavailable("no PostgreSQL connection to " + redact_database_url(url_) + " came free within " +
                          std::to_string(kCheckoutTimeout.count()) + "s (all " + std::to_string(capacity_) +
                          " in use)");
      }
    }
    ++in_use_;
    if (!idle_.empty()) {
      ConnPtr conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(conn), true);
    }
    // Reserve the slot, then connect without the lock held: connecting takes several round trips.
    ++open_;
    lock.unlock();
    try {
      return Lease(*this, connect(url_, kApplicationName, true), false);
    } catch (...) {
      lock.lock();
      --open_;
      --in_use_;
      lock.unlock();
      cv_.notify_one();
      throw;
    }
  }

  // After one idle connection turned out dead (a server restart), the others most likely are too.
  void drop_idle() {
    std::vector<ConnPtr> doomed;
    {
      std::lock_guard lock(mu_);
      doomed.swap(idle_);
      open_ -= static_cast<int64_t>(doomed.size());
    }
    cv_.notify_all();
  }

  PoolStats stats() const {
    std::lock_guard lock(mu_);
    return {open_, in_use_, waits_};
  }
  size_t capacity() const { return static_cast<size_t>(capacity_); }
  const std::string& url() const { return url_; }

 private:
  void give_back(ConnPtr conn) {
    // Only a healthy connection outside any transaction may serve the next caller.
    const bool reusable =
        PQstatus(conn.get()) == CONNECTION_OK && PQtransactionStatus(conn.get()) == PQTRANS_IDLE;
    ConnPtr doomed;
    {
      std::lock_guard lock(mu_);
      --in_use_;
      if (reusable) {
        idle_.push_back(std::move(conn));
      } else {
        --open_;
        doomed = std::move(conn);
      }
    }
    cv_.notify_one();
  }  // doomed is closed here, outside the lock: PQfinish may write to the socket

  const std::string url_;
  const int64_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ConnPtr> idle_;
  int64_t open_ = 0;  // open or being opened
  int64_t in_use_ = 0;
  int64_t waits_ = 0;
};

// ---- database -----------------------------------------------------------------------------------------

class PgTx final : public Tx {
 public:
  explicit PgTx(PGconn* conn) : conn_(conn) {}
  Result query(std::string_view sql, const Params& params) override {
    ResultPtr r = exec_params(conn_, sql, params);
    return to_result(r.get());
  }
  Backend backend() const override { return Backend::kPostgres; }
  void copy_in(std::string_view copy_statement, std::string_view data) override {
    ResultPtr start(PQexec(conn_, std::string(copy_statement).c_str()));
    if (PQresultStatus(start.get()) != PGRES_COPY_IN) {
      if (!succeeded(start.get())) throw_error(conn_, start.get());
      throw std::logic_error("copy_in needs a COPY ... FROM STDIN statement");
    }
    // PQputCopyData takes an int length: send in pieces (blocking connection: 1 = queued, -1 = failed).
    constexpr size_t kPiece = 1 << 20;
    bool sent = true;
    for (size_t at = 0; sent && at < data.size(); at += kPiece) {
      const size_t n = std::min(kPiece, data.size() - at);
      sent = PQputCopyData(conn_, data.data() + at, static_cast<int>(n)) == 1;
    }
    if (sent) sent = PQputCopyEnd(conn_, nullptr) == 1;
    // Every result is read before the connection takes another statement (the rollback, if it failed).
    ResultPtr done(PQgetResult(conn_));
    while (ResultPtr more{PQgetResult(conn_)}) {
    }
    if (!sent) throw Unavailable("PostgreSQL connection failed during COPY: " + error_text(conn_, nullptr));
    if (!succeeded(done.get())) throw_error(conn_, done.get());
  }

 private:
  PGconn* conn_;
};

class PostgresDatabase final : public Database {
 public:
  PostgresDatabase(std::string schema, std::shared_ptr<Pool> pool, std::string migration_url,
                   std::string app_user)
      : schema_(std::move(schema)),
        pool_(std::move(pool)),
        migration_url_(std::move(migration_url)),
        app_user_(std::move(app_user)) {}

  Backend backend() const override { return Backend::kPostgres; }
  const std::string& schema() const override { return schema_; }
  PoolStats stats() const override { return pool_->stats(); }

  // A submitted write runs on this database's own writer threads, one per pooled connection: no caller's
  // worker waits through the commit, and as many writes are in flight as the pool has connections, so
  // PostgreSQL groups their WAL flushes.
  bool queues_writes() const override { return true; }
  void submit(const TenantScope* scope, std::unique_ptr<WriteJob> job) override {
    std::call_once(writers_started_, [&] { writers_ = std::make_unique<WorkerPool>(pool_->capacity()); });
    try {
      writers_->post(Queued{this, scope, std::move(job)});
    } catch (...) {  // the writers have stopped; the Queued that did not run has finished its job
    }
  }

  void ping() override {
    try {
      start([](PGconn*) { return std::string("SELECT 1"); });
    } catch (const Unavailable&) {
      throw;
    } catch (const std::exception& e) {
      throw Unavailable(std::string("PostgreSQL ping failed: ") + e.what());
    }
  }

  void migrate(const std::vector<Migration>& migrations) override {
    std::set<int> versions;
    for (const Migration& m : migrations) {
      if (!versions.insert(m.version).second) {
        throw std::invalid_argument(label(m) + " is listed twice");
      }
      for (const std::string& table : m.tenant_tables) {
        const std::string prefix = schema_ + ".";
        if (table.compare(0, prefix.size(), prefix) != 0 || !is_identifier(table.substr(prefix.size()))) {
          throw std::invalid_argument(label(m) + ": tenant table '" + table + "' is not named " + prefix +
                                      "<lowercase name>");
        }
      }
    }
    ConnPtr conn = connect(migration_url_, kMigrationApplicationName, false);
    PGconn* c = conn.get();
    guarded("preparing schema " + schema_, [&] {
      in_transaction(c, [&] {
        // One lock for every schema: the role and its memberships are shared by the whole server.
        exec(c, advisory_lock_sql("cdx.migrate"));
        exec(c, "CREATE SCHEMA IF NOT EXISTS " + schema_);
        ensure_app_role(c);
        exec(c, "CREATE TABLE IF NOT EXISTS " + schema_ +
                    ".schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT "
                    "NOT NULL)");
      });
    });
    for (const Migration& m : migrations) {
      guarded(label(m), [&] { in_transaction(c, [&] { apply(c, m); }); });
    }
  }

 protected:
  void transaction(const TenantScope* scope, bool write, const std::function<void(Tx&)>& fn) override {
    // An empty setting would match rows whose tenant_id is '' (the policy guards too; this fails louder).
    if (scope && scope->tenant_id().empty())
      throw std::invalid_argument("TenantScope with an empty tenant id");
    // BEGIN and the tenant in one round trip; the literal is escaped by libpq for this connection's encoding.
    Pool::Lease lease = start([&](PGconn* c) {
      std::string sql = write ? "BEGIN" : "BEGIN READ ONLY";
      if (scope)
        sql += "; SELECT set_config('cdx.tenant_id', " + quote_literal(c, scope->tenant_id()) + ", true)";
      return sql;
    });
    PGconn* c = lease.get();
    PgTx tx(c);
    if (write) began_write();
    try {
      fn(tx);
    } catch (...) {
      rollback(c);
      throw;
    }
    if (PQtransactionStatus(c) == PQTRANS_INERROR) {
      // fn caught a failed statement and returned normally. SQLite would commit the rest; PostgreSQL has
      // already discarded the transaction (COMMIT would just answer ROLLBACK), so say so rather than
      // report a success that did not happen.
      rollback(c);
      throw std::runtime_error(
          "transaction rolled back: a statement in it failed and the error was caught; PostgreSQL does not "
          "continue a transaction after an error (use ON CONFLICT, or let the error propagate)");
    }
    exec(c, "COMMIT");
    if (write) committed();
  }

  std::unique_ptr<Listener> listen(const std::string& channel) override;

 private:
  // Checks out a connection and runs the first statement. A pooled connection that sat idle may have been
  // closed by a server restart, which shows only on first use; nothing has run yet, so one retry on a
  // fresh connection is safe.
  Pool::Lease start(const std::function<std::string(PGconn*)>& first_statement) {
    for (int attempt = 0;; ++attempt) {
      Pool::Lease lease = pool_->acquire();
      PGconn* c = lease.get();
      ResultPtr r(PQexec(c, first_statement(c).c_str()));
      if (succeeded(r.get())) return lease;
      if (attempt == 0 && lease.reused() && PQstatus(c) != CONNECTION_OK) {
        pool_->drop_idle();
        continue;  // the lease returns the dead connection, and the pool closes it
      }
      throw_error(c, r.get());
    }
  }

  std::string label(const Migration& m) const {
    return "migration " + schema_ + " v" + std::to_string(m.version) + " (" + m.name + ")";
  }

  // Names what failed; keeps Unavailable distinct so a lost server still reads as 503.
  static void guarded(const std::string& what, const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Unavailable& e) {
      throw Unavailable(what + " failed: " + e.what());
    } catch (const std::exception& e) {
      throw std::runtime_error(what + " failed: " + e.what());
    }
  }

  void apply(PGconn* c, const Migration& m) {
    exec(c, advisory_lock_sql("cdx.migrate." + schema_));
    // Checked under the lock: another process may have applied it while we waited.
    ResultPtr done =
        exec_params(c, "SELECT 1 FROM " + schema_ + ".schema_migrations WHERE version = $1", {m.version});
    if (PQntuples(done.get()) > 0) return;
    if (!m.sql.empty()) exec(c, m.sql);  // a migration may be for one backend only
    if (!m.postgres_sql.empty()) exec(c, m.postgres_sql);
    if (PQtransactionStatus(c) != PQTRANS_INTRANS) {
      throw std::runtime_error(
          "its SQL ended the migration's transaction (COMMIT or ROLLBACK inside a migration)");
    }
    for (const std::string& t : m.tenant_tables) {
      // NULLIF: once a session has set cdx.tenant_id, "unset" reads back as '' rather than NULL.
      const std::string tenant = "NULLIF(current_setting('cdx.tenant_id', true), '')";
      exec(c, "ALTER TABLE " + t + " ENABLE ROW LEVEL SECURITY; ALTER TABLE " + t +
                  " FORCE ROW LEVEL SECURITY; CREATE POLICY tenant_isolation ON " + t +
                  " USING (tenant_id = " + tenant + ") WITH CHECK (tenant_id = " + tenant + ")");
    }
    exec(c, "GRANT USAGE ON SCHEMA " + schema_ +
                " TO cdx_app; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " + schema_ +
                " TO cdx_app; GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA " + schema_ +
                " TO cdx_app; REVOKE ALL ON " + schema_ + ".schema_migrations FROM cdx_app");
    exec_params(
        c, "INSERT INTO " + schema_ + ".schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        {m.version, m.name, format_rfc3339(Clock::now())});
  }

  void ensure_app_role(PGconn* c) const {
    const std::string login = PQuser(c);
    ResultPtr created(PQexec(c, R"sql(
      DO $cdx$
      BEGIN
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'cdx_app') THEN
          CREATE ROLE cdx_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
        END IF;
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- another server created it between our check and our CREATE
      END
      $cdx$)sql"));
    if (!succeeded(created.get())) {
      if (sqlstate(created.get()) == "42501") {
        throw std::runtime_error(
            "login role " + login + " may not create role cdx_app: " + error_text(c, created.get()) +
            ". As a superuser run: CREATE ROLE cdx_app NOLOGIN; GRANT cdx_app TO " + login + ";");
      }
      throw_error(c, created.get());
    }
    ResultPtr attrs =
        exec(c, "SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = 'cdx_app'");
    if (PQntuples(attrs.get()) == 1 && std::string_view(PQgetvalue(attrs.get(), 0, 0)) == "t") {
      throw std::runtime_error(
          "role cdx_app has SUPERUSER or BYPASSRLS, so row-level security would not apply to requests. As a "
          "superuser run: ALTER ROLE cdx_app NOSUPERUSER NOBYPASSRLS;");
    }
    grant_app_role(c, login, "CURRENT_USER", login);
    // With a separate migration login, the login of the module's URL is the one that must SET ROLE.
    if (!app_user_.empty() && app_user_ != login)
      grant_app_role(c, app_user_, quote_identifier(c, app_user_), login);
  }

  static void grant_app_role(PGconn* c, const std::string& user, const std::string& grantee,
                             const std::string& login) {
    ResultPtr member = exec_params(c, "SELECT pg_catalog.pg_has_role($1::name, 'cdx_app', 'MEMBER')", {user});
    if (std::string_view(PQgetvalue(member.get(), 0, 0)) == "t") return;
    ResultPtr r(PQexec(c, ("GRANT cdx_app TO " + grantee).c_str()));
    if (succeeded(r.get())) return;
    if (sqlstate(r.get()) == "42501") {
      throw std::runtime_error("login role " + login + " may not grant cdx_app to " + user + ": " +
                               error_text(c, r.get()) + ". As a superuser run: GRANT cdx_app TO " + user +
                               ";");
    }
    throw_error(c, r.get());
  }

  const std::string schema_;
  const std::shared_ptr<Pool> pool_;
  const std::string migration_url_;
  const std::string app_user_;  // login of the module's URL when it may differ from the migration login
  // A write waiting for a writer thread; one dropped without running (the writers stopped) still finishes.
  struct Queued {
    PostgresDatabase* db;
    const TenantScope* scope;
    std::unique_ptr<WriteJob> job;
    Queued(PostgresDatabase* d, const TenantScope* s, std::unique_ptr<WriteJob> j)
        : db(d), scope(s), job(std::move(j)) {}
    Queued(Queued&&) = default;
    ~Queued() {
      if (job)
        job->finish(std::make_exception_ptr(Unavailable("the " + db->schema_ + " database is closing")));
    }
    void operator()() { db->Database::submit(scope, std::move(job)); }
  };
  std::once_flag writers_started_;
  std::unique_ptr<WorkerPool> writers_;  // last: stopped (its queued writes run) before the rest goes
};

// LISTEN on a connection of its own (a pooled one would lose its registrations to the next borrower).
class PgListener final : public Listener {
 public:
  PgListener(const std::string& url, const std::string& channel)
      : conn_(connect(url, kApplicationName, false)) {
    ResultPtr r(PQexec(conn_.get(), ("LISTEN " + quote_identifier(conn_.get(), channel)).c_str()));
    if (!succeeded(r.get())) throw Unavailable("cannot LISTEN: " + error_text(conn_.get(), r.get()));
  }

  bool wait(std::chrono::milliseconds timeout) override {
    PGconn* c = conn_.get();
    if (drain()) return true;
    pollfd fd{PQsocket(c), POLLIN, 0};
    if (fd.fd < 0) throw Unavailable("the PostgreSQL listener's connection is closed");
    const int n = ::poll(&fd, 1, static_cast<int>(timeout.count()));
    if (n < 0) return false;  // EINTR: the caller waits again
    if (n == 0) return false;
    if (!PQconsumeInput(c))
      throw Unavailable("the PostgreSQL listener's connection broke: " + error_text(c, nullptr));
    return drain();
  }

 private:
  bool drain() {
    bool any = false;
    while (PGnotify* n = PQnotifies(conn_.get())) {
      PQfreemem(n);
      any = true;
    }
    return any;
  }
  ConnPtr conn_;
};

std::unique_ptr<Listener> PostgresDatabase::listen(const std::string& channel) {
  return std::make_unique<PgListener>(pool_->url(), channel);
}

class PostgresFactory final : public ConnectionFactory {
 public:
  explicit PostgresFactory(StorageConfig config) : config_(std::move(config)) {
    if (config_.pool_size < 1) throw std::invalid_argument("PostgreSQL pool_size must be at least 1");
  }

  std::shared_ptr<Database> open(const std::string& schema) override {
    // Schema names are spliced into SQL text unquoted, so only plain lowercase identifiers are accepted.
    if (!is_identifier(schema)) throw std::invalid_argument("invalid schema name '" + schema + "'");
    std::string url = config_.database_url;
    for (const auto& [name, override_url] : config_.module_urls) {
      if (name == schema && !override_url.empty()) url = override_url;
    }
    if (url.empty()) throw std::invalid_argument("no PostgreSQL URL configured for schema " + schema);
    // The migration login belongs to the main server; a module moved to its own server migrates through
    // its own URL rather than creating its tables on the wrong server.
    const bool own_server = url != config_.database_url;
    const std::string migration_url =
        (!own_server && !config_.migration_database_url.empty()) ? config_.migration_database_url : url;
    std::string app_user = migration_url != url ? parse_url(url).user : std::string();

    std::shared_ptr<Pool> pool;
    {
      std::lock_guard lock(mu_);
      auto& slot = pools_[url];
      if (!slot) slot = std::make_shared<Pool>(url, config_.pool_size);
      pool = slot;
    }
    return std::make_shared<PostgresDatabase>(schema, std::move(pool), migration_url, std::move(app_user));
  }

 private:
  const StorageConfig config_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Pool>> pools_;
};

}  // namespace

std::string redact_database_url(const std::string& url) {
  const UrlParts p = parse_url(url);
  if (!p.valid) return "<invalid database URL>";
  std::string host = !p.host.empty() ? p.host : p.hostaddr;
  std::string out;
  if (!p.user.empty()) out += p.user + "@";
  out += host.empty() ? "localhost" : host;
  if (!p.port.empty()) out += ":" + p.port;
  out += "/" + p.dbname;
  return out;
}

std::unique_ptr<ConnectionFactory> make_postgres_factory(const StorageConfig& config) {
  return std::make_unique<PostgresFactory>(config);
}

}  // namespace cdx::db
