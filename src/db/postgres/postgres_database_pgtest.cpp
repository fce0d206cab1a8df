// Live tests of the PostgreSQL backend. They need a server: CDX_TEST_DATABASE_URL names a login role that
// may create schemas and roles (e.g. postgresql://cdx@127.0.0.1:55432/postgres). Each test works in a schema
// of its own and drops it afterwards; the cluster-wide role cdx_app is left in place.
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <limits>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "db/async.hpp"
#include "db/database.hpp"
#include "db/postgres/postgres_database.hpp"

#include "db/testing.hpp"

namespace cdx::db {
namespace {

using ScopeMinter = testing::TestScopes;
using Rows = std::vector<std::vector<std::optional<std::string>>>;

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultClearer {
  void operator()(PGresult* r) const { PQclear(r); }
};

class PostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("CDX_TEST_DATABASE_URL");
    ASSERT_TRUE(url != nullptr && *url != '\0')
        << "CDX_TEST_DATABASE_URL is not set; these tests need a live PostgreSQL, e.g. "
           "CDX_TEST_DATABASE_URL=postgresql://cdx@127.0.0.1:55432/postgres";
    url_ = url;
    std::random_device rd;
    schema_ = "pgtest_" + std::to_string(rd() % 1000000000u);
    admin_.reset(PQconnectdb(url_.c_str()));
    ASSERT_EQ(PQstatus(admin_.get()), CONNECTION_OK) << PQerrorMessage(admin_.get());
    PQsetNoticeProcessor(
        admin_.get(), [](void*, const char*) {}, nullptr);
  }

  void TearDown() override {
    if (admin_ && PQstatus(admin_.get()) == CONNECTION_OK) {
      admin("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
      admin("DROP SCHEMA IF EXISTS " + schema_ + "_b CASCADE");
    }
  }

  std::unique_ptr<ConnectionFactory> factory(int pool_size = 4) {
    StorageConfig config;
    config.database_url = url_;
    config.pool_size = pool_size;
    return make_postgres_factory(config);
  }

  // As the login role (bypassing cdx_app and RLS when it is a superuser): what is really in the database.
  Rows admin(const std::string& sql) {
    std::unique_ptr<PGresult, ResultClearer> r(PQexec(admin_.get(), sql.c_str()));
    const ExecStatusType s = PQresultStatus(r.get());
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
      ADD_FAILURE() << sql << ": " << PQresultErrorMessage(r.get());
      return {};
    }
    Rows rows;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      auto& row = rows.emplace_back();
      for (int j = 0; j < PQnfields(r.get()); ++j) {
        if (PQgetisnull(r.get(), i, j)) {
          row.emplace_back();
        } else {
          row.emplace_back(PQgetvalue(r.get(), i, j));
        }
      }
    }
    return rows;
  }

  std::vector<std::string> applied_versions() {
    std::vector<std::string> out;
    for (const auto& row : admin("SELECT version FROM " + schema_ + ".schema_migrations ORDER BY version")) {
      out.push_back(*row[0]);
    }
    return out;
  }

  bool table_exists(const std::string& name) {
    return admin("SELECT to_regclass('" + schema_ + "." + name + "')")[0][0].has_value();
  }

  std::string t(const std::string& name) const { return schema_ + "." + name; }

  // notes: tenant data under RLS. settings: platform data, no RLS.
  std::vector<Migration> base_migrations() const {
    return {
        {.version = 1,
         .name = "notes",
         .sql = "CREATE TABLE " + t("notes") +
                " (tenant_id TEXT NOT NULL, id INTEGER NOT NULL, body TEXT, PRIMARY KEY (tenant_id, id))",
         .tenant_tables = {t("notes")}},
        {.version = 2,
         .name = "settings",
         .sql = "CREATE TABLE " + t("settings") +
                " (key TEXT PRIMARY KEY, value TEXT);"
                "CREATE TABLE " +
                t("kinds") + " (id INTEGER PRIMARY KEY, i BIGINT, t TEXT, n TEXT, b INTEGER)",
         .tenant_tables = {}},
    };
  }

  void insert_note(Database& db, const TenantScope& scope, int id, const std::string& body) {
    db.write(scope, [&](Tx& tx) {
      tx.query("INSERT INTO " + t("notes") + " (tenant_id, id, body) VALUES ($1, $2, $3)",
               {scope.tenant_id(), id, body});
    });
  }

  std::string url_;
  std::string schema_;
  std::unique_ptr<PGconn, ConnCloser> admin_;
};

