#include "cms/store.hpp"

#include <fmt/format.h>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "kit/kit.hpp"

namespace cdx::cms {

using nlohmann::json;

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json parse(const std::string& s) {
  json j = json::parse(s, nullptr, false);
  return j.is_discarded() ? json::object() : j;
}

// Field keys and locale codes are checked by their declarations (a-z0-9_; letters, digits and '-'); they
// are written into JSON paths, so this is asserted again here.
const std::string& safe(const std::string& name) {
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
      throw std::logic_error("cms: unsafe name in a JSON path: " + name);
  return name;
}

bool numeric(const FieldDef& f) { return f.type == "integer" || f.type == "number" || f.type == "boolean"; }

// The field's value in a published copy's data, as SQL: the locale's value of a localized field, else the
// default locale's.
std::string value_sql(db::Backend b, const FieldDef& f, const DeliveryQuery& q, bool as_number) {
  const std::string& k = safe(f.key);
  auto one = [&](const std::string* loc) {
    if (b == db::Backend::kSqlite)
      return "json_extract(data, '$." + k + (loc ? ".\"" + safe(*loc) + "\"" : std::string()) + "')";
    std::string e = loc ? "data->'" + k + "'->>'" + safe(*loc) + "'" : "data->>'" + k + "'";
    if (!as_number) return "(" + e + ")";
    return f.type == "boolean" ? "((" + e + ")::boolean)::int" : "(" + e + ")::numeric";
  };
  if (!f.localized) return one(nullptr);
  if (q.locale == q.default_locale) return one(&q.locale);
  return "COALESCE(" + one(&q.locale) + ", " + one(&q.default_locale) + ")";
}

// A value bound for comparison with value_sql: numbers as text cast on the database's side.
std::string bound(kit::Sql& sql, db::Backend b, const FieldDef* f, const json& v) {
  if (v.is_boolean()) return sql.bind(static_cast<int64_t>(v.get<bool>() ? 1 : 0));
  if (v.is_number()) {
    const std::string p = sql.bind_text(v.dump());
    return b == db::Backend::kSqlite ? "CAST(" + p + " AS REAL)" : p + "::numeric";
  }
  return sql.bind_text(v.is_string() ? v.get<std::string>() : v.dump());
}

// A sort key's expression: never null (nulls sort as the smallest value), so keyset pages stay exact.
std::string sort_sql(db::Backend b, const SortKey& k, const DeliveryQuery& q) {
  if (!k.field) return k.system;
  if (!k.field->sort_column.empty()) return k.field->sort_column;  // indexed, never null
  if (numeric(*k.field)) return "COALESCE(" + value_sql(b, *k.field, q, true) + ", -1e300)";
  return "COALESCE(" + value_sql(b, *k.field, q, false) + ", '')";
}

Published published_of(const db::Row& r, size_t sort_keys) {
  Published p;
  p.entry_id = r.text(0);
  p.type_id = r.text(1);
  p.version = r.integer(2);
  p.data = parse(r.text(3));
  p.html = parse(r.text(4));
  p.published_at = r.text(5);
  p.updated_at = r.text(6);
  for (size_t i = 0; i < sort_keys; ++i) {
    const size_t c = 7 + i;
    if (r.is_null(c)) {
      p.sort_values.emplace_back(nullptr);
      continue;
    }
    // Numbers come back as text from both databases: keep them numbers in the cursor.
    const std::string& t = r.text(c);
    json n = json::parse(t, nullptr, false);
    p.sort_values.push_back(!n.is_discarded() && n.is_number() ? n : json(t));
  }
  return p;
}

constexpr const char* kPublishedColumns = "entry_id, type_id, version, data, html, published_at, updated_at";

std::string in_list(kit::Sql& sql, const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ", ") + sql.bind_text(id);
  return out;
}

}  // namespace

// ---- locales ---------------------------------------------------------------------------------------------

Locales Store::locales(db::Tx& tx, const db::TenantScope& scope) {
  Locales out;
  for (const auto& r : tx.query("SELECT code, is_default FROM cms_db.locales WHERE tenant_id = $1 ORDER BY code",
                                {scope.tenant_id()})
                           .rows) {
    out.codes.push_back(r.text(0));
    if (r.integer(1) != 0) out.default_code = r.text(0);
  }
  if (out.codes.empty()) out.codes = {"en"};
  if (out.default_code.empty()) out.default_code = out.codes.front();
  return out;
}

