// The delivery API's reads: published copies under the query a client app gives — filters on any field,
// sorts, sparse fields, a locale with fallback, references and media populated one statement per field and
// level, cursor pages — and an entry's draft for the holder of its preview token.
#include <fmt/format.h>

#include <charconv>
#include <map>
#include <set>

#include "cms/service.hpp"
#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/validate.hpp"
#include "http/pagination.hpp"

namespace cdx::cms {

using nlohmann::json;

namespace {

constexpr int kMaxPopulateDepth = 3;
constexpr size_t kMaxInValues = 100;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = std::min(s.find(sep, start), s.size());
    std::string part = trim(s.substr(start, end - start));
    if (!part.empty()) out.push_back(std::move(part));
    start = end + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out;
}

[[noreturn]] void bad(std::string field, std::string message) {
  throw Error::validation({{std::move(field), std::move(message)}});
}

bool sortable(const FieldDef& f) {
  static const std::set<std::string> kTypes = {"text", "integer", "number", "boolean", "date", "datetime", "enum"};
  return kTypes.count(f.type) > 0;
}

// The operators a field's type takes.
const std::vector<std::string>& ops_of(const FieldDef& f) {
  static const std::vector<std::string> kOrdered = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "exists"};
  static const std::vector<std::string> kText = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "exists"};
  static const std::vector<std::string> kBool = {"eq", "ne", "exists"};
  static const std::vector<std::string> kList = {"contains", "exists"};
  static const std::vector<std::string> kOne = {"eq", "ne", "in", "exists"};
  static const std::vector<std::string> kExists = {"exists"};
  if (f.type == "text") return kText;
  if (f.type == "boolean") return kBool;
  if (f.type == "text_list" || (f.is_link() && f.multiple)) return kList;
  if (f.is_link()) return kOne;
  if (f.type == "rich_text" || f.type == "json") return kExists;
  return kOrdered;
}

// One filter value under the field's type: numbers as numbers, booleans as booleans, dates checked.
json filter_value(const FieldDef& f, const std::string& name, const std::string& text) {
  if (f.type == "integer" || f.type == "number") {
    json n = json::parse(text, nullptr, false);
    if (n.is_discarded() || !n.is_number()) bad(name, "must be a number");
    return n;
  }
  if (f.type == "boolean") {
    if (text != "true" && text != "false") bad(name, "must be true or false");
    return text == "true";
  }
  if (f.type == "date" || f.type == "datetime" || f.type == "enum" || f.is_link()) {
    kit::Field rule = f.is_link() ? kit::id(f.key) : f.rule;
    std::vector<FieldError> errors;
    kit::Problems p(name, errors);
    auto v = kit::check_value(rule, json(text), p);
    if (!v) throw Error::validation(std::move(errors));
    return *v;
  }
  if (text.size() > 2000) bad(name, "must be at most 2000 characters");
  return text;
}

// populate=author,author.avatar,gallery (or *): the tree of link fields to resolve, checked against the types.
json populate_spec(const std::string& text, const ContentType& root,
                   const std::function<std::shared_ptr<const ContentType>(const std::string&)>& type_by_key) {
  json spec = json::object();
  for (const auto& path : split(text, ',')) {
    if (path == "*") {
      for (const auto& f : root.fields)
        if (f.is_link() && !spec.contains(f.key)) spec[f.key] = json::object();
      continue;
    }
    const auto parts = split(path, '.');
    if (parts.empty() || static_cast<int>(parts.size()) > kMaxPopulateDepth)
      bad("populate", fmt::format("'{}': a path of 1 to {} link fields, such as author or author.avatar", path,
                                  kMaxPopulateDepth));
    const ContentType* t = &root;
    std::shared_ptr<const ContentType> keep;
    json* node = &spec;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!t) bad("populate", fmt::format("'{}': {} is a media field; it has no fields to populate", path, parts[i - 1]));
      const FieldDef* f = t->find(parts[i]);
      if (!f || !f->is_link())
        bad("populate", fmt::format("'{}': {} is not a reference or media field of {}", path, parts[i], t->key));
      if (!node->contains(f->key)) (*node)[f->key] = json::object();
      node = &(*node)[f->key];
      if (f->type == "reference") {
        keep = type_by_key(f->references);
        t = keep.get();
      } else {
        t = nullptr;
      }
    }
  }
  return spec;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

