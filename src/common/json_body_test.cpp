#include "common/json_body.hpp"

#include <gtest/gtest.h>

namespace cdx {
namespace {

Code code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return Code::kInternal;
}

TEST(JsonBody, MalformedJsonIsInvalidRequest) {
  EXPECT_EQ(code_of([] { JsonBody b("{\"a\":"); }), Code::kInvalidRequest);
  EXPECT_EQ(code_of([] { JsonBody b(""); }), Code::kInvalidRequest);
}

TEST(JsonBody, NonObjectIsValidationError) {
  EXPECT_EQ(code_of([] { JsonBody b("[1,2]"); }), Code::kValidationFailed);
}

TEST(JsonBody, CollectsEveryFieldError) {
  JsonBody b(R"({"name": 5, "slug": "ab", "limit": "x"})");
  b.required_string("name", 1, 10);
  b.required_string("slug", 3, 10);
  b.required_string("email", 3, 10);
  b.optional_int("limit", 1, 10);
  try {
    b.finish();
    FAIL() << "finish() should throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::kValidationFailed);
    ASSERT_EQ(e.field_errors().size(), 4u);
    EXPECT_EQ(e.field_errors()[0].field, "name");
    EXPECT_EQ(e.field_errors()[0].message, "must be a string");
    EXPECT_EQ(e.field_errors()[1].field, "slug");
    EXPECT_EQ(e.field_errors()[2].field, "email");
    EXPECT_EQ(e.field_errors()[2].message, "is required");
    EXPECT_EQ(e.field_errors()[3].field, "limit");
  }
}

TEST(JsonBody, LengthCountsCharactersNotBytes) {
  JsonBody b(R"({"name": "ÄÖÜ"})");
  EXPECT_EQ(b.required_string("name", 3, 3), "ÄÖÜ");
  EXPECT_NO_THROW(b.finish());
}

TEST(JsonBody, IntegerBoundsAndFloats) {
  JsonBody b(R"({"a": 12.5, "b": 7, "c": 99999999999999999999})");
  EXPECT_FALSE(b.optional_int("a", 0, 100).has_value());
  EXPECT_EQ(b.optional_int("b", 0, 100), 7);
  EXPECT_FALSE(b.optional_int("c", 0, 100).has_value());
  EXPECT_THROW(b.finish(), Error);
}

TEST(JsonBody, NullMeansAbsent) {
  JsonBody b(R"({"plan": null})");
  EXPECT_FALSE(b.optional_string("plan", 1, 10).has_value());
  EXPECT_NO_THROW(b.finish());
}

TEST(Problem, RendersRfc9457Shape) {
  Error e = Error::validation({{"slug", "is reserved"}});
  auto j = nlohmann::json::parse(render_problem(e, "req-1"));
  EXPECT_EQ(j["status"], 422);
  EXPECT_EQ(j["code"], "validation_failed");
  EXPECT_EQ(j["request_id"], "req-1");
  EXPECT_EQ(j["errors"][0]["field"], "slug");
  EXPECT_TRUE(j.contains("type"));
  EXPECT_TRUE(j.contains("title"));
}

}  // namespace
}  // namespace cdx

namespace cdx {
namespace {

TEST(JsonBody, DeepNestingIsRefusedBeforeParsing) {
  const std::string deep = "{\"a\":" + std::string(300000, '[') + std::string(300000, ']') + "}";
  EXPECT_EQ(code_of([&] { JsonBody b(deep); }), Code::kValidationFailed);
  EXPECT_EQ(json_nesting_depth(R"({"a":"[[[[[[[[[[[[[[[[[[[[[[[[[["})"), 1u);  // brackets in strings do not count
  EXPECT_NO_THROW(JsonBody(R"({"a":[[[1]]]})"));
}

}  // namespace
}  // namespace cdx