TEST_F(PostgresTest, MigrationsApplyOnceAndRerunIsANoOp) {
  auto f = factory();
  auto db = f->open(schema_);
  EXPECT_EQ(db->backend(), Backend::kPostgres);
  EXPECT_EQ(db->schema(), schema_);

  db->migrate(base_migrations());
  const Rows first =
      admin("SELECT version, name, applied_at FROM " + t("schema_migrations") + " ORDER BY version");
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(*first[0][1], "notes");
  EXPECT_EQ(*first[1][1], "settings");
  const std::regex rfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");
  EXPECT_TRUE(std::regex_match(*first[0][2], rfc3339)) << *first[0][2];

  // Row-level security only on the tenant table, forced so the table owner is subject to it too.
  EXPECT_EQ(admin("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = '" + t("notes") +
                  "'::regclass")[0],
            (std::vector<std::optional<std::string>>{"t", "t"}));
  EXPECT_EQ(*admin("SELECT relrowsecurity FROM pg_class WHERE oid = '" + t("settings") + "'::regclass")[0][0],
            "f");

  db->migrate(base_migrations());
  EXPECT_EQ(admin("SELECT version, name, applied_at FROM " + t("schema_migrations") + " ORDER BY version"),
            first);

  // A new process (new factory) with one more migration applies only that one.
  auto more = base_migrations();
  more.push_back({.version = 3,
                  .name = "note_tags",
                  .sql = "ALTER TABLE " + t("notes") + " ADD COLUMN tags TEXT",
                  .tenant_tables = {}});
  auto f2 = factory();
  f2->open(schema_)->migrate(more);
  EXPECT_EQ(applied_versions(), (std::vector<std::string>{"1", "2", "3"}));
  f2->open(schema_)->migrate(more);
  EXPECT_EQ(applied_versions(), (std::vector<std::string>{"1", "2", "3"}));
}