json Service::render_published(const ContentType& t, const Published& p, const std::string& locale,
                               const std::string& default_locale, const std::vector<std::string>& fields) {
  json item = {{"id", p.entry_id},
               {"type", t.key},
               {"version", p.version},
               {"locale", locale},
               {"published_at", p.published_at},
               {"updated_at", p.updated_at},
               {"data", resolve_locale(t, p.data, locale, default_locale, fields)}};
  if (t.has_rich_text()) {
    json html = json::object();
    for (const auto& f : t.fields) {
      if (f.type != "rich_text" || (!fields.empty() && std::find(fields.begin(), fields.end(), f.key) == fields.end()))
        continue;
      auto it = p.html.find(f.key);
      if (it == p.html.end()) {
        html[f.key] = nullptr;
      } else if (f.localized && it->is_object()) {
        auto v = it->find(locale);
        if (v == it->end()) v = it->find(default_locale);
        html[f.key] = v == it->end() ? json(nullptr) : *v;
      } else {
        html[f.key] = *it;
      }
    }
    item["html"] = std::move(html);
  }
  return item;
}

void Service::populate(db::Tx& tx, const db::TenantScope& scope, std::vector<json*> items,
                       const std::vector<std::shared_ptr<const ContentType>>& types, const json& spec,
                       const Locales& loc, const std::string& locale, int depth) {
  if (depth > kMaxPopulateDepth || items.empty()) return;
  for (const auto& [key, sub] : spec.items()) {
    // Every id this field names across the level's items: one statement for all of them.
    std::vector<std::string> ids;
    const FieldDef* def = nullptr;
    for (size_t i = 0; i < items.size(); ++i) {
      const FieldDef* f = types[i]->find(key);
      if (!f || !f->is_link()) continue;
      def = f;
      const json& v = (*items[i])["data"][key];
      if (v.is_string()) ids.push_back(v.get<std::string>());
      if (v.is_array())
        for (const auto& id : v)
          if (id.is_string()) ids.push_back(id.get<std::string>());
    }
    if (!def || ids.empty()) continue;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::map<std::string, json> found;
    std::vector<json*> next;
    std::vector<std::shared_ptr<const ContentType>> next_types;
    if (def->type == "media") {
      for (auto& m : store_.media_many(tx, scope, ids)) {
        const std::string mid = m["id"].get<std::string>();  // before m is moved from
        found[mid] = std::move(m);
      }
    } else {
      auto target = type_by_key(tx, scope, def->references);
      for (const auto& p : store_.published_many(tx, scope, ids))
        if (p.type_id == target->id)
          found[p.entry_id] = render_published(*target, p, locale, loc.default_code, {});
    }
    for (json* item : items) {
      json& v = (*item)["data"][key];
      if (v.is_string()) {
        auto it = found.find(v.get<std::string>());
        v = it == found.end() ? json(nullptr) : it->second;
      } else if (v.is_array()) {
        json out = json::array();
        for (const auto& id : v)
          if (auto it = found.find(id.get<std::string>()); it != found.end()) out.push_back(it->second);
        v = std::move(out);
      }
    }
    if (def->type != "reference" || sub.empty()) continue;
    auto target = type_by_key(tx, scope, def->references);
    for (json* item : items) {
      json& v = (*item)["data"][key];
      if (v.is_object()) next.push_back(&v);
      if (v.is_array())
        for (auto& x : v) next.push_back(&x);
    }
    next_types.assign(next.size(), target);
    populate(tx, scope, next, next_types, sub, loc, locale, depth + 1);
  }
}

