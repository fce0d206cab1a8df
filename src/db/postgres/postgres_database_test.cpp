// What the PostgreSQL backend does without a server: configuration checks, URL redaction, and failing
// as Unavailable (without leaking the password) when the server cannot be reached. The live behaviour is
// in postgres_database_pgtest.cpp.
#include "db/postgres/postgres_database.hpp"

#include <gtest/gtest.h>

#include "db/database.hpp"

namespace cdx::db {
namespace {

// Port 1 on loopback: nothing listens there, so the connection is refused at once.
constexpr const char* kUnreachable = "postgresql://cdx:s3cret-pw@127.0.0.1:1/cdx?connect_timeout=2";

TEST(PostgresDatabase, RedactsPasswordsFromUrls) {
  EXPECT_EQ(redact_database_url("postgresql://cdx:s3cret-pw@db.internal:5433/app"),
            "cdx@db.internal:5433/app");
  EXPECT_EQ(redact_database_url("host=db user=cdx password=s3cret-pw dbname=app"), "cdx@db/app");
  EXPECT_EQ(redact_database_url("postgresql:///app"), "localhost/app");
  // libpq's own parse error would quote the bad part, which here is the password.
  const std::string bad = redact_database_url("postgresql://cdx:s3cret%zz@db/app");
  EXPECT_EQ(bad, "<invalid database URL>");
}

TEST(PostgresDatabase, ReportsBackendAndSchemaWithoutConnecting) {
  StorageConfig config;
  config.database_url = kUnreachable;
  auto db = make_postgres_factory(config)->open("crm_db");
  EXPECT_EQ(db->backend(), Backend::kPostgres);
  EXPECT_EQ(db->schema(), "crm_db");
  EXPECT_EQ(db->stats().size, 0);  // pools open lazily
}

TEST(PostgresDatabase, UnreachableServerIsUnavailableAndKeepsThePasswordOut) {
  StorageConfig config;
  config.database_url = kUnreachable;
  auto db = make_postgres_factory(config)->open("crm_db");
  try {
    db->ping();
    FAIL() << "expected Unavailable";
  } catch (const Unavailable& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find("s3cret-pw"), std::string::npos) << msg;
    EXPECT_NE(msg.find("127.0.0.1:1"), std::string::npos) << msg;
  }
  EXPECT_THROW(db->read_platform([](Tx& tx) { tx.query("SELECT 1"); }), Unavailable);
  EXPECT_THROW(db->migrate({}), Unavailable);
  const PoolStats s = db->stats();
  EXPECT_EQ(s.size, 0);
  EXPECT_EQ(s.in_use, 0);

  config.database_url = "postgresql://cdx:s3cret%zz@127.0.0.1:1/cdx";
  try {
    make_postgres_factory(config)->open("crm_db")->ping();
    FAIL() << "expected Unavailable";
  } catch (const Unavailable& e) {
    EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << e.what();
  }
}

TEST(PostgresDatabase, RejectsBadConfiguration) {
  StorageConfig config;
  config.database_url = kUnreachable;
  config.pool_size = 0;
  EXPECT_THROW(make_postgres_factory(config), std::invalid_argument);

  config.pool_size = 2;
  auto factory = make_postgres_factory(config);
  EXPECT_THROW(factory->open("crm_db; DROP TABLE x"), std::invalid_argument);
  EXPECT_THROW(factory->open("CRM_DB"), std::invalid_argument);
  EXPECT_THROW(factory->open(""), std::invalid_argument);

  // Tenant tables must live in the module's own schema; checked before connecting.
  auto db = factory->open("crm_db");
  EXPECT_THROW(db->migrate({{.version = 1, .name = "x", .sql = "", .tenant_tables = {"cms_db.entries"}}}),
               std::invalid_argument);
  EXPECT_THROW(db->migrate({{.version = 1, .name = "a", .sql = "", .tenant_tables = {}},
                            {.version = 1, .name = "b", .sql = "", .tenant_tables = {}}}),
               std::invalid_argument);

  StorageConfig only_overrides;
  only_overrides.module_urls = {{"crm_db", kUnreachable}};
  auto partial = make_postgres_factory(only_overrides);
  EXPECT_NO_THROW(partial->open("crm_db"));
  EXPECT_THROW(partial->open("cms_db"), std::invalid_argument);
}

}  // namespace
}  // namespace cdx::db
