#include "kit/kit.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/json_body.hpp"
#include "common/validate.hpp"
#include "http/pagination.hpp"

namespace cdx::kit {

using nlohmann::json;

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string now_text() { return format_rfc3339(Clock::now()); }

std::string length_message(size_t min, size_t max) {
  return min <= 1 ? fmt::format("must be 1 to {} characters long (not blank)", max)
                  : fmt::format("must be {} to {} characters long", min, max);
}

// One text value: a trimmed, clean string within the field's lengths; nullopt after reporting.
std::optional<std::string> read_text(const json& v, const Field& f, Problems& p) {
  if (!v.is_string()) {
    p.fail("must be a string");
    return std::nullopt;
  }
  // Write-only values (passwords) and verbatim ones are taken as given: trimming would change them.
  std::string s =
      f.is_verbatim || f.is_write_only ? v.get<std::string>() : trim(v.get_ref<const std::string&>());
  if (!clean_text(s, f.is_multiline)) {
    p.fail(f.is_multiline ? "must not contain control characters other than tab and newline"
                          : "must not contain control characters");
    return std::nullopt;
  }
  const size_t len = utf8_length(s);
  if (len < f.min_len || len > f.max_len) {
    p.fail(length_message(f.min_len, f.max_len));
    return std::nullopt;
  }
  return s;
}

// A value of the field's type, checked and normalised; nullopt after reporting why not.
std::optional<json> read_value(const json& v, const Field& f, Problems& p) {
  switch (f.type) {
    case Type::kText: {
      auto s = read_text(v, f, p);
      if (!s) return std::nullopt;
      return json(std::move(*s));
    }
    case Type::kInteger: {
      const std::string what = fmt::format("must be an integer between {} and {}", *f.minimum, *f.maximum);
      if (!v.is_number_integer() ||
          (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
        p.fail(what);
        return std::nullopt;
      }
      const int64_t n = v.get<int64_t>();
      if (n < *f.minimum || n > *f.maximum) {
        p.fail(what);
        return std::nullopt;
      }
      return json(n);
    }
    case Type::kBoolean:
      if (!v.is_boolean()) {
        p.fail("must be true or false");
        return std::nullopt;
      }
      return v;
    case Type::kId: {
      if (!v.is_string() || !valid_uuid(lowercase(v.get_ref<const std::string&>()))) {
        p.fail("must be an id (a UUID such as 01930000-0000-7000-8000-000000000001)");
        return std::nullopt;
      }
      return json(lowercase(v.get_ref<const std::string&>()));
    }
    case Type::kEnum:
      if (!v.is_string() ||
          std::find(f.values.begin(), f.values.end(), v.get_ref<const std::string&>()) == f.values.end()) {
        p.fail("must be one of: " + join(f.values));
        return std::nullopt;
      }
      return v;
    case Type::kDate:
      if (!v.is_string() || !valid_date(v.get_ref<const std::string&>())) {
        p.fail("must be a date (YYYY-MM-DD)");
        return std::nullopt;
      }
      return v;
    case Type::kDateTime: {
      std::optional<SysTime> t;
      if (v.is_string() && v.get_ref<const std::string&>().size() <= 64)
        t = parse_rfc3339(v.get_ref<const std::string&>());
      if (!t) {
        p.fail("must be a date and time (RFC 3339, such as 2026-01-31T09:30:00Z)");
        return std::nullopt;
      }
      return json(format_rfc3339(*t));
    }
    case Type::kObject: {
      if (!v.is_object()) {
        if (f.properties.empty()) {
          p.fail("must be an object");
        } else {
          std::vector<std::string> names;
          for (const auto& m : f.properties) names.push_back(m.name);
          p.fail("must be an object with " + join(names));
        }
        return std::nullopt;
      }
      if (f.properties.empty()) {
        if (dump(v).size() > f.max_len) {
          p.fail(fmt::format("must be at most {} bytes as JSON", f.max_len));
          return std::nullopt;
        }
        return v;
      }
      // Declared members only; each optional text; blanks dropped; nothing left is null.
      json clean = json::object();
      bool ok = true;
      for (const auto& [k, val] : v.items()) {
        auto m = std::find_if(f.properties.begin(), f.properties.end(),
                              [&key = k](const Field& x) { return x.name == key; });
        if (m == f.properties.end()) {
          std::vector<std::string> names;
          for (const auto& x : f.properties) names.push_back(x.name);
          p.fail_in(k, "is not a member of " + f.name + " (" + join(names) + ")");
          ok = false;
          continue;
        }
        if (val.is_null()) continue;
        if (!val.is_string() || utf8_length(val.get_ref<const std::string&>()) > m->max_len ||
            !clean_text(val.get_ref<const std::string&>(), true)) {
          p.fail_in(k, fmt::format("must be a string of at most {} characters", m->max_len));
          ok = false;
          continue;
        }
        std::string s = trim(val.get_ref<const std::string&>());
        if (!s.empty()) clean[k] = std::move(s);
      }
      if (!ok) return std::nullopt;
      return clean.empty() ? json(nullptr) : clean;
    }
    case Type::kTextList: {
      const std::string each = fmt::format(
          "must be an array of strings, each 1 to {} characters without control characters", f.item_max);
      if (!v.is_array()) {
        p.fail(each);
        return std::nullopt;
      }
      json out = json::array();
      std::set<std::string> seen;
      for (const auto& t : v) {
        if (!t.is_string()) {
          p.fail(each);
          return std::nullopt;
        }
        std::string s = trim(t.get_ref<const std::string&>());
        if (s.empty() || utf8_length(s) > f.item_max || !clean_text(s, false)) {
          p.fail(each);
          return std::nullopt;
        }
        if (seen.insert(lowercase(s)).second) out.push_back(std::move(s));
      }
      if (out.size() > f.max_len) {
        p.fail(fmt::format("must hold at most {} items", f.max_len));
        return std::nullopt;
      }
      return out;
    }
    case Type::kNumber: {
      std::string what = "must be a number";
      if (f.number_min && f.number_max)
        what = fmt::format("must be a number between {} and {}", *f.number_min, *f.number_max);
      else if (f.number_min)
        what = fmt::format("must be a number of at least {}", *f.number_min);
      else if (f.number_max)
        what = fmt::format("must be a number of at most {}", *f.number_max);
      if (!v.is_number()) {
        p.fail(what);
        return std::nullopt;
      }
      const double d = v.get<double>();
      if (!std::isfinite(d) || (f.number_min && d < *f.number_min) || (f.number_max && d > *f.number_max)) {
        p.fail(what);
        return std::nullopt;
      }
      return v;
    }
    case Type::kJson:
      if (v.is_null() || dump(v).size() > f.max_len) {
        p.fail(fmt::format("must be a JSON value of at most {} bytes", f.max_len));
        return std::nullopt;
      }
      return v;
    case Type::kObjectList: {
      std::vector<std::string> names;
      for (const auto& m : f.properties) names.push_back(m.name);
      if (!v.is_array() || v.size() > f.max_len) {
        p.fail(fmt::format("must be an array of at most {} objects with {}", f.max_len, join(names)));
        return std::nullopt;
      }
      // Each item under the members' own rules; errors name the item: stages[0].probability.
      std::vector<FieldError> errors;
      json out = json::array();
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string at = fmt::format("{}[{}]", f.name, i);
        if (!v[i].is_object()) {
          errors.push_back({at, "must be an object with " + join(names)});
          continue;
        }
        json item = json::object();
        for (const auto& [k, _] : v[i].items())
          if (std::none_of(f.properties.begin(), f.properties.end(),
                           [&key = k](const Field& m) { return m.name == key; }))
            errors.push_back({at + "." + k, "is not a member (known: " + join(names) + ")"});
        for (const Field& m : f.properties) {
          auto it = v[i].find(m.name);
          if (it == v[i].end() || it->is_null()) {
            if (m.is_required) errors.push_back({at + "." + m.name, "is required"});
            if (!m.default_value.is_null()) item[m.name] = m.default_value;
            continue;
          }
          Problems mp(at + "." + m.name, errors);
          const size_t before = errors.size();
          auto mv = read_value(*it, m, mp);
          if (mv && m.checker) m.checker(*mv, mp);
          if (mv && errors.size() == before) item[m.name] = std::move(*mv);
        }
        out.push_back(std::move(item));
      }
      if (!errors.empty()) {
        for (auto& e : errors) p.add(std::move(e));
        return std::nullopt;
      }
      return out;
    }
  }
  return std::nullopt;
}

// What a null or absent stored value renders as (objects and lists with a default render it).
json empty_value(const Field& f) { return f.default_value.is_null() ? json(nullptr) : f.default_value; }

db::Param param_of(const Field& f, const json& v, std::deque<std::string>& keep) {
  if (v.is_null()) return nullptr;
  switch (f.type) {
    case Type::kInteger:
      return v.get<int64_t>();
    case Type::kBoolean:
      return v.get<bool>();
    case Type::kObject:
    case Type::kTextList:
    case Type::kObjectList:
    case Type::kNumber:
    case Type::kJson:
      keep.push_back(dump(v));
      return std::string_view(keep.back());
    default:
      keep.push_back(v.get<std::string>());
      return std::string_view(keep.back());
  }
}

json value_of(const Field& f, const db::Row& row, size_t i) {
  if (row.is_null(i)) return empty_value(f);
  switch (f.type) {
    case Type::kInteger:
      return row.integer(i);
    case Type::kBoolean:
      return row.integer(i) != 0;
    case Type::kObject:
    case Type::kTextList:
    case Type::kObjectList:
    case Type::kNumber:
    case Type::kJson: {
      json j = json::parse(row.text(i), nullptr, false);
      return j.is_discarded() ? empty_value(f) : j;
    }
    default:
      return row.text(i);
  }
}

// merge_patch() fields: the PATCH value is merged into the stored object (RFC 7396: null removes a key);
// null resets the field (to its default). The merged object keeps the field's size limit.
void merge_fields(const Resource& r, json& row, const json& before, const json& patch) {
  for (const Field& f : r.fields()) {
    auto it = patch.find(f.name);
    if (!f.merges || it == patch.end()) continue;
    if (it->is_null()) {  // the whole field reset
      row[f.name] = empty_value(f);
      continue;
    }
    json merged = before.value(f.name, json::object());
    if (!merged.is_object()) merged = json::object();
    merged.merge_patch(*it);
    if (dump(merged).size() > f.max_len)
      throw Error::validation(
          {{f.name, fmt::format("must be at most {} bytes as JSON (after merging)", f.max_len)}});
    row[f.name] = std::move(merged);
  }
}

// Hidden values stay out of answers and events.
void strip_hidden(const Resource& r, json& row) {
  for (const Field& f : r.fields())
    if (f.is_hidden) row.erase(f.name);
}

std::string sort_value(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "1" : "0";
  return v.dump();
}

}  // namespace