void Store::ensure_default_locale(db::Tx& tx, const db::TenantScope& scope, const std::string& now) {
  if (!tx.query("SELECT 1 FROM cms_db.locales WHERE tenant_id = $1 LIMIT 1", {scope.tenant_id()}).empty()) return;
  tx.query(
      "INSERT INTO cms_db.locales (id, tenant_id, code, name, is_default, created_at, updated_at) "
      "VALUES ($1, $2, 'en', 'English', 1, $3, $3)",
      {new_uuid_v7(), scope.tenant_id(), now});
}

void Store::clear_default_locale(db::Tx& tx, const db::TenantScope& scope, const std::string& except_id) {
  tx.query("UPDATE cms_db.locales SET is_default = 0 WHERE tenant_id = $1 AND id <> $2 AND is_default <> 0",
           {scope.tenant_id(), except_id});
}

// ---- versions --------------------------------------------------------------------------------------------

void Store::add_version(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id, int64_t version,
                        const json& data, const json& actor, const std::string& at) {
  tx.query(
      "INSERT INTO cms_db.entry_versions (tenant_id, entry_id, version, data, actor, created_at) "
      "VALUES ($1, $2, $3, $4, $5, $6)",
      {scope.tenant_id(), entry_id, version, dump(data), dump(actor), at});
}

std::vector<json> Store::versions(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id,
                                  int limit, std::optional<int64_t> before) {
  std::vector<json> out;
  for (const auto& r :
       tx.query("SELECT version, actor, created_at, length(data) FROM cms_db.entry_versions "
                "WHERE tenant_id = $1 AND entry_id = $2 AND version < $3 ORDER BY version DESC LIMIT $4",
                {scope.tenant_id(), entry_id, before.value_or(INT64_MAX), static_cast<int64_t>(limit) + 1})
           .rows)
    out.push_back({{"version", r.integer(0)}, {"created_by", parse(r.text(1))}, {"created_at", r.text(2)},
                   {"size", r.integer(3)}});
  return out;
}

std::optional<json> Store::version(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id,
                                   int64_t n) {
  auto res = tx.query(
      "SELECT version, data, actor, created_at FROM cms_db.entry_versions "
      "WHERE tenant_id = $1 AND entry_id = $2 AND version = $3",
      {scope.tenant_id(), entry_id, n});
  if (res.empty()) return std::nullopt;
  const auto& r = res.rows[0];
  return json{{"version", r.integer(0)},
              {"data", parse(r.text(1))},
              {"created_by", parse(r.text(2))},
              {"created_at", r.text(3)}};
}

// ---- unique values ---------------------------------------------------------------------------------------

std::optional<std::pair<UniqueValue, std::string>> Store::taken(db::Tx& tx, const db::TenantScope& scope,
                                                                 const std::string& type_id,
                                                                 const std::string& entry_id,
                                                                 const std::vector<UniqueValue>& values) {
  for (const auto& v : values) {
    auto res = tx.query(
        "SELECT entry_id FROM cms_db.entry_unique WHERE tenant_id = $1 AND type_id = $2 AND field = $3 AND "
        "locale = $4 AND value = $5 AND entry_id <> $6",
        {scope.tenant_id(), type_id, v.field, v.locale, v.value, entry_id});
    if (!res.empty()) return std::make_pair(v, res.rows[0].text(0));
  }
  return std::nullopt;
}

