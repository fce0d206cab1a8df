// The CRM rules against a real (SQLite) crm_db: links, uniqueness, pipelines, history, events, purge.
#include "crm/service.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/ids.hpp"
#include "crm/module.hpp"
#include "db/testing.hpp"

namespace cdx::crm {
namespace {

using nlohmann::json;

class CrmServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    init_crypto();
    dir_ = std::filesystem::temp_directory_path() / ("cdx-crm-" + random_token(10));
    factory_ = db::make_sqlite_factory(dir_.string());
    module_ = std::make_unique<CrmModule>(factory_->open("crm_db"), workers_);
    module_->database().migrate(module_->migrations());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Service& svc() { return module_->service(); }
  // The kit's resources (companies, contacts, activities) through the module's kit, as the routes use it.
  json create(const db::TenantScope& scope, std::string_view plural, std::string_view body) {
    const kit::Resource& r = module_->kit().get(plural);
    const json patch = kit::read_body(r, body, kit::Mode::kCreate);
    return module_->database().write(
        scope, [&](db::Tx& tx) { return module_->kit().create(tx, caller(scope), r, patch); });
  }
  json update(const db::TenantScope& scope, std::string_view plural, const std::string& id,
              std::string_view body) {
    const kit::Resource& r = module_->kit().get(plural);
    const json patch = kit::read_body(r, body, kit::Mode::kUpdate);
    return module_->database().write(
        scope, [&](db::Tx& tx) { return module_->kit().update(tx, caller(scope), r, id, patch); });
  }
  void remove(const db::TenantScope& scope, std::string_view plural, const std::string& id) {
    const kit::Resource& r = module_->kit().get(plural);
    module_->database().write(scope, [&](db::Tx& tx) { module_->kit().remove(tx, caller(scope), r, id); });
  }
  json get(const db::TenantScope& scope, std::string_view plural, const std::string& id) {
    const kit::Resource& r = module_->kit().get(plural);
    auto row = module_->database().read(
        scope, [&](db::Tx& tx) { return module_->kit().find(tx, caller(scope), r, id); });
    if (!row) kit::not_found(r, id);
    return *row;
  }
  size_t count(const db::TenantScope& scope, std::string_view plural) {
    const kit::Resource& r = module_->kit().get(plural);
    return module_->database()
        .read(scope, [&](db::Tx& tx) { return module_->kit().list(tx, caller(scope), r, {}); })
        .size();
  }
  kit::Caller caller(const db::TenantScope& scope) const {
    return {scope, {actor_.type, actor_.id}, std::nullopt};
  }
  std::vector<std::string> event_types(const db::TenantScope& scope) {
    std::vector<std::string> out;
    for (const auto& e : svc().list_events(scope, std::nullopt, 200, std::nullopt))
      out.insert(out.begin(), e.type);
    return out;
  }
  static std::vector<std::string> fields_of(const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      std::vector<std::string> out;
      for (const auto& f : e.field_errors()) out.push_back(f.field);
      return out;
    }
    return {"<no error>"};
  }
  static Code code_of(const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.code();
    }
    return Code::kInternal;
  }

  std::filesystem::path dir_;
  std::unique_ptr<db::ConnectionFactory> factory_;
  WorkerPool workers_{1};
  std::unique_ptr<CrmModule> module_;
  db::TenantScope a_ = db::testing::TestScopes::mint("01930000-0000-7000-8000-00000000000a");
  db::TenantScope b_ = db::testing::TestScopes::mint("01930000-0000-7000-8000-00000000000b");
  Actor actor_{"user", "01930000-0000-7000-8000-0000000000ff"};
};

TEST_F(CrmServiceTest, LinksMustExistInTheSameTenant) {
  const json theirs = create(b_, "companies", R"({"name":"B Corp"})");
  const std::string body =
      R"({"first_name":"Ann","company_id":")" + theirs["id"].get<std::string>() + R"("})";
  EXPECT_EQ(fields_of([&] { create(a_, "contacts", body); }), std::vector<std::string>{"company_id"});
  EXPECT_EQ(code_of([&] { get(a_, "companies", theirs["id"]); }), Code::kNotFound);
  EXPECT_EQ(count(a_, "companies"), 0u);
  // Nothing was written for the refused contact, not even its event.
  EXPECT_TRUE(event_types(a_).empty());
}

TEST_F(CrmServiceTest, EmailsAndDomainsAreUniquePerTenantIgnoringCase) {
  create(a_, "contacts", R"({"email":"Ann@Acme.com"})");
  EXPECT_EQ(code_of([&] { create(a_, "contacts", R"({"email":"ann@acme.COM"})"); }), Code::kConflict);
  EXPECT_NO_THROW(create(b_, "contacts", R"({"email":"ann@acme.com"})"));
  create(a_, "companies", R"({"name":"A","domain":"acme.com"})");
  EXPECT_EQ(code_of([&] { create(a_, "companies", R"({"name":"A2","domain":"ACME.com"})"); }),
            Code::kConflict);
}

