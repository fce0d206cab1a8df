// SQLite backend: one file per module schema, attached under the schema name so the SQL text is the same
// as on PostgreSQL. Each worker thread gets its own connection (SQLite connections are not shared).
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <regex>
#include <thread>
#include <unordered_map>

#include "common/clock.hpp"
#include "db/database.hpp"

namespace cdx::db {
namespace {

std::atomic<uint64_t> g_next_database_id{1};

class Statement {
 public:
  explicit Statement(sqlite3_stmt* s) : s_(s) {}
  ~Statement() { sqlite3_finalize(s_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_;
};

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what) {
  const int ext = sqlite3_extended_errcode(db);
  std::string msg = std::string(what) + ": " + sqlite3_errmsg(db);
  if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) throw UniqueViolation(msg);
  if (rc == SQLITE_CANTOPEN || rc == SQLITE_IOERR || rc == SQLITE_FULL) throw Unavailable(msg);
  throw std::runtime_error(msg);
}

class Connection final : public Tx {
 public:
  Connection(const std::string& path, const std::string& schema) {
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
    if (int rc = sqlite3_open_v2(":memory:", &db_, flags, nullptr); rc != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw Unavailable("cannot open SQLite: " + msg);
    }
    sqlite3_busy_timeout(db_, 10000);
    sqlite3_extended_result_codes(db_, 1);
    exec("ATTACH DATABASE " + quote(path) + " AS " + schema);
    exec("PRAGMA " + schema + ".journal_mode=WAL");
    exec("PRAGMA " + schema + ".synchronous=FULL");
    exec("PRAGMA foreign_keys=ON");
  }
  ~Connection() override {
    cache_.clear();
    sqlite3_close(db_);
  }

  Backend backend() const override { return Backend::kSqlite; }

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err); rc != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      const int ext = sqlite3_extended_errcode(db_);
      if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) throw UniqueViolation(msg);
      throw std::runtime_error(msg);
    }
  }

  Result query(std::string_view sql, const Params& params) override {
    sqlite3_stmt* stmt = prepare(sql);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    char name[24];
    for (size_t i = 0; i < params.size(); ++i) {
      snprintf(name, sizeof name, "$%zu", i + 1);
      const int idx = sqlite3_bind_parameter_index(stmt, name);
      if (idx == 0) continue;  // parameter not used by this statement
      const Param& p = params[i];
      int rc = SQLITE_OK;
      switch (p.kind()) {
        case Param::Kind::kNull: rc = sqlite3_bind_null(stmt, idx); break;
        case Param::Kind::kInt: rc = sqlite3_bind_int64(stmt, idx, p.as_int()); break;
        case Param::Kind::kText:
          rc = sqlite3_bind_text(stmt, idx, p.as_text().data(), static_cast<int>(p.as_text().size()),
                                 SQLITE_STATIC);
          break;
      }
      if (rc != SQLITE_OK) fail(db_, rc, "bind");
    }
    Result out;
    const int ncols = sqlite3_column_count(stmt);
    for (;;) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        sqlite3_reset(stmt);
        fail(db_, rc, "query");
      }
      std::vector<std::optional<std::string>> cols(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (sqlite3_column_type(stmt, c) == SQLITE_NULL) continue;
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
        cols[c].emplace(text, static_cast<size_t>(sqlite3_column_bytes(stmt, c)));
      }
      out.rows.emplace_back(std::move(cols));
    }
    out.affected = sqlite3_changes(db_);
    sqlite3_reset(stmt);
    return out;
  }

  sqlite3* handle() const { return db_; }

 private:
  static std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
      if (c == '\'') out += '\'';
      out += c;
    }
    return out + "'";
  }

  sqlite3_stmt* prepare(std::string_view sql) {
    auto it = cache_.find(std::string(sql));
    if (it != cache_.end()) return it->second->get();
    sqlite3_stmt* stmt = nullptr;
    if (int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                    &stmt, nullptr);
        rc != SQLITE_OK) {
      fail(db_, rc, "prepare");
    }
    auto [pos, _] = cache_.emplace(std::string(sql), std::make_unique<Statement>(stmt));
    return pos->second->get();
  }

  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
};

// The portable DDL names tables as schema.table everywhere; SQLite wants the schema on the index name
// and no schema inside REFERENCES. This is the one place that difference lives.
std::string sqlite_ddl(const std::string& sql) {
  static const std::regex kIndex(R"(CREATE\s+(UNIQUE\s+)?INDEX\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s+ON\s+(\w+)\.(\w+))",
                                 std::regex::icase);
  static const std::regex kReferences(R"(REFERENCES\s+\w+\.(\w+))", std::regex::icase);
  std::string out = std::regex_replace(sql, kIndex, "CREATE $1INDEX $2$4.$3 ON $5");
  return std::regex_replace(out, kReferences, "REFERENCES $1");
}

