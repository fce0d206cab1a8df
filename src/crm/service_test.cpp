// The CRM rules against a real (SQLite) crm_db: links, uniqueness, pipelines, history, events, purge.
#include "crm/service.hpp"

#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

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
  std::vector<std::string> event_types(const db::TenantScope& scope) {
    std::vector<std::string> out;
    for (const auto& e : svc().list_events(scope, std::nullopt, 200, std::nullopt)) out.insert(out.begin(), e.type);
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
  Company theirs = svc().create_company(b_, parse_company(R"({"name":"B Corp"})", Mode::kCreate), actor_);
  const std::string body = R"({"first_name":"Ann","company_id":")" + theirs.id + R"("})";
  EXPECT_EQ(fields_of([&] { svc().create_contact(a_, parse_contact(body, Mode::kCreate), actor_); }),
            std::vector<std::string>{"company_id"});
  EXPECT_EQ(code_of([&] { svc().get_company(a_, theirs.id); }), Code::kNotFound);
  EXPECT_TRUE(svc().list_companies(a_, CompanyFilter{}).empty());
  // Nothing was written for the refused contact, not even its event.
  EXPECT_TRUE(event_types(a_).empty());
}

TEST_F(CrmServiceTest, EmailsAndDomainsAreUniquePerTenantIgnoringCase) {
  svc().create_contact(a_, parse_contact(R"({"email":"Ann@Acme.com"})", Mode::kCreate), actor_);
  EXPECT_EQ(code_of([&] { svc().create_contact(a_, parse_contact(R"({"email":"ann@acme.COM"})", Mode::kCreate), actor_); }),
            Code::kConflict);
  EXPECT_NO_THROW(svc().create_contact(b_, parse_contact(R"({"email":"ann@acme.com"})", Mode::kCreate), actor_));
  svc().create_company(a_, parse_company(R"({"name":"A","domain":"acme.com"})", Mode::kCreate), actor_);
  EXPECT_EQ(code_of([&] { svc().create_company(a_, parse_company(R"({"name":"A2","domain":"ACME.com"})", Mode::kCreate), actor_); }),
            Code::kConflict);
}

TEST_F(CrmServiceTest, ChangesAndTheirEventsShareOneTransaction) {
  Contact c = svc().create_contact(a_, parse_contact(R"({"first_name":"Ann"})", Mode::kCreate), actor_);
  svc().update_contact(a_, c.id, parse_contact(R"({"title":"CEO"})", Mode::kUpdate), actor_);
  svc().update_contact(a_, c.id, parse_contact(R"({"title":"CEO"})", Mode::kUpdate), actor_);  // no change, no event
  EXPECT_EQ(event_types(a_), (std::vector<std::string>{"crm.contact.created", "crm.contact.updated"}));
  auto events = svc().list_events(a_, "crm.contact.updated", 10, std::nullopt);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].payload["changed"], json({"title"}));
  EXPECT_EQ(events[0].payload["contact"]["title"], "CEO");
  EXPECT_EQ(events[0].payload["actor"]["id"], actor_.id);
}

TEST_F(CrmServiceTest, TheDefaultPipelineIsCreatedOnceOnFirstUse) {
  auto first = svc().list_pipelines(a_, ListQuery{});
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].name, "Sales");
  EXPECT_TRUE(first[0].is_default);
  ASSERT_EQ(first[0].stages.size(), 5u);
  EXPECT_EQ(first[0].stages[0].name, "Qualification");
  EXPECT_EQ(first[0].stages[0].probability, 10);
  EXPECT_EQ(first[0].stages[3].probability, 100);
  EXPECT_EQ(svc().list_pipelines(a_, ListQuery{}).size(), 1u);
  // A deal without pipeline or stage lands in the default pipeline's first stage.
  Deal d = svc().create_deal(a_, parse_deal(R"({"title":"Big","amount":100,"currency":"EUR"})", Mode::kCreate), actor_);
  EXPECT_EQ(d.pipeline_id, first[0].id);
  EXPECT_EQ(d.stage_id, first[0].stages[0].id);
}

