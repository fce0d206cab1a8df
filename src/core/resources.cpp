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

}  // namespace

kit::Resource tenant_resource() {
  kit::Resource r("core", "tenant", "tenants");
  r.platform()
      .no_events()  // platform events are a later issue; cdx_db has no outbox yet
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
      .no_events()
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