class SqliteDatabase final : public Database {
 public:
  SqliteDatabase(std::string schema, std::string path)
      : id_(g_next_database_id.fetch_add(1)), schema_(std::move(schema)), path_(std::move(path)) {}

  Backend backend() const override { return Backend::kSqlite; }
  const std::string& schema() const override { return schema_; }

  bool queues_writes() const override { return true; }
  void submit(const TenantScope* scope, std::unique_ptr<WriteJob> job) override {
    enqueue(scope, std::move(job));
  }

  std::unique_ptr<WriteHold> hold_writes(const TenantScope& scope) override {
    std::lock_guard lock(write_mutex_);
    if (!held_.emplace(scope.tenant_id(), std::deque<std::unique_ptr<WriteJob>>()).second)
      throw std::logic_error("the writes of a tenant are held already on " + schema_);
    return std::make_unique<Hold>(*this, scope.tenant_id());
  }

  void migrate(const std::vector<Migration>& migrations) override {
    Connection& c = connection();
    c.exec("CREATE TABLE IF NOT EXISTS " + schema_ +
           ".schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)");
    for (const auto& m : migrations) {
      c.exec("BEGIN IMMEDIATE");
      try {
        auto done = c.query("SELECT 1 FROM " + schema_ + ".schema_migrations WHERE version = $1", {m.version});
        if (done.empty()) {
          c.exec(sqlite_ddl(m.sql));
          if (!m.sqlite_sql.empty()) c.exec(sqlite_ddl(m.sqlite_sql));
          c.query("INSERT INTO " + schema_ + ".schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                  {m.version, m.name, format_rfc3339(Clock::now())});
        }
        c.exec("COMMIT");
      } catch (const std::exception& e) {
        c.exec("ROLLBACK");
        throw std::runtime_error("migration " + schema_ + " v" + std::to_string(m.version) + " (" + m.name +
                                 ") failed: " + e.what());
      }
    }
  }

  void ping() override { connection().query("SELECT 1", {}); }

  void scrub() override {
    Connection& c = connection();
    c.exec("VACUUM " + schema_);
    c.exec("PRAGMA " + schema_ + ".wal_checkpoint(TRUNCATE)");
  }

  PoolStats stats() const override {
    return {open_.load(std::memory_order_relaxed), in_use_.load(std::memory_order_relaxed), 0};
  }

 protected:
  void transaction(const TenantScope* scope, bool write, const std::function<void(Tx&)>& fn) override {
    if (write) return group_commit(scope, fn);  // counted in in_use_ from queued to finished
    in_use_.fetch_add(1, std::memory_order_relaxed);
    struct Release {
      std::atomic<int64_t>& n;
      ~Release() { n.fetch_sub(1, std::memory_order_relaxed); }
    } release{in_use_};
    Connection& c = connection();
    // Transaction control goes through the statement cache too: sqlite3_exec would re-parse it each time.
    c.query("BEGIN", {});
    try {
      fn(c);
      c.query("COMMIT", {});
    } catch (...) {
      if (!sqlite3_get_autocommit(c.handle())) c.exec("ROLLBACK");
      throw;
    }
  }

 private:
  // Group commit: SQLite has one writer and synchronous=FULL pays an fsync per commit, so writes from
  // every thread go to one writer thread, which runs whatever is queued in one transaction (each job in
  // its own savepoint, so one job's failure undoes only that job) and commits once for all of them.
  // Under load that turns N fsyncs into one; alone, a write costs what it did. Nobody needs to wait for
  // the writer: submit() only queues, and each job is finished (its awaiter resumed) after the commit.
  // The blocking write() is a job whose finish() wakes the thread waiting for it. The commit's fsync
  // is most of a batch's time, so the writer hands a committed batch to a finisher thread and starts
  // the next one at once: resuming a batch's awaiters (a post to an I/O thread each) is off its path.
  static constexpr size_t kMaxBatch = 1024;  // bounds one transaction's size and its first job's wait

  class BlockingWrite final : public WriteJob {
   public:
    explicit BlockingWrite(const std::function<void(Tx&)>& fn) : fn_(fn) {}
    void run(Tx& tx) override { fn_(tx); }
    void finish(std::exception_ptr error) noexcept override {
      if (error) {
        done_.set_exception(std::move(error));
      } else {
        done_.set_value();
      }
    }
    std::future<void> outcome() { return done_.get_future(); }

   private:
    const std::function<void(Tx&)>& fn_;
    std::promise<void> done_;
  };

  void group_commit(const TenantScope* scope, const std::function<void(Tx&)>& fn) {
    // A write started from inside another write's callback would wait for the writer thread it runs on.
    if (std::this_thread::get_id() == writer_id_.load())
      throw std::logic_error("nested write transaction on " + schema_ + ": finish the outer one first");
    auto job = std::make_unique<BlockingWrite>(fn);
    std::future<void> outcome = job->outcome();
    enqueue(scope, std::move(job));
    outcome.get();  // rethrows the job's error
  }

  // A tenant's writes wait while a hold on them lives. The holder's first job joins the ordinary queue,
  // behind the writes queued before the hold; the others are bulk work and take their own lane (see
  // write_loop).
  class Hold final : public WriteHold {
   public:
    Hold(SqliteDatabase& db, std::string tenant_id) : db_(db), tenant_id_(std::move(tenant_id)) {}
    ~Hold() override { db_.release(tenant_id_); }
    void submit(std::unique_ptr<WriteJob> job) override {
      db_.enqueue(nullptr, std::move(job), !std::exchange(first_, false));
    }

   private:
    SqliteDatabase& db_;
    std::string tenant_id_;
    bool first_ = true;
  };

  void release(const std::string& tenant_id) {
    std::lock_guard lock(write_mutex_);
    auto it = held_.find(tenant_id);
    if (it == held_.end()) return;
    for (auto& job : it->second) write_queue_.push_back(std::move(job));
    const bool any = !it->second.empty();
    held_.erase(it);
    if (any && !writer_busy_) write_ready_.notify_one();
  }

  void enqueue(const TenantScope* scope, std::unique_ptr<WriteJob> job, bool bulk = false) {
    {
      std::lock_guard lock(write_mutex_);
      if (!stopping_) {
        if (!writer_.joinable()) {
          finisher_ = std::thread([this] { finish_loop(); });
          writer_ = std::thread([this] { write_loop(); });
        }
        in_use_.fetch_add(1, std::memory_order_relaxed);
        if (scope && !held_.empty()) {
          if (auto it = held_.find(scope->tenant_id()); it != held_.end()) {
            it->second.push_back(std::move(job));  // runs when the hold ends
            return;
          }
        }
        if (bulk)
          bulk_queue_.push_back(std::move(job));
        else
          write_queue_.push_back(std::move(job));
        if (!writer_busy_) write_ready_.notify_one();
        return;
      }
    }
    job->finish(std::make_exception_ptr(Unavailable("the " + schema_ + " database is closing")));
  }

  void write_loop() {
    writer_id_.store(std::this_thread::get_id());
    std::unique_ptr<Connection> conn;
    std::vector<std::unique_ptr<WriteJob>> batch;
    std::vector<std::exception_ptr> errors;
    for (;;) {
      {
        std::unique_lock lock(write_mutex_);
        writer_busy_ = false;
        write_ready_.wait(lock, [&] { return stopping_ || !write_queue_.empty() || !bulk_queue_.empty(); });
        if (write_queue_.empty() && bulk_queue_.empty()) return;  // stopping, nothing left
        writer_busy_ = true;  // it looks at the queues again before it sleeps: no wake-up needed
        // Bulk work (an import's chunks) runs one job per transaction, taking turns with batches of the other
        // writes: a write never waits behind more than one bulk job, however many imports run.
        const bool bulk_turn = !bulk_queue_.empty() && (write_queue_.empty() || last_was_ordinary_);
        last_was_ordinary_ = !bulk_turn;
        if (bulk_turn) {
          batch.push_back(std::move(bulk_queue_.front()));
          bulk_queue_.pop_front();
        } else if (write_queue_.size() <= kMaxBatch) {
          batch.swap(write_queue_);
        } else {
          auto first = write_queue_.begin(), last = first + kMaxBatch;
          batch.assign(std::make_move_iterator(first), std::make_move_iterator(last));
          write_queue_.erase(first, last);
        }
      }
      errors.assign(batch.size(), nullptr);
      try {
        if (!conn) {
          conn = std::make_unique<Connection>(path_, schema_);
          // Each job's savepoint keeps the pages it changes in a sub-journal; past 64 KiB SQLite moves it
          // to a temporary file, and every later job of the batch then pays write system calls for it.
          conn->exec("PRAGMA temp_store=MEMORY");
          open_.fetch_add(1, std::memory_order_relaxed);
        }
        // Through the statement cache: sqlite3_exec would parse these again for every job.
        began_write();
        conn->query("BEGIN IMMEDIATE", {});
        for (size_t i = 0; i < batch.size(); ++i) {
          conn->query("SAVEPOINT cdx_job", {});
          try {
            batch[i]->run(*conn);
            conn->query("RELEASE cdx_job", {});
          } catch (...) {
            errors[i] = std::current_exception();
            conn->query("ROLLBACK TO cdx_job", {});
            conn->query("RELEASE cdx_job", {});
          }
        }
        conn->query("COMMIT", {});
        committed();
      } catch (...) {
        // The batch's transaction failed as a whole (disk full, I/O error): nothing of it is committed.
        auto error = std::current_exception();
        if (conn && !sqlite3_get_autocommit(conn->handle())) {
          try {
            conn->exec("ROLLBACK");
          } catch (...) {
            conn.reset();  // start over with a fresh connection
          }
        }
        for (auto& e : errors)
          if (!e) e = error;
      }
      {
        std::lock_guard lock(finish_mutex_);
        finish_queue_.push_back({std::move(batch), std::move(errors)});
        if (!finisher_busy_) finish_ready_.notify_one();
      }
      batch.clear();  // moved from: valid, made empty
      errors.clear();
    }
  }

  struct Committed {
    std::vector<std::unique_ptr<WriteJob>> jobs;
    std::vector<std::exception_ptr> errors;  // one per job, null for a committed one
  };

  void finish_loop() {
    std::vector<Committed> work;
    for (;;) {
      {
        std::unique_lock lock(finish_mutex_);
        finisher_busy_ = false;
        finish_ready_.wait(lock, [&] { return finisher_stopping_ || !finish_queue_.empty(); });
        if (finish_queue_.empty()) return;  // stopping, nothing left
        finisher_busy_ = true;
        work.swap(finish_queue_);
      }
      for (Committed& c : work) {
        in_use_.fetch_sub(static_cast<int64_t>(c.jobs.size()), std::memory_order_relaxed);
        for (size_t i = 0; i < c.jobs.size(); ++i) c.jobs[i]->finish(std::move(c.errors[i]));
      }
      work.clear();
    }
  }

 public:
  ~SqliteDatabase() override {
    {
      std::lock_guard lock(write_mutex_);
      stopping_ = true;
      for (auto& [tenant, jobs] : held_)  // a hold that outlives its database lets its waiting writes run
        for (auto& job : jobs) write_queue_.push_back(std::move(job));
      held_.clear();
      for (auto& job : bulk_queue_) write_queue_.push_back(std::move(job));
      bulk_queue_.clear();
    }
    write_ready_.notify_all();
    if (writer_.joinable()) writer_.join();  // runs what is queued; the finisher gets every batch
    {
      std::lock_guard lock(finish_mutex_);
      finisher_stopping_ = true;
    }
    finish_ready_.notify_all();
    if (finisher_.joinable()) finisher_.join();
  }

 private:
  // One connection per (thread, database) for reads; closed when the thread exits.
  Connection& connection() {
    thread_local std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns;
    auto& slot = conns[id_];
    if (!slot) {
      slot = std::make_unique<Connection>(path_, schema_);
      open_.fetch_add(1, std::memory_order_relaxed);
    }
    return *slot;
  }

  std::mutex write_mutex_;
  std::condition_variable write_ready_;
  std::vector<std::unique_ptr<WriteJob>> write_queue_;
  std::deque<std::unique_ptr<WriteJob>> bulk_queue_;  // the holders' jobs but their first
  bool last_was_ordinary_ = false;                    // guarded by write_mutex_
  // Tenants whose writes are held (hold_writes), with the writes waiting for the hold to end.
  std::unordered_map<std::string, std::deque<std::unique_ptr<WriteJob>>> held_;
  std::thread writer_;
  std::atomic<std::thread::id> writer_id_{};
  bool stopping_ = false;
  bool writer_busy_ = false;  // guarded by write_mutex_: the writer is running a batch, not waiting
  std::mutex finish_mutex_;
  std::condition_variable finish_ready_;
  std::vector<Committed> finish_queue_;  // committed (or failed) batches whose jobs are not finished yet
  std::thread finisher_;

  bool finisher_busy_ = false;  // guarded by finish_mutex_
  bool finisher_stopping_ = false;
  uint64_t id_;
  std::string schema_;
  std::string path_;
  std::atomic<int64_t> open_{0};
  std::atomic<int64_t> in_use_{0};
};

class SqliteFactory final : public ConnectionFactory {
 public:
  explicit SqliteFactory(std::string dir) : dir_(std::move(dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) throw Unavailable("cannot create data directory " + dir_ + ": " + ec.message());
  }
  std::shared_ptr<Database> open(const std::string& schema) override {
    return std::make_shared<SqliteDatabase>(schema, (std::filesystem::path(dir_) / (schema + ".sqlite")).string());
  }

 private:
  std::string dir_;
};

}  // namespace

std::unique_ptr<ConnectionFactory> make_sqlite_factory(const std::string& data_dir) {
  return std::make_unique<SqliteFactory>(data_dir);
}

}  // namespace cdx::db
