// Turns a request body into typed fields once, at the edge, collecting every field error before failing.
//   JsonBody in(ctx.req.body);                       // 400 on malformed JSON, 422 if not an object
//   auto name = in.required_string("name", 1, 200);
//   auto plan = in.optional_string("plan", 1, 64);
//   in.finish();                                     // 422 validation_failed listing every bad field
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace cdx {

inline constexpr size_t kMaxJsonDepth = 20;  // nesting of arrays and objects in a request body

// Deepest nesting of arrays and objects in JSON text (outside strings). Parsing, copying and printing
// recurse once per level, so bodies nested deeper than kMaxJsonDepth are refused before parsing.
size_t json_nesting_depth(std::string_view text);

// A request body as a JSON object: 400 when empty or not JSON, 422 naming `body` when nested too deep or
// not an object.
nlohmann::json parse_json_object(std::string_view body);

class JsonBody {
 public:
  explicit JsonBody(std::string_view body);

  std::string required_string(std::string_view field, size_t min_len, size_t max_len);
  std::optional<std::string> optional_string(std::string_view field, size_t min_len, size_t max_len);
  std::optional<int64_t> optional_int(std::string_view field, int64_t min, int64_t max);
  std::optional<nlohmann::json> optional_object(std::string_view field);
  std::optional<std::vector<std::string>> optional_string_array(std::string_view field);
  bool has(std::string_view field) const { return doc_.contains(field); }

  void fail(std::string_view field, std::string message);
  // Throws 422 listing every collected field error; no-op when all fields were valid.
  void finish();

 private:
  const nlohmann::json* find(std::string_view field) const;
  nlohmann::json doc_;
  std::vector<FieldError> errors_;
};

}  // namespace cdx
