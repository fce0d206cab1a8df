// crm_db schema. Every CRM table is tenant data (RLS on PostgreSQL). The outbox is a platform table (its
// relay reads every tenant's pending events); idempotency keys are tenant data.
#include "crm/module.hpp"
#include "db/outbox.hpp"
#include "kit/idempotency.hpp"

namespace cdx::crm {

std::vector<db::Migration> CrmModule::migrations() const {
  return {
      {1,
       "companies, contacts, pipelines, stages, deals, deal history, activities",
       R"SQL(
CREATE TABLE crm_db.companies (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  name TEXT NOT NULL,
  domain TEXT,
  domain_normalized TEXT,
  industry TEXT,
  size TEXT,
  address TEXT,
  owner_id TEXT,
  custom TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (tenant_id, domain_normalized)
);
CREATE INDEX companies_created ON crm_db.companies (tenant_id, created_at, id);
CREATE INDEX companies_updated ON crm_db.companies (tenant_id, updated_at, id);
CREATE INDEX companies_owner ON crm_db.companies (tenant_id, owner_id);
CREATE TABLE crm_db.contacts (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  first_name TEXT,
  last_name TEXT,
  email TEXT,
  email_normalized TEXT,
  phone TEXT,
  title TEXT,
  company_id TEXT,
  owner_id TEXT,
  lifecycle_stage TEXT NOT NULL,
  tags TEXT NOT NULL,
  custom TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (tenant_id, email_normalized)
);
CREATE INDEX contacts_created ON crm_db.contacts (tenant_id, created_at, id);
CREATE INDEX contacts_updated ON crm_db.contacts (tenant_id, updated_at, id);
CREATE INDEX contacts_company ON crm_db.contacts (tenant_id, company_id);
CREATE INDEX contacts_owner ON crm_db.contacts (tenant_id, owner_id);
CREATE TABLE crm_db.contact_tags (
  tenant_id TEXT NOT NULL,
  contact_id TEXT NOT NULL,
  tag TEXT NOT NULL,
  PRIMARY KEY (contact_id, tag)
);
CREATE INDEX contact_tags_tag ON crm_db.contact_tags (tenant_id, tag);
CREATE TABLE crm_db.pipelines (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  name TEXT NOT NULL,
  is_default INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX pipelines_tenant ON crm_db.pipelines (tenant_id, created_at, id);
CREATE TABLE crm_db.stages (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  pipeline_id TEXT NOT NULL,
  name TEXT NOT NULL,
  position INTEGER NOT NULL,
  probability INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX stages_pipeline ON crm_db.stages (tenant_id, pipeline_id, position);
CREATE TABLE crm_db.deals (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  title TEXT NOT NULL,
  amount BIGINT,
  currency TEXT,
  pipeline_id TEXT NOT NULL,
  stage_id TEXT NOT NULL,
  contact_id TEXT,
  company_id TEXT,
  expected_close_date TEXT,
  status TEXT NOT NULL,
  owner_id TEXT,
  custom TEXT NOT NULL,
  closed_at TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX deals_created ON crm_db.deals (tenant_id, created_at, id);
CREATE INDEX deals_updated ON crm_db.deals (tenant_id, updated_at, id);
CREATE INDEX deals_pipeline ON crm_db.deals (tenant_id, pipeline_id);
CREATE INDEX deals_stage ON crm_db.deals (tenant_id, stage_id);
CREATE INDEX deals_contact ON crm_db.deals (tenant_id, contact_id);
CREATE INDEX deals_company ON crm_db.deals (tenant_id, company_id);
CREATE TABLE crm_db.deal_history (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  deal_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  pipeline_id TEXT NOT NULL,
  from_stage_id TEXT,
  to_stage_id TEXT,
  from_status TEXT,
  to_status TEXT,
  actor_type TEXT NOT NULL,
  actor_id TEXT NOT NULL,
  changed_at TEXT NOT NULL,
  UNIQUE (deal_id, seq)
);
CREATE INDEX deal_history_deal ON crm_db.deal_history (tenant_id, deal_id, seq);
CREATE TABLE crm_db.activities (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  type TEXT NOT NULL,
  subject TEXT,
  body TEXT,
  due_at TEXT,
  done INTEGER NOT NULL,
  completed_at TEXT,
  contact_id TEXT,
  company_id TEXT,
  deal_id TEXT,
  owner_id TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX activities_created ON crm_db.activities (tenant_id, created_at, id);
CREATE INDEX activities_updated ON crm_db.activities (tenant_id, updated_at, id);
CREATE INDEX activities_contact ON crm_db.activities (tenant_id, contact_id, created_at, id);
CREATE INDEX activities_company ON crm_db.activities (tenant_id, company_id, created_at, id);
CREATE INDEX activities_deal ON crm_db.activities (tenant_id, deal_id, created_at, id);
)SQL",
       {"crm_db.companies", "crm_db.contacts", "crm_db.contact_tags", "crm_db.pipelines", "crm_db.stages",
        "crm_db.deals", "crm_db.deal_history", "crm_db.activities"}},
      db::Outbox::migration(2, "crm_db"),
      kit::Idempotency::migration(3, "crm_db"),
      // ?q= on contacts reads one column, kept by the store (see search_text in store.cpp), and the list
      // indexes carry it: a search scans the tenant's index entries in list order and reads only the rows
      // it answers, so its cost is bounded by the tenant's size, not the table's. Lists filtered by
      // lifecycle stage get their own index.
      {4,
       "contacts: search column, list indexes that cover it, lifecycle stage index",
       R"SQL(
ALTER TABLE crm_db.contacts ADD COLUMN search TEXT;
DROP INDEX crm_db.contacts_created;
DROP INDEX crm_db.contacts_updated;
CREATE INDEX contacts_created ON crm_db.contacts (tenant_id, created_at, id, search);
CREATE INDEX contacts_updated ON crm_db.contacts (tenant_id, updated_at, id, search);
CREATE INDEX contacts_stage_created ON crm_db.contacts (tenant_id, lifecycle_stage, created_at, id, search);
)SQL",
       {},
       // The backfill lower-cases ASCII only (COLLATE "C"), as the store and the search term do. Rows of
       // every tenant: the table forces row-level security even on its owner, so lift it for the update.
       R"SQL(
ALTER TABLE crm_db.contacts NO FORCE ROW LEVEL SECURITY;
UPDATE crm_db.contacts SET search = lower((COALESCE(first_name, '') || ' ' || COALESCE(last_name, '')) COLLATE "C")
  || E'\n' || COALESCE(email_normalized, '');
ALTER TABLE crm_db.contacts FORCE ROW LEVEL SECURITY;
)SQL",
       R"SQL(
UPDATE crm_db.contacts SET search = lower(COALESCE(first_name, '') || ' ' || COALESCE(last_name, ''))
  || char(10) || COALESCE(email_normalized, '');
)SQL"},
      // CSV imports stage their rows here on SQLite (kit/transfer.cpp).
      kit::ImportStaging::migration(5, "crm_db"),
      db::Outbox::pending_index_migration(6, "crm_db"),
      db::Outbox::queue_migration(7, "crm_db"),
  };
}

}  // namespace cdx::crm