void Store::set_unique(db::Tx& tx, const db::TenantScope& scope, const std::string& type_id,
                       const std::string& entry_id, const std::vector<UniqueValue>& values) {
  tx.query("DELETE FROM cms_db.entry_unique WHERE tenant_id = $1 AND entry_id = $2", {scope.tenant_id(), entry_id});
  for (const auto& v : values)
    tx.query(
        "INSERT INTO cms_db.entry_unique (tenant_id, type_id, field, locale, value, entry_id) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        {scope.tenant_id(), type_id, v.field, v.locale, v.value, entry_id});
}

// ---- links -----------------------------------------------------------------------------------------------

std::vector<std::string> Store::existing_entries(db::Tx& tx, const db::TenantScope& scope,
                                                 const std::string& type_id, const std::vector<std::string>& ids) {
  if (ids.empty()) return {};
  kit::Sql sql("SELECT id FROM cms_db.entries WHERE tenant_id = ");
  sql += sql.bind(scope.tenant_id());
  sql += " AND type_id = " + sql.bind(type_id) + " AND id IN (" + in_list(sql, ids) + ")";
  std::vector<std::string> out;
  for (const auto& r : tx.query(sql.text(), sql.params()).rows) out.push_back(r.text(0));
  return out;
}

std::vector<std::string> Store::existing_media(db::Tx& tx, const db::TenantScope& scope,
                                               const std::vector<std::string>& ids) {
  if (ids.empty()) return {};
  kit::Sql sql("SELECT id FROM cms_db.media WHERE tenant_id = ");
  sql += sql.bind(scope.tenant_id());
  sql += " AND id IN (" + in_list(sql, ids) + ")";
  std::vector<std::string> out;
  for (const auto& r : tx.query(sql.text(), sql.params()).rows) out.push_back(r.text(0));
  return out;
}

std::optional<std::string> Store::type_id_of(db::Tx& tx, const db::TenantScope& scope, const std::string& key) {
  auto res = tx.query("SELECT id FROM cms_db.content_types WHERE tenant_id = $1 AND key = $2",
                      {scope.tenant_id(), key});
  if (res.empty()) return std::nullopt;
  return res.rows[0].text(0);
}

std::vector<std::pair<std::string, json>> Store::type_fields(db::Tx& tx, const db::TenantScope& scope) {
  std::vector<std::pair<std::string, json>> out;
  for (const auto& r :
       tx.query("SELECT key, fields FROM cms_db.content_types WHERE tenant_id = $1", {scope.tenant_id()}).rows)
    out.emplace_back(r.text(0), parse(r.text(1)));
  return out;
}

int64_t Store::count_entries(db::Tx& tx, const db::TenantScope& scope, const std::string& type_id) {
  return tx.query("SELECT COUNT(*) FROM cms_db.entries WHERE tenant_id = $1 AND type_id = $2",
                  {scope.tenant_id(), type_id})
      .rows[0]
      .integer(0);
}

int64_t Store::count_published_entries(db::Tx& tx, const db::TenantScope& scope, const std::string& type_id) {
  return tx
      .query(
          "SELECT COUNT(*) FROM cms_db.entries WHERE tenant_id = $1 AND type_id = $2 AND status <> 'draft'",
          {scope.tenant_id(), type_id})
      .rows[0]
      .integer(0);
}

json Store::aggregate_counts(db::Tx& tx, const db::TenantScope& scope) {
  auto one = [&](const char* sql) { return tx.query(sql, {scope.tenant_id()}).rows.at(0).integer(0); };
  return {{"entries.published",
           one("SELECT COUNT(*) FROM cms_db.entries WHERE tenant_id = $1 AND status <> 'draft'")},
          {"media", one("SELECT COUNT(*) FROM cms_db.media WHERE tenant_id = $1")}};
}

std::vector<std::pair<std::string, json>> Store::entry_data(db::Tx& tx, const db::TenantScope& scope,
                                                            const std::string& type_id, const std::string& after_id,
                                                            int limit) {
  std::vector<std::pair<std::string, json>> out;
  for (const auto& r : tx.query("SELECT id, data FROM cms_db.entries WHERE tenant_id = $1 AND type_id = $2 AND "
                                "id > $3 ORDER BY id LIMIT $4",
                                {scope.tenant_id(), type_id, after_id, static_cast<int64_t>(limit)})
                           .rows)
    out.emplace_back(r.text(0), parse(r.text(1)));
  return out;
}

int64_t Store::count_media_users(db::Tx& tx, const db::TenantScope& scope, const std::string& media_id) {
  // An id is a UUID: as a quoted JSON string it cannot match anything else in the data.
  return tx.query("SELECT COUNT(*) FROM cms_db.entries WHERE tenant_id = $1 AND data LIKE $2",
                  {scope.tenant_id(), "%\"" + media_id + "\"%"})
      .rows[0]
      .integer(0);
}

// ---- published copies ------------------------------------------------------------------------------------

namespace {

// The eight sort-key columns and their bound values: the type's assigned ones, the smallest value for the
// others.
std::vector<std::pair<std::string, std::string>> sort_columns(kit::Sql& sql, db::Backend b,
                                                              const std::vector<std::pair<std::string, json>>& keys) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = 1; i <= 4; ++i)
    for (const char* k : {"s", "n"}) {
      const std::string col = k + std::to_string(i);
      json v = k[0] == 's' ? json("") : json(-1e300);
      for (const auto& [c, x] : keys)
        if (c == col) v = x;
      if (k[0] == 's') {
        out.emplace_back(col, sql.bind_text(v.get<std::string>()));
      } else {
        const std::string p = sql.bind_text(v.dump());
        out.emplace_back(col, b == db::Backend::kSqlite ? "CAST(" + p + " AS REAL)" : p + "::float8");
      }
    }
  return out;
}

}  // namespace

