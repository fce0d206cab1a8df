// cms_db schema. Every CMS table is tenant data (RLS on PostgreSQL) except the outbox and the schedule,
// which the relay and the scheduler read across tenants. The published copies hold their data as JSONB on
// PostgreSQL, so delivery filters and sorts read it without parsing text.
#include <fmt/format.h>

#include "cms/module.hpp"
#include "db/outbox.hpp"
#include "kit/idempotency.hpp"

namespace cdx::cms {

namespace {

// Sort keys: the first four text-like and four number-like fields of a type (not localized) are copied into
// s1..s4 and n1..n4 when an entry is published, each indexed, so a sort on one walks an index instead of
// sorting the type's every entry. A missing value is '' or -1e300: the smallest, and never NULL, so ORDER BY
// reads the index as it is.
std::string published_table(const char* json_type, const char* real_type) {
  std::string sql = std::string(R"SQL(
CREATE TABLE cms_db.published (
  entry_id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  type_id TEXT NOT NULL,
  version BIGINT NOT NULL,
  data )SQL") + json_type + R"SQL( NOT NULL,
  html TEXT NOT NULL,
  search TEXT NOT NULL,
  published_at TEXT NOT NULL,
  updated_at TEXT NOT NULL)SQL";
  for (int i = 1; i <= 4; ++i)
    sql += fmt::format(",\n  s{0} TEXT NOT NULL DEFAULT '',\n  n{0} {1} NOT NULL DEFAULT -1e300", i, real_type);
  sql += R"SQL(
);
CREATE INDEX published_by_time ON cms_db.published (tenant_id, type_id, published_at, entry_id);
CREATE INDEX published_by_update ON cms_db.published (tenant_id, type_id, updated_at, entry_id);
)SQL";
  for (int i = 1; i <= 4; ++i)
    for (const char* k : {"s", "n"})
      sql += fmt::format("CREATE INDEX published_{0}{1} ON cms_db.published (tenant_id, type_id, {0}{1}, entry_id);\n",
                         k, i);
  return sql;
}

}  // namespace

