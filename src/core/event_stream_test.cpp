#include "core/event_stream.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

namespace cdx::core {
namespace {

using namespace std::chrono_literals;

LoggedEvent event(int64_t seq, std::string tenant, std::string type) {
  LoggedEvent e;
  e.seq = seq;
  e.id = "ev-" + std::to_string(seq);
  e.tenant_id = std::move(tenant);
  e.type = std::move(type);
  e.source = "crm_db";
  e.data = {{"contact", {{"id", "c1"}, {"name", "Ada\nLovelace"}}}};
  e.created_at = "2026-12-05T10:00:00Z";
  return e;
}

std::vector<Frame> take_all(EventStreamHub::Client& c) {
  std::vector<Frame> out;
  EXPECT_TRUE(c.take(out));
  return out;
}

TEST(EventStreamHub, FrameIsOneSseMessageWithTheLogsJson) {
  const std::string f = EventStreamHub::frame_text(event(42, "t1", "crm.contact.created"));
  ASSERT_TRUE(f.starts_with("id: 42\nevent: crm.contact.created\ndata: {")) << f;
  ASSERT_TRUE(f.ends_with("}\n\n"));
  // One data line: the newline inside the payload is escaped.
  EXPECT_EQ(std::count(f.begin(), f.end(), '\n'), 4);
  const auto json = nlohmann::json::parse(f.substr(f.find("data: ") + 6));
  EXPECT_EQ(json["seq"], 42);
  EXPECT_EQ(json["tenant_id"], "t1");
  EXPECT_EQ(json["data"]["contact"]["name"], "Ada\nLovelace");
  EXPECT_EQ(EventStreamHub::frame_text("service.down", {{"name", "crm"}}),
            "event: service.down\ndata: {\"name\":\"crm\"}\n\n");
}

TEST(EventStreamHub, FansOutOneSharedFramePerEvent) {
  EventStreamHub hub;
  std::atomic<int> wakes{0};
  std::vector<std::shared_ptr<EventStreamHub::Client>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(hub.subscribe({.wake = [&] { ++wakes; }}));
  EXPECT_EQ(hub.clients(), 3u);
  hub.publish({event(1, "t1", "crm.contact.created"), event(2, "t2", "cms.entry.published")});
  EXPECT_EQ(wakes, 3);  // once per client per batch, not per event
  std::vector<std::vector<Frame>> got;
  for (auto& c : clients) got.push_back(take_all(*c));
  for (auto& g : got) {
    ASSERT_EQ(g.size(), 2u);
    EXPECT_EQ(g[0]->seq, 1);
    EXPECT_EQ(g[1]->seq, 2);
  }
  EXPECT_EQ(got[0][0].get(), got[1][0].get());  // the same frame, not a copy
  EXPECT_EQ(got[0][1].get(), got[2][1].get());
  // A queue drained and filled again wakes again.
  hub.publish({event(3, "t1", "crm.contact.updated")});
  EXPECT_EQ(wakes, 6);
  // Not drained: no second wake.
  hub.publish({event(4, "t1", "crm.contact.updated")});
  EXPECT_EQ(wakes, 6);
}

TEST(EventStreamHub, FiltersByTenantAndType) {
  EventStreamHub hub;
  auto t1 = hub.subscribe({.filter = {.tenant_id = "t1"}});
  auto crm = hub.subscribe({.filter = {.types = {"crm."}}});
  auto exact = hub.subscribe({.filter = {.tenant_id = "t2", .types = {"cms.entry.published"}}});
  hub.publish({event(1, "t1", "crm.contact.created"), event(2, "t2", "cms.entry.published"),
               event(3, "t2", "crm.deal.won"), event(4, "t1", "tenant.updated")});
  auto seqs = [](const std::vector<Frame>& fs) {
    std::vector<int64_t> out;
    for (auto& f : fs) out.push_back(f->seq);
    return out;
  };
  EXPECT_EQ(seqs(take_all(*t1)), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(seqs(take_all(*crm)), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(seqs(take_all(*exact)), (std::vector<int64_t>{2}));
}

TEST(EventFilter, MatchesTypeTakesNamesAndPrefixes) {
  EXPECT_TRUE(EventFilter{}.matches_type("service.down"));  // no types: every type
  const EventFilter f{.tenant_id = "t1", .types = {"service.", "crm.contact.created"}};
  EXPECT_TRUE(f.matches_type("service.down"));  // the tenant is not looked at
  EXPECT_TRUE(f.matches_type("crm.contact.created"));
  EXPECT_FALSE(f.matches_type("crm.contact.created.x"));
  EXPECT_FALSE(f.matches_type("crm.contact"));
  EXPECT_FALSE(f.matches_type("services.down"));
}

TEST(EventStreamHub, ServiceMessagesGoToServiceSubscribersOnly) {
  EventStreamHub hub;
  auto admin = hub.subscribe({.filter = {.tenant_id = "t1"}});
  auto sa = hub.subscribe({.service_events = true});
  auto sa_crm = hub.subscribe({.filter = {.types = {"crm."}}, .service_events = true});
  auto sa_service = hub.subscribe({.filter = {.types = {"service."}}, .service_events = true});
  hub.publish_service("service.down", {{"name", "crm"}, {"status", "down"}});
  EXPECT_TRUE(take_all(*admin).empty());
  EXPECT_TRUE(take_all(*sa_crm).empty());
  auto got = take_all(*sa);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]->seq, 0);  // not in the log: no id line
  EXPECT_TRUE(got[0]->text.starts_with("event: service.down\ndata: ")) << got[0]->text;
  EXPECT_EQ(take_all(*sa_service).size(), 1u);
}

TEST(EventStreamHub, ASlowClientIsDroppedWithAReasonOthersKeepReceiving) {
  EventStreamHub hub({.max_messages = 10, .max_bytes = 1 << 20});
  int slow_wakes = 0;
  auto slow = hub.subscribe({.wake = [&] { ++slow_wakes; }});
  auto fast = hub.subscribe({});
  for (int64_t i = 1; i <= 25; ++i) {
    hub.publish({event(i, "t1", "crm.contact.created")});
    EXPECT_EQ(take_all(*fast).size(), 1u);  // the fast one drains as it goes
  }
  std::vector<Frame> out;
  EXPECT_FALSE(slow->take(out));
  EXPECT_TRUE(out.empty());  // its queue was freed when it was dropped
  EXPECT_NE(slow->drop_reason().find("did not keep up"), std::string::npos);
  EXPECT_EQ(slow_wakes, 2);  // the first frame, then the drop
  EXPECT_EQ(hub.dropped_total(), 1u);
  // A dropped client gets nothing more, and wakes no more.
  hub.publish({event(26, "t1", "crm.contact.created")});
  EXPECT_EQ(slow_wakes, 2);
  EXPECT_FALSE(slow->take(out));
}

TEST(EventStreamHub, TheByteBoundDropsToo) {
  const size_t frame = EventStreamHub::frame_text(event(1, "t1", "crm.contact.created")).size();
  EventStreamHub hub({.max_messages = 1000, .max_bytes = frame * 3});
  auto c = hub.subscribe({});
  hub.publish({event(1, "t1", "crm.contact.created"), event(2, "t1", "crm.contact.created"),
               event(3, "t1", "crm.contact.created")});
  std::vector<Frame> out;
  EXPECT_TRUE(c->take(out));
  EXPECT_EQ(out.size(), 3u);
  hub.publish({event(4, "t1", "crm.contact.created"), event(5, "t1", "crm.contact.created"),
               event(6, "t1", "crm.contact.created"), event(7, "t1", "crm.contact.created")});
  EXPECT_FALSE(c->take(out));
}

// A publish whose snapshot still holds a client unsubscribed meanwhile neither queues for it nor wakes it.
// The publish is held in the wake of a client ahead of it in the snapshot while the other unsubscribes.
TEST(EventStreamHub, NoWakeAfterUnsubscribe) {
  EventStreamHub hub;
  std::promise<void> in_first_wake, release;
  auto released = release.get_future().share();
  auto first = hub.subscribe({.wake = [&, released] {
    in_first_wake.set_value();
    released.wait();
  }});
  std::atomic<int> wakes{0};
  auto c = hub.subscribe({.wake = [&] { ++wakes; }});
  std::thread publisher([&] { hub.publish({event(1, "t1", "crm.contact.created")}); });
  ASSERT_EQ(in_first_wake.get_future().wait_for(10s), std::future_status::ready);
  hub.unsubscribe(c);  // the publish has taken its snapshot (c in it) and not reached c yet
  EXPECT_EQ(hub.clients(), 1u);
  release.set_value();
  publisher.join();
  EXPECT_EQ(wakes, 0);
  std::vector<Frame> out;
  EXPECT_TRUE(c->take(out));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(take_all(*first).size(), 1u);
}

// A wake under way when unsubscribe() is called: unsubscribe() returns only once it has.
TEST(EventStreamHub, UnsubscribeWaitsForAWakeUnderWay) {
  EventStreamHub hub;
  std::promise<void> in_wake, release;
  auto released = release.get_future().share();
  std::atomic<bool> returned{false};
  std::atomic<bool> returned_during_wake{false};
  auto c = hub.subscribe({.wake = [&, released] {
    in_wake.set_value();
    released.wait();
    returned_during_wake = returned.load();
  }});
  std::thread publisher([&] { hub.publish({event(1, "t1", "crm.contact.created")}); });
  ASSERT_EQ(in_wake.get_future().wait_for(10s), std::future_status::ready);
  std::thread unsubscriber([&] {
    hub.unsubscribe(c);
    returned = true;
  });
  std::this_thread::sleep_for(100ms);  // time enough for an unsubscribe that does not wait to return
  EXPECT_FALSE(returned);
  release.set_value();
  publisher.join();
  unsubscriber.join();
  EXPECT_FALSE(returned_during_wake);
  EXPECT_TRUE(returned);
}

TEST(EventStreamHub, PublishingWhileClientsComeAndGo) {
  EventStreamHub hub({.max_messages = 100000, .max_bytes = 1 << 30});
  std::atomic<bool> done{false};
  std::atomic<uint64_t> received{0};
  std::thread churn([&] {
    while (!done) {
      auto c = hub.subscribe({});
      std::vector<Frame> out;
      c->take(out);
      received += out.size();
      hub.unsubscribe(c);
    }
  });
  auto steady = hub.subscribe({});
  std::vector<Frame> got;
  for (int64_t i = 1; i <= 2000; ++i) {
    hub.publish({event(i, "t1", "crm.contact.created")});
    if (i % 100 == 0) ASSERT_TRUE(steady->take(got));
  }
  done = true;
  churn.join();
  ASSERT_EQ(got.size(), 2000u);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i]->seq, static_cast<int64_t>(i + 1));
}

}  // namespace
}  // namespace cdx::core
