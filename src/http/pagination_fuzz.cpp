// libFuzzer target: list cursors (http/pagination.hpp) and the query string they arrive in. The first
// byte picks what the rest is:
//   0  a query string, read by parse_page (limit, cursor; percent-decoding and the UTF-8 and control
//      character checks of every query parameter);
//   1  a cursor for an id-keyed list (decode_cursor);
//   2  a sort and a cursor for a sorted list (decode_sorted_cursor);
//   3  a sort, a value and an id the harness encodes (encode_sorted_cursor) and decodes again.
// Checks: a bad query is cdx::Error 422, nothing else; a cursor that decodes is exactly the one the encoder
// makes for what it decodes to (no second spelling), with a value of clean text and an id of ours; a
// cursor the encoder made for a clean value and an id of ours decodes to them.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/error.hpp"
#include "common/validate.hpp"
#include "http/pagination.hpp"

namespace {

using namespace cdx;
using namespace cdx::http;

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "pagination_fuzz: %s\n", what);
  std::abort();
}

bool printable(std::string_view s) {
  for (char c : s)
    if (c <= 32 || c >= 127) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegral<uint8_t>() % 4) {
    case 0: {
      const std::string query = in.ConsumeRemainingBytesAsString();
      Request req;
      req.query = query;
      try {
        const Page page = parse_page(req);
        require(page.limit >= 1 && page.limit <= 200, "a limit out of range");
        if (page.after) {
          require(page.after->size() <= 128 && printable(*page.after),
                  "a cursor key that is not short and printable");
          require(decode_cursor(encode_cursor(*page.after)) == page.after,
                  "a cursor key does not survive encoding");
        }
      } catch (const Error& e) {
        require(e.code() == Code::kValidationFailed, "a bad query that is not 422");
      }
      try {
        if (const auto v = req.query_param("cursor"))
          require(clean_text(*v, false), "a query value with control characters");
      } catch (const Error& e) {
        require(e.code() == Code::kValidationFailed, "a bad query value that is not 422");
      }
      break;
    }
    case 1: {
      const std::string cursor = in.ConsumeRemainingBytesAsString();
      if (const auto key = decode_cursor(cursor)) {
        require(key->size() <= 128 && printable(*key), "a cursor key that is not short and printable");
        require(encode_cursor(*key) == cursor, "a second spelling of a cursor");
      }
      break;
    }
    case 2: {
      const std::string sort = in.ConsumeRandomLengthString(32);
      const std::string cursor = in.ConsumeRemainingBytesAsString();
      if (const auto after = decode_sorted_cursor(cursor, sort)) {
        require(clean_text(after->first, true) && valid_uuid(after->second), "a cursor value or id not ours");
        require(encode_sorted_cursor(sort, after->first, after->second) == cursor,
                "a second spelling of a cursor");
      }
      break;
    }
    default: {
      const std::string sort = in.ConsumeRandomLengthString(32);
      const std::string id = in.ConsumeRandomLengthString(40);
      const std::string value = in.ConsumeRemainingBytesAsString();
      const std::string cursor = encode_sorted_cursor(sort, value, id);
      const auto after = decode_sorted_cursor(cursor, sort);
      if (clean_text(value, true) && valid_uuid(id) && cursor.size() <= 2048)
        require(after && after->first == value && after->second == id, "an encoded cursor does not decode");
      else
        require(!after, "a cursor decodes to a value or id that is not ours");
      break;
    }
  }
  return 0;
}