void Store::publish(db::Tx& tx, const db::TenantScope& scope, const Published& p, const std::string& search) {
  kit::Sql sql;
  std::string columns = "entry_id, tenant_id, type_id, version, data, html, search, published_at, updated_at";
  std::string values = sql.bind_text(p.entry_id) + ", " + sql.bind(scope.tenant_id()) + ", " +
                       sql.bind_text(p.type_id) + ", " + sql.bind(p.version) + ", " + sql.bind_text(dump(p.data)) +
                       ", " + sql.bind_text(dump(p.html)) + ", " + sql.bind_text(search_words(search)) + ", " +
                       sql.bind_text(p.published_at) + ", " + sql.bind_text(p.updated_at);
  std::string update = "version = excluded.version, data = excluded.data, html = excluded.html, search = "
                       "excluded.search, updated_at = excluded.updated_at";
  if (tx.backend() == db::Backend::kSqlite) {
    // The full-text index's row id (migration 4): new rows take the next one; an update keeps its own.
    columns += ", search_id";
    values += ", (SELECT COALESCE(MAX(search_id), 0) + 1 FROM cms_db.published)";
  }
  for (const auto& [col, v] : sort_columns(sql, tx.backend(), p.sort_keys)) {
    columns += ", " + col;
    values += ", " + v;
    update += ", " + col + " = excluded." + col;
  }
  sql += "INSERT INTO cms_db.published (" + columns + ") VALUES (" + values + ") ON CONFLICT (entry_id) DO UPDATE SET " +
         update;
  tx.query(sql.text(), sql.params());
}

void Store::refill_sort_keys(db::Tx& tx, const db::TenantScope& scope, const ContentType& type) {
  std::string after;
  for (;;) {
    auto rows = tx.query("SELECT entry_id, data FROM cms_db.published WHERE tenant_id = $1 AND type_id = $2 AND "
                         "entry_id > $3 ORDER BY entry_id LIMIT 1000",
                         {scope.tenant_id(), type.id, after})
                    .rows;
    if (rows.empty()) return;
    for (const auto& r : rows) {
      kit::Sql sql;
      std::string set;
      for (const auto& [col, v] : sort_columns(sql, tx.backend(), type.sort_keys(parse(r.text(1)))))
        set += (set.empty() ? "" : ", ") + col + " = " + v;
      sql += "UPDATE cms_db.published SET " + set + " WHERE tenant_id = " + sql.bind(scope.tenant_id()) +
             " AND entry_id = " + sql.bind_text(r.text(0));
      tx.query(sql.text(), sql.params());
    }
    after = rows.back().text(0);
  }
}

void Store::unpublish(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id) {
  tx.query("DELETE FROM cms_db.published WHERE tenant_id = $1 AND entry_id = $2", {scope.tenant_id(), entry_id});
}

void Store::mark_published(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id, int64_t version,
                           const std::string& published_at, const std::string& now) {
  tx.query("UPDATE cms_db.entries SET status = 'published', published_version = $3, published_at = $4, "
           "publish_at = NULL, updated_at = $5 WHERE tenant_id = $1 AND id = $2",
           {scope.tenant_id(), entry_id, version, published_at, now});
}

void Store::mark_unpublished(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id,
                             const std::string& now) {
  tx.query("UPDATE cms_db.entries SET status = 'draft', published_version = NULL, published_at = NULL, "
           "unpublish_at = NULL, updated_at = $3 WHERE tenant_id = $1 AND id = $2",
           {scope.tenant_id(), entry_id, now});
}

