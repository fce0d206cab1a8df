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
  if (body.empty()) throw Error(Code::kInvalidRequest, "The request body is empty; a JSON object is expected.");
  if (json_nesting_depth(body) > kMaxJsonDepth)
    throw Error::validation(
        {{"body", fmt::format("must not nest arrays and objects deeper than {} levels", kMaxJsonDepth)}});
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded()) throw Error(Code::kInvalidRequest, "The request body is not valid JSON.");
  if (!doc.is_object()) throw Error::validation({{"body", "must be a JSON object"}});
  return doc;
}

JsonBody::JsonBody(std::string_view body) : doc_(parse_json_object(body)) {}

const nlohmann::json* JsonBody::find(std::string_view field) const {
  auto it = doc_.find(field);
  if (it == doc_.end() || it->is_null()) return nullptr;
  return &*it;
}

void JsonBody::fail(std::string_view field, std::string message) {
  errors_.push_back({std::string(field), std::move(message)});
}

std::optional<std::string> JsonBody::optional_string(std::string_view field, size_t min_len, size_t max_len) {
  const auto* v = find(field);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    fail(field, "must be a string");
    return std::nullopt;
  }
  std::string s = v->get<std::string>();
  const size_t len = utf8_length(s);
  if (len < min_len || len > max_len) {
    fail(field, min_len == max_len ? fmt::format("must be {} characters long", min_len)
                                   : fmt::format("must be between {} and {} characters long", min_len, max_len));
    return std::nullopt;
  }
  return s;
}

std::string JsonBody::required_string(std::string_view field, size_t min_len, size_t max_len) {
  if (!find(field)) {
    fail(field, "is required");
    return {};
  }
  return optional_string(field, min_len, max_len).value_or(std::string{});
}

std::optional<int64_t> JsonBody::optional_int(std::string_view field, int64_t min, int64_t max) {
  const auto* v = find(field);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) {
    fail(field, "must be an integer");
    return std::nullopt;
  }
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    fail(field, fmt::format("must be between {} and {}", min, max));
    return std::nullopt;
  }
  const int64_t n = v->get<int64_t>();
  if (n < min || n > max) {
    fail(field, fmt::format("must be between {} and {}", min, max));
    return std::nullopt;
  }
  return n;
}

std::optional<nlohmann::json> JsonBody::optional_object(std::string_view field) {
  const auto* v = find(field);
  if (!v) return std::nullopt;
  if (!v->is_object()) {
    fail(field, "must be an object");
    return std::nullopt;
  }
  return *v;
}

std::optional<std::vector<std::string>> JsonBody::optional_string_array(std::string_view field) {
  const auto* v = find(field);
  if (!v) return std::nullopt;
  if (!v->is_array()) {
    fail(field, "must be an array of strings");
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const auto& item : *v) {
    if (!item.is_string()) {
      fail(field, "must be an array of strings");
      return std::nullopt;
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

void JsonBody::finish() {
  if (!errors_.empty()) throw Error::validation(std::move(errors_));
}

}  // namespace cdx
