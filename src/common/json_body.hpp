// A request body parsed once, at the edge: the one parser under the kit's body reader (kit::read_body).
//   const nlohmann::json doc = parse_json_object(ctx.req.body);   // 400 malformed, 422 not an object
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

}  // namespace cdx