std::string Service::published_list(const db::TenantScope& scope, const std::string& type_key,
                                     const DeliveryParams& params) {
  return db_->read(scope, [&](db::Tx& tx) {
    auto t = type_by_key(tx, scope, type_key);
    const Locales loc = store_.locales(tx, scope);
    DeliveryQuery q;
    q.default_locale = loc.default_code;
    q.locale = loc.default_code;
    std::vector<std::string> fields;
    json spec = json::object();
    std::string sort_text = "-published_at";
    std::optional<std::string> cursor;
    for (const auto& [name, value] : params.query) {
      if (name == "locale") {
        if (std::find(loc.codes.begin(), loc.codes.end(), value) == loc.codes.end())
          bad("locale", "must be one of the tenant's locales: " + join(loc.codes));
        q.locale = value;
      } else if (name == "fields") {
        for (const auto& f : split(value, ','))
          if (!t->find(f)) bad("fields", fmt::format("{} is not a field of {}", f, t->key));
        fields = split(value, ',');
      } else if (name == "sort") {
        sort_text = value;
      } else if (name == "populate") {
        spec = populate_spec(value, *t, [&](const std::string& k) { return type_by_key(tx, scope, k); });
      } else if (name == "q") {
        if (utf8_length(value) > 200) bad("q", "must be at most 200 characters");
        else if (!value.empty() && (q.words = query_words(value)).empty())
          bad("q", "has no word to search for (letters or digits)");
      } else if (name == "cursor") {
        cursor = value;
      } else if (name == "limit") {
        // read below
      } else if (name.rfind("filter[", 0) == 0) {
        // filter[field] or filter[field][op]
        const size_t close = name.find(']');
        const std::string key = close == std::string::npos ? "" : name.substr(7, close - 7);
        std::string op = "eq";
        const std::string rest = close == std::string::npos ? "" : name.substr(close + 1);
        if (!rest.empty()) {
          if (rest.size() < 3 || rest.front() != '[' || rest.back() != ']') bad(name, "must be filter[field] or filter[field][op]");
          op = rest.substr(1, rest.size() - 2);
        }
        Filter f;
        f.op = op;
        if (key == "id") {
          if (op != "eq" && op != "in" && op != "ne") bad(name, "id takes eq, ne or in");
          for (const auto& id : op == "in" ? split(value, ',') : std::vector<std::string>{value})
            if (!valid_uuid(lowercase(id))) bad(name, "must hold entry ids");
            else f.values.emplace_back(lowercase(id));
          q.filters.push_back(std::move(f));
          continue;
        }
        const FieldDef* def = t->find(key);
        if (!def) bad(name, fmt::format("{} is not a field of {}", key.empty() ? "''" : key, t->key));
        const auto& ops = ops_of(*def);
        if (std::find(ops.begin(), ops.end(), op) == ops.end())
          bad(name, fmt::format("a {} field takes the operators: {}", def->type, join(ops)));
        f.field = def;
        if (op == "exists") {
          if (value != "true" && value != "false") bad(name, "must be true or false");
          f.values.emplace_back(value == "true");
        } else if (op == "in") {
          auto parts = split(value, ',');
          if (parts.empty() || parts.size() > kMaxInValues) bad(name, fmt::format("must list 1 to {} values", kMaxInValues));
          for (const auto& p : parts) f.values.push_back(filter_value(*def, name, p));
        } else if (op == "contains") {
          if (value.empty() || value.size() > 200) bad(name, "must be 1 to 200 characters");
          f.values.emplace_back(def->type == "text" ? http::like_pattern(value)
                                                    : (def->is_link() ? lowercase(value) : value));
        } else {
          f.values.push_back(filter_value(*def, name, value));
        }
        q.filters.push_back(std::move(f));
      } else if (name != "preview") {
        bad(name, "is not a parameter of this endpoint (known: locale, fields, sort, populate, q, limit, cursor, "
                  "filter[field], filter[field][op])");
      }
    }
    for (const auto& [name, value] : params.query)
      if (name == "limit") {
        int n = 0;
        auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || ptr != value.data() + value.size() || n < 1 || n > 100)
          bad("limit", "must be an integer from 1 to 100");
        q.limit = n;
      }
    const auto keys = split(sort_text, ',');
    if (keys.empty() || keys.size() > 3) bad("sort", "must name 1 to 3 fields, such as -published_at or title,-views");
    for (const auto& k : keys) {
      SortKey s;
      s.descending = k.front() == '-';
      const std::string name = s.descending ? k.substr(1) : k;
      if (name == "published_at" || name == "updated_at") {
        s.system = name;
      } else if (const FieldDef* f = t->find(name); f && sortable(*f)) {
        s.field = f;
      } else {
        bad("sort", fmt::format("{} is not sortable: published_at, updated_at, or a text, integer, number, boolean, "
                                "date, datetime or enum field of {}", name, t->key));
      }
      q.sort.push_back(s);
    }
    if (cursor) {
      std::string decoded;
      json c;
      if (cursor->size() <= 4096 && base64url_decode(*cursor, decoded)) c = json::parse(decoded, nullptr, false);
      const bool ok = c.is_object() && c.value("s", "") == sort_text && c.contains("v") && c["v"].is_array() &&
                      c["v"].size() == q.sort.size() + 1 && c["v"].back().is_string() &&
                      valid_uuid(c["v"].back().get<std::string>()) &&
                      std::all_of(c["v"].begin(), c["v"].end(), [](const json& v) {
                        return v.is_string() || v.is_number() || v.is_boolean();
                      });
      if (!ok) bad("cursor", "is not a cursor returned by this list with the same sort");
      q.after = c["v"].get<std::vector<json>>();
    }
    auto rows = store_.published_page(tx, scope, t->id, q);
    json next = nullptr;
    if (rows.size() > static_cast<size_t>(q.limit)) {
      rows.pop_back();
      json v = rows.back().sort_values;
      v.push_back(rows.back().entry_id);
      next = base64url_encode(json{{"s", sort_text}, {"v", std::move(v)}}.dump());
    }
    json items = json::array();
    for (const auto& p : rows) items.push_back(render_published(*t, p, q.locale, loc.default_code, fields));
    if (!spec.empty()) {
      std::vector<json*> ptrs;
      for (auto& i : items) ptrs.push_back(&i);
      populate(tx, scope, ptrs, std::vector<std::shared_ptr<const ContentType>>(ptrs.size(), t), spec, loc, q.locale, 1);
    }
    return dump(json{{"data", std::move(items)}, {"next_cursor", std::move(next)}});
  });
}