std::optional<json> check_value(const Field& f, const json& v, Problems& p) {
  const size_t before = p.count();
  auto out = read_value(v, f, p);
  if (out && f.checker && !out->is_null()) f.checker(*out, p);
  if (p.count() != before) return std::nullopt;
  return out;
}

std::optional<std::string> query_text(const http::Context& ctx, std::string_view name, size_t max) {
  auto v = ctx.req.query_param(name);
  if (!v || v->empty()) return std::nullopt;
  if (v->size() > max || !clean_text(*v, false))
    throw Error::validation({{std::string(name), fmt::format("must be at most {} characters of text", max)}});
  return v;
}

// ---- Sql -------------------------------------------------------------------------------------------------

std::string Sql::bind(db::Param p) {
  params_.push_back(p);
  return "$" + std::to_string(params_.size());
}

std::string Sql::bind_text(std::string v) {
  owned_.push_back(std::move(v));
  return bind(std::string_view(owned_.back()));
}

// ---- reading bodies --------------------------------------------------------------------------------------

json read_fields(const Resource& r, const json& doc, Mode mode, std::vector<FieldError>& errors) {
  static const std::set<std::string, std::less<>> kServerSet = {"id", "tenant_id", "created_at",
                                                                "updated_at"};
  for (const auto& [name, _] : doc.items()) {
    const Field* f = r.find(name);
    if (f && f->is_hidden) f = nullptr;  // not even named as read-only
    if (f && !f->is_read_only && f->is_create_only && mode == Mode::kUpdate) {
      errors.push_back({name, "can only be given on create"});
      continue;
    }
    if (f && !f->is_read_only) continue;
    if (f || kServerSet.count(name)) {
      errors.push_back({name, f && !f->read_only_reason.empty() ? "is read-only: " + f->read_only_reason
                                                                : "is read-only"});
    } else if (!r.ignores_unknown()) {
      std::vector<std::string> known;
      for (const auto& x : r.fields())
        if (!x.is_read_only && !x.is_hidden) known.push_back(x.name);
      errors.push_back({name, "is not a known field (known: " + join(known) + ")"});
    }
  }
  json patch = json::object();
  for (const Field& f : r.fields()) {
    if (f.is_read_only || f.is_hidden || (f.is_create_only && mode == Mode::kUpdate)) continue;
    auto it = doc.find(f.name);
    if (it == doc.end()) {
      if (mode == Mode::kCreate) {
        if (!f.default_value.is_null())
          patch[f.name] = f.default_value;
        else if (f.is_required)
          errors.push_back({f.name, "is required"});
      }
      continue;
    }
    if (mode == Mode::kUpdate && f.is_immutable) {
      errors.push_back({f.name, "cannot be changed"});
      continue;
    }
    if (it->is_null()) {
      if (!f.is_nullable)
        errors.push_back({f.name, "cannot be null"});
      else
        // null clears: to the default where there is one (a merged object: at update, see merge_fields)
        patch[f.name] = f.merges && mode == Mode::kUpdate ? json(nullptr) : f.default_value;
      continue;
    }
    Problems p(f.name, errors);
    const size_t before = errors.size();
    auto v = read_value(*it, f, p);
    if (!v) continue;
    if (f.checker && !v->is_null()) f.checker(*v, p);
    if (errors.size() != before) continue;
    if (v->is_null() && !f.is_nullable) {
      errors.push_back({f.name, "cannot be empty"});
      continue;
    }
    patch[f.name] = std::move(*v);
  }
  if (mode == Mode::kCreate)
    for (const auto& rule : r.at_least_one()) {
      const bool given = std::any_of(rule.fields.begin(), rule.fields.end(), [&](const std::string& f) {
        return (patch.contains(f) && !patch[f].is_null()) ||
               std::any_of(errors.begin(), errors.end(), [&](const FieldError& e) { return e.field == f; });
      });
      if (!given) errors.push_back({rule.fields.front(), rule.message});
    }
  return patch;
}

