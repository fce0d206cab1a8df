// The storage interface every module uses; SQLite and PostgreSQL implement it. SQL text is shared:
// `$1` placeholders, `schema.table` names (SQLite attaches each module file under its schema name).
//   auto db = factory.open("crm_db");
//   db->migrate(crm::migrations());
//   auto rows = co_await workers.run([&] { return db->read(scope, [&](db::Tx& tx) {
//       return tx.query("SELECT id FROM crm_db.contacts WHERE tenant_id = $1", {scope.tenant_id()}); }); });
#pragma once
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/tenant_scope.hpp"

namespace cdx::db {

enum class Backend { kSqlite, kPostgres };

// A bound parameter. It views text it does not own: build Params inline in the query() call, or keep the
// strings alive while the Params exist.
class Param {
 public:
  enum class Kind { kNull, kInt, kText };
  Param(std::nullptr_t) : kind_(Kind::kNull) {}
  Param(int64_t v) : kind_(Kind::kInt), int_(v) {}
  Param(int v) : kind_(Kind::kInt), int_(v) {}
  Param(bool v) : kind_(Kind::kInt), int_(v ? 1 : 0) {}
  Param(std::string_view v) : kind_(Kind::kText), text_(v) {}
  Param(const std::string& v) : kind_(Kind::kText), text_(v) {}
  Param(const char* v) : kind_(Kind::kText), text_(v) {}
  template <class T>
  Param(const std::optional<T>& v) : Param(nullptr) {
    if (v) *this = Param(*v);
  }
  Kind kind() const { return kind_; }
  int64_t as_int() const { return int_; }
  std::string_view as_text() const { return text_; }

 private:
  Kind kind_;
  int64_t int_ = 0;
  std::string_view text_;
};
using Params = std::vector<Param>;

class Row {
 public:
  explicit Row(std::vector<std::optional<std::string>> cols) : cols_(std::move(cols)) {}
  size_t size() const { return cols_.size(); }
  bool is_null(size_t i) const { return !cols_.at(i).has_value(); }
  const std::string& text(size_t i) const;  // throws on NULL
  std::optional<std::string> opt_text(size_t i) const { return cols_.at(i); }
  int64_t integer(size_t i) const;  // throws on NULL or non-integer text
  std::optional<int64_t> opt_integer(size_t i) const;

 private:
  std::vector<std::optional<std::string>> cols_;
};

struct Result {
  std::vector<Row> rows;
  int64_t affected = 0;  // rows changed by INSERT/UPDATE/DELETE
  bool empty() const { return rows.empty(); }
};

// Database failures are cdx::Errors carrying the answer a client gets (the edge renders them like any
// other); what() keeps the database's own message, for logs and tests, never for clients.
class DatabaseError : public Error {
 public:
  DatabaseError(Code code, std::string detail, std::string internal)
      : Error(code, std::move(detail)), internal_(std::move(internal)) {}
  const char* what() const noexcept override { return internal_.c_str(); }

 private:
  std::string internal_;
};
// A UNIQUE/PRIMARY KEY violation: 409.
class UniqueViolation : public DatabaseError {
 public:
  explicit UniqueViolation(std::string internal)
      : DatabaseError(Code::kConflict, "A resource with the same unique value already exists.",
                      std::move(internal)) {}
};
// A value the database cannot store as text (invalid UTF-8 that slipped past the edge): 400.
class InvalidInput : public DatabaseError {
 public:
  explicit InvalidInput(std::string internal)
      : DatabaseError(Code::kInvalidRequest, "A value in the request is not valid UTF-8 text.",
                      std::move(internal)) {}
};
// The database cannot be reached: 503, retry shortly.
class Unavailable : public DatabaseError {
 public:
  explicit Unavailable(std::string internal)
      : DatabaseError(Code::kServiceUnavailable, "A database is unavailable; try again shortly.",
                      std::move(internal)) {
    with_header("Retry-After", "1");
  }
};

// One connection inside one transaction. Never outlives the callback that received it.
class Tx {
 public:
  virtual ~Tx() = default;
  virtual Result query(std::string_view sql, const Params& params = {}) = 0;
  virtual Backend backend() const = 0;
  // PostgreSQL only: runs copy_statement (COPY ... FROM STDIN, text format) and sends data, whole lines in
  // COPY's text format, as its input: bulk loads at a fraction of an INSERT's cost. SQLite throws
  // logic_error (callers check backend()).
  virtual void copy_in(std::string_view /*copy_statement*/, std::string_view /*data*/) {
    throw std::logic_error("COPY is PostgreSQL only");
  }

