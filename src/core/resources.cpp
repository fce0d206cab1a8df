#include "core/resources.hpp"

#include <algorithm>

#include "common/password.hpp"
#include "common/validate.hpp"
#include "core/model.hpp"
#include "core/store.hpp"

namespace cdx::core {

using kit::Change;
using nlohmann::json;

namespace {

kit::Check rule(std::optional<std::string> (*problem)(const std::string&)) {
  return [problem](json& v, kit::Problems& p) {
    if (auto why = problem(v.get<std::string>())) p.fail(*why);
  };
}

// The settings the platform reads must hold what it expects (the rest is the tenant's own): lifetimes the
// platform may shorten but not stretch, origins a browser sends, a flag.
void check_settings(const json& settings, std::vector<FieldError>& errors) {
  auto integer = [&](const char* key, int64_t min, int64_t max) {
    auto it = settings.find(key);
    if (it == settings.end() || it->is_null()) return;
    if (!it->is_number_integer() || it->get<int64_t>() < min || it->get<int64_t>() > max)
      errors.push_back({std::string("settings.") + key, "must be an integer number of seconds from " +
                                                            std::to_string(min) + " to " +
                                                            std::to_string(max)});
  };
  // Above the platform's own maximum a lifetime is accepted and capped when tokens are issued (the maximum is
  // configuration, and may grow later).
  integer("access_token_ttl", 60, 365 * 24 * 3600);
  integer("refresh_token_ttl", 300, 10 * 365 * 24 * 3600);
  if (auto it = settings.find("allowed_origins"); it != settings.end() && !it->is_null()) {
    if (!it->is_array() || it->size() > 50) {
      errors.push_back(
          {"settings.allowed_origins", "must be a list of at most 50 origins (https://app.example.com)"});
    } else {
      for (size_t i = 0; i < it->size(); ++i) {
        const json& o = (*it)[i];
        auto why = o.is_string() ? origin_problem(o.get_ref<const std::string&>())
                                 : std::optional<std::string>("must be a string");
        if (why) errors.push_back({"settings.allowed_origins[" + std::to_string(i) + "]", *why});
      }
    }
  }
  if (auto it = settings.find("allow_registration");
      it != settings.end() && !it->is_null() && !it->is_boolean())
    errors.push_back({"settings.allow_registration", "must be true or false"});
}

}  // namespace

kit::Resource tenant_resource() {
  kit::Resource r("core", "tenant", "tenants");
  r.platform()
      .event_prefix("tenant")  // tenant.created, tenant.updated, tenant.deleted: the tenant's own events
      .event_tenant("id")
      .schema("cdx_db")
      .path("/api/v1/tenants")
      .key("slug")
      .access(http::Access::kSuperadmin)
      .field(kit::text("slug", 63)
                 .min(3)
                 .required()
                 .immutable()
                 .unique()
                 .searchable()
                 .check(rule(slug_problem), "^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$"))
      .field(kit::text("name", 200).required().searchable().sortable())
      .field(kit::choice("status", {"active", "suspended"})
                 .not_null()
                 .defaults("active")
                 .read_only("use /suspend or /resume")
                 .filter())
      .field(kit::text("plan", 63).min(2).defaults("free").filter().doc("a plan key"))
      .field(kit::object("settings", 65536).defaults(json::object()).merge_patch())
      .describe_list("List tenants (newest first; filters status and plan, q over name and slug)")
      .hooks(
          {.validate =
               [](Change& c) {
                 check_settings(c.row.at("settings"), c.errors);
                 if (c.before && c.before->at("status") != c.row.at("status"))
                   c.emit(c.row.at("status") == "suspended" ? "tenant.suspended" : "tenant.resumed",
                          {{"tenant", c.row}});
                 if (c.before && c.before->at("plan") == c.row.at("plan")) return;
                 const std::string plan = c.row.at("plan").get<std::string>();
                 if (!Store::plan_exists(c.tx, plan))
                   c.errors.push_back({"plan", "unknown plan '" + plan + "'"});
               },
           // Its usage counters go with it (they name the tenant, but are the platform's rows).
           .before_delete = [](Change& c) { Store::delete_usage(c.tx, c.row.at("id").get<std::string>()); }})
      .routes({kit::Op::kList, kit::Op::kGet, kit::Op::kUpdate});
  return r;
}

kit::Resource plan_resource() {
  kit::Resource r("core", "plan", "plans");
  r.platform()
      .event_prefix("plan")  // plan.created, plan.updated: platform-wide (no tenant)
      .schema("cdx_db")
      .path("/api/v1/plans")
      .key("key")
      .access(http::Access::kSuperadmin)
      .read_access(http::Access::kAuthenticated)
      .field(kit::text("key", 63).min(2).required().immutable().unique().sortable().check(
          rule(plan_key_problem)))
      .field(kit::text("name", 200).required())
      .field(kit::integer("rate_limit_per_minute", 1, 100'000'000).defaults(6000))
      .field(kit::integer("max_users", 0, 100'000'000).defaults(100))
      .field(kit::integer("max_api_keys", 0, 1'000'000).defaults(20))
      .field(kit::integer("max_upload_mb", 1, 10'240).defaults(25).doc(
          "the largest media upload, in MiB (the server's media_limit bounds every plan)"))
      .field(kit::text_list("modules", all_modules().size(), 63)
                 .defaults(all_modules())
                 .check([](json& v, kit::Problems& p) {
                   for (const auto& m : v)
                     if (std::find(all_modules().begin(), all_modules().end(), m.get<std::string>()) ==
                         all_modules().end())
                       p.fail("unknown module '" + m.get<std::string>() + "'");
                 })
                 .doc("the modules whose routes the plan's tenants may call"))
      .default_sort("key")
      .describe_list("List platform plans (by key)")
      .routes({kit::Op::kCreate, kit::Op::kList,
               kit::Op::kUpdate});  // no GET by id, no delete (tenants use them)
  return r;
}

kit::Resource tenant_create_body(const kit::Resource& tenants) {
  kit::Resource r("core", "tenant", "tenants");
  for (const auto& f : tenants.fields())
    if (!f.is_read_only) r.field(f);
  r.field(
       kit::text("admin_email", 254).min(3).required().format("email").check([](json& v, kit::Problems& p) {
         if (!valid_email(v.get_ref<const std::string&>())) p.fail("must be a valid email address");
       }))
      .field(kit::text("admin_password", 256)
                 .verbatim()
                 .check([](json& v, kit::Problems& p) {
                   if (auto why = password_problem(v.get_ref<const std::string&>())) p.fail(*why);
                 })
                 .doc("the first admin's password; without it one is generated and answered once"));
  return r;
}

kit::Resource superadmin_login_body() {
  kit::Resource r("core", "superadmin", "superadmins");
  r.field(kit::text("username", 256).required().verbatim())
      .field(kit::text("password", 1024).required().verbatim());
  return r;
}

}  // namespace cdx::core