json read_body(const Resource& r, std::string_view body, Mode mode) {
  const json doc = parse_json_object(body);
  std::vector<FieldError> errors;
  json patch = read_fields(r, doc, mode, errors);
  if (!errors.empty()) throw Error::validation(std::move(errors));
  return patch;
}

// ---- lists -----------------------------------------------------------------------------------------------

ListQuery Kit::read_list(const Resource& r, const http::Context& ctx) const {
  ListQuery q;
  std::vector<FieldError> errors;
  q.limit = http::parse_limit(ctx.req, errors);
  std::string sort = r.default_sort();
  if (auto s = ctx.req.query_param("sort"); s && !s->empty()) sort = *s;
  q.descending = !sort.empty() && sort.front() == '-';
  q.sort = q.descending ? sort.substr(1) : sort;
  if (!r.sortable(q.sort)) {
    std::vector<std::string> names = {"created_at", "updated_at"};
    for (const auto& f : r.fields())
      if (f.is_sortable) names.push_back(f.name);
    std::vector<std::string> both;
    for (const auto& n : names) both.push_back(n), both.push_back("-" + n);
    errors.push_back({"sort", "must be one of: " + join(both)});
  }
  if (auto cursor = ctx.req.query_param("cursor"); cursor && !cursor->empty() && errors.empty()) {
    q.after = http::decode_sorted_cursor(*cursor, sort);  // made by render_list for the same sort
    if (!q.after) errors.push_back({"cursor", "is not a cursor returned by this list with the same sort"});
  }
  if (!errors.empty()) throw Error::validation(std::move(errors));

  if (!r.search_column().empty() ||
      std::any_of(r.fields().begin(), r.fields().end(), [](const Field& f) { return f.is_searchable; })) {
    if (auto text = query_text(ctx, "q", 200)) q.q = http::like_pattern(*text);
  }
  for (const Field& f : r.fields()) {
    if (f.filter_match == Match::kNone) continue;
    const size_t max = f.type == Type::kText ? f.max_len : 64;
    auto v = query_text(ctx, f.name, std::max<size_t>(max, 8));
    if (!v) continue;
    std::vector<FieldError> bad;
    Problems p(f.name, bad);
    json value;
    switch (f.type) {
      case Type::kBoolean:
        if (*v == "true" || *v == "false")
          value = *v == "true";
        else
          bad.push_back({f.name, "must be true or false"});
        break;
      case Type::kInteger: {
        int64_t n = 0;
        auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
        if (ec != std::errc() || ptr != v->data() + v->size())
          bad.push_back({f.name, "must be an integer"});
        else
          value = n;
        break;
      }
      case Type::kId:
        if (!valid_uuid(lowercase(*v))) bad.push_back({f.name, "must be an id"});
        value = lowercase(*v);
        break;
      case Type::kEnum:
        if (std::find(f.values.begin(), f.values.end(), *v) == f.values.end())
          bad.push_back({f.name, "must be one of: " + join(f.values)});
        value = *v;
        break;
      default:
        value = *v;
    }
    if (!bad.empty()) throw Error::validation(std::move(bad));
    q.filters.emplace_back(&f, sort_value(value));
  }
  for (const CustomFilter& cf : r.custom_filters())
    if (auto v = query_text(ctx, cf.name, cf.max_length)) q.custom.emplace_back(&cf, *v);
  return q;
}

