#include "http/pagination.hpp"

#include <algorithm>
#include <charconv>

#include "common/error.hpp"
#include "common/ids.hpp"
#include "common/validate.hpp"

namespace cdx::http {

int parse_limit(const Request& req, std::vector<FieldError>& errors) {
  auto limit = req.query_param("limit");
  if (!limit) return 50;
  int n = 0;
  auto [p, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), n);
  if (ec != std::errc() || p != limit->data() + limit->size() || n < 1 || n > 200) {
    errors.push_back({"limit", "must be an integer between 1 and 200"});
    return 50;
  }
  return n;
}

Page parse_page(const Request& req) {
  Page page;
  std::vector<FieldError> errors;
  page.limit = parse_limit(req, errors);
  if (auto cursor = req.query_param("cursor"); cursor && !cursor->empty()) {
    page.after = decode_cursor(*cursor);
    if (!page.after) errors.push_back({"cursor", "is not a cursor returned by this list"});
  }
  if (!errors.empty()) throw Error::validation(std::move(errors));
  return page;
}

std::string encode_cursor(std::string_view key) { return base64url_encode("c1:" + std::string(key)); }

std::optional<std::string> decode_cursor(std::string_view cursor) {
  std::string decoded;
  // Cursors carry ids: anything but short printable ASCII was not made by us (and must not reach SQL).
  auto printable = [](const std::string& s) {
    return s.size() <= 3 + 128 && std::all_of(s.begin(), s.end(), [](char c) { return c > 32 && c < 127; });
  };
  if (!base64url_decode(cursor, decoded) || decoded.rfind("c1:", 0) != 0 || !printable(decoded))
    return std::nullopt;
  return decoded.substr(3);
}

std::string encode_sorted_cursor(std::string_view sort, std::string_view value, std::string_view id) {
  return base64url_encode("c1:" + std::string(sort) + "|" + base64url_encode(value) + "|" + std::string(id));
}

std::optional<std::pair<std::string, std::string>> decode_sorted_cursor(std::string_view cursor,
                                                                        std::string_view sort) {
  std::string decoded, value;
  const std::string head = "c1:" + std::string(sort) + "|";
  if (cursor.size() > 2048 || !base64url_decode(cursor, decoded) || decoded.rfind(head, 0) != 0)
    return std::nullopt;
  const std::string_view rest = std::string_view(decoded).substr(head.size());
  const size_t bar = rest.find('|');
  if (bar == std::string_view::npos || !base64url_decode(rest.substr(0, bar), value) ||
      !valid_uuid(rest.substr(bar + 1)) || !clean_text(value, true))
    return std::nullopt;
  return std::pair{std::move(value), std::string(rest.substr(bar + 1))};
}

std::string render_page(nlohmann::json items, const Page& page, const std::string& key_field) {
  nlohmann::json next = nullptr;
  if (items.size() > static_cast<size_t>(page.limit)) {
    items.erase(items.size() - 1);
    next = encode_cursor(items.back()[key_field].get<std::string>());
  }
  return nlohmann::json{{"data", std::move(items)}, {"next_cursor", std::move(next)}}.dump();
}

std::string like_pattern(std::string_view q) {
  std::string out = "%";
  for (char c : q) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out + "%";
}

}  // namespace cdx::http
