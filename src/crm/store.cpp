#include "crm/store.hpp"

#include "kit/kit.hpp"

#include <algorithm>
#include <deque>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/validate.hpp"

namespace cdx::crm {

namespace {

using nlohmann::json;

json parse_json(const std::optional<std::string>& text, json fallback) {
  if (!text) return fallback;
  json j = json::parse(*text, nullptr, false);
  return j.is_discarded() ? fallback : j;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Bulk statements take their rows as one JSON array (one parameter), so a statement holds a thousand rows
// on either database: no parameter per value (SQLite binds parameters by name, a linear search each) and
// no statement text that grows with the batch. `value->>N` reads column N of a row on both.
constexpr size_t kBatchRows = 1000;

std::string json_rows_source(const db::Tx& tx, const char* param) {
  return tx.backend() == db::Backend::kPostgres ? std::string("jsonb_array_elements(CAST(") + param + " AS jsonb))"
                                                : std::string("json_each(") + param + ")";
}
// The same for an array of strings, as a table of text `value`s.
std::string json_values_source(const db::Tx& tx, const char* param) {
  return tx.backend() == db::Backend::kPostgres
             ? std::string("json_array_elements_text(CAST(") + param + " AS json)) AS v (value)"
             : std::string("json_each(") + param + ")";
}

// Appends s as a JSON string (the text is valid UTF-8 already: checked at the edge). Runs of characters
// that need no escape are copied at once.
void append_json_string(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  out += '"';
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c != '"' && c != '\\' && c >= 0x20) continue;
    out.append(s, run, i - run);
    run = i + 1;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  out.append(s, run, s.size() - run);
  out += '"';
}

// One batch's rows: [[…], […]], each cell a string or null.
class JsonRows {
 public:
  void row() {
    text_ += text_.empty() ? "[[" : "],[";
    first_ = true;
  }
  void cell(std::string_view v) {
    sep();
    append_json_string(text_, v);
  }
  void cell(const std::string& v) { cell(std::string_view(v)); }
  void cell(const std::optional<std::string>& v) {
    if (v) return cell(std::string_view(*v));
    sep();
    text_ += "null";
  }
  std::string take() {
    std::string out = text_.empty() ? "[]" : std::move(text_) + "]]";
    text_.clear();
    return out;
  }