std::string Service::published_one(const db::TenantScope& scope, const std::string& type_key, const std::string& id,
                                   const DeliveryParams& params, const std::optional<std::string>& preview) {
  return db_->read(scope, [&](db::Tx& tx) {
    auto t = type_by_key(tx, scope, type_key);
    const Locales loc = store_.locales(tx, scope);
    std::string locale = loc.default_code;
    std::vector<std::string> fields;
    json spec = json::object();
    for (const auto& [name, value] : params.query) {
      if (name == "locale") {
        if (std::find(loc.codes.begin(), loc.codes.end(), value) == loc.codes.end())
          bad("locale", "must be one of the tenant's locales: " + join(loc.codes));
        locale = value;
      } else if (name == "fields") {
        for (const auto& f : split(value, ','))
          if (!t->find(f)) bad("fields", fmt::format("{} is not a field of {}", f, t->key));
        fields = split(value, ',');
      } else if (name == "populate") {
        spec = populate_spec(value, *t, [&](const std::string& k) { return type_by_key(tx, scope, k); });
      } else if (name != "preview") {
        bad(name, "is not a parameter of this endpoint (known: locale, fields, populate, preview)");
      }
    }
    const std::string entry_id = lowercase(id);
    std::optional<Published> p;
    if (preview) {
      // The draft, for the holder of a preview token an ADMIN minted for this entry.
      if (preview->size() > 100 || !valid_uuid(entry_id) ||
          !store_.preview_allowed(tx, scope, sha256_hex(*preview), entry_id, Clock::unix_seconds()))
        throw Error(Code::kForbidden, "The preview token is not valid for this entry, or it has expired.");
      const kit::Caller c{scope, kit::Actor{"system", "preview"}, std::nullopt};
      auto row = kit_->find(tx, c, *entries_, entry_id);
      if (!row || row->at("type_id") != t->id) throw Error(Code::kNotFound, fmt::format("No {} entry has the id '{}'.", t->key, id));
      p.emplace();
      p->entry_id = entry_id;
      p->type_id = t->id;
      p->version = row->at("version").get<int64_t>();
      p->data = row->at("data");
      p->html = render_html(*t, p->data);
      p->published_at = row->value("published_at", json()).is_string() ? row->at("published_at").get<std::string>() : "";
      p->updated_at = row->at("updated_at").get<std::string>();
    } else if (valid_uuid(entry_id)) {
      p = store_.published_one(tx, scope, t->id, entry_id);
    }
    if (!p) throw Error(Code::kNotFound, fmt::format("No published {} entry has the id '{}'.", t->key, id));
    json item = render_published(*t, *p, locale, loc.default_code, fields);
    if (preview) item["preview"] = true;
    if (!spec.empty()) populate(tx, scope, {&item}, {t}, spec, loc, locale, 1);
    return dump(item);
  });
}

}  // namespace cdx::cms