TEST_F(CrmServiceTest, ChangesAndTheirEventsShareOneTransaction) {
  const json c = create(a_, "contacts", R"({"first_name":"Ann"})");
  update(a_, "contacts", c["id"], R"({"title":"CEO"})");
  update(a_, "contacts", c["id"], R"({"title":"CEO"})");  // no change, no event
  EXPECT_EQ(event_types(a_), (std::vector<std::string>{"crm.contact.created", "crm.contact.updated"}));
  auto events = svc().list_events(a_, "crm.contact.updated", 10, std::nullopt);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].payload["changed"], json({"title"}));
  EXPECT_EQ(events[0].payload["contact"]["title"], "CEO");
  EXPECT_EQ(events[0].payload["actor"]["id"], actor_.id);
}

TEST_F(CrmServiceTest, TheDefaultPipelineIsCreatedOnceOnFirstUse) {
  const kit::Resource& pipelines = module_->kit().get("pipelines");
  module_->database().write(a_, [&](db::Tx& tx) { pipelines.hooks().seed(tx, a_); });
  module_->database().write(a_, [&](db::Tx& tx) { pipelines.hooks().seed(tx, a_); });
  const json first = module_->database().read(
      a_, [&](db::Tx& tx) { return module_->kit().list(tx, caller(a_), pipelines, {}); });
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0]["name"], "Sales");
  EXPECT_EQ(first[0]["is_default"], true);
  ASSERT_EQ(first[0]["stages"].size(), 5u);
  EXPECT_EQ(first[0]["stages"][0]["name"], "Qualification");
  EXPECT_EQ(first[0]["stages"][0]["probability"], 10);
  EXPECT_EQ(first[0]["stages"][3]["probability"], 100);
  // A deal without pipeline or stage lands in the default pipeline's first stage.
  const json d = create(a_, "deals", R"({"title":"Big","amount":100,"currency":"EUR"})");
  EXPECT_EQ(d["pipeline_id"], first[0]["id"]);
  EXPECT_EQ(d["stage_id"], first[0]["stages"][0]["id"]);
  EXPECT_EQ(fields_of([&] { create(a_, "deals", R"({"title":"x","amount":5})"); }),
            std::vector<std::string>{"currency"});
}

TEST_F(CrmServiceTest, StageMovesAreRecordedInHistoryWithEvents) {
  const json d = create(a_, "deals", R"({"title":"Big"})");  // makes the default pipeline
  const json p = get(a_, "pipelines", d["pipeline_id"]);
  const std::string body =
      R"({"stage_id":")" + p["stages"][3]["id"].get<std::string>() + R"(","status":"won"})";
  const json won = update(a_, "deals", d["id"], body);
  EXPECT_EQ(won["status"], "won");
  EXPECT_TRUE(won["closed_at"].is_string());
  auto history = svc().deal_history(a_, d["id"], 50, 0);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_FALSE(history[0].from_stage_id);
  EXPECT_EQ(history[1].from_stage_id, p["stages"][0]["id"]);
  EXPECT_EQ(history[1].to_stage_id, p["stages"][3]["id"]);
  EXPECT_EQ(history[1].to_status, "won");
  auto types = event_types(a_);
  EXPECT_NE(std::find(types.begin(), types.end(), "crm.deal.stage_changed"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "crm.deal.won"), types.end());
  // A stage of another pipeline is refused, naming stage_id.
  const json other =
      create(a_, "pipelines", R"({"name":"Partners","stages":[{"name":"Intro","probability":5}]})");
  const std::string wrong = R"({"stage_id":")" + other["stages"][0]["id"].get<std::string>() + R"("})";
  EXPECT_EQ(fields_of([&] { update(a_, "deals", d["id"], wrong); }), std::vector<std::string>{"stage_id"});
}

TEST_F(CrmServiceTest, AStageWithDealsIsOnlyDeletedWhenTheyMove) {
  const json d = create(a_, "deals", R"({"title":"Big"})");
  const std::string stage = d["stage_id"];
  const json p = get(a_, "pipelines", d["pipeline_id"]);
  const kit::Resource& stages = module_->kit().get("stages");
  auto delete_stage = [&](const std::optional<std::string>& move_to) {
    kit::Caller c = caller(a_);
    c.parent = p["id"].get<std::string>();
    if (move_to) c.params["move_deals_to"] = *move_to;
    module_->database().write(a_, [&](db::Tx& tx) { module_->kit().remove(tx, c, stages, stage); });
  };
  EXPECT_EQ(code_of([&] { delete_stage(std::nullopt); }), Code::kConflict);
  EXPECT_EQ(fields_of([&] { delete_stage(stage); }), std::vector<std::string>{"move_deals_to"});
  delete_stage(p["stages"][1]["id"].get<std::string>());
  EXPECT_EQ(get(a_, "deals", d["id"])["stage_id"], p["stages"][1]["id"]);
  const json after = get(a_, "pipelines", p["id"]);
  ASSERT_EQ(after["stages"].size(), 4u);
  for (size_t i = 0; i < after["stages"].size(); ++i)
    EXPECT_EQ(after["stages"][i]["position"], static_cast<int64_t>(i));
  EXPECT_EQ(svc().deal_history(a_, d["id"], 50, 0).size(), 2u);
  EXPECT_EQ(code_of([&] { remove(a_, "pipelines", p["id"]); }), Code::kConflict);
}

