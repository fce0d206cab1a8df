// The events' wire form between a service's relay and core (POST /internal/v1/events): what goes comes back
// as it was, and a payload that is no JSON object is refused before anything reaches the log.
#include "core/api.hpp"

#include <gtest/gtest.h>

#include "common/error.hpp"
#include "db/outbox.hpp"

namespace cdx::core {
namespace {

using nlohmann::json;

json wire(std::string payload_text) {
  return {{"id", "0190a6f2-0000-7000-8000-000000000001"},
          {"source", "crm_db"},
          {"tenant_id", "t1"},
          {"type", "crm.contact.created"},
          {"created_at", "2026-01-01T00:00:00Z"},
          {"payload_text", std::move(payload_text)}};
}

Code code_of(const json& j) {
  try {
    event_from_wire(j);
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "accepted: " << j.dump();
  return Code::kInternal;
}

TEST(EventWire, AnEventGoesAndComesBackWithItsPayloadTextAsItIs) {
  db::OutboxEvent e;
  e.id = "0190a6f2-0000-7000-8000-000000000001";
  e.schema = "crm_db";
  e.tenant_id = "t1";
  e.type = "crm.contact.created";
  e.created_at = "2026-01-01T00:00:00Z";
  e.payload_text = R"({"actor":{"id":"u1","type":"user"},"contact":{"id":"c1","n":[1,2.5e3,true,null]}})";
  const db::OutboxEvent back = event_from_wire(event_to_wire(e));
  EXPECT_EQ(back.id, e.id);
  EXPECT_EQ(back.schema, "crm_db");
  EXPECT_EQ(back.tenant_id, "t1");
  EXPECT_EQ(back.type, e.type);
  EXPECT_EQ(back.created_at, e.created_at);
  EXPECT_EQ(back.payload_text, e.payload_text);  // not rebuilt
  EXPECT_TRUE(back.payload.is_null());
  EXPECT_EQ(event_from_wire(wire(" {\"a\" : \"x\\\"y\"} ")).payload_text, " {\"a\" : \"x\\\"y\"} ");
}

TEST(EventWire, APayloadTextThatIsNoJsonObjectIs400) {
  // The first three pass a structural scan (db::scan_payload reads their brackets and strings only).
  for (const char* bad : {R"({"a":hello})", R"({"a":[1 2 @]})", R"({"a":tru})", R"({"a":1,})", R"({"a":01})",
                          R"({"a":"x"}{"b":1})", R"({"a":1} x)", R"([{"a":1}])", R"("text")", "1", "", "  ",
                          "{", R"({"a":"\q"})", R"({'a':1})"})
    EXPECT_EQ(code_of(wire(bad)), Code::kInvalidRequest) << bad;
  EXPECT_TRUE(db::scan_payload(R"({"a":hello})"));  // why the scan is no validation
}

TEST(EventWire, ThePayloadObjectFormOfOlderBuildsIsStillTakenAndNothingElse) {
  json j = wire("{}");
  j.erase("payload_text");
  j["payload"] = {{"n", 1}};
  const db::OutboxEvent e = event_from_wire(j);
  EXPECT_EQ(e.payload, json({{"n", 1}}));
  EXPECT_EQ(db::payload_text_of(e), R"({"n":1})");
  j["payload"] = json::array({1});
  EXPECT_EQ(code_of(j), Code::kInvalidRequest);
  j.erase("payload");
  EXPECT_EQ(code_of(j), Code::kInvalidRequest);
  j["payload_text"] = 7;
  EXPECT_EQ(code_of(j), Code::kInvalidRequest);
  EXPECT_EQ(code_of(json::array()), Code::kInvalidRequest);
  EXPECT_EQ(event_from_wire(wire("{}")).payload_text, "{}");
}

}  // namespace
}  // namespace cdx::core