TEST_F(CrmServiceTest, StageMovesAreRecordedInHistoryWithEvents) {
  Deal d = svc().create_deal(a_, parse_deal(R"({"title":"Big"})", Mode::kCreate), actor_);
  const Pipeline p = svc().get_pipeline(a_, d.pipeline_id);
  const std::string body = R"({"stage_id":")" + p.stages[3].id + R"(","status":"won"})";
  Deal won = svc().update_deal(a_, d.id, parse_deal(body, Mode::kUpdate), actor_);
  EXPECT_EQ(won.status, "won");
  EXPECT_TRUE(won.closed_at);
  auto history = svc().deal_history(a_, d.id, 50, 0);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_FALSE(history[0].from_stage_id);
  EXPECT_EQ(history[1].from_stage_id, p.stages[0].id);
  EXPECT_EQ(history[1].to_stage_id, p.stages[3].id);
  EXPECT_EQ(history[1].to_status, "won");
  auto types = event_types(a_);
  EXPECT_NE(std::find(types.begin(), types.end(), "crm.deal.stage_changed"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "crm.deal.won"), types.end());
  // A stage of another pipeline is refused, naming stage_id.
  Pipeline other = svc().create_pipeline(
      a_, parse_pipeline(R"({"name":"Partners","stages":[{"name":"Intro","probability":5}]})", Mode::kCreate), actor_);
  const std::string wrong = R"({"stage_id":")" + other.stages[0].id + R"("})";
  EXPECT_EQ(fields_of([&] { svc().update_deal(a_, d.id, parse_deal(wrong, Mode::kUpdate), actor_); }),
            std::vector<std::string>{"stage_id"});
}

TEST_F(CrmServiceTest, AStageWithDealsIsOnlyDeletedWhenTheyMove) {
  Deal d = svc().create_deal(a_, parse_deal(R"({"title":"Big"})", Mode::kCreate), actor_);
  Pipeline p = svc().get_pipeline(a_, d.pipeline_id);
  EXPECT_EQ(code_of([&] { svc().delete_stage(a_, p.id, d.stage_id, std::nullopt, actor_); }), Code::kConflict);
  EXPECT_EQ(fields_of([&] { svc().delete_stage(a_, p.id, d.stage_id, d.stage_id, actor_); }),
            std::vector<std::string>{"move_deals_to"});
  svc().delete_stage(a_, p.id, d.stage_id, p.stages[1].id, actor_);
  EXPECT_EQ(svc().get_deal(a_, d.id).stage_id, p.stages[1].id);
  Pipeline after = svc().get_pipeline(a_, p.id);
  ASSERT_EQ(after.stages.size(), 4u);
  for (size_t i = 0; i < after.stages.size(); ++i) EXPECT_EQ(after.stages[i].position, static_cast<int64_t>(i));
  EXPECT_EQ(svc().deal_history(a_, d.id, 50, 0).size(), 2u);
  EXPECT_EQ(code_of([&] { svc().delete_pipeline(a_, p.id, actor_); }), Code::kConflict);
}

TEST_F(CrmServiceTest, StagesCanBeAddedRenamedAndReordered) {
  Pipeline p = svc().create_pipeline(
      a_, parse_pipeline(R"({"name":"P","stages":[{"name":"A","probability":10},{"name":"B","probability":50}]})",
                         Mode::kCreate),
      actor_);
  Stage c = svc().create_stage(a_, p.id, parse_stage(R"({"name":"C","probability":80,"position":0})", Mode::kCreate),
                               actor_);
  EXPECT_EQ(c.position, 0);
  EXPECT_EQ(code_of([&] { svc().create_stage(a_, p.id, parse_stage(R"({"name":"a","probability":1})", Mode::kCreate), actor_); }),
            Code::kConflict);
  svc().update_stage(a_, p.id, c.id, parse_stage(R"({"name":"Closing","position":99})", Mode::kUpdate), actor_);
  auto names = [&] {
    std::vector<std::string> out;
    for (const auto& s : svc().list_stages(a_, p.id)) out.push_back(s.name + "@" + std::to_string(s.position));
    return out;
  };
  EXPECT_EQ(names(), (std::vector<std::string>{"A@0", "B@1", "Closing@2"}));
}

