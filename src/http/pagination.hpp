// List conventions shared by every resource: ?limit= (1..200, default 50) and an opaque ?cursor=,
// answered as {"data": [...], "next_cursor": "…" | null}.
//   Page page = parse_page(ctx.req);          // 422 naming `limit` or `cursor` when bad
//   ctx.res.json(200, render_page(items, next_id));
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/error.hpp"
#include "http/types.hpp"

namespace cdx::http {

struct Page {
  int limit = 50;
  std::optional<std::string> after;  // decoded cursor: the sort key of the last item seen
};

Page parse_page(const Request& req);
// ?limit= alone (default 50); a bad one is appended to errors.
int parse_limit(const Request& req, std::vector<FieldError>& errors);
std::string encode_cursor(std::string_view key);
// The key in a cursor made by encode_cursor (short printable ASCII); nullopt for anything else.
std::optional<std::string> decode_cursor(std::string_view cursor);

// A sorted list's cursor (the kit's lists): the sort it was made for, the sort value and the id of the
// last row seen, as base64url("c1:<sort>|<base64url value>|<id>").
std::string encode_sorted_cursor(std::string_view sort, std::string_view value, std::string_view id);
// The value and id of a cursor made by encode_sorted_cursor for the same sort, when the value is clean text
// and the id one of ours; nullopt for anything else.
std::optional<std::pair<std::string, std::string>> decode_sorted_cursor(std::string_view cursor,
                                                                        std::string_view sort);
// items: a JSON array of at most limit+1 objects; the extra one only tells that more exist.
std::string render_page(nlohmann::json items, const Page& page, const std::string& key_field = "id");
// Escapes LIKE wildcards and lower-cases, for `lower(col) LIKE $n ESCAPE '\'` in both databases.
std::string like_pattern(std::string_view q);

}  // namespace cdx::http