std::string Kit::render_list(const Resource& r, json rows, const ListQuery& q) const {
  json next = nullptr;
  if (rows.size() > static_cast<size_t>(q.limit)) {
    rows.erase(rows.size() - 1);
    const json& last = rows.back();
    const std::string sort = (q.descending ? "-" : "") + q.sort;
    next = http::encode_sorted_cursor(sort, sort_value(last.at(q.sort)), last.at("id").get<std::string>());
  }
  return json{{"data", std::move(rows)}, {"next_cursor", std::move(next)}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

json Kit::list(db::Tx& tx, const Caller& c, const Resource& r, const ListQuery& q) const {
  // With q on a search column, the page's ids come first from the list index alone (which holds the search
  // column), and only those rows are read: PostgreSQL filters index entries in an index-only scan but reads
  // the row of every entry it filters in a plain one. (A join, not `id IN (…)`: SQLite would answer that by
  // scanning the tenant in list order.)
  const bool two_step = q.q && !r.search_column().empty();
  Sql sql("SELECT " + (two_step ? std::string("id AS page_id") : r.select_list()) + " FROM " + r.table() +
          " WHERE ");
  // Platform rows have no tenant: every row is listed (a SUPERADMIN path, or rows any caller may read).
  const std::string tenant = r.is_platform() ? std::string() : sql.bind(c.scope.tenant_id());
  sql += r.is_platform() ? "1 = 1" : "tenant_id = " + tenant;
  if (c.owner) sql += " AND " + r.owner_column() + " = " + sql.bind_text(*c.owner);
  if (c.parent) sql += " AND " + r.parent_column() + " = " + sql.bind_text(*c.parent);
  if (!r.soft_delete_field().empty()) sql += " AND " + r.find(r.soft_delete_field())->column() + " IS NULL";
  for (const auto& [column, value] : q.equal) sql += " AND " + column + " = " + sql.bind_text(value);
  for (const auto& [f, value] : q.filters) {
    if (f->filter_match == Match::kCaseless)
      sql += " AND lower(" + f->column() + ") = " + sql.bind_text(lowercase(value));
    else if (f->type == Type::kInteger || f->type == Type::kBoolean)
      sql += " AND " + f->column() + " = " + sql.bind(static_cast<int64_t>(std::stoll(value)));
    else
      sql += " AND " + f->column() + " = " + sql.bind_text(value);
  }
  for (const auto& [cf, value] : q.custom)
    sql += " AND " + cf->where(value, [&](std::string v) { return sql.bind_text(std::move(v)); });
  if (q.q) {
    const std::string p = sql.bind_text(*q.q);
    if (!r.search_column().empty()) {
      sql += " AND " + r.search_column() + " LIKE " + p + " ESCAPE '\\'";
    } else {
      std::string any;
      for (const auto& f : r.fields())
        if (f.is_searchable)
          any += (any.empty() ? "" : " OR ") + ("lower(" + f.column() + ") LIKE " + p + " ESCAPE '\\'");
      sql += " AND (" + any + ")";
    }
  }
  const Field* sf = r.find(q.sort);
  const std::string col = sf ? sf->column() : q.sort;
  const char* op = q.descending ? " < " : " > ";
  const char* dir = q.descending ? " DESC" : " ASC";
  if (q.after) {
    const bool numeric = sf && (sf->type == Type::kInteger || sf->type == Type::kBoolean);
    std::string v;
    if (numeric) {
      int64_t n = 0;
      std::from_chars(q.after->first.data(), q.after->first.data() + q.after->first.size(), n);
      v = sql.bind(n);
    } else {
      v = sql.bind_text(q.after->first);
    }
    const std::string id = sql.bind_text(q.after->second);
    sql += " AND (" + col + op + v + " OR (" + col + " = " + v + " AND id" + op + id + "))";
  }
  sql += " ORDER BY " + col + dir + ", id" + dir + " LIMIT " + sql.bind(static_cast<int64_t>(q.limit) + 1);
  std::string text = sql.text();
  if (two_step)
    text = "SELECT " + r.select_list() + " FROM (" + text + ") AS page JOIN " + r.table() +
           " ON id = page.page_id" + (r.is_platform() ? "" : " WHERE tenant_id = " + tenant) + " ORDER BY " +
           col + dir + ", id" + dir;
  json out = json::array();
  for (const auto& row : tx.query(text, sql.params()).rows) out.push_back(row_json(r, row));
  if (r.hooks().decorate && !out.empty()) r.hooks().decorate(tx, c.scope, out);
  return out;
}

// ---- rows ------------------------------------------------------------------------------------------------

void prepare(const Resource& r, Caller& c, json& patch, json& once, bool create) {
  if (!r.hooks().prepare) return;
  Prepare p{c, patch, once, create};
  r.hooks().prepare(p);
}

json row_json(const Resource& r, const db::Row& row) {
  json out = json::object();
  size_t i = 0;
  out["id"] = row.text(i++);
  if (r.shows_tenant_id()) out["tenant_id"] = row.text(i++);
  for (const Field& f : r.fields())
    if (f.rendered()) out[f.name] = f.is_column ? value_of(f, row, i++) : empty_value(f);
  if (r.parent_resource()) out[r.parent_column()] = row.text(i++);
  out["created_at"] = row.text(i++);
  out["updated_at"] = row.text(i++);
  return out;
}

void not_found(const Resource& r, const std::string& id) {
  throw Error(Code::kNotFound, fmt::format("No {} has the id '{}'.", r.kind(), id));
}

Caller caller_of(const http::Context& ctx, const Resource& r) {
  if (r.is_platform()) return Caller{db::TenantScope::none(), actor_of(ctx), std::nullopt};
  Caller c{*ctx.tenant, actor_of(ctx), std::nullopt};
  c.request = &ctx;
  if (!r.owner_column().empty() && ctx.principal->role == Role::kClient) c.owner = ctx.principal->id;
  return c;
}

std::optional<json> Kit::find(db::Tx& tx, const Caller& c, const Resource& r, const std::string& id) const {
  // By id, or by the resource's key: what cannot be either is not looked up.
  std::string column = "id";
  if (!valid_uuid(id)) {
    const Field* key = r.key_field().empty() ? nullptr : r.find(r.key_field());
    if (!key || id.empty() || utf8_length(id) > key->max_len || !clean_text(id, false)) return std::nullopt;
    column = key->column();
  }
  Sql sql("SELECT " + r.select_list() + " FROM " + r.table() + " WHERE ");
  sql += r.is_platform() ? "1 = 1" : "tenant_id = " + sql.bind(c.scope.tenant_id());
  sql += " AND " + column + " = " + sql.bind(id);
  if (!r.soft_delete_field().empty()) sql += " AND " + r.find(r.soft_delete_field())->column() + " IS NULL";
  if (c.owner) sql += " AND " + r.owner_column() + " = " + sql.bind_text(*c.owner);
  if (c.parent) sql += " AND " + r.parent_column() + " = " + sql.bind_text(*c.parent);
  auto res = tx.query(sql.text(), sql.params());
  if (res.empty()) return std::nullopt;
  json rows = json::array({row_json(r, res.rows[0])});
  if (r.hooks().decorate) r.hooks().decorate(tx, c.scope, rows);
  return std::move(rows[0]);
}

void Kit::resolve_parent(db::Tx& tx, Caller& c, const Resource& r,
                         const std::string& parent_id_or_key) const {
  const Resource& p = *r.parent_resource();
  const Caller pc{c.scope, c.actor, std::nullopt, std::nullopt};
  auto row = find(tx, pc, p, parent_id_or_key);
  if (!row) not_found(p, parent_id_or_key);
  c.parent = row->at("id").get<std::string>();
}

void Kit::embed(db::Tx& tx, const db::TenantScope& scope, const Resource& child, json& rows,
                const std::string& as) const {
  Sql sql("SELECT " + child.select_list() + " FROM " + child.table() + " WHERE tenant_id = ");
  sql += sql.bind(scope.tenant_id());
  sql += " AND " + child.parent_column() + " IN (";
  std::map<std::string, json*> by_id;
  for (json& row : rows) {
    row[as] = json::array();
    sql += std::string(by_id.empty() ? "" : ", ") + sql.bind_text(row.at("id").get<std::string>());
    by_id[row.at("id").get<std::string>()] = &row;
  }
  if (by_id.empty()) return;
  const bool desc = child.default_sort().front() == '-';
  const std::string sort = child.default_sort().substr(desc ? 1 : 0);
  const Field* sf = child.find(sort);
  const std::string dir = desc ? " DESC" : " ASC";
  sql += ") ORDER BY " + (sf ? sf->column() : sort) + dir + ", id" + dir;
  for (const auto& r : tx.query(sql.text(), sql.params()).rows) {
    json item = row_json(child, r);
    json* parent = by_id.at(item.at(child.parent_column()).get<std::string>());
    (*parent)[as].push_back(std::move(item));
  }
}

bool Kit::exists(db::Tx& tx, const db::TenantScope& scope, const std::string& table,
                 const std::string& id) const {
  return !tx.query("SELECT 1 FROM " + table + " WHERE tenant_id = $1 AND id = $2", {scope.tenant_id(), id})
              .empty();
}

void Kit::check_row(db::Tx& tx, const Caller& c, const Resource& r, json& row, const json* before,
                    const json& patch, json& event, Events& more) const {
  std::vector<FieldError> errors;
  Change change{tx, c.scope, row, before, patch, errors, event, c.actor, more};
  change.caller = &c;
  // Links must name a row of this tenant (checked when set or changed).
  for (const Field& f : r.fields()) {
    if (f.refs_table.empty()) continue;
    const json& v = row[f.name];
    if (v.is_null() || (before && before->value(f.name, json()) == v)) continue;
    if (!exists(tx, c.scope, f.refs_table, v.get<std::string>()))
      errors.push_back({f.name, "does not exist in this tenant"});
  }
  for (const auto& rule : r.at_least_one())
    if (std::none_of(rule.fields.begin(), rule.fields.end(),
                     [&](const std::string& f) { return change.value(f); }))
      errors.push_back({rule.fields.front(), rule.message});
  if (r.hooks().validate) r.hooks().validate(change);
  if (!errors.empty()) throw Error::validation(std::move(errors));
}

void Kit::store_row(db::Tx& tx, const Caller& c, const Resource& r, json& row, const json* before,
                    const json& patch, json& event, Events& more) const {
  std::vector<FieldError> errors;
  Change change{tx, c.scope, row, before, patch, errors, event, c.actor, more};
  change.caller = &c;
  std::deque<std::string> keep;
  std::vector<std::pair<std::string, db::Param>> cols;
  for (const Field& f : r.fields()) {
    if (!f.is_column || f.is_write_only || (f.is_hidden && !row.contains(f.name)))
      continue;  // hidden: when given
    cols.emplace_back(f.column(), param_of(f, row[f.name], keep));
  }
  for (const Derived& d : r.derived()) {
    keep.emplace_back();
    cols.emplace_back(d.column, d.value(row, keep.back()));
  }
  // Unique per tenant: answered 409 naming the value (the database's constraint is the backstop).
  for (const Field& f : r.fields()) {
    if (f.unique_on.empty() || row[f.name].is_null()) continue;
    if (before && before->value(f.name, json()) == row[f.name]) continue;
    auto col = std::find_if(cols.begin(), cols.end(), [&](const auto& p) { return p.first == f.unique_on; });
    if (col == cols.end()) continue;
    if (r.is_platform()) {
      if (!tx.query("SELECT 1 FROM " + r.table() + " WHERE " + f.unique_on + " = $1 AND id <> $2",
                    {col->second, row["id"].get<std::string>()})
               .empty())
        throw Error(Code::kConflict,
                    fmt::format("Another {} has the {} '{}'.", r.kind(), f.name, sort_value(row[f.name])));
      continue;
    }
    if (!tx.query("SELECT 1 FROM " + r.table() + " WHERE tenant_id = $1 AND " + f.unique_on +
                      " = $2 AND id <> $3",
                  {c.scope.tenant_id(), col->second, row["id"].get<std::string>()})
             .empty())
      throw Error(Code::kConflict, fmt::format("Another {} of this tenant has the {} '{}'.", r.kind(), f.name,
                                               sort_value(row[f.name])));
  }

  Sql sql;
  if (!before) {
    sql += "INSERT INTO " + r.table() + (r.is_platform() ? " (id" : " (id, tenant_id");
    std::string values = sql.bind_text(row["id"].get<std::string>());
    if (!r.is_platform()) values += ", " + sql.bind(c.scope.tenant_id());
    if (c.owner) {
      sql += ", " + r.owner_column();
      values += ", " + sql.bind_text(*c.owner);
    }
    if (r.parent_resource()) {
      sql += ", " + r.parent_column();
      values += ", " + sql.bind_text(row[r.parent_column()].get<std::string>());
    }
    for (auto& [name, p] : cols) {
      sql += ", " + name;
      values += ", " + sql.bind(p);
    }
    sql += ", created_at, updated_at) VALUES (" + values + ", " +
           sql.bind_text(row["created_at"].get<std::string>()) + ", " +
           sql.bind_text(row["updated_at"].get<std::string>()) + ")";
  } else {
    sql += "UPDATE " + r.table() + " SET updated_at = " + sql.bind_text(row["updated_at"].get<std::string>());
    for (auto& [name, p] : cols) sql += ", " + name + " = " + sql.bind(p);
    sql +=
        r.is_platform() ? std::string(" WHERE 1 = 1") : " WHERE tenant_id = " + sql.bind(c.scope.tenant_id());
    sql += " AND id = " + sql.bind_text(row["id"].get<std::string>());
  }
  tx.query(sql.text(), sql.params());
  if (r.hooks().after_write) r.hooks().after_write(change);
  if (!errors.empty()) throw Error::validation(std::move(errors));
}

json Kit::create(db::Tx& tx, const Caller& c, const Resource& r, const json& patch) const {
  json row = json::object();
  row["id"] = new_uuid_v7();
  if (r.shows_tenant_id()) row["tenant_id"] = c.scope.tenant_id();
  for (const Field& f : r.fields()) {
    if (f.is_write_only) continue;
    auto it = patch.find(f.name);
    if (f.is_hidden && it == patch.end()) continue;
    row[f.name] = it != patch.end() ? *it : empty_value(f);
  }
  if (r.parent_resource()) {
    if (!c.parent) throw std::logic_error("a nested resource is created under a resolved parent");
    row[r.parent_column()] = *c.parent;
  }
  row["created_at"] = row["updated_at"] = now_text();
  json event = json::object();
  Events more;
  check_row(tx, c, r, row, nullptr, patch, event, more);
  store_row(tx, c, r, row, nullptr, patch, event, more);
  if (r.hooks().decorate) {
    json rows = json::array({std::move(row)});
    r.hooks().decorate(tx, c.scope, rows);
    row = std::move(rows[0]);
  }
  strip_hidden(r, row);
  event[r.kind()] = row;
  event["actor"] = c.actor.to_json();
  const std::string tenant = event_tenant(c, r, row);
  if (r.has_events()) outbox_.append(tx, tenant, r.event("created"), std::move(event));
  append_more(tx, c, tenant, std::move(more));
  return row;
}

json Kit::update(db::Tx& tx, const Caller& c, const Resource& r, const std::string& id,
                 const json& patch) const {
  auto before = find(tx, c, r, id);
  if (!before) not_found(r, id);
  json row = *before;
  for (const auto& [k, v] : patch.items()) {
    const Field* f = r.find(k);
    if (!f || !f->is_write_only) row[k] = v;
  }
  merge_fields(r, row, *before, patch);
  row["updated_at"] = now_text();
  json event = json::object();
  Events more;
  check_row(tx, c, r, row, &*before, patch, event, more);
  json changed = json::array();
  for (const auto& [k, v] : row.items())
    if (k != "updated_at" && before->value(k, json()) != v) changed.push_back(k);
  if (changed.empty()) return *before;  // nothing to write, nothing to announce
  store_row(tx, c, r, row, &*before, patch, event, more);
  strip_hidden(r, row);  // `changed` names a hidden field that changed, never its value
  event[r.kind()] = row;
  event["changed"] = std::move(changed);
  event["actor"] = c.actor.to_json();
  const std::string tenant = event_tenant(c, r, row);
  if (r.has_events()) outbox_.append(tx, tenant, r.event("updated"), std::move(event));
  append_more(tx, c, tenant, std::move(more));
  return row;
}

void Kit::remove(db::Tx& tx, const Caller& c, const Resource& r, const std::string& id_or_key) const {
  auto before = find(tx, c, r, id_or_key);
  if (!before) not_found(r, id_or_key);
  const std::string id = before->at("id").get<std::string>();
  json row = *before, event = json::object();
  std::vector<FieldError> errors;
  const json patch = json::object();
  Events more;
  Change change{tx, c.scope, row, &*before, patch, errors, event, c.actor, more, &c.params};
  change.caller = &c;
  if (r.hooks().before_delete) r.hooks().before_delete(change);
  if (!errors.empty()) throw Error::validation(std::move(errors));
  // Links to the row from the module's other resources are cleared; rows nested under it go with it.
  const std::string now = now_text();
  for (const auto& other : resources_) {
    for (const Field& f : other->fields())
      if (f.refs_table == r.table())
        tx.query("UPDATE " + other->table() + " SET " + f.column() +
                     " = NULL, updated_at = $3 WHERE tenant_id = $1 AND " + f.column() + " = $2",
                 {c.scope.tenant_id(), id, now});
    if (other->parent_resource() == &r)
      tx.query(
          "DELETE FROM " + other->table() + " WHERE tenant_id = $1 AND " + other->parent_column() + " = $2",
          {c.scope.tenant_id(), id});
  }
  if (r.is_platform())  // no tenant column (and no kit resource links to it: refs are tenant rows)
    tx.query("DELETE FROM " + r.table() + " WHERE id = $1", {id});
  else if (!r.soft_delete_field().empty())
    tx.query("UPDATE " + r.table() + " SET " + r.find(r.soft_delete_field())->column() +
                 " = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2",
             {c.scope.tenant_id(), id, now});
  else
    tx.query("DELETE FROM " + r.table() + " WHERE tenant_id = $1 AND id = $2", {c.scope.tenant_id(), id});
  if (r.hooks().after_delete) r.hooks().after_delete(change);
  event["id"] = id;
  event["actor"] = c.actor.to_json();
  const std::string tenant = event_tenant(c, r, *before);
  if (r.has_events()) outbox_.append(tx, tenant, r.event("deleted"), std::move(event));
  append_more(tx, c, tenant, std::move(more));
}

std::string Kit::event_tenant(const Caller& c, const Resource& r, const json& row) {
  if (!r.is_platform()) return c.scope.tenant_id();
  if (r.event_tenant().empty()) return {};  // a platform-wide event (a plan's)
  auto it = row.find(r.event_tenant());
  return it != row.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void Kit::append_more(db::Tx& tx, const Caller& c, const std::string& tenant, Events more) const {
  for (auto& [type, payload] : more) {
    payload["actor"] = c.actor.to_json();
    outbox_.append(tx, tenant, type, std::move(payload));
  }
}

void Kit::purge_tenant(db::Tx& tx, const db::TenantScope& scope) const {
  for (const auto& r : resources_) {
    if (r->is_platform()) continue;  // not a tenant's data
    for (const auto& side : r->side_tables())
      tx.query("DELETE FROM " + side + " WHERE tenant_id = $1", {scope.tenant_id()});
    tx.query("DELETE FROM " + r->table() + " WHERE tenant_id = $1", {scope.tenant_id()});
  }
  if (has_csv()) staging_.purge_tenant(tx, scope);
}

// ---- the registry ----------------------------------------------------------------------------------------

Kit::Kit(std::shared_ptr<db::Database> db, const db::Outbox& outbox, WorkerPool& workers,
         kit::Idempotency& idempotency)
    : db_(std::move(db)),
      outbox_(outbox),
      workers_(workers),
      idempotency_(idempotency),
      staging_(db_->schema()) {}

const Resource& Kit::add(Resource r) {
  r.seal();
  resources_.push_back(std::make_unique<Resource>(std::move(r)));
  return *resources_.back();
}

const Resource& Kit::get(std::string_view plural) const {
  for (const auto& r : resources_)
    if (r->plural() == plural) return *r;
  throw std::logic_error("no resource " + std::string(plural));
}

}  // namespace cdx::kit
