// multipart/form-data bodies (RFC 7578): the parts of an upload, viewing the body they were read from.
//   auto parts = http::parse_multipart(ctx.req.header("content-type"), ctx.req.body);
//   const http::Part* file = http::find_part(parts, "file");
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace cdx::http {

struct Part {
  std::string name;          // Content-Disposition name
  std::string filename;      // Content-Disposition filename (empty for plain fields)
  bool has_filename = false;
  std::string content_type;  // as the client said (not to be trusted)
  std::string_view body;
};

// 400 (cdx::Error) naming what is wrong: not multipart, no boundary, a part without a name, no closing
// delimiter, more than max_parts parts.
std::vector<Part> parse_multipart(std::string_view content_type, std::string_view body, size_t max_parts = 16);
const Part* find_part(const std::vector<Part>& parts, std::string_view name);

}  // namespace cdx::http
