// The CRM's kit resources: companies, contacts, activities and deals as declarations, with hooks for the
// rules a declaration cannot say (tags in their side table, an activity's completion; a deal's pipeline,
// stage and history are the service's hooks).
#include "crm/resources.hpp"

#include "common/validate.hpp"
#include "crm/model.hpp"
#include "crm/store.hpp"
#include "kit/bulk.hpp"

namespace cdx::crm {

using kit::Change;
using kit::Match;
using nlohmann::json;

namespace {

kit::Check lower_domain() {
  return [](json& v, kit::Problems& p) {
    std::string d = lowercase(v.get<std::string>());
    if (auto why = domain_problem(d)) return p.fail(*why);
    v = std::move(d);
  };
}

kit::Check email_rule() {
  return [](json& v, kit::Problems& p) {
    if (!valid_email(v.get_ref<const std::string&>())) p.fail("must be a valid email address");
  };
}

kit::Check phone_rule() {
  return [](json& v, kit::Problems& p) {
    if (auto why = phone_problem(v.get_ref<const std::string&>())) p.fail(*why);
  };
}

db::Param text_or_null(const json& v, std::string& keep, bool lower) {
  if (!v.is_string()) return nullptr;
  keep = lower ? lowercase(v.get_ref<const std::string&>()) : v.get<std::string>();
  return std::string_view(keep);
}

std::optional<std::string> opt(const json& row, const char* f) {
  const json& v = row.at(f);
  return v.is_string() ? std::optional<std::string>(v.get<std::string>()) : std::nullopt;
}

void tidy_activities(Change& c) { delete_orphan_activities(c.tx, c.scope); }

}  // namespace

kit::Resource company_resource() {
  kit::Resource r("crm", "company", "companies");
  r.field(kit::text("name", 200).required().searchable())
      .field(kit::text("domain", 253)
                 .min(3)
                 .check(lower_domain())
                 .format("hostname")
                 .unique("domain_normalized")
                 .filter(Match::kCaseless)
                 .searchable()
                 .doc("unique per tenant, stored lower-case"))
      .field(kit::text("industry", 100).filter(Match::kCaseless))
      .field(kit::choice("size", company_sizes()).filter())
      .field(
          kit::object("address", {kit::text("street", 200), kit::text("city", 200), kit::text("region", 200),
                                  kit::text("postal_code", 200), kit::text("country", 200)}))
      .field(kit::id("owner_id").filter())
      .field(kit::object("custom", kMaxCustomBytes).defaults(json::object()))
      .derived("domain_normalized",
               [](const json& row, std::string& keep) { return text_or_null(row["domain"], keep, true); })
      .csv()
      .describe_create("Create a company (domain unique per tenant)")
      .describe_list("List companies (newest first; sort, q over name and domain, filters)")
      .describe_delete(
          "Delete a company; its contacts, deals and activities are unlinked (company_id becomes null)")
      .hooks(
          {.before_delete =
               [](Change& c) {
                 c.event["unlinked_contacts"] =
                     c.tx.query(
                             "SELECT COUNT(*) FROM crm_db.contacts WHERE tenant_id = $1 AND company_id = $2",
                             {c.scope.tenant_id(), c.row.at("id").get<std::string>()})
                         .rows[0]
                         .integer(0);
               },
           .after_delete = tidy_activities});
  return r;
}

kit::Resource contact_resource() {
  kit::Resource r("crm", "contact", "contacts");
  r.field(kit::text("first_name", 100))
      .field(kit::text("last_name", 100))
      .field(kit::text("email", 254)
                 .min(3)
                 .check(email_rule())
                 .format("email")
                 .unique("email_normalized")
                 .filter(Match::kCaseless)
                 .doc("unique per tenant (compared lower-case)"))
      .field(kit::text("phone", 50).min(3).check(phone_rule()))
      .field(kit::text("title", 200))
      .field(kit::id("company_id").refs("crm_db.companies").filter())
      .field(kit::id("owner_id").filter())
      .field(kit::choice("lifecycle_stage", lifecycle_stages()).not_null().defaults("lead").filter())
      .field(kit::text_list("tags", kMaxTags, 50).defaults(json::array()))
      .field(kit::object("custom", kMaxCustomBytes).defaults(json::object()))
      .derived("email_normalized",
               [](const json& row, std::string& keep) { return text_or_null(row["email"], keep, true); })
      // ?q= reads one column the list indexes carry: "first last\nemail", ASCII lower-cased.
      .derived("search",
               [](const json& row, std::string& keep) -> db::Param {
                 keep = contact_search_text(opt(row, "first_name"), opt(row, "last_name"), opt(row, "email"));
                 return std::string_view(keep);
               })
      .search_column("search")
      .custom_filter({.name = "tag",
                      .max_length = 50,
                      .where =
                          [](const std::string& v, const std::function<std::string(std::string)>& bind) {
                            return "EXISTS (SELECT 1 FROM crm_db.contact_tags t WHERE t.tenant_id = "
                                   "crm_db.contacts.tenant_id "
                                   "AND t.contact_id = crm_db.contacts.id AND t.tag = " +
                                   bind(lowercase(v)) + ")";
                          }})
      .side_table("crm_db.contact_tags")
      .csv()
      .describe_create("Create a contact (email unique per tenant)")
      .describe_list("List contacts (newest first; sort, q over names and email, filters)")
      .describe_delete("Delete a contact; its deals and activities are unlinked")
      .at_least_one({"first_name", "last_name", "email"},
                    "a contact needs at least one of first_name, last_name or email")
      .hooks({.after_write =
                  [](Change& c) {
                    const std::string id = c.row.at("id").get<std::string>();
                    if (c.before && c.before->at("tags") == c.row.at("tags")) return;
                    c.tx.query("DELETE FROM crm_db.contact_tags WHERE tenant_id = $1 AND contact_id = $2",
                               {c.scope.tenant_id(), id});
                    for (const auto& t : c.row.at("tags"))
                      c.tx.query(
                          "INSERT INTO crm_db.contact_tags (tenant_id, contact_id, tag) VALUES ($1, $2, $3) "
                          "ON CONFLICT (contact_id, tag) DO NOTHING",
                          {c.scope.tenant_id(), id, lowercase(t.get<std::string>())});
                  },
              .before_delete =
                  [](Change& c) {
                    c.tx.query("DELETE FROM crm_db.contact_tags WHERE tenant_id = $1 AND contact_id = $2",
                               {c.scope.tenant_id(), c.row.at("id").get<std::string>()});
                  },
              .after_delete = tidy_activities,
              .after_import =
                  [](db::Tx& tx, const db::TenantScope& scope, const std::vector<const json*>& rows) {
                    std::vector<std::pair<const json*, std::string>> tags;
                    for (const json* row : rows)
                      for (const auto& t : row->at("tags"))
                        tags.emplace_back(row, lowercase(t.get<std::string>()));
                    // New contacts' tags, unique per contact already (the reader drops duplicates ignoring
                    // case).
                    kit::insert_rows(tx, scope, "crm_db.contact_tags", {"contact_id", "tag"}, tags.size(),
                                     [&](size_t i, kit::JsonRows& r) {
                                       r.cell(tags[i].first->at("id").get_ref<const std::string&>());
                                       r.cell(tags[i].second);
                                     });
                  }});
  return r;
}

kit::Resource activity_resource() {
  kit::Resource r("crm", "activity", "activities");
  r.field(kit::choice("type", activity_types()).required().filter())
      .field(kit::text("subject", 300).searchable())
      .field(kit::text("body", 20000).multiline().searchable())
      .field(kit::datetime("due_at"))
      .field(kit::boolean("done").not_null().defaults(false).filter())
      .field(kit::datetime("completed_at").read_only().doc("set when done becomes true"))
      .field(kit::id("contact_id").refs("crm_db.contacts").filter())
      .field(kit::id("company_id").refs("crm_db.companies").filter())
      .field(kit::id("deal_id").refs("crm_db.deals").filter())
      .field(kit::id("owner_id").filter())
      .describe_create("Log an activity (note, call, email, meeting, task) on a contact, company and/or deal")
      .describe_list("List activities (newest first; sort, q over subject and body, filters)")
      .at_least_one({"subject", "body"}, "an activity needs a subject or a body")
      .at_least_one({"contact_id", "company_id", "deal_id"},
                    "an activity links to at least one of contact_id, company_id or deal_id")
      .hooks({.validate = [](Change& c) {
        const bool done = c.row.at("done").get<bool>();
        if (!done)
          c.row["completed_at"] = nullptr;
        else if (!c.before || !c.before->at("done").get<bool>())
          c.row["completed_at"] = c.row.at("updated_at");
      }});
  return r;
}

kit::Resource deal_resource() {
  kit::Resource r("crm", "deal", "deals");
  r.field(kit::text("title", 200).required().searchable())
      .field(kit::integer("amount", 0, kMaxAmount).doc("minor units of the currency (1234 = 12.34 EUR)"))
      .field(kit::text("currency", 3)
                 .min(3)
                 .check(
                     [](json& v, kit::Problems& p) {
                       if (!valid_currency(v.get_ref<const std::string&>()))
                         p.fail("must be an ISO 4217 currency code in upper case, such as EUR or USD");
                     },
                     "^[A-Z]{3}$")
                 .filter()
                 .doc("ISO 4217 code; required with an amount"))
      .field(kit::id("pipeline_id").not_null().filter().doc("default: the tenant's default pipeline"))
      .field(kit::id("stage_id").not_null().filter().doc("default: the pipeline's first stage"))
      .field(kit::id("contact_id").refs("crm_db.contacts").filter())
      .field(kit::id("company_id").refs("crm_db.companies").filter())
      .field(kit::date("expected_close_date"))
      .field(kit::choice("status", deal_statuses()).not_null().defaults("open").filter())
      .field(kit::id("owner_id").filter())
      .field(kit::object("custom", kMaxCustomBytes).defaults(json::object()))
      .field(kit::datetime("closed_at").read_only().doc("set when the deal is won or lost"))
      .describe_create("Create a deal (default pipeline and first stage unless given)")
      .describe_list("List deals (newest first; sort, q over title, filters)")
      .describe_delete("Delete a deal and its history; its activities are unlinked");
  return r;
}

kit::Resource pipeline_resource() {
  kit::Resource r("crm", "pipeline", "pipelines");
  r.field(kit::text("name", 100).required().searchable())
      .field(kit::boolean("is_default").not_null().doc("true makes it the default (the others lose it)"))
      .field(kit::object_list(
                 "stages",
                 {kit::text("name", 100).required(), kit::integer("probability", 0, 100).required()}, 50)
                 .create_only()
                 .no_column()
                 .renders_as("Stage")
                 .doc("the pipeline's stages, by position"))
      .default_sort("created_at")
      .describe_create("Create a pipeline with its stages")
      .describe_list(
          "List pipelines with their stages, oldest first (the default 'Sales' pipeline is created on "
          "first use)")
      .describe_delete("Delete a pipeline and its stages (409 while it holds deals)");
  return r;
}

kit::Resource stage_resource(const kit::Resource& pipelines) {
  kit::Resource r("crm", "stage", "stages");
  r.parent(pipelines, "pipeline_id")
      .item_param("stage_id")
      .field(kit::text("name", 100).required().doc("unique in its pipeline (ignoring case)"))
      .field(kit::integer("probability", 0, 100).required().doc("chance of winning, in percent"))
      .field(kit::integer("position", 0, 1000)
                 .not_null()
                 .sortable()
                 .doc("0 first; default: last; later stages shift"))
      .default_sort("position")
      .delete_param("move_deals_to")
      .describe_create("Add a stage (at the end, or at position; later stages shift)")
      .describe_list("The pipeline's stages by position")
      .describe_delete(
          "Delete a stage; 409 while it holds deals unless ?move_deals_to=<stage_id> moves them");
  return r;
}

}  // namespace cdx::crm