std::vector<db::Migration> CmsModule::migrations() const {
  return {
      {1,
       "locales, content types, entries and their versions, unique values, published copies, schedule, "
       "preview tokens, media",
       R"SQL(
CREATE TABLE cms_db.locales (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  code TEXT NOT NULL,
  name TEXT,
  is_default INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (tenant_id, code)
);
CREATE INDEX locales_created ON cms_db.locales (tenant_id, created_at, id);
CREATE TABLE cms_db.content_types (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  key TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT,
  fields TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (tenant_id, key)
);
CREATE INDEX content_types_created ON cms_db.content_types (tenant_id, created_at, id);
CREATE INDEX content_types_updated ON cms_db.content_types (tenant_id, updated_at, id);
CREATE INDEX content_types_name ON cms_db.content_types (tenant_id, name, id);
CREATE TABLE cms_db.entries (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  type_id TEXT NOT NULL,
  data TEXT NOT NULL,
  status TEXT NOT NULL,
  version BIGINT NOT NULL,
  published_version BIGINT,
  published_at TEXT,
  publish_at TEXT,
  unpublish_at TEXT,
  created_by TEXT,
  updated_by TEXT,
  search TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX entries_created ON cms_db.entries (tenant_id, type_id, created_at, id);
CREATE INDEX entries_updated ON cms_db.entries (tenant_id, type_id, updated_at, id);
CREATE INDEX entries_status ON cms_db.entries (tenant_id, type_id, status, updated_at, id);
CREATE TABLE cms_db.entry_versions (
  tenant_id TEXT NOT NULL,
  entry_id TEXT NOT NULL,
  version BIGINT NOT NULL,
  data TEXT NOT NULL,
  actor TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (entry_id, version)
);
CREATE INDEX entry_versions_tenant ON cms_db.entry_versions (tenant_id, entry_id);
CREATE TABLE cms_db.entry_unique (
  tenant_id TEXT NOT NULL,
  type_id TEXT NOT NULL,
  field TEXT NOT NULL,
  locale TEXT NOT NULL,
  value TEXT NOT NULL,
  entry_id TEXT NOT NULL,
  PRIMARY KEY (tenant_id, type_id, field, locale, value)
);
CREATE INDEX entry_unique_entry ON cms_db.entry_unique (tenant_id, entry_id);
CREATE TABLE cms_db.schedule (
  entry_id TEXT NOT NULL,
  action TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  due_at BIGINT NOT NULL,
  PRIMARY KEY (entry_id, action)
);
CREATE INDEX schedule_due ON cms_db.schedule (due_at);
CREATE TABLE cms_db.preview_tokens (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  entry_id TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX preview_tokens_entry ON cms_db.preview_tokens (tenant_id, entry_id);
CREATE TABLE cms_db.media (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  filename TEXT NOT NULL,
  mime_type TEXT NOT NULL,
  size BIGINT NOT NULL,
  width INTEGER,
  height INTEGER,
  hash TEXT NOT NULL,
  alt TEXT,
  folder TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX media_created ON cms_db.media (tenant_id, created_at, id);
CREATE INDEX media_updated ON cms_db.media (tenant_id, updated_at, id);
CREATE INDEX media_filename ON cms_db.media (tenant_id, filename, id);
CREATE INDEX media_hash ON cms_db.media (tenant_id, hash);
)SQL",
       {"cms_db.locales", "cms_db.content_types", "cms_db.entries", "cms_db.entry_versions",
        "cms_db.entry_unique", "cms_db.preview_tokens", "cms_db.media", "cms_db.published"},
       published_table("JSONB", "DOUBLE PRECISION"),
       published_table("TEXT", "REAL")},
      db::Outbox::migration(2, "cms_db"),
      kit::Idempotency::migration(3, "cms_db"),
      // q= on the delivery API: a full-text index of the published copies' words (search_words), each word
      // matched as a prefix. SQLite: an FTS5 index over the table (rows found by search_id, a stable integer:
      // a table's own rowid may change on VACUUM), kept by triggers. PostgreSQL: a tsvector per published
      // entry under a GIN index, in a table of its own kept by a trigger. Not under row-level security: the
      // text-search match operator is not leakproof, so under a policy PostgreSQL cannot use the index and
      // reads every row of the table (270 ms for a million entries). Queries name the tenant there, as they
      // do for the outbox, and what they find is read from the published copies, under the policy. The
      // 'simple' configuration (no stemming, no stop words) reads text of any language as SQLite's
      // tokenizer does. The copies published before it are indexed at once (every tenant's: the table forces
      // row-level security even on its owner, so it is lifted for the copy).
      {4, "full-text index of published entries", "", {},
       R"SQL(
CREATE TABLE cms_db.published_words (
  entry_id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  type_id TEXT NOT NULL,
  words tsvector NOT NULL
);
CREATE INDEX published_words_match ON cms_db.published_words USING GIN (words);
CREATE FUNCTION cms_db.published_words_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    DELETE FROM cms_db.published_words WHERE entry_id = OLD.entry_id;
    RETURN OLD;
  END IF;
  INSERT INTO cms_db.published_words (entry_id, tenant_id, type_id, words)
  VALUES (NEW.entry_id, NEW.tenant_id, NEW.type_id, to_tsvector('simple', NEW.search))
  ON CONFLICT (entry_id) DO UPDATE SET type_id = excluded.type_id, words = excluded.words;
  RETURN NEW;
END
$$;
CREATE TRIGGER published_words_sync AFTER INSERT OR UPDATE OF search OR DELETE ON cms_db.published
  FOR EACH ROW EXECUTE FUNCTION cms_db.published_words_sync();
ALTER TABLE cms_db.published NO FORCE ROW LEVEL SECURITY;
INSERT INTO cms_db.published_words (entry_id, tenant_id, type_id, words)
  SELECT entry_id, tenant_id, type_id, to_tsvector('simple', regexp_replace(search, '[[:punct:]]', ' ', 'g'))
  FROM cms_db.published;
ALTER TABLE cms_db.published FORCE ROW LEVEL SECURITY;
)SQL",
       R"SQL(
ALTER TABLE cms_db.published ADD COLUMN search_id INTEGER;
UPDATE cms_db.published SET search_id = rowid;
CREATE UNIQUE INDEX published_search_id ON cms_db.published (search_id);
CREATE VIRTUAL TABLE cms_db.published_search USING fts5(search, content = 'published', content_rowid = 'search_id',
  tokenize = 'unicode61 remove_diacritics 0');
INSERT INTO cms_db.published_search (published_search) VALUES ('rebuild');
CREATE TRIGGER cms_db.published_search_insert AFTER INSERT ON published BEGIN
  INSERT INTO published_search (rowid, search) VALUES (new.search_id, new.search);
END;
CREATE TRIGGER cms_db.published_search_delete AFTER DELETE ON published BEGIN
  INSERT INTO published_search (published_search, rowid, search) VALUES ('delete', old.search_id, old.search);
END;
CREATE TRIGGER cms_db.published_search_update AFTER UPDATE OF search ON published BEGIN
  INSERT INTO published_search (published_search, rowid, search) VALUES ('delete', old.search_id, old.search);
  INSERT INTO published_search (rowid, search) VALUES (new.search_id, new.search);
END;
)SQL"},
      db::Outbox::pending_index_migration(5, "cms_db"),
      db::Outbox::queue_migration(6, "cms_db"),
  };
}

}  // namespace cdx::cms
