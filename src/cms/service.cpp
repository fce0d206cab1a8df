#include "cms/service.hpp"

#include <fmt/format.h>

#include <map>
#include <set>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/validate.hpp"

namespace cdx::cms {

using nlohmann::json;

namespace {

std::string now_text() { return format_rfc3339(Clock::now()); }

std::optional<int64_t> unix_of(const json& v) {
  if (!v.is_string()) return std::nullopt;
  auto t = parse_rfc3339(v.get<std::string>());
  if (!t) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count();
}

// "data.title.fr" → "title"
std::string field_of(const std::string& error_field) {
  std::string f = error_field.rfind("data.", 0) == 0 ? error_field.substr(5) : error_field;
  return f.substr(0, f.find_first_of(".["));
}

const kit::Actor kScheduler{"system", "scheduler"};

// The merge patch (RFC 7386) that turns `from` into `to`: objects member by member, null for a member `to`
// lacks, anything else replaced whole.
json merge_patch_between(const json& from, const json& to) {
  if (!from.is_object() || !to.is_object()) return to;
  json patch = json::object();
  for (const auto& [k, v] : to.items()) {
    auto it = from.find(k);
    if (it == from.end())
      patch[k] = v;
    else if (*it != v)
      patch[k] = merge_patch_between(*it, v);
  }
  for (const auto& [k, _] : from.items())
    if (!to.contains(k)) patch[k] = nullptr;
  return patch;
}

}  // namespace

// ---- content types ---------------------------------------------------------------------------------------

std::shared_ptr<const ContentType> Service::type_of(const json& row) {
  const std::string id = row.at("id").get<std::string>();
  const std::string updated = row.value("updated_at", "");
  {
    std::lock_guard lock(types_mutex_);
    auto it = compiled_.find(id);
    if (it != compiled_.end() && it->second->updated_at == updated) return it->second;
  }
  auto t = compile(row);
  std::lock_guard lock(types_mutex_);
  if (compiled_.size() > 10000) compiled_.clear();  // bounded: recompiling is cheap
  compiled_[id] = t;
  return t;
}

std::shared_ptr<const ContentType> Service::type_by_id(db::Tx& tx, const db::TenantScope& scope,
                                                       const std::string& id) {
  const kit::Caller c{scope, kScheduler, std::nullopt};
  auto row = kit_->find(tx, c, *types_, id);
  if (!row) kit::not_found(*types_, id);
  return type_of(*row);
}

std::shared_ptr<const ContentType> Service::type_by_key(db::Tx& tx, const db::TenantScope& scope,
                                                        const std::string& key) {
  const kit::Caller c{scope, kScheduler, std::nullopt};
  auto row = kit_->find(tx, c, *types_, key);
  if (!row) throw Error(Code::kNotFound, fmt::format("No content type has the key '{}'.", key));
  return type_of(*row);
}

kit::Hooks Service::type_hooks() {
  return {.validate = [this](kit::Change& c) { check_type(c); },
          .after_write =
              [this](kit::Change& c) {
                // Published copies keep their sort keys in columns assigned by field order: a new assignment
                // rewrites them.
                if (!c.before) return;
                auto before = compile(*c.before), after = compile(c.row);
                std::vector<std::pair<std::string, std::string>> a, b;
                for (const auto& f : before->fields)
                  if (!f.sort_column.empty()) a.emplace_back(f.key, f.sort_column);
                for (const auto& f : after->fields)
                  if (!f.sort_column.empty()) b.emplace_back(f.key, f.sort_column);
                if (a != b) store_.refill_sort_keys(c.tx, c.scope, *after);
              },
          .before_delete = [this](kit::Change& c) { before_type_delete(c); },
          .committed = [this](http::Context& ctx) { cache_.changed(ctx.tenant->tenant_id()); }};
}

void Service::check_type(kit::Change& c) {
  const json& fields = c.row["fields"];
  check_fields(fields, c.errors);
  std::set<std::string> keys = {c.row["key"].get<std::string>()};
  for (const auto& [key, _] : store_.type_fields(c.tx, c.scope)) keys.insert(key);
  for (size_t i = 0; i < fields.size(); ++i)
    if (fields[i].value("type", "") == "reference" && fields[i].contains("references") &&
        !keys.count(fields[i]["references"].get<std::string>()))
      c.errors.push_back(
          {fmt::format("fields[{}].references", i),
           fmt::format("no content type has the key '{}'", fields[i]["references"].get<std::string>())});
  if (c.errors.empty() && c.before && c.before->at("fields") != fields) check_type_change(c, *compile(c.row));
}

void Service::check_type_change(kit::Change& c, const ContentType& next) {
  const auto before = compile(*c.before);
  std::set<std::string> unique_before, unique_after;
  for (const auto& f : before->fields)
    if (f.unique) unique_before.insert(f.key + (f.localized ? "*" : ""));
  for (const auto& f : next.fields)
    if (f.unique) unique_after.insert(f.key + (f.localized ? "*" : ""));
  const bool unique_changed = unique_before != unique_after;

  const Locales loc = store_.locales(c.tx, c.scope);
  const std::string type_id = c.row["id"].get<std::string>();
  std::map<std::string, std::pair<int64_t, std::string>> blocked;  // field → entries, first reason
  std::map<std::tuple<std::string, std::string, std::string>, int> seen;
  std::map<std::string, int64_t> shared;  // unique field → entries sharing a value
  std::vector<std::pair<std::string, std::vector<UniqueValue>>> uniques;
  std::string after;
  for (;;) {
    auto page = store_.entry_data(c.tx, c.scope, type_id, after, 500);
    if (page.empty()) break;
    after = page.back().first;
    for (auto& [id, data] : page) {
      json in = json::object();
      for (const auto& [k, v] : data.items())
        if (next.find(k)) in[k] = v;  // a removed field's values are dropped, not an error
      drop_deleted_locales(next, in, loc.codes, nullptr);  // and so are values in a deleted locale
      std::vector<FieldError> errors;
      json out = check_data(next, in, loc.codes, loc.default_code, errors);
      std::set<std::string> bad;
      for (const auto& e : errors) {
        const std::string f = field_of(e.field);
        if (!bad.insert(f).second) continue;
        auto& b = blocked[f];
        if (b.first++ == 0) b.second = e.message;
      }
      if (!unique_changed || !errors.empty()) continue;
      auto values = unique_values(next, out);
      for (const auto& v : values)
        if (seen[{v.field, v.locale, v.value}]++ == 1) ++shared[v.field];
      uniques.emplace_back(id, std::move(values));
    }
  }
  std::vector<FieldError> why;
  for (const auto& [f, b] : blocked)
    why.push_back({"fields." + f, fmt::format("{} {} would not be valid: {}", b.first,
                                              b.first == 1 ? "entry" : "entries", b.second)});
  for (const auto& [f, n] : shared)
    why.push_back({"fields." + f, fmt::format("values are shared by entries ({} {}): cannot be unique", n,
                                              n == 1 ? "value" : "values")});
  if (!why.empty()) {
    std::string detail = "The change would break existing entries of '" + next.key + "': ";
    for (size_t i = 0; i < why.size(); ++i)
      detail += (i ? "; " : "") + why[i].field.substr(7) + " — " + why[i].message;
    throw Error(Code::kConflict, detail + ". Change or delete those entries first.")
        .with_errors(std::move(why));
  }
  if (unique_changed)
    for (const auto& [id, values] : uniques) store_.set_unique(c.tx, c.scope, type_id, id, values);
}

void Service::before_type_delete(kit::Change& c) {
  const std::string id = c.row["id"].get<std::string>(), key = c.row["key"].get<std::string>();
  for (const auto& [other, fields] : store_.type_fields(c.tx, c.scope))
    for (const auto& f : fields)
      if (other != key && f.value("references", "") == key)
        throw Error(Code::kConflict,
                    fmt::format("The content type '{}' references '{}' (field {}); change it first.", other,
                                key, f.value("key", "")));
  const int64_t n = store_.count_entries(c.tx, c.scope, id);
  if (n > 0 && c.param("cascade").value_or("") != "true")
    throw Error(
        Code::kConflict,
        fmt::format("The content type '{}' has {} {}; delete them first, or delete with ?cascade=true.", key,
                    n, n == 1 ? "entry" : "entries"));
  // The entries go with it without an event each: the event says how many were published.
  c.event["deleted_entries"] = n;
  c.event["published_entries"] = n > 0 ? store_.count_published_entries(c.tx, c.scope, id) : 0;
  store_.delete_type_side(c.tx, c.scope, id);
}

// ---- media ---------------------------------------------------------------------------------------------

kit::Hooks Service::media_hooks() {
  return {.before_delete =
              [this](kit::Change& c) {
                const int64_t n = store_.count_media_users(c.tx, c.scope, c.row["id"].get<std::string>());
                if (n > 0)
                  throw Error(Code::kConflict,
                              fmt::format("{} {} this media object; remove it from them first.", n,
                                          n == 1 ? "entry uses" : "entries use"));
              },
          .decorate =
              [](db::Tx&, const db::TenantScope& scope, json& rows) {
                for (json& row : rows)
                  row["url"] = "/api/v1/cms/files/" + scope.tenant_id() + "/" + row["id"].get<std::string>();
              },
          .committed = [this](http::Context& ctx) { cache_.changed(ctx.tenant->tenant_id()); }};
}

// ---- locales ---------------------------------------------------------------------------------------------

kit::Hooks Service::locale_hooks() {
  return {
      .validate =
          [this](kit::Change& c) {
            // The first locale a tenant adds joins the implicit default, en, which is written first.
            if (!c.before)
              store_.ensure_default_locale(c.tx, c.scope, c.row["created_at"].get<std::string>());
            if (c.before && c.before->value("is_default", false) && !c.row["is_default"].get<bool>())
              c.errors.push_back({"is_default", "make another locale the default instead"});
          },
      .after_write =
          [this](kit::Change& c) {
            if (c.row["is_default"].get<bool>())
              store_.clear_default_locale(c.tx, c.scope, c.row["id"].get<std::string>());
          },
      .before_delete =
          [](kit::Change& c) {
            if (c.row.value("is_default", false))
              throw Error(Code::kConflict,
                          "The default locale cannot be deleted; make another the default first.");
          },
      .seed = [this](db::Tx& tx,
                     const db::TenantScope& scope) { store_.ensure_default_locale(tx, scope, now_text()); },
      .committed = [this](http::Context& ctx) { cache_.changed(ctx.tenant->tenant_id()); }};
}

// ---- entries ---------------------------------------------------------------------------------------------

kit::Hooks Service::entry_hooks() {
  return {.validate = [this](kit::Change& c) { check_entry(c); },
          .after_write = [this](kit::Change& c) { after_entry_write(c); },
          .before_delete =
              [this](kit::Change& c) {
                // Whether it was on the delivery API, for the tenant overview's count.
                c.event["status"] = c.row["status"];
                store_.delete_entry_side(c.tx, c.scope, c.row["id"].get<std::string>());
              },
          .decorate =
              [this](db::Tx& tx, const db::TenantScope& scope, json& rows) {
                // Rendered rich text beside the Markdown, and only the type's current fields.
                std::map<std::string, std::shared_ptr<const ContentType>> types;
                for (json& row : rows) {
                  const std::string tid = row["type_id"].get<std::string>();
                  auto& t = types[tid];
                  if (!t) t = type_by_id(tx, scope, tid);
                  json data = json::object();
                  for (const auto& [k, v] : row["data"].items())
                    if (t->find(k)) data[k] = v;
                  row["data"] = std::move(data);
                  if (t->has_rich_text()) row["html"] = render_html(*t, row["data"]);
                }
              },
          .committed = [this](http::Context& ctx) { cache_.changed(ctx.tenant->tenant_id()); }};
}

std::vector<UniqueValue> Service::unique_values(const ContentType& t, const json& data) {
  std::vector<UniqueValue> out;
  auto text = [](const json& v) { return v.is_string() ? lowercase(v.get<std::string>()) : v.dump(); };
  for (const auto& f : t.fields) {
    if (!f.unique || !data.contains(f.key) || data[f.key].is_null()) continue;
    if (f.localized && data[f.key].is_object()) {
      for (const auto& [loc, v] : data[f.key].items()) out.push_back({f.key, loc, text(v)});
    } else {
      out.push_back({f.key, "", text(data[f.key])});
    }
  }
  return out;
}

void Service::check_entry(kit::Change& c) {
  const std::string type_id = c.row["type_id"].get<std::string>();
  auto t = type_by_id(c.tx, c.scope, type_id);
  const Locales loc = store_.locales(c.tx, c.scope);
  // Values of fields the type no longer has are dropped, unless this write names them (then: unknown).
  const json* given = c.patch.contains("data") && c.patch["data"].is_object() ? &c.patch["data"] : nullptr;
  json in = json::object();
  for (const auto& [k, v] : c.row["data"].items())
    if (t->find(k) || (given && given->contains(k))) in[k] = v;
  drop_deleted_locales(*t, in, loc.codes, given);  // likewise a deleted locale's values
  json data = check_data(*t, in, loc.codes, loc.default_code, c.errors);
  for (const auto& [f, ids] : links(*t, data)) {
    std::vector<std::string> found;
    if (f->type == "media") {
      found = store_.existing_media(c.tx, c.scope, ids);
    } else if (auto target = store_.type_id_of(c.tx, c.scope, f->references)) {
      found = store_.existing_entries(c.tx, c.scope, *target, ids);
    }
    for (const auto& id : ids)
      if (std::find(found.begin(), found.end(), id) == found.end()) {
        c.errors.push_back(
            {"data." + f->key, f->type == "media"
                                   ? fmt::format("no media object has the id '{}'", id)
                                   : fmt::format("no {} entry has the id '{}'", f->references, id)});
        break;
      }
  }
  auto pub = unix_of(c.row["publish_at"]), unpub = unix_of(c.row["unpublish_at"]);
  if (pub && unpub && *unpub <= *pub) c.errors.push_back({"unpublish_at", "must be later than publish_at"});
  c.row["data"] = std::move(data);
  const json actor = c.actor.to_json();
  if (!c.before) {
    c.row["version"] = 1;
    c.row["status"] = "draft";
    c.row["created_by"] = c.row["updated_by"] = actor;
  } else if (c.row["data"] != c.before->at("data")) {
    c.row["version"] = c.before->at("version").get<int64_t>() + 1;
    if (c.before->at("status") == "published") c.row["status"] = "changed";
    c.row["updated_by"] = actor;
  }
}

void Service::after_entry_write(kit::Change& c) {
  const std::string id = c.row["id"].get<std::string>();
  const bool new_version = !c.before || c.before->at("version") != c.row["version"];
  if (new_version) {
    store_.add_version(c.tx, c.scope, id, c.row["version"].get<int64_t>(), c.row["data"], c.actor.to_json(),
                       c.row["updated_at"].get<std::string>());
    const std::string type_id = c.row["type_id"].get<std::string>();
    auto t = type_by_id(c.tx, c.scope, type_id);
    auto values = unique_values(*t, c.row["data"]);
    if (auto clash = store_.taken(c.tx, c.scope, type_id, id, values))
      throw Error(
          Code::kConflict,
          fmt::format("Another {} entry ({}) has the {} '{}'{}.", t->key, clash->second, clash->first.field,
                      clash->first.value, clash->first.locale.empty() ? "" : " in " + clash->first.locale));
    store_.set_unique(c.tx, c.scope, type_id, id, values);
  }
  for (const char* action : {"publish", "unpublish"}) {
    const std::string f = std::string(action) + "_at";
    if (!c.before || c.before->value(f, json()) != c.row[f])
      store_.schedule(c.tx, c.scope, id, action, unix_of(c.row[f]));
  }
}

json Service::entry(db::Tx& tx, const kit::Caller& c, const std::string& entry_id) {
  auto row = kit_->find(tx, c, *entries_, entry_id);
  if (!row) kit::not_found(*entries_, entry_id);
  return *row;
}

json Service::publish(db::Tx& tx, const kit::Caller& c, const std::string& entry_id) {
  return publish_row(tx, c, entry(tx, c, entry_id));
}

json Service::unpublish(db::Tx& tx, const kit::Caller& c, const std::string& entry_id) {
  return unpublish_row(tx, c, entry(tx, c, entry_id));
}

json Service::publish_row(db::Tx& tx, const kit::Caller& c, const json& row) {
  const std::string id = row["id"].get<std::string>();
  store_.schedule(tx, c.scope, id, "publish", std::nullopt);
  if (row["status"] == "published") return row;  // what is published is the draft already
  auto t = type_by_id(tx, c.scope, row["type_id"].get<std::string>());
  const std::string now = now_text();
  Published p;
  p.entry_id = id;
  p.type_id = t->id;
  p.version = row["version"].get<int64_t>();
  p.data = row["data"];
  p.html = render_html(*t, p.data);
  p.sort_keys = t->sort_keys(p.data);
  p.published_at = row["published_at"].is_string() ? row["published_at"].get<std::string>() : now;
  p.updated_at = now;
  store_.publish(tx, c.scope, p, search_text(*t, p.data));
  store_.mark_published(tx, c.scope, id, p.version, p.published_at, now);
  json out = entry(tx, kit::Caller{c.scope, c.actor, std::nullopt}, id);
  // from_status: "changed" when the entry was on the delivery API already (the overview counts it once).
  outbox_.append(tx, c.scope, "cms.entry.published",
                 {{"entry", {{"id", id}, {"type", t->key}, {"version", p.version}, {"data", p.data}}},
                  {"from_status", row["status"]},
                  {"actor", c.actor.to_json()}});
  return out;
}

json Service::unpublish_row(db::Tx& tx, const kit::Caller& c, const json& row) {
  const std::string id = row["id"].get<std::string>();
  store_.schedule(tx, c.scope, id, "unpublish", std::nullopt);
  if (row["status"] == "draft") return row;  // not on the delivery API
  auto t = type_by_id(tx, c.scope, row["type_id"].get<std::string>());
  store_.unpublish(tx, c.scope, id);
  store_.mark_unpublished(tx, c.scope, id, now_text());
  json out = entry(tx, kit::Caller{c.scope, c.actor, std::nullopt}, id);
  outbox_.append(tx, c.scope, "cms.entry.unpublished",
                 {{"entry", {{"id", id}, {"type", t->key}}}, {"actor", c.actor.to_json()}});
  return out;
}

json Service::versions(db::Tx& tx, const kit::Caller& c, const std::string& entry_id, int limit,
                       std::optional<int64_t> before) {
  const json row = entry(tx, c, entry_id);
  auto items = store_.versions(tx, c.scope, row["id"].get<std::string>(), limit, before);
  json next = nullptr;
  if (items.size() > static_cast<size_t>(limit)) {
    items.pop_back();
    next = base64url_encode("v|" + std::to_string(items.back()["version"].get<int64_t>()));
  }
  for (auto& v : items) {
    const int64_t n = v["version"].get<int64_t>();
    v["published"] = row["published_version"].is_number() && row["published_version"].get<int64_t>() == n;
    v["current"] = row["version"].get<int64_t>() == n;
  }
  return {{"data", items}, {"next_cursor", next}};
}

json Service::version(db::Tx& tx, const kit::Caller& c, const std::string& entry_id, int64_t n) {
  const json row = entry(tx, c, entry_id);
  auto v = store_.version(tx, c.scope, row["id"].get<std::string>(), n);
  if (!v) throw Error(Code::kNotFound, fmt::format("The entry has no version {}.", n));
  return *v;
}

json Service::restore(db::Tx& tx, const kit::Caller& c, const std::string& entry_id, int64_t n) {
  const json row = entry(tx, c, entry_id);
  auto v = store_.version(tx, c.scope, row["id"].get<std::string>(), n);
  if (!v) throw Error(Code::kNotFound, fmt::format("The entry has no version {}.", n));
  // A merge patch from the draft to that version's data as the type and the locales now take it: less its
  // values of fields removed and in locales deleted since (the draft's go too, as at any save).
  auto t = type_by_id(tx, c.scope, row["type_id"].get<std::string>());
  json data = json::object();
  for (const auto& [k, value] : (*v)["data"].items())
    if (t->find(k)) data[k] = value;
  drop_deleted_locales(*t, data, store_.locales(tx, c.scope).codes, nullptr);
  return kit_->update(tx, c, *entries_, row["id"].get<std::string>(),
                      {{"data", merge_patch_between(row["data"], data)}});
}

json Service::preview_token(db::Tx& tx, const kit::Caller& c, const std::string& entry_id, int64_t ttl) {
  const json row = entry(tx, c, entry_id);
  auto t = type_by_id(tx, c.scope, row["type_id"].get<std::string>());
  const std::string token = "cdx_pv_" + random_token(40);
  const int64_t expires = Clock::unix_seconds() + ttl;
  store_.add_preview_token(tx, c.scope, sha256_hex(token), row["id"].get<std::string>(), expires);
  return {{"token", token},
          {"entry_id", row["id"]},
          {"expires_at", format_rfc3339(SysTime(std::chrono::seconds(expires)))},
          {"url", fmt::format("/api/v1/cms/published/{}/{}?preview={}", t->key, row["id"].get<std::string>(),
                              token)}};
}

// ---- schedule --------------------------------------------------------------------------------------------

int Service::run_schedule() {
  auto due = db_->read_platform([&](db::Tx& tx) { return store_.due(tx, Clock::unix_seconds(), 100); });
  int done = 0;
  for (const auto& a : due) {
    const db::TenantScope scope = minter_.mint(a.tenant_id);
    try {
      db_->write(scope, [&](db::Tx& tx) {
        if (!store_.claim(tx, a)) return;  // another replica did it
        const kit::Caller c{scope, kScheduler, std::nullopt};
        auto row = kit_->find(tx, c, *entries_, a.entry_id);
        if (!row) return;
        if (a.action == "publish") {
          publish_row(tx, c, *row);
        } else {
          unpublish_row(tx, c, *row);
        }
        ++done;
      });
      cache_.changed(a.tenant_id);
    } catch (const std::exception& e) {
      // The row stays due: the next tick tries again.
      log::warn("cms: scheduled action failed",
                {{"entry_id", a.entry_id}, {"action", a.action}, {"error", e.what()}});
    }
  }
  return done;
}

}  // namespace cdx::cms