  // Serialises this write transaction with every other one taking the same key, until commit: for
  // check-then-write rules (quotas, "keep one admin"). SQLite write transactions are serialised already;
  // PostgreSQL takes a transaction-level advisory lock.
  void lock(std::string_view key) {
    if (backend() == Backend::kPostgres) query("SELECT pg_advisory_xact_lock(hashtext($1))", {key});
  }
};

// A write handed to a Database without a thread waiting for its commit (db/async.hpp awaits one from a
// coroutine). The database owns it from submit() until finish() has returned.
class WriteJob {
 public:
  virtual ~WriteJob() = default;
  // Runs inside a write transaction. On SQLite it is one savepoint of a group commit: throwing undoes this
  // job's changes alone, and the exception reaches finish().
  virtual void run(Tx& tx) = 0;
  // Called exactly once: with no error after the transaction holding run()'s changes has committed (on
  // disk: synchronous=FULL), or with the error of run() or of the commit (then nothing of this job is
  // committed). It runs on a database thread: hand the outcome over (post to an executor) and return;
  // never block, never wait for another write.
  virtual void finish(std::exception_ptr error) noexcept = 0;
};

// Bulk work on a database with one writer (SQLite): while a WriteHold lives, the other writes of its tenant
// to this database wait in a queue (an awaited write holds no thread meanwhile; a blocking write blocks its
// caller), and the holder writes through submit(): jobs that run like any other, between other tenants'
// writes. What the holder read of its tenant's rows then stays true until it lets go, so it can check a large
// batch outside any write transaction and write it in short ones. The first job it submits commits after
// every write of the tenant queued before the hold. Destroying it sends the waiting writes on, in order.
class WriteHold {
 public:
  virtual ~WriteHold() = default;
  virtual void submit(std::unique_ptr<WriteJob> job) = 0;
};

struct Migration {
  int version;
  std::string name;
  std::string sql;                         // portable DDL, may hold several statements
  std::vector<std::string> tenant_tables;  // get RLS (PostgreSQL) and grants; listed once, when created
  std::string postgres_sql = {};           // extra, PostgreSQL only (indexes with operators, etc.)
  std::string sqlite_sql = {};             // extra, SQLite only
};

// Announcements across processes on one channel (PostgreSQL LISTEN/NOTIFY), on a connection of its own.
class Listener {
 public:
  virtual ~Listener() = default;
  // Waits up to timeout; true when at least one notification came (all pending ones are consumed). Throws
  // Unavailable when the connection broke (make a new listener).
  virtual bool wait(std::chrono::milliseconds timeout) = 0;
};

// Marks the current thread's open write transaction as one that wrote outbox rows (Outbox::append calls
// it): when that transaction commits, the database calls its commit hook.
void note_outbox_write();

struct PoolStats {
  int64_t size = 0;    // open connections
  int64_t in_use = 0;  // checked out now
  int64_t waits = 0;   // times a caller waited for a free connection
};

// A module's database (one schema). Every call blocks (submit() may not; see there): run it on the worker
// pool, never on an I/O thread. A coroutine awaits a write without a worker waiting through the commit
// with db::write_async (db/async.hpp).
class Database {
 public:
  virtual ~Database() = default;
  virtual Backend backend() const = 0;
  virtual const std::string& schema() const = 0;

  // Tenant data: runs fn in a transaction with the tenant set (RLS on PostgreSQL). Commits on return,
  // rolls back on throw. read() may run concurrently with other reads; write() takes the write lock.
  template <class F>
  auto read(const TenantScope& scope, F&& fn) {
    return run<F>(&scope, false, std::forward<F>(fn));
  }
  template <class F>
  auto write(const TenantScope& scope, F&& fn) {
    return run<F>(&scope, true, std::forward<F>(fn));
  }
  // Platform tables that are not tenant data (tenants, plans, key index): no tenant set.
  template <class F>
  auto read_platform(F&& fn) {
    return run<F>(nullptr, false, std::forward<F>(fn));
  }
  template <class F>
  auto write_platform(F&& fn) {
    return run<F>(nullptr, true, std::forward<F>(fn));
  }

  // A write transaction that no caller's thread waits through. scope null is a platform write. Never
  // throws: every outcome, a refused submission too, reaches job->finish().
  // When queues_writes() is true, submit() only queues: the database's writer runs the job and calls
  // finish() after the commit (SQLite's group commit). Otherwise it runs the transaction on the calling
  // thread and finishes the job before it returns, so call it on a worker (db::write_async does both).
  virtual bool queues_writes() const { return false; }
  virtual void submit(const TenantScope* scope, std::unique_ptr<WriteJob> job);
  // A hold on the tenant's writes (see WriteHold), or nullptr where writers do not exclude each other
  // (PostgreSQL: one long transaction of a tenant holds up no other tenant there). One hold per tenant at a
  // time: a second one while the first lives is a logic_error.
  virtual std::unique_ptr<WriteHold> hold_writes(const TenantScope&) { return nullptr; }

