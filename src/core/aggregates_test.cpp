#include "core/aggregates.hpp"

#include <gtest/gtest.h>

namespace cdx::core::aggregates {
namespace {

using nlohmann::json;

Deltas deltas(const std::string& type, const json& data) { return effect_of(type, data).add; }

TEST(Aggregates, CreatedAndDeletedRowsMoveTheirCounter) {
  EXPECT_EQ(deltas("auth.user.created", {{"user", {{"id", "u"}}}}), (Deltas{{kUsers, 1}}));
  EXPECT_EQ(deltas("auth.user.deleted", {{"id", "u"}}), (Deltas{{kUsers, -1}}));
  EXPECT_EQ(deltas("auth.api_key.created", json::object()), (Deltas{{kApiKeys, 1}}));
  EXPECT_EQ(deltas("auth.api_key.deleted", json::object()), (Deltas{{kApiKeys, -1}}));  // revoked
  EXPECT_EQ(deltas("crm.contact.created", json::object()), (Deltas{{kContacts, 1}}));
  EXPECT_EQ(deltas("crm.contact.deleted", json::object()), (Deltas{{kContacts, -1}}));
  EXPECT_EQ(deltas("crm.company.created", json::object()), (Deltas{{kCompanies, 1}}));
  EXPECT_EQ(deltas("crm.company.deleted", json::object()), (Deltas{{kCompanies, -1}}));
  EXPECT_EQ(deltas("cms.media.created", json::object()), (Deltas{{kMedia, 1}}));
  EXPECT_EQ(deltas("cms.media.deleted", json::object()), (Deltas{{kMedia, -1}}));
}

TEST(Aggregates, UpdatesAndOtherEventsCountNothing) {
  for (const char* type :
       {"auth.user.updated", "crm.contact.updated", "crm.activity.created", "cms.entry.created",
        "cms.entry.updated", "tenant.created", "plan.updated", "crm.pipeline.created"})
    EXPECT_TRUE(deltas(type, {{"x", {{"id", "1"}}}}).empty()) << type;
  EXPECT_FALSE(effect_of("tenant.updated", json::object()).tenant_deleted);
  EXPECT_TRUE(effect_of("tenant.deleted", {{"tenant", {{"id", "t"}}}}).tenant_deleted);
}

TEST(Aggregates, PublishingCountsAnEntryOnce) {
  EXPECT_EQ(deltas("cms.entry.published", {{"from_status", "draft"}}), (Deltas{{kPublishedEntries, 1}}));
  EXPECT_EQ(deltas("cms.entry.published", json::object()), (Deltas{{kPublishedEntries, 1}}));
  EXPECT_TRUE(deltas("cms.entry.published", {{"from_status", "changed"}}).empty());  // published already
  EXPECT_EQ(deltas("cms.entry.unpublished", json::object()), (Deltas{{kPublishedEntries, -1}}));
  EXPECT_EQ(deltas("cms.entry.deleted", {{"id", "e"}, {"status", "changed"}}),
            (Deltas{{kPublishedEntries, -1}}));
  EXPECT_EQ(deltas("cms.entry.deleted", {{"id", "e"}, {"status", "published"}}),
            (Deltas{{kPublishedEntries, -1}}));
  EXPECT_TRUE(deltas("cms.entry.deleted", {{"id", "e"}, {"status", "draft"}}).empty());
  EXPECT_EQ(deltas("cms.content_type.deleted", {{"id", "t"}, {"published_entries", 3}}),
            (Deltas{{kPublishedEntries, -3}}));
}

TEST(Aggregates, DealEventsCarryTheDealsStateAndDeletesItsId) {
  const json deal = {{"id", "d1"},
                     {"status", "won"},
                     {"amount", 1250},
                     {"currency", "EUR"},
                     {"closed_at", "2026-12-03T10:00:00.000000Z"},
                     {"title", "x"}};
  for (const char* type : {"crm.deal.created", "crm.deal.updated", "crm.deal.won", "crm.deal.stage_changed",
                           "crm.deal.reopened"}) {
    Effect e = effect_of(type, {{"deal", deal}});
    ASSERT_TRUE(e.deal) << type;
    EXPECT_EQ(*e.deal, (DealState{"d1", "won", 1250, "EUR", "2026-12-03T10:00:00.000000Z"}));
    EXPECT_TRUE(e.add.empty());
  }
  Effect gone = effect_of("crm.deal.deleted", {{"id", "d1"}});
  EXPECT_EQ(gone.deal_removed, "d1");
  EXPECT_FALSE(gone.deal);
  EXPECT_FALSE(effect_of("crm.deal.updated", {{"deal", {{"title", "no id"}}}}).deal);
}

TEST(Aggregates, ADealAddsToOpenOrWonOfItsMonthPerCurrency) {
  Deltas d;
  add_deal({"a", "open", 500, "EUR", ""}, 1, d);
  add_deal({"b", "open", std::nullopt, "", ""}, 1, d);
  add_deal({"c", "won", 700, "USD", "2026-12-01T00:00:00Z"}, 1, d);
  add_deal({"e", "lost", 900, "USD", "2026-12-01T00:00:00Z"}, 1, d);
  EXPECT_EQ(d, (Deltas{{kOpenDeals, 2},
                       {"deals.open_value:EUR", 500},
                       {"deals.won:2026-12", 1},
                       {"deals.won_value:2026-12:USD", 700}}));
  // Its change takes back what the old state added.
  add_deal({"a", "open", 500, "EUR", ""}, -1, d);
  add_deal({"a", "won", 500, "EUR", "2026-12-02T00:00:00Z"}, 1, d);
  EXPECT_EQ(d[kOpenDeals], 1);
  EXPECT_EQ(d["deals.open_value:EUR"], 0);
  EXPECT_EQ(d["deals.won:2026-12"], 2);
  EXPECT_EQ(d["deals.won_value:2026-12:EUR"], 500);
}

TEST(Aggregates, HourBucketsAreTheTimesFirstThirteenCharacters) {
  EXPECT_EQ(hour_of("2026-12-05T09:59:59.999999Z"), "2026-12-05T09");
}

}  // namespace
}  // namespace cdx::core::aggregates
