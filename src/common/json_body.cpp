#include "common/json_body.hpp"

#include <fmt/format.h>

#include "common/validate.hpp"

namespace cdx {

size_t json_nesting_depth(std::string_view text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

nlohmann::json parse_json_object(std::string_view body) {
  if (body.empty())
    throw Error(Code::kInvalidRequest, "The request body is empty; a JSON object is expected.");
  if (json_nesting_depth(body) > kMaxJsonDepth)
    throw Error::validation(
        {{"body", fmt::format("must not nest arrays and objects deeper than {} levels", kMaxJsonDepth)}});
  // JSON text never holds a raw NUL (a string spells it \u0000), but nlohmann's parser takes one for the
  // end of its input: `{…}\0anything` would read as the object alone.
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || body.find('\0') != std::string_view::npos)
    throw Error(Code::kInvalidRequest, "The request body is not valid JSON.");
  if (!doc.is_object()) throw Error::validation({{"body", "must be a JSON object"}});
  return doc;
}

}  // namespace cdx
