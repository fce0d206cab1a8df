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
  EXPECT_EQ(code_of([] { parse_json_object("{\"a\":"); }), Code::kInvalidRequest);
  EXPECT_EQ(code_of([] { parse_json_object(""); }), Code::kInvalidRequest);
}

// Found by read_body_fuzz: nlohmann's parser stops at a NUL byte, so `{…}\0anything` read as the object.
TEST(JsonBody, ANulByteIsNotJson) {
  using namespace std::string_view_literals;
  EXPECT_EQ(code_of([] { parse_json_object("{\"a\":1}\0{\"role\":\"ADMIN\"}"sv); }), Code::kInvalidRequest);
  EXPECT_EQ(code_of([] { parse_json_object("{\"a\":\"x\0y\"}"sv); }), Code::kInvalidRequest);
  EXPECT_NO_THROW(parse_json_object(R"({"a":"x\u0000y"})"));  // escaped, it is text (refused later, by field)
}

TEST(JsonBody, NonObjectIsValidationError) {
  EXPECT_EQ(code_of([] { parse_json_object("[1,2]"); }), Code::kValidationFailed);
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
  EXPECT_EQ(code_of([&] { parse_json_object(deep); }), Code::kValidationFailed);
  EXPECT_EQ(json_nesting_depth(R"({"a":"[[[[[[[[[[[[[[[[[[[[[[[[[["})"),
            1u);  // brackets in strings do not count
  EXPECT_NO_THROW(parse_json_object(R"({"a":[[[1]]]})"));
}

}  // namespace
}  // namespace cdx