TEST_F(PostgresTest, FailingMigrationLeavesNoTrace) {
  auto f = factory();
  auto db = f->open(schema_);
  auto migrations = base_migrations();
  migrations.resize(1);
  migrations.push_back({.version = 2,
                        .name = "half_done",
                        .sql = "CREATE TABLE " + t("half") +
                               " (tenant_id TEXT, id INTEGER);"
                               "INSERT INTO " +
                               t("half") +
                               " VALUES ('x', 1);"
                               "SELECT no_such_function()",
                        .tenant_tables = {t("half")}});
  migrations.push_back({.version = 3,
                        .name = "after",
                        .sql = "CREATE TABLE " + t("after") + " (id INTEGER)",
                        .tenant_tables = {}});
  try {
    db->migrate(migrations);
    FAIL() << "the migration should have failed";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(schema_), std::string::npos) << msg;
    EXPECT_NE(msg.find("v2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("half_done"), std::string::npos) << msg;
    EXPECT_NE(msg.find("no_such_function"), std::string::npos) << msg;
  }
  EXPECT_FALSE(table_exists("half"));
  EXPECT_FALSE(table_exists("after"));  // nothing after the failure runs
  EXPECT_TRUE(table_exists("notes"));
  EXPECT_EQ(applied_versions(), (std::vector<std::string>{"1"}));

  // The PostgreSQL-only part is inside the same transaction.
  const Migration pg_part_fails{.version = 2,
                                .name = "pg_part",
                                .sql = "CREATE TABLE " + t("part") + " (id INTEGER)",
                                .tenant_tables = {},
                                .postgres_sql = "CREATE INDEX ON " + t("part") + " (no_such_column)"};
  EXPECT_THROW(db->migrate({migrations[0], pg_part_fails}), std::runtime_error);
  EXPECT_FALSE(table_exists("part"));
  EXPECT_EQ(applied_versions(), (std::vector<std::string>{"1"}));

  // Fixed, it applies; the same database handle is still usable.
  db->migrate(base_migrations());
  EXPECT_EQ(applied_versions(), (std::vector<std::string>{"1", "2"}));
  db->ping();
}

TEST_F(PostgresTest, RowLevelSecurityIsolatesTenants) {
  auto f = factory();
  auto db = f->open(schema_);
  db->migrate(base_migrations());
  const TenantScope a = ScopeMinter::mint("tenant-a");
  const TenantScope b = ScopeMinter::mint("tenant-b");
  insert_note(*db, a, 1, "a1");
  insert_note(*db, b, 2, "b2");
  insert_note(*db, b, 3, "b3");

  // No tenant filter in the SQL: the policy alone decides what each tenant sees.
  auto bodies = [&](const TenantScope* scope) {
    auto list = [&](Tx& tx) {
      std::vector<std::string> out;
      for (const Row& row : tx.query("SELECT body FROM " + t("notes") + " ORDER BY id").rows)
        out.push_back(row.text(0));
      return out;
    };
    return scope ? db->read(*scope, list) : db->read_platform(list);
  };
  EXPECT_EQ(bodies(&a), (std::vector<std::string>{"a1"}));
  EXPECT_EQ(bodies(&b), (std::vector<std::string>{"b2", "b3"}));
  EXPECT_EQ(bodies(nullptr), (std::vector<std::string>{}));
  EXPECT_EQ(*admin("SELECT count(*) FROM " + t("notes"))[0][0], "3");

  // Requests run as cdx_app, and nothing can write a row into another tenant or into no tenant.
  EXPECT_EQ(db->read(a, [](Tx& tx) { return tx.query("SELECT current_user").rows[0].text(0); }), "cdx_app");
  EXPECT_THROW(db->write(a,
                         [&](Tx& tx) {
                           tx.query("INSERT INTO " + t("notes") +
                                    " (tenant_id, id, body) VALUES ('tenant-b', 9, 'forged')");
                         }),
               std::runtime_error);
  EXPECT_THROW(db->write_platform([&](Tx& tx) {
    tx.query("INSERT INTO " + t("notes") + " (tenant_id, id, body) VALUES ('tenant-b', 9, 'forged')");
  }),
               std::runtime_error);
  EXPECT_EQ(
      db->write(b, [&](Tx& tx) { return tx.query("UPDATE " + t("notes") + " SET body = 'x' WHERE id = 1"); })
          .affected,
      0);
  EXPECT_EQ(db->write(b, [&](Tx& tx) { return tx.query("DELETE FROM " + t("notes")); }).affected, 2);
  EXPECT_EQ(bodies(&a), (std::vector<std::string>{"a1"}));

  // read() is a read-only transaction.
  EXPECT_THROW(db->read(a, [&](Tx& tx) { tx.query("DELETE FROM " + t("notes")); }), std::runtime_error);
  EXPECT_EQ(bodies(&a), (std::vector<std::string>{"a1"}));

  // A tenant id is data, not SQL.
  const TenantScope odd = ScopeMinter::mint("o'hara\\; DROP TABLE x --");
  insert_note(*db, odd, 5, "odd");
  EXPECT_EQ(bodies(&odd), (std::vector<std::string>{"odd"}));

  // Platform tables have no policy.
  db->write_platform([&](Tx& tx) { tx.query("INSERT INTO " + t("settings") + " VALUES ('k', 'v')"); });
  EXPECT_EQ(
      db->read_platform([&](Tx& tx) { return tx.query("SELECT value FROM " + t("settings")).rows.size(); }),
      1u);
  // The ledger of applied migrations is not cdx_app's business.
  EXPECT_THROW(db->read_platform([&](Tx& tx) { tx.query("SELECT * FROM " + t("schema_migrations")); }),
               std::runtime_error);
}

TEST_F(PostgresTest, DuplicateKeyRaisesUniqueViolation) {
  auto f = factory();
  auto db = f->open(schema_);
  db->migrate(base_migrations());
  const TenantScope a = ScopeMinter::mint("tenant-a");
  insert_note(*db, a, 1, "first");
  try {
    insert_note(*db, a, 1, "again");
    FAIL() << "expected UniqueViolation";
  } catch (const UniqueViolation& e) {
    // The key's value (in the server's detail) stays out of the message: it may be personal data.
    EXPECT_EQ(std::string(e.what()).find("Key ("), std::string::npos) << e.what();
  }

  // The whole transaction rolls back, including the statement before the duplicate.
  EXPECT_THROW(
      db->write(a,
                [&](Tx& tx) {
                  tx.query("INSERT INTO " + t("notes") + " (tenant_id, id) VALUES ($1, 2)", {a.tenant_id()});
                  tx.query("INSERT INTO " + t("notes") + " (tenant_id, id) VALUES ($1, 1)", {a.tenant_id()});
                }),
      UniqueViolation);
  // A caught failure does not turn into a silent partial commit.
  try {
    db->write(a, [&](Tx& tx) {
      tx.query("INSERT INTO " + t("notes") + " (tenant_id, id) VALUES ($1, 3)", {a.tenant_id()});
      try {
        tx.query("INSERT INTO " + t("notes") + " (tenant_id, id) VALUES ($1, 1)", {a.tenant_id()});
      } catch (const UniqueViolation&) {
      }
    });
    FAIL() << "expected the commit to fail";
  } catch (const UniqueViolation&) {
    FAIL() << "the caught UniqueViolation must not resurface as one";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("rolled back"), std::string::npos) << e.what();
  }
  EXPECT_EQ(db->read(a, [&](Tx& tx) { return tx.query("SELECT id FROM " + t("notes")).rows.size(); }), 1u);
  EXPECT_EQ(db->stats().in_use, 0);
}