void Store::delete_entry_side(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id) {
  for (const char* table : {"cms_db.entry_versions", "cms_db.entry_unique", "cms_db.published",
                            "cms_db.preview_tokens", "cms_db.schedule"})
    tx.query(fmt::format("DELETE FROM {} WHERE tenant_id = $1 AND entry_id = $2", table),
             {scope.tenant_id(), entry_id});
}

void Store::delete_type_side(db::Tx& tx, const db::TenantScope& scope, const std::string& type_id) {
  for (const char* table : {"cms_db.entry_versions", "cms_db.preview_tokens", "cms_db.schedule"})
    tx.query(fmt::format("DELETE FROM {} WHERE tenant_id = $1 AND entry_id IN (SELECT id FROM cms_db.entries "
                         "WHERE tenant_id = $1 AND type_id = $2)",
                         table),
             {scope.tenant_id(), type_id});
  tx.query("DELETE FROM cms_db.entry_unique WHERE tenant_id = $1 AND type_id = $2", {scope.tenant_id(), type_id});
  tx.query("DELETE FROM cms_db.published WHERE tenant_id = $1 AND type_id = $2", {scope.tenant_id(), type_id});
}

// ---- schedule and preview --------------------------------------------------------------------------------

void Store::schedule(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id,
                     const std::string& action, std::optional<int64_t> due_at) {
  tx.query("DELETE FROM cms_db.schedule WHERE tenant_id = $1 AND entry_id = $2 AND action = $3",
           {scope.tenant_id(), entry_id, action});
  if (due_at)
    tx.query("INSERT INTO cms_db.schedule (entry_id, action, tenant_id, due_at) VALUES ($1, $2, $3, $4)",
             {entry_id, action, scope.tenant_id(), *due_at});
}

std::vector<DueAction> Store::due(db::Tx& tx, int64_t now, int limit) {
  std::vector<DueAction> out;
  for (const auto& r : tx.query("SELECT tenant_id, entry_id, action, due_at FROM cms_db.schedule WHERE due_at "
                                "<= $1 ORDER BY due_at LIMIT $2",
                                {now, static_cast<int64_t>(limit)})
                           .rows)
    out.push_back({r.text(0), r.text(1), r.text(2), r.integer(3)});
  return out;
}

bool Store::claim(db::Tx& tx, const DueAction& a) {
  // Whoever deletes the row does the work, in the same transaction: once, whatever the replicas.
  return tx.query("DELETE FROM cms_db.schedule WHERE entry_id = $1 AND action = $2 AND due_at = $3 AND "
                  "tenant_id = $4",
                  {a.entry_id, a.action, a.due_at, a.tenant_id})
             .affected == 1;
}

void Store::add_preview_token(db::Tx& tx, const db::TenantScope& scope, const std::string& token_hash,
                              const std::string& entry_id, int64_t expires_at) {
  tx.query("DELETE FROM cms_db.preview_tokens WHERE tenant_id = $1 AND expires_at < $2",
           {scope.tenant_id(), Clock::unix_seconds()});
  tx.query("INSERT INTO cms_db.preview_tokens (id, tenant_id, entry_id, expires_at) VALUES ($1, $2, $3, $4)",
           {token_hash, scope.tenant_id(), entry_id, expires_at});
}

bool Store::preview_allowed(db::Tx& tx, const db::TenantScope& scope, const std::string& token_hash,
                            const std::string& entry_id, int64_t now) {
  return !tx.query("SELECT 1 FROM cms_db.preview_tokens WHERE id = $1 AND tenant_id = $2 AND entry_id = $3 AND "
                   "expires_at > $4",
                   {token_hash, scope.tenant_id(), entry_id, now})
              .empty();
}

// ---- delivery --------------------------------------------------------------------------------------------

