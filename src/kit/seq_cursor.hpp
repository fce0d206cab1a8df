// Cursors of lists kept in insertion order (outboxes, the event log, histories): "<kind>|<seq>", encoded
// with http::encode_cursor.
//   auto before = kit::seq_cursor(http::parse_page(ctx.req), "ev");   // nullopt on the first page
//   next = http::encode_cursor("ev|" + std::to_string(last_seq));
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

#include "http/pagination.hpp"

namespace cdx::kit {

// The page's cursor as a sequence number of that kind; nullopt without a cursor; 422 naming `cursor` for
// anything else (another list's cursor included).
std::optional<int64_t> seq_cursor(const http::Page& page, std::string_view kind);

}  // namespace cdx::kit