// copy_in: COPY's text format in, in pieces when large; a COPY that fails (a duplicate key) or a statement
// that is no COPY throws, the transaction rolls back whole, and the connection goes back to the pool usable.
TEST_F(PostgresTest, CopyInLoadsTextAndAFailedCopyRollsBack) {
  auto f = factory(1);  // one connection: every step below reuses the one that failed
  auto db = f->open(schema_);
  db->migrate(base_migrations());
  const std::string copy = "COPY " + t("settings") + " (key, value) FROM STDIN";
  db->write_platform([&](Tx& tx) { tx.copy_in(copy, "a\tone\nb\t\\N\nc\tx\\ty\\\\z\\n\n"); });
  EXPECT_EQ(admin("SELECT key, value FROM " + t("settings") + " ORDER BY key"),
            (Rows{{"a", "one"}, {"b", std::nullopt}, {"c", "x\ty\\z\n"}}));

  EXPECT_THROW(db->write_platform([&](Tx& tx) {
    tx.query("INSERT INTO " + t("settings") + " (key, value) VALUES ('d', 'gone')");
    tx.copy_in(copy, "e\tgone too\na\tduplicate\n");
  }),
               UniqueViolation);
  EXPECT_THROW(db->write_platform([&](Tx& tx) { tx.copy_in("SELECT 1", ""); }), std::logic_error);
  EXPECT_EQ(*admin("SELECT count(*) FROM " + t("settings"))[0][0], "3");

  // Over PQputCopyData's 1 MiB pieces: 20 000 lines of 100 characters.
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "k" + std::to_string(i) + "\t" + std::string(100, 'v') + "\n";
  db->write_platform([&](Tx& tx) { tx.copy_in(copy, big); });
  EXPECT_EQ(*admin("SELECT count(*) FROM " + t("settings") + " WHERE length(value) = 100")[0][0], "20000");
  EXPECT_EQ(db->stats().in_use, 0);
  EXPECT_EQ(db->stats().size, 1);
}