std::vector<Published> Store::published_page(db::Tx& tx, const db::TenantScope& scope, const std::string& type_id,
                                             const DeliveryQuery& q) {
  const db::Backend b = tx.backend();
  kit::Sql sql(std::string("SELECT ") + kPublishedColumns);
  std::vector<std::string> keys;
  for (const auto& k : q.sort) {
    keys.push_back(sort_sql(b, k, q));
    sql += ", " + keys.back();
  }
  sql += " FROM cms_db.published WHERE tenant_id = " + sql.bind(scope.tenant_id());
  sql += " AND type_id = " + sql.bind(type_id);
  for (const Filter& f : q.filters) {
    if (!f.field) {  // id
      std::vector<std::string> ids;
      for (const auto& v : f.values) ids.push_back(v.get<std::string>());
      sql += std::string(f.op == "ne" ? " AND entry_id NOT IN (" : " AND entry_id IN (") + in_list(sql, ids) + ")";
      continue;
    }
    const FieldDef& d = *f.field;
    const bool num = numeric(d);
    const std::string e = value_sql(b, d, q, num);
    if (f.op == "contains") {
      if (d.type == "text_list" || d.is_link()) {
        const std::string v = sql.bind_text(f.values[0].get<std::string>());
        if (b == db::Backend::kSqlite)
          sql += " AND EXISTS (SELECT 1 FROM json_each(data, '$." + safe(d.key) + "') WHERE value = " + v + ")";
        else
          sql += " AND (data->'" + safe(d.key) + "' ? " + v + " OR data->>'" + d.key + "' = " + v + ")";
      } else {
        sql += " AND lower(" + e + ") LIKE " + sql.bind_text(f.values[0].get<std::string>()) + " ESCAPE '\\'";
      }
    } else if (f.op == "in") {
      std::string list;
      for (const auto& v : f.values) list += (list.empty() ? "" : ", ") + bound(sql, b, &d, v);
      sql += " AND " + e + " IN (" + list + ")";
    } else if (f.op == "exists") {
      sql += std::string(" AND ") + e + (f.values[0].get<bool>() ? " IS NOT NULL" : " IS NULL");
    } else {
      static const std::map<std::string, std::string> kOps = {{"eq", " = "},  {"ne", " <> "}, {"gt", " > "},
                                                              {"gte", " >= "}, {"lt", " < "},  {"lte", " <= "}};
      const std::string v = bound(sql, b, &d, f.values[0]);
      if (f.op == "ne")
        sql += " AND (" + e + " IS NULL OR " + e + " <> " + v + ")";
      else
        sql += " AND " + e + kOps.at(f.op) + v;
    }
  }
  if (!q.words.empty()) {
    // Every word, each as a prefix, through the full-text index (migration 4).
    std::string match;
    for (const auto& w : q.words)
      match += b == db::Backend::kSqlite ? (match.empty() ? "" : " ") + ("\"" + w + "\"*")
                                         : (match.empty() ? "" : " & ") + ("'" + w + "':*");
    if (b == db::Backend::kSqlite) {
      sql += " AND search_id IN (SELECT rowid FROM cms_db.published_search WHERE published_search MATCH " +
             sql.bind_text(match) + ")";
    } else {
      // PostgreSQL estimates a prefix match poorly: left to itself it walks the sort's index and tests every
      // row, seconds for a word no entry has. So the matches are read first: up to a few thousand are looked
      // up by id; with more, that walk soon fills a page.
      constexpr size_t kLookup = 5000;
      // A word PostgreSQL's parser finds no lexeme in matches nothing, as in SQLite, rather than anything.
      std::string spaced;
      for (const auto& w : q.words) spaced += (spaced.empty() ? "" : " ") + w;
      const std::string words_sql =
          "SELECT entry_id FROM cms_db.published_words WHERE tenant_id = $1 AND type_id = $2 AND words @@ "
          "to_tsquery('simple', $3) AND NOT EXISTS (SELECT 1 FROM unnest(string_to_array($4, ' ')) AS w WHERE "
          "numnode(to_tsquery('simple', '''' || w || ''':*')) = 0)";
      const db::Params params{scope.tenant_id(), type_id, match, spaced};
      auto found = tx.query(words_sql + " LIMIT " + std::to_string(kLookup + 1), params);
      if (found.rows.empty()) return {};
      if (found.rows.size() <= kLookup) {
        std::string ids = "{";
        for (const auto& r : found.rows) ids += (ids.size() > 1 ? "," : "") + r.text(0);  // uuids: no quoting
        sql += " AND entry_id = ANY(" + sql.bind_text(ids + "}") + "::text[])";
      } else {
        sql += " AND entry_id IN (SELECT entry_id FROM cms_db.published_words WHERE tenant_id = " +
               sql.bind(scope.tenant_id()) + " AND type_id = " + sql.bind(type_id) +
               " AND words @@ to_tsquery('simple', " + sql.bind_text(match) + "))";
      }
    }
  }
  if (q.after) {
    // (k1, k2, …, id) after the cursor's values, each key in its own direction.
    const auto& vals = *q.after;
    std::string any, equal;
    for (size_t i = 0; i <= q.sort.size(); ++i) {
      const bool last = i == q.sort.size();
      const bool desc = last ? q.sort.back().descending : q.sort[i].descending;
      const std::string col = last ? "entry_id" : keys[i];
      const FieldDef* f = last ? nullptr : q.sort[i].field;
      const json& v = vals[i];
      std::string p = last || !f || !numeric(*f) ? sql.bind_text(v.is_string() ? v.get<std::string>() : v.dump())
                                                 : bound(sql, b, f, v.is_number() ? v : json(-1e300));
      if (f && !f->sort_column.empty() && f->sort_column[0] == 'n' && b == db::Backend::kPostgres)
        p = sql.bind_text(v.is_number() ? v.dump() : "-1e300") + "::float8";
      if (f && numeric(*f) && v.is_boolean()) p = sql.bind(static_cast<int64_t>(v.get<bool>()));
      any += (any.empty() ? "(" : " OR (") + equal + col + (desc ? " < " : " > ") + p + ")";
      equal += col + " = " + p + " AND ";
    }
    sql += " AND (" + any + ")";
  }
  sql += " ORDER BY ";
  for (size_t i = 0; i < q.sort.size(); ++i) sql += keys[i] + (q.sort[i].descending ? " DESC, " : " ASC, ");
  sql += std::string("entry_id") + (q.sort.back().descending ? " DESC" : " ASC");
  sql += " LIMIT " + sql.bind(static_cast<int64_t>(q.limit) + 1);
  std::vector<Published> out;
  for (const auto& r : tx.query(sql.text(), sql.params()).rows) out.push_back(published_of(r, q.sort.size()));
  return out;
}

