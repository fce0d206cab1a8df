// cdx_db schema: plans, tenants, superadmins. These are platform tables, not tenant data (no RLS).
#include "core/module.hpp"

namespace cdx::core {

namespace {

// The sequence column is where the two databases differ (AUTOINCREMENT: a seq is never reused after pruning).
std::string events_table(const std::string& seq) {
  return "CREATE TABLE cdx_db.events (\n  seq " + seq + R"SQL(,
  id TEXT NOT NULL UNIQUE,
  tenant_id TEXT NOT NULL,
  type TEXT NOT NULL,
  source TEXT NOT NULL,
  subject TEXT,
  actor TEXT,
  payload TEXT NOT NULL,
  created_at TEXT NOT NULL,
  recorded_at TEXT NOT NULL
);
CREATE INDEX events_tenant ON cdx_db.events (tenant_id, seq);
CREATE INDEX events_type ON cdx_db.events (type, seq);
CREATE INDEX events_created ON cdx_db.events (created_at);
)SQL";
}

// Core's own events (tenant.*, plan.*) go through an outbox like every module's, and each subscriber of the
// event log keeps its place in event_cursors.
db::Migration outbox_and_cursors() {
  db::Migration m = db::Outbox::migration(6, "cdx_db");
  m.name = "core outbox and event subscribers' cursors";
  m.sql = R"SQL(
CREATE TABLE cdx_db.event_cursors (
  name TEXT PRIMARY KEY,
  seq BIGINT NOT NULL,
  updated_at TEXT NOT NULL,
  last_error TEXT
);
)SQL";
  return m;
}

}  // namespace

std::vector<db::Migration> CoreModule::migrations() const {
  return {
      {1, "plans, tenants, superadmins", R"SQL(
CREATE TABLE cdx_db.plans (
  id TEXT PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  rate_limit_per_minute BIGINT NOT NULL,
  max_users BIGINT NOT NULL,
  max_api_keys BIGINT NOT NULL,
  modules TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
INSERT INTO cdx_db.plans (id, key, name, rate_limit_per_minute, max_users, max_api_keys, modules, created_at, updated_at)
VALUES ('01930000-0000-7000-8000-000000000001', 'free', 'Free', 6000, 100, 20,
        '["auth","crm","cms","billing","analytics"]', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');
CREATE TABLE cdx_db.tenants (
  id TEXT PRIMARY KEY,
  slug TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  status TEXT NOT NULL,
  plan TEXT NOT NULL REFERENCES cdx_db.plans(key),
  settings TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX tenants_status ON cdx_db.tenants (status, id);
CREATE INDEX tenants_plan ON cdx_db.tenants (plan, id);
CREATE TABLE cdx_db.superadmins (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  created_at TEXT NOT NULL,
  last_login_at TEXT
);
)SQL"},
      {2, "API usage per tenant, day and key", R"SQL(
CREATE TABLE cdx_db.usage_daily (
  tenant_id TEXT NOT NULL,
  day TEXT NOT NULL,
  key_id TEXT NOT NULL,
  calls BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, day, key_id)
);
)SQL"},
      // The kit lists newest first by (created_at, id), with the filters in front.
      {3, "tenant list order", R"SQL(
CREATE INDEX tenants_created ON cdx_db.tenants (created_at, id);
CREATE INDEX tenants_status_created ON cdx_db.tenants (status, created_at, id);
CREATE INDEX tenants_plan_created ON cdx_db.tenants (plan, created_at, id);
DROP INDEX cdx_db.tenants_status;
DROP INDEX cdx_db.tenants_plan;
)SQL"},
      {4, "plan upload limit", R"SQL(
ALTER TABLE cdx_db.plans ADD COLUMN max_upload_mb BIGINT NOT NULL DEFAULT 25;
)SQL"},
      // The platform event log: every module's outbox moved here by the relay, one global sequence. A
      // platform table (the SUPERADMIN reads across tenants); tenant reads filter on tenant_id themselves.
      {5, "platform event log", "", {}, events_table("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
       events_table("INTEGER PRIMARY KEY AUTOINCREMENT")},
      outbox_and_cursors(),
      webhooks::migration(7),  // webhook endpoints, deliveries, attempts (src/webhooks/store.cpp)
      // The tenant overview's counters, kept by the event-log subscriber "aggregates" (core/aggregates.hpp).
      // Platform rows naming their tenant, like usage_daily; the overview reads them by primary key.
      {8, "tenant overview aggregates", R"SQL(
CREATE TABLE cdx_db.tenant_counters (
  tenant_id TEXT NOT NULL,
  name TEXT NOT NULL,
  value BIGINT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, name)
);
CREATE TABLE cdx_db.aggregate_deals (
  tenant_id TEXT NOT NULL,
  deal_id TEXT NOT NULL,
  status TEXT NOT NULL,
  amount BIGINT,
  currency TEXT,
  closed_at TEXT,
  PRIMARY KEY (tenant_id, deal_id)
);
CREATE TABLE cdx_db.event_hours (
  tenant_id TEXT NOT NULL,
  hour TEXT NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, hour)
);
)SQL"},
      db::Outbox::pending_index_migration(9, "cdx_db"),
      db::Outbox::queue_migration(10, "cdx_db"),
  };
}

}  // namespace cdx::core
