#include "core/model.hpp"

#include <algorithm>

namespace cdx::core {

// Ids and slugs are short lower-case ASCII; anything else (headers carry raw bytes) names no tenant and
// never reaches the database.
bool plausible_tenant_key(std::string_view key) {
  return !key.empty() && key.size() <= 64 && std::all_of(key.begin(), key.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
         });
}

namespace {
bool shape_ok(const std::string& s, size_t min, size_t max) {
  if (s.size() < min || s.size() > max) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alnum(c) || c == '-'; }) &&
         s.find("--") == std::string::npos;
}
}  // namespace

std::optional<std::string> slug_problem(const std::string& slug) {
  if (!shape_ok(slug, 3, 63))
    return "must be 3-63 characters of a-z, 0-9 and single '-', starting and ending with a letter or digit";
  static const char* kReserved[] = {"api", "admin", "www", "cdx", "auth", "oauth", "health", "metrics",
                                    "static", "system", "platform", "superadmin", "well-known"};
  for (const char* r : kReserved)
    if (slug == r) return "is reserved";
  // A slug must never be mistaken for a tenant id (UUID) when used in X-Tenant-ID.
  if (slug.size() == 36 && slug[8] == '-' && slug[13] == '-') return "must not look like a UUID";
  return std::nullopt;
}

std::optional<std::string> plan_key_problem(const std::string& key) {
  if (!shape_ok(key, 2, 63)) return "must be 2-63 characters of a-z, 0-9 and '-'";
  // Plans are addressed by id or key: a key must never be mistaken for an id.
  if (key.size() == 36 && key[8] == '-' && key[13] == '-') return "must not look like a UUID";
  return std::nullopt;
}

nlohmann::json to_json(const Tenant& t) {
  return {{"id", t.id},         {"slug", t.slug},     {"name", t.name},           {"status", t.status},
          {"plan", t.plan},     {"settings", t.settings}, {"created_at", t.created_at}, {"updated_at", t.updated_at}};
}

nlohmann::json to_json(const Plan& p) {
  return {{"id", p.id},
          {"key", p.key},
          {"name", p.name},
          {"rate_limit_per_minute", p.rate_limit_per_minute},
          {"max_users", p.max_users},
          {"max_api_keys", p.max_api_keys},
          {"max_upload_mb", p.max_upload_mb},
          {"modules", p.modules},
          {"created_at", p.created_at},
          {"updated_at", p.updated_at}};
}

Tenant tenant_from_json(const nlohmann::json& j) {
  Tenant t;
  t.id = j.at("id").get<std::string>();
  t.slug = j.at("slug").get<std::string>();
  t.name = j.at("name").get<std::string>();
  t.status = j.at("status").get<std::string>();
  t.plan = j.at("plan").get<std::string>();
  t.settings = j.at("settings");
  t.created_at = j.at("created_at").get<std::string>();
  t.updated_at = j.at("updated_at").get<std::string>();
  return t;
}

Plan plan_from_json(const nlohmann::json& j) {
  Plan p;
  p.id = j.at("id").get<std::string>();
  p.key = j.at("key").get<std::string>();
  p.name = j.at("name").get<std::string>();
  p.rate_limit_per_minute = j.at("rate_limit_per_minute").get<int64_t>();
  p.max_users = j.at("max_users").get<int64_t>();
  p.max_api_keys = j.at("max_api_keys").get<int64_t>();
  p.max_upload_mb = j.value("max_upload_mb", int64_t{25});
  p.modules = j.at("modules").get<std::vector<std::string>>();
  p.created_at = j.at("created_at").get<std::string>();
  p.updated_at = j.at("updated_at").get<std::string>();
  return p;
}

}  // namespace cdx::core