TEST_F(PostgresTest, ParamsOfEachKindRoundTrip) {
  auto f = factory();
  auto db = f->open(schema_);
  db->migrate(base_migrations());
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  const std::string tricky = "it's \"quoted\" $1 \\ ; -- ünïcødé ✓";
  const std::string large(100000, 'x');
  const std::optional<std::string> no_text;
  const std::optional<int64_t> some_int = 7;

  db->write_platform([&](Tx& tx) {
    const std::string sql = "INSERT INTO " + t("kinds") + " (id, i, t, n, b) VALUES ($1, $2, $3, $4, $5)";
    EXPECT_EQ(tx.query(sql, {1, kMax, tricky, nullptr, true}).affected, 1);
    EXPECT_EQ(tx.query(sql, {2, kMin, std::string(""), no_text, false}).affected, 1);
    EXPECT_EQ(tx.query(sql, {3, some_int, large, std::optional<std::string>("set"), 0}).affected, 1);
    EXPECT_EQ(tx.query(sql, {int64_t{4}, -1, "c-string", std::string_view("view"), nullptr}).affected, 1);
  });

  const Result r = db->read_platform([&](Tx& tx) {
    return tx.query("SELECT id, i, t, n, b FROM " + t("kinds") + " WHERE id >= $1 ORDER BY id", {1});
  });
  ASSERT_EQ(r.rows.size(), 4u);
  EXPECT_EQ(r.affected, 0);  // a SELECT changes nothing
  EXPECT_EQ(r.rows[0].integer(1), kMax);
  EXPECT_EQ(r.rows[0].text(2), tricky);
  EXPECT_TRUE(r.rows[0].is_null(3));
  EXPECT_EQ(r.rows[0].integer(4), 1);
  EXPECT_EQ(r.rows[1].integer(1), kMin);
  EXPECT_EQ(r.rows[1].text(2), "");  // empty is not NULL
  EXPECT_FALSE(r.rows[1].is_null(2));
  EXPECT_TRUE(r.rows[1].is_null(3));
  EXPECT_EQ(r.rows[1].integer(4), 0);
  EXPECT_EQ(r.rows[2].opt_integer(1), 7);
  EXPECT_EQ(r.rows[2].text(2), large);
  EXPECT_EQ(r.rows[2].opt_text(3), "set");
  EXPECT_EQ(r.rows[3].integer(1), -1);
  EXPECT_EQ(r.rows[3].text(2), "c-string");
  EXPECT_EQ(r.rows[3].text(3), "view");
  EXPECT_EQ(r.rows[3].opt_integer(4), std::nullopt);

  // A parameter first met in "IS NULL" has no type on PostgreSQL; the error says how to write it portably.
  try {
    db->read_platform(
        [&](Tx& tx) { tx.query("SELECT id FROM " + t("kinds") + " WHERE ($1 IS NULL OR t = $1)", {"x"}); });
    ADD_FAILURE() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("CAST($n AS TEXT)"), std::string::npos) << e.what();
  }
  for (const Param& p : {Param(nullptr), Param("c-string")}) {
    const size_t n = db->read_platform([&](Tx& tx) {
      return tx.query("SELECT id FROM " + t("kinds") + " WHERE (CAST($1 AS TEXT) IS NULL OR t = $1)", {p})
          .rows.size();
    });
    EXPECT_EQ(n, p.kind() == Param::Kind::kNull ? 4u : 1u);
  }

  db->write_platform([&](Tx& tx) {
    // Untyped parameters take their type from context, like literals (and like SQLite).
    const Row row = tx.query("SELECT $1, $2, $3", {42, "x", nullptr}).rows.at(0);
    EXPECT_EQ(row.text(0), "42");
    EXPECT_EQ(row.text(1), "x");
    EXPECT_TRUE(row.is_null(2));
    EXPECT_EQ(tx.query("SELECT id FROM " + t("kinds") + " WHERE t = $1", {"c-string"}).rows.at(0).integer(0),
              4);
    EXPECT_EQ(tx.query("SELECT id FROM " + t("kinds") + " WHERE id = $1", {"4"}).rows.size(), 1u);
    // Parameters the statement does not use are ignored, as SQLite ignores them.
    EXPECT_EQ(
        tx.query("SELECT id FROM " + t("kinds") + " WHERE id = $2 AND t <> '$1'", {"unused", 4}).rows.size(),
        1u);
    EXPECT_EQ(tx.query("SELECT id FROM " + t("kinds") + " WHERE id = $1 /* $2 */", {4, "extra"}).rows.size(),
              1u);
    // affected counts changed rows, also through RETURNING.
    EXPECT_EQ(tx.query("UPDATE " + t("kinds") + " SET b = $1", {1}).affected, 4);
    const Result ret = tx.query("INSERT INTO " + t("kinds") + " (id) VALUES ($1) RETURNING id", {5});
    EXPECT_EQ(ret.affected, 1);
    EXPECT_EQ(ret.rows.at(0).integer(0), 5);
    // PostgreSQL text cannot hold NUL; refusing beats silently truncating.
    EXPECT_THROW(tx.query("SELECT $1", {std::string_view("a\0b", 3)}), std::invalid_argument);
  });
}

TEST_F(PostgresTest, PoolReusesConnectionsAndSharesThemAcrossSchemas) {
  auto f = factory(2);
  auto db = f->open(schema_);
  auto other = f->open(schema_ + "_b");  // same server URL, so the same pool
  db->migrate(base_migrations());
  auto backend_pid = [](Database& d) {
    return d.read_platform([](Tx& tx) { return tx.query("SELECT pg_backend_pid()").rows.at(0).text(0); });
  };
  const std::string pid = backend_pid(*db);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(backend_pid(*db), pid);
  EXPECT_EQ(backend_pid(*other), pid);
  EXPECT_EQ(db->stats().size, 1);
  EXPECT_EQ(db->stats().in_use, 0);
  EXPECT_EQ(other->stats().size, 1);
  EXPECT_EQ(*admin("SELECT application_name FROM pg_stat_activity WHERE pid = " + pid)[0][0], "cdx");

  // Six threads on a pool of two: never more than two connections, and some callers wait.
  std::mutex mu;
  std::set<std::string> pids;
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 3; ++k) {
        const std::string p = db->read_platform([](Tx& tx) {
          return tx.query("SELECT pg_backend_pid() FROM pg_sleep(0.05)").rows.at(0).text(0);
        });
        std::lock_guard lock(mu);
        pids.insert(p);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(pids.size(), 2u);
  const PoolStats s = db->stats();
  EXPECT_EQ(s.size, 2);
  EXPECT_EQ(s.in_use, 0);
  EXPECT_GT(s.waits, 0);
}