std::optional<Published> Store::published_one(db::Tx& tx, const db::TenantScope& scope, const std::string& type_id,
                                              const std::string& entry_id) {
  auto res = tx.query(std::string("SELECT ") + kPublishedColumns +
                          " FROM cms_db.published WHERE tenant_id = $1 AND entry_id = $2 AND type_id = $3",
                      {scope.tenant_id(), entry_id, type_id});
  if (res.empty()) return std::nullopt;
  return published_of(res.rows[0], 0);
}

std::vector<Published> Store::published_many(db::Tx& tx, const db::TenantScope& scope,
                                             const std::vector<std::string>& ids) {
  if (ids.empty()) return {};
  kit::Sql sql(std::string("SELECT ") + kPublishedColumns + " FROM cms_db.published WHERE tenant_id = ");
  sql += sql.bind(scope.tenant_id());
  sql += " AND entry_id IN (" + in_list(sql, ids) + ")";
  std::vector<Published> out;
  for (const auto& r : tx.query(sql.text(), sql.params()).rows) out.push_back(published_of(r, 0));
  return out;
}

std::vector<std::string> Store::media_hashes(db::Tx& tx, const db::TenantScope& scope) {
  std::vector<std::string> out;
  for (const auto& r :
       tx.query("SELECT DISTINCT hash FROM cms_db.media WHERE tenant_id = $1", {scope.tenant_id()}).rows)
    out.push_back(r.text(0));
  return out;
}

std::vector<json> Store::media_many(db::Tx& tx, const db::TenantScope& scope, const std::vector<std::string>& ids) {
  if (ids.empty()) return {};
  kit::Sql sql(
      "SELECT id, filename, mime_type, size, width, height, alt, folder FROM cms_db.media WHERE tenant_id = ");
  sql += sql.bind(scope.tenant_id());
  sql += " AND id IN (" + in_list(sql, ids) + ")";
  std::vector<json> out;
  for (const auto& r : tx.query(sql.text(), sql.params()).rows)
    out.push_back({{"id", r.text(0)},
                   {"filename", r.text(1)},
                   {"mime_type", r.text(2)},
                   {"size", r.integer(3)},
                   {"width", r.opt_integer(4) ? json(*r.opt_integer(4)) : json(nullptr)},
                   {"height", r.opt_integer(5) ? json(*r.opt_integer(5)) : json(nullptr)},
                   {"alt", r.opt_text(6) ? json(*r.opt_text(6)) : json(nullptr)},
                   {"url", "/api/v1/cms/files/" + scope.tenant_id() + "/" + r.text(0)}});
  return out;
}

}  // namespace cdx::cms