 private:
  void sep() {
    if (!first_) text_ += ',';
    first_ = false;
  }
  std::string text_;
  bool first_ = true;
};

// INSERT INTO table (tenant_id, columns…) from n rows, kBatchRows per statement; row(i, rows) adds row i's
// cells, one per column.
template <class RowFn>
void insert_rows(db::Tx& tx, const db::TenantScope& scope, const std::string& table,
                 const std::vector<std::string>& columns, size_t n, RowFn row) {
  std::string sql = "INSERT INTO " + table + " (tenant_id";
  for (const auto& c : columns) sql += ", " + c;
  sql += ") SELECT CAST($2 AS TEXT)";
  for (size_t i = 0; i < columns.size(); ++i) sql += ", value->>" + std::to_string(i);
  sql += " FROM " + json_rows_source(tx, "$1");
  JsonRows rows;
  for (size_t start = 0; start < n; start += kBatchRows) {
    for (size_t i = start; i < std::min(n, start + kBatchRows); ++i) {
      rows.row();
      row(i, rows);
    }
    const std::string batch = rows.take();
    tx.query(sql, {batch, scope.tenant_id()});
  }
}

// Rows of <schema>.outbox as db::Outbox::append writes them, one per payload.
void insert_events(db::Tx& tx, const db::TenantScope& scope, const Store::Events& events) {
  const std::string now = format_rfc3339(Clock::now());
  insert_rows(tx, scope, events.outbox_schema + ".outbox", {"id", "type", "payload", "created_at"},
              events.payloads.size(), [&](size_t i, JsonRows& r) {
                r.cell(new_uuid_v7());
                r.cell(events.type);
                r.cell(events.payloads[i]);
                r.cell(now);
              });
}

// Of `values`, those that `column` of the tenant's rows in `table` holds.
std::unordered_set<std::string> present(db::Tx& tx, const db::TenantScope& scope, const char* table,
                                        const char* column, const std::vector<std::string>& values) {
  std::unordered_set<std::string> out;
  const std::string sql = std::string("SELECT ") + column + " FROM crm_db." + table + " WHERE tenant_id = $1 AND " +
                          column + " IN (SELECT value FROM " + json_values_source(tx, "$2") + ")";
  std::string batch;
  for (size_t start = 0; start < values.size(); start += kBatchRows) {
    batch = "[";
    for (size_t i = start; i < std::min(values.size(), start + kBatchRows); ++i) {
      if (i > start) batch += ',';
      append_json_string(batch, values[i]);
    }
    batch += ']';
    for (const auto& r : tx.query(sql, {scope.tenant_id(), batch}).rows) out.insert(r.text(0));
  }
  return out;
}

void write_tags(db::Tx& tx, const db::TenantScope& scope, const Contact& c) {
  tx.query("DELETE FROM crm_db.contact_tags WHERE tenant_id = $1 AND contact_id = $2", {scope.tenant_id(), c.id});
  for (const auto& t : c.tags)
    tx.query("INSERT INTO crm_db.contact_tags (tenant_id, contact_id, tag) VALUES ($1, $2, $3) "
             "ON CONFLICT (contact_id, tag) DO NOTHING",
             {scope.tenant_id(), c.id, lowercase(t)});
}

// ---- deals ---------------------------------------------------------------------------------------------


constexpr const char* kHistoryColumns =
    "id, deal_id, seq, pipeline_id, from_stage_id, to_stage_id, from_status, to_status, actor_type, actor_id, "
    "changed_at";

DealChange change_from(const db::Row& r) {
  DealChange c;
  c.id = r.text(0);
  c.deal_id = r.text(1);
  c.seq = r.integer(2);
  c.pipeline_id = r.text(3);
  c.from_stage_id = r.opt_text(4);
  c.to_stage_id = r.opt_text(5);
  c.from_status = r.opt_text(6);
  c.to_status = r.opt_text(7);
  c.actor = {r.text(8), r.text(9)};
  c.changed_at = r.text(10);
  return c;
}

// ---- activities ----------------------------------------------------------------------------------------

constexpr const char* kActivityColumns =
    "id, type, subject, body, due_at, done, completed_at, contact_id, company_id, deal_id, owner_id, created_at, "
    "updated_at";

bool exists(db::Tx& tx, const char* table, const db::TenantScope& scope, const std::string& id) {
  return !tx.query(std::string("SELECT 1 FROM crm_db.") + table + " WHERE tenant_id = $1 AND id = $2",
                   {scope.tenant_id(), id})
              .empty();
}

}  // namespace

// ---- companies -----------------------------------------------------------------------------------------

bool Store::company_exists(db::Tx& tx, const db::TenantScope& scope, const std::string& id) {
  return exists(tx, "companies", scope, id);
}

// ---- contacts ------------------------------------------------------------------------------------------

bool Store::contact_exists(db::Tx& tx, const db::TenantScope& scope, const std::string& id) {
  return exists(tx, "contacts", scope, id);
}

// ---- pipelines and stages ------------------------------------------------------------------------------

std::optional<std::string> Store::default_pipeline(db::Tx& tx, const db::TenantScope& scope) {
  auto res = tx.query("SELECT id FROM crm_db.pipelines WHERE tenant_id = $1 ORDER BY is_default DESC, created_at, id "
                      "LIMIT 1",
                      {scope.tenant_id()});
  if (res.empty()) return std::nullopt;
  return res.rows[0].text(0);
}

void Store::clear_default_pipeline(db::Tx& tx, const db::TenantScope& scope, const std::string& except_id) {
  tx.query("UPDATE crm_db.pipelines SET is_default = 0 WHERE tenant_id = $1 AND is_default <> 0 AND id <> $2",
           {scope.tenant_id(), except_id});
}

int64_t Store::count_stages(db::Tx& tx, const db::TenantScope& scope, const std::string& pipeline_id,
                            const std::string& except_id) {
  return tx.query("SELECT COUNT(*) FROM crm_db.stages WHERE tenant_id = $1 AND pipeline_id = $2 AND id <> $3",
                  {scope.tenant_id(), pipeline_id, except_id})
      .rows.at(0)
      .integer(0);
}

std::optional<std::string> Store::stage_named(db::Tx& tx, const db::TenantScope& scope,
                                              const std::string& pipeline_id, const std::string& name,
                                              const std::string& except_id) {
  // Compared here, not with SQL lower(): the two databases lower-case differently.
  for (const auto& row : tx.query("SELECT name FROM crm_db.stages WHERE tenant_id = $1 AND pipeline_id = $2 AND "
                                  "id <> $3",
                                  {scope.tenant_id(), pipeline_id, except_id})
                             .rows)
    if (lowercase(row.text(0)) == lowercase(name)) return row.text(0);
  return std::nullopt;
}

std::optional<std::string> Store::stage_pipeline(db::Tx& tx, const db::TenantScope& scope,
                                                 const std::string& stage_id) {
  auto res = tx.query("SELECT pipeline_id FROM crm_db.stages WHERE tenant_id = $1 AND id = $2",
                      {scope.tenant_id(), stage_id});
  if (res.empty()) return std::nullopt;
  return res.rows[0].text(0);
}

std::optional<std::string> Store::first_stage(db::Tx& tx, const db::TenantScope& scope,
                                              const std::string& pipeline_id) {
  auto res = tx.query("SELECT id FROM crm_db.stages WHERE tenant_id = $1 AND pipeline_id = $2 ORDER BY position, "
                      "id LIMIT 1",
                      {scope.tenant_id(), pipeline_id});
  if (res.empty()) return std::nullopt;
  return res.rows[0].text(0);
}

void Store::renumber_stages(db::Tx& tx, const db::TenantScope& scope, const std::string& pipeline_id,
                            const std::string& moved, int64_t at, const std::string& now) {
  auto res = tx.query("SELECT id, position FROM crm_db.stages WHERE tenant_id = $1 AND pipeline_id = $2 AND id <> $3 "
                      "ORDER BY position, created_at, id",
                      {scope.tenant_id(), pipeline_id, moved});
  int64_t pos = 0;
  for (const auto& row : res.rows) {
    if (pos == at) ++pos;
    if (row.integer(1) != pos)
      tx.query("UPDATE crm_db.stages SET position = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
               {scope.tenant_id(), row.text(0), pos, now});
    ++pos;
  }
}

// ---- deals ---------------------------------------------------------------------------------------------

bool Store::deal_exists(db::Tx& tx, const db::TenantScope& scope, const std::string& id) {
  return exists(tx, "deals", scope, id);
}

int64_t Store::count_deals_in_pipeline(db::Tx& tx, const db::TenantScope& scope, const std::string& pipeline_id) {
  return tx.query("SELECT COUNT(*) FROM crm_db.deals WHERE tenant_id = $1 AND pipeline_id = $2",
                  {scope.tenant_id(), pipeline_id})
      .rows.at(0)
      .integer(0);
}

void delete_orphan_activities(db::Tx& tx, const db::TenantScope& scope) {
  tx.query("DELETE FROM crm_db.activities WHERE tenant_id = $1 AND contact_id IS NULL AND company_id IS NULL "
           "AND deal_id IS NULL",
           {scope.tenant_id()});
}

std::vector<std::string> Store::deals_in_stage(db::Tx& tx, const db::TenantScope& scope, const std::string& stage_id) {
  std::vector<std::string> out;
  for (const auto& r : tx.query("SELECT id FROM crm_db.deals WHERE tenant_id = $1 AND stage_id = $2 ORDER BY created_at, id",
                                {scope.tenant_id(), stage_id})
                           .rows)
    out.push_back(r.text(0));
  return out;
}

void Store::delete_history(db::Tx& tx, const db::TenantScope& scope, const std::string& deal_id) {
  tx.query("DELETE FROM crm_db.deal_history WHERE tenant_id = $1 AND deal_id = $2", {scope.tenant_id(), deal_id});
}

void Store::append_history(db::Tx& tx, const db::TenantScope& scope, DealChange& c) {
  c.seq = tx.query("SELECT COALESCE(MAX(seq), 0) + 1 FROM crm_db.deal_history WHERE tenant_id = $1 AND deal_id = $2",
                   {scope.tenant_id(), c.deal_id})
              .rows.at(0)
              .integer(0);
  tx.query("INSERT INTO crm_db.deal_history (id, tenant_id, deal_id, seq, pipeline_id, from_stage_id, to_stage_id, "
           "from_status, to_status, actor_type, actor_id, changed_at) "
           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
           {c.id, scope.tenant_id(), c.deal_id, c.seq, c.pipeline_id, c.from_stage_id, c.to_stage_id, c.from_status,
            c.to_status, c.actor.type, c.actor.id, c.changed_at});
}

std::vector<DealChange> Store::list_history(db::Tx& tx, const db::TenantScope& scope, const std::string& deal_id,
                                            int limit, int64_t after_seq) {
  std::vector<DealChange> out;
  for (const auto& r : tx.query(std::string("SELECT ") + kHistoryColumns +
                                    " FROM crm_db.deal_history WHERE tenant_id = $1 AND deal_id = $2 AND seq > $3 "
                                    "ORDER BY seq LIMIT $4",
                                {scope.tenant_id(), deal_id, after_seq, static_cast<int64_t>(limit) + 1})
                           .rows)
    out.push_back(change_from(r));
  return out;
}

// ---- activities ----------------------------------------------------------------------------------------

// ---- import --------------------------------------------------------------------------------------------

void Store::import_companies(db::Tx& tx, const db::TenantScope& scope, const std::vector<Company>& companies,
                             const Events& events) {
  insert_rows(tx, scope, "crm_db.companies",
              {"id", "name", "domain", "domain_normalized", "industry", "size", "address", "owner_id", "custom",
               "created_at", "updated_at"},
              companies.size(), [&](size_t i, JsonRows& r) {
                const Company& c = companies[i];
                r.cell(c.id);
                r.cell(c.name);
                r.cell(c.domain);
                r.cell(c.domain);  // stored lower-cased already
                r.cell(c.industry);
                r.cell(c.size);
                r.cell(c.address.is_null() ? std::nullopt : std::optional<std::string>(dump(c.address)));
                r.cell(c.owner_id);
                r.cell(dump(c.custom));
                r.cell(c.created_at);
                r.cell(c.updated_at);
              });
  insert_events(tx, scope, events);
}

void Store::import_contacts(db::Tx& tx, const db::TenantScope& scope, const std::vector<Contact>& contacts,
                            const Events& events) {
  // In id order: an import's rows share created_at, so the primary key and the list indexes (…, created_at,
  // id) then grow at one end instead of taking inserts all over their pages.
  std::vector<const Contact*> by_id(contacts.size());
  for (size_t i = 0; i < contacts.size(); ++i) by_id[i] = &contacts[i];
  std::sort(by_id.begin(), by_id.end(), [](const Contact* a, const Contact* b) { return a->id < b->id; });
  insert_rows(tx, scope, "crm_db.contacts",
              {"id", "first_name", "last_name", "email", "email_normalized", "phone", "title", "company_id",
               "owner_id", "lifecycle_stage", "tags", "custom", "created_at", "updated_at", "search"},
              by_id.size(), [&](size_t i, JsonRows& r) {
                const Contact& c = *by_id[i];
                std::optional<std::string> email_norm;
                if (c.email) email_norm = normalize_email(*c.email);
                r.cell(c.id);
                r.cell(c.first_name);
                r.cell(c.last_name);
                r.cell(c.email);
                r.cell(email_norm);
                r.cell(c.phone);
                r.cell(c.title);
                r.cell(c.company_id);
                r.cell(c.owner_id);
                r.cell(c.lifecycle_stage);
                r.cell(dump(c.tags));
                r.cell(dump(c.custom));
                r.cell(c.created_at);
                r.cell(c.updated_at);
                r.cell(contact_search_text(c.first_name, c.last_name, email_norm));
              });
  struct Tag {
    const std::string* contact_id;
    std::string tag;
  };
  std::vector<Tag> tags;
  for (const Contact* c : by_id)
    for (const auto& t : c->tags) tags.push_back({&c->id, lowercase(t)});
  // New contacts, and tags already unique per contact ignoring case (the model drops duplicates): no
  // ON CONFLICT, which costs PostgreSQL a speculative insertion per row.
  insert_rows(tx, scope, "crm_db.contact_tags", {"contact_id", "tag"}, tags.size(), [&](size_t i, JsonRows& r) {
    r.cell(*tags[i].contact_id);
    r.cell(tags[i].tag);
  });
  insert_events(tx, scope, events);
}


std::unordered_set<std::string> Store::existing_companies(db::Tx& tx, const db::TenantScope& scope,
                                                          const std::vector<std::string>& ids) {
  return present(tx, scope, "companies", "id", ids);
}

std::unordered_set<std::string> Store::taken_emails(db::Tx& tx, const db::TenantScope& scope,
                                                    const std::vector<std::string>& emails_normalized) {
  return present(tx, scope, "contacts", "email_normalized", emails_normalized);
}

std::unordered_set<std::string> Store::taken_domains(db::Tx& tx, const db::TenantScope& scope,
                                                     const std::vector<std::string>& domains) {
  return present(tx, scope, "companies", "domain_normalized", domains);
}

Counts Store::counts(db::Tx& tx, const db::TenantScope& scope) {
  auto one = [&](const char* sql) { return tx.query(sql, {scope.tenant_id()}).rows.at(0).integer(0); };
  Counts c;
  c.companies = one("SELECT COUNT(*) FROM crm_db.companies WHERE tenant_id = $1");
  c.contacts = one("SELECT COUNT(*) FROM crm_db.contacts WHERE tenant_id = $1");
  c.deals = one("SELECT COUNT(*) FROM crm_db.deals WHERE tenant_id = $1");
  c.open_deals = one("SELECT COUNT(*) FROM crm_db.deals WHERE tenant_id = $1 AND status = 'open'");
  c.activities = one("SELECT COUNT(*) FROM crm_db.activities WHERE tenant_id = $1");
  return c;
}

void Store::purge_tenant(db::Tx& tx, const db::TenantScope& scope) {
  // Companies, contacts (with their tags) and activities are the kit's (Kit::purge_tenant).
  for (const char* table : {"deal_history", "deals", "stages", "pipelines"})
    tx.query(std::string("DELETE FROM crm_db.") + table + " WHERE tenant_id = $1", {scope.tenant_id()});
}

}  // namespace cdx::crm