  // Applies the migrations not yet recorded, each in its own transaction. Idempotent.
  virtual void migrate(const std::vector<Migration>& migrations) = 0;
  virtual void ping() = 0;  // throws Unavailable when the database cannot answer
  // Overwrites what earlier writes left in free space (a secret's plain text after it was sealed in place).
  // SQLite rebuilds its file (VACUUM) and truncates its write-ahead log; blocking, for start-up and admin
  // commands. PostgreSQL keeps old row versions until a VACUUM by the tables' owner: nothing done here
  // (docs/operations.md says what to do).
  virtual void scrub() {}
  virtual PoolStats stats() const = 0;

  // Called on the committing thread after a write transaction that appended outbox rows commits (the relay
  // wakes on it). Set before the database is used; must be quick and must not throw.
  void set_commit_hook(std::function<void()> hook) { commit_hook_ = std::move(hook); }
  // A listener on channel, or nullptr where the database has no notifications (SQLite: one process, which
  // the commit hook covers).
  virtual std::unique_ptr<Listener> listen(const std::string& /*channel*/) { return nullptr; }

 protected:
  virtual void transaction(const TenantScope* scope, bool write, const std::function<void(Tx&)>& fn) = 0;
  // Implementations call began_write() when a write transaction (or group) starts and committed() after its
  // COMMIT succeeded.
  static void began_write();
  void committed() const;

 private:
  std::function<void()> commit_hook_;

 public:
  // Runs fn(tx) inside the write transaction tx so that transactions this thread opens on this database
  // meanwhile join it (write() does it itself; the awaited writes of db/async.hpp call it).
  template <class F>
  decltype(auto) joining(const TenantScope* scope, Tx& tx, F&& fn) {
    Ambient a{this, scope, &tx, innermost()};
    innermost() = &a;
    struct Pop {
      Ambient& a;
      ~Pop() { innermost() = a.outer; }
    } pop{a};
    return fn(tx);
  }

 private:
  // A transaction opened inside a write callback of the same database (on the thread running it) joins
  // that write instead of opening another: services compose, and what they do together commits or rolls
  // back together (an idempotent answer with the change it describes).
  struct Ambient {
    const Database* db;
    const TenantScope* scope;
    Tx* tx;
    Ambient* outer;
  };
  static Ambient*& innermost() {
    thread_local Ambient* a = nullptr;
    return a;
  }
  Tx* joined(const TenantScope* scope) const {
    for (Ambient* a = innermost(); a; a = a->outer) {
      if (a->db != this) continue;
      if ((a->scope == nullptr) != (scope == nullptr) ||
          (scope && a->scope->tenant_id() != scope->tenant_id()))
        throw std::logic_error("a transaction nested in a write of " + schema() +
                               " must act in the same tenant");
      return a->tx;
    }
    return nullptr;
  }

  template <class F>
  auto run(const TenantScope* scope, bool write, F&& fn) {
    using R = std::invoke_result_t<F, Tx&>;
    if (Tx* tx = joined(scope)) return fn(*tx);
    auto body = [&](Tx& tx) {
      if (!write) return fn(tx);
      return joining(scope, tx, fn);
    };
    if constexpr (std::is_void_v<R>) {
      transaction(scope, write, [&](Tx& tx) { body(tx); });
    } else {
      std::optional<R> out;
      transaction(scope, write, [&](Tx& tx) { out.emplace(body(tx)); });
      return std::move(*out);
    }
  }
};

// Opens one Database per module schema, sharing connection pools between schemas on one server.
class ConnectionFactory {
 public:
  virtual ~ConnectionFactory() = default;
  virtual std::shared_ptr<Database> open(const std::string& schema) = 0;
};

struct StorageConfig {
  std::string data_dir = "./data";     // SQLite files live here
  std::string database_url;            // PostgreSQL; empty = SQLite
  std::string migration_database_url;  // optional separate login for migrations
  int pool_size = 8;                   // PostgreSQL connections per server
  // Per-module overrides: CDX_<MODULE>_DATABASE_URL, keyed by schema ("crm_db").
  std::vector<std::pair<std::string, std::string>> module_urls;
};

std::unique_ptr<ConnectionFactory> make_connection_factory(const StorageConfig& config);
// A database this process does not hold (the constellation's gateway builds modules only to learn their
// routes): every call throws Unavailable.
std::shared_ptr<Database> make_detached_database(std::string schema);
std::unique_ptr<ConnectionFactory> make_sqlite_factory(const std::string& data_dir);
std::unique_ptr<ConnectionFactory> make_postgres_factory(const StorageConfig& config);

}  // namespace cdx::db