TEST_F(CrmServiceTest, DeletingACompanyUnlinksItsContactsAndDeals) {
  Company co = svc().create_company(a_, parse_company(R"({"name":"Acme"})", Mode::kCreate), actor_);
  const std::string link = R"({"first_name":"Ann","company_id":")" + co.id + R"("})";
  Contact c = svc().create_contact(a_, parse_contact(link, Mode::kCreate), actor_);
  Deal d = svc().create_deal(a_, parse_deal(R"({"title":"x","company_id":")" + co.id + R"("})", Mode::kCreate), actor_);
  Activity only = svc().create_activity(
      a_, parse_activity(R"({"type":"note","body":"hi","company_id":")" + co.id + R"("})", Mode::kCreate), actor_);
  Activity both = svc().create_activity(
      a_, parse_activity(R"({"type":"note","body":"hi","company_id":")" + co.id + R"(","contact_id":")" + c.id + R"("})",
                         Mode::kCreate),
      actor_);
  svc().delete_company(a_, co.id, actor_);
  EXPECT_FALSE(svc().get_contact(a_, c.id).company_id);
  EXPECT_FALSE(svc().get_deal(a_, d.id).company_id);
  EXPECT_EQ(code_of([&] { svc().get_activity(a_, only.id); }), Code::kNotFound);  // nothing left to be about
  EXPECT_FALSE(svc().get_activity(a_, both.id).company_id);
}

TEST_F(CrmServiceTest, ImportIsAllOrNothingUnlessPartial) {
  auto rows = import_rows(parse_csv("first_name,email\nAnn,ann@x.com\nBob,not-an-email\nCid,ann@X.com\n"),
                          ImportKind::kContacts);
  try {
    svc().import_contacts(a_, rows, false, actor_);
    FAIL();
  } catch (const ImportFailed& e) {
    EXPECT_EQ(e.report.created, 0);
    ASSERT_EQ(e.report.errors.size(), 2u);
    EXPECT_EQ(e.report.errors[0].row, 3);
    EXPECT_EQ(e.report.errors[1].row, 4);  // a duplicate of row 2 inside the same file
  }
  EXPECT_TRUE(svc().list_contacts(a_, ContactFilter{}).empty());
  ImportReport r = svc().import_contacts(a_, rows, true, actor_);
  EXPECT_EQ(r.created, 1);
  EXPECT_EQ(svc().list_contacts(a_, ContactFilter{}).size(), 1u);
}

TEST_F(CrmServiceTest, PurgeRemovesEverythingOfOneTenant) {
  svc().create_contact(a_, parse_contact(R"({"first_name":"A"})", Mode::kCreate), actor_);
  svc().create_contact(b_, parse_contact(R"({"first_name":"B"})", Mode::kCreate), actor_);
  svc().create_deal(a_, parse_deal(R"({"title":"x"})", Mode::kCreate), actor_);
  module_->purge_tenant(a_);
  EXPECT_EQ(svc().counts(a_).contacts, 0);
  EXPECT_EQ(svc().counts(a_).deals, 0);
  EXPECT_TRUE(event_types(a_).empty());
  EXPECT_EQ(svc().counts(b_).contacts, 1);
}

// What the routes do: a service write awaited through Store::write_async runs in one transaction on the
// database's writer (the service's own write() joins it), its event commits with it, and a refused write
// (409) reaches its awaiter and leaves nothing behind.
TEST_F(CrmServiceTest, AwaitedServiceWritesRunInOneTransaction) {
  Store store(module_->outbox_database());
  db::Outbox outbox("crm_db");
  Service service(store, outbox);
  boost::asio::io_context ioc;
  Company created;
  Code second = Code::kInternal;
  auto done = boost::asio::co_spawn(
      ioc,
      [&]() -> Task<void> {
        created = co_await store.write_async(workers_, a_, [&] {
          return service.create_company(a_, parse_company(R"({"name":"Acme","domain":"acme.com"})", Mode::kCreate),
                                        actor_);
        });
        try {
          co_await store.write_async(workers_, a_, [&] {
            return service.create_company(a_, parse_company(R"({"name":"Acme 2","domain":"acme.com"})", Mode::kCreate),
                                          actor_);
          });
        } catch (const Error& e) {
          second = e.code();
        }
        co_await store.write_async(workers_, a_, [&] { service.delete_company(a_, created.id, actor_); });
      },
      boost::asio::use_future);
  ioc.run();
  done.get();
  EXPECT_EQ(second, Code::kConflict);
  EXPECT_EQ(code_of([&] { svc().get_company(a_, created.id); }), Code::kNotFound);
  EXPECT_EQ(event_types(a_), (std::vector<std::string>{"crm.company.created", "crm.company.deleted"}));
}

}  // namespace
}  // namespace cdx::crm