TEST_F(PostgresTest, DeadConnectionIsDroppedAndReopened) {
  auto f = factory(2);
  auto db = f->open(schema_);
  db->migrate(base_migrations());
  const auto backend_pid = [&] {
    return db->read_platform([](Tx& tx) { return tx.query("SELECT pg_backend_pid()").rows.at(0).text(0); });
  };
  const std::string pid = backend_pid();
  admin("SELECT pg_terminate_backend(" + pid + ", 5000)");  // waits until that backend has exited

  // The idle connection is dead; the next caller gets a fresh one instead of an error.
  const std::string fresh = backend_pid();
  EXPECT_NE(fresh, pid);
  db->ping();
  EXPECT_EQ(db->stats().size, 1);

  // Killed mid-transaction: that call fails as Unavailable, the pool recovers.
  EXPECT_THROW(db->read_platform([&](Tx& tx) {
    admin("SELECT pg_terminate_backend(" + fresh + ", 5000)");
    tx.query("SELECT 1");
  }),
               Unavailable);
  EXPECT_EQ(db->stats().in_use, 0);
  EXPECT_NE(backend_pid(), fresh);
}

TEST_F(PostgresTest, ConcurrentMigrationsSerialize) {
  std::atomic<int> failures = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      try {
        auto f = factory(1);
        f->open(schema_)->migrate(base_migrations());
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(applied_versions(), (std::vector<std::string>{"1", "2"}));
}

// Awaited writes run on the database's own writer threads (no worker of the caller's pool: it has none
// here), one transaction apiece; a failing one rolls back alone, its error reaching its own awaiter.
TEST_F(PostgresTest, AwaitedWritesRunOnTheDatabasesWritersAndFailAlone) {
  auto f = factory();
  auto db = f->open(schema_);
  db->migrate(base_migrations());
  EXPECT_TRUE(db->queues_writes());
  const auto scope = ScopeMinter::mint("tenant-a");
  insert_note(*db, scope, 1000, "taken");
  WorkerPool workers(0);
  constexpr int kWriters = 60;
  std::vector<std::string> outcome(kWriters);
  boost::asio::io_context ioc;
  std::vector<std::future<void>> done;
  for (int i = 0; i < kWriters; ++i) {
    done.push_back(boost::asio::co_spawn(
        ioc,
        [&, i]() -> Task<void> {
          try {
            const int64_t n = co_await write_async(*db, workers, scope, [&](Tx& tx) {
              tx.query("INSERT INTO " + t("notes") + " (tenant_id, id, body) VALUES ($1, $2, 'x')",
                       {scope.tenant_id(), i % 10 == 9 ? 1000 : i});  // every tenth: a taken id
              if (i % 4 == 3) throw std::runtime_error("job " + std::to_string(i));
              return static_cast<int64_t>(i) * 3;
            });
            outcome[i] = std::to_string(n);
          } catch (const UniqueViolation&) {
            outcome[i] = "duplicate";
          } catch (const std::runtime_error& e) {
            outcome[i] = e.what();
          }
        },
        boost::asio::use_future));
  }
  ioc.run();
  for (auto& d : done) d.get();
  int ok = 0;
  for (int i = 0; i < kWriters; ++i) {
    if (i % 10 == 9) {
      EXPECT_EQ(outcome[i], "duplicate") << "writer " << i;
    } else if (i % 4 == 3) {
      EXPECT_EQ(outcome[i], "job " + std::to_string(i)) << "writer " << i;
    } else {
      EXPECT_EQ(outcome[i], std::to_string(i * 3)) << "writer " << i;
      ++ok;
    }
  }
  EXPECT_EQ(admin("SELECT COUNT(*) FROM " + t("notes"))[0][0], std::to_string(ok + 1));
}

}  // namespace
}  // namespace cdx::db