TEST_F(CrmServiceTest, StagesCanBeAddedRenamedAndReordered) {
  const json p =
      create(a_, "pipelines",
             R"({"name":"P","stages":[{"name":"A","probability":10},{"name":"B","probability":50}]})");
  const kit::Resource& stages = module_->kit().get("stages");
  kit::Caller in_p = caller(a_);
  in_p.parent = p["id"].get<std::string>();
  auto write = [&](auto fn) { return module_->database().write(a_, [&](db::Tx& tx) { return fn(tx); }); };
  const json c = write([&](db::Tx& tx) {
    return module_->kit().create(
        tx, in_p, stages,
        kit::read_body(stages, R"({"name":"C","probability":80,"position":0})", kit::Mode::kCreate));
  });
  EXPECT_EQ(c["position"], 0);
  EXPECT_EQ(code_of([&] {
              write([&](db::Tx& tx) {
                return module_->kit().create(
                    tx, in_p, stages,
                    kit::read_body(stages, R"({"name":"a","probability":1})", kit::Mode::kCreate));
              });
            }),
            Code::kConflict);
  write([&](db::Tx& tx) {
    return module_->kit().update(
        tx, in_p, stages, c["id"],
        kit::read_body(stages, R"({"name":"Closing","position":99})", kit::Mode::kUpdate));
  });
  std::vector<std::string> names;
  const json after = get(a_, "pipelines", p["id"]);
  for (const auto& s : after["stages"])
    names.push_back(s["name"].get<std::string>() + "@" + std::to_string(s["position"].get<int64_t>()));
  EXPECT_EQ(names, (std::vector<std::string>{"A@0", "B@1", "Closing@2"}));
}

TEST_F(CrmServiceTest, DeletingACompanyUnlinksItsContactsAndDeals) {
  const std::string co = create(a_, "companies", R"({"name":"Acme"})")["id"];
  const std::string c = create(a_, "contacts", R"({"first_name":"Ann","company_id":")" + co + R"("})")["id"];
  const std::string d = create(a_, "deals", R"({"title":"x","company_id":")" + co + R"("})")["id"];
  const std::string only =
      create(a_, "activities", R"({"type":"note","body":"hi","company_id":")" + co + R"("})")["id"];
  const std::string both =
      create(a_, "activities",
             R"({"type":"note","body":"hi","company_id":")" + co + R"(","contact_id":")" + c + R"("})")["id"];
  remove(a_, "companies", co);
  EXPECT_TRUE(get(a_, "contacts", c)["company_id"].is_null());
  EXPECT_TRUE(get(a_, "deals", d)["company_id"].is_null());
  EXPECT_EQ(code_of([&] { get(a_, "activities", only); }), Code::kNotFound);  // nothing left to be about
  EXPECT_TRUE(get(a_, "activities", both)["company_id"].is_null());
}

TEST_F(CrmServiceTest, ImportIsAllOrNothingUnlessPartial) {
  auto rows =
      kit::import_rows(kit::parse_csv("first_name,email\nAnn,ann@x.com\nBob,not-an-email\nCid,ann@X.com\n"),
                       module_->kit().get("contacts"));
  const kit::Resource& contacts = module_->kit().get("contacts");
  auto import = [&](bool partial) {
    return module_->database().write(
        a_, [&](db::Tx& tx) { return module_->kit().store_import(tx, caller(a_), contacts, rows, partial); });
  };
  try {
    import(false);
    FAIL();
  } catch (const kit::ImportFailed& e) {
    EXPECT_EQ(e.report.created, 0);
    ASSERT_EQ(e.report.errors.size(), 2u);
    EXPECT_EQ(e.report.errors[0].row, 3);
    EXPECT_EQ(e.report.errors[1].row, 4);  // a duplicate of row 2 inside the same file
  }
  EXPECT_EQ(count(a_, "contacts"), 0u);
  kit::ImportReport r = import(true);
  EXPECT_EQ(r.created, 1);
  EXPECT_EQ(count(a_, "contacts"), 1u);
}

TEST_F(CrmServiceTest, PurgeRemovesEverythingOfOneTenant) {
  create(a_, "contacts", R"({"first_name":"A"})");
  create(b_, "contacts", R"({"first_name":"B"})");
  create(a_, "deals", R"({"title":"x"})");
  module_->purge_tenant(a_);
  EXPECT_EQ(svc().counts(a_).contacts, 0);
  EXPECT_EQ(svc().counts(a_).deals, 0);
  EXPECT_TRUE(event_types(a_).empty());
  EXPECT_EQ(svc().counts(b_).contacts, 1);
}

}  // namespace
}  // namespace cdx::crm
