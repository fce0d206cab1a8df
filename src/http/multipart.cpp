#include "http/multipart.hpp"

#include <boost/beast/core/string.hpp>

#include "common/error.hpp"

namespace cdx::http {

namespace {

[[noreturn]] void bad(const std::string& why) {
  throw Error(Code::kInvalidRequest, "The multipart/form-data body is malformed: " + why + ".");
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A parameter of a header value (`boundary=…`, `name="…"`), unquoted; empty when absent.
bool param(std::string_view value, std::string_view key, std::string& out) {
  size_t pos = 0;
  while ((pos = value.find(';', pos)) != std::string_view::npos) {
    std::string_view rest = trim(value.substr(pos + 1));
    ++pos;
    const size_t eq = rest.find('=');
    if (eq == std::string_view::npos || !boost::beast::iequals(trim(rest.substr(0, eq)), key)) continue;
    std::string_view v = trim(rest.substr(eq + 1));
    out.clear();
    if (!v.empty() && v.front() == '"') {
      for (size_t i = 1; i < v.size(); ++i) {
        if (v[i] == '\\' && i + 1 < v.size()) {
          out += v[++i];
        } else if (v[i] == '"') {
          return true;
        } else {
          out += v[i];
        }
      }
      bad("an unterminated quoted parameter");
    }
    out.assign(v.substr(0, v.find(';')));
    out = std::string(trim(out));
    return true;
  }
  return false;
}

}  // namespace

std::vector<Part> parse_multipart(std::string_view content_type, std::string_view body, size_t max_parts) {
  const std::string_view type = trim(content_type.substr(0, content_type.find(';')));
  if (!boost::beast::iequals(type, "multipart/form-data"))
    throw Error(Code::kUnsupportedMediaType, "The body must be multipart/form-data (a file upload).");
  std::string boundary;
  if (!param(content_type, "boundary", boundary) || boundary.empty() || boundary.size() > 70)
    bad("the Content-Type has no boundary (1 to 70 characters)");
  const std::string delimiter = "--" + boundary;
  const std::string next = "\r\n" + delimiter;
  size_t pos = body.find(delimiter);
  // The first delimiter opens the body or follows a preamble's line break.
  if (pos == std::string_view::npos || (pos != 0 && body[pos - 1] != '\n')) bad("no opening boundary");
  pos += delimiter.size();
  std::vector<Part> parts;
  for (;;) {
    if (body.substr(pos, 2) == "--") return parts;  // the closing delimiter (an epilogue is ignored)
    // Transport padding after a delimiter, then the part's header block.
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (body.substr(pos, 2) != "\r\n") bad("a boundary is not followed by a line break");
    pos += 2;
    const size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos || head_end - pos > 8192) bad("a part's headers do not end");
    Part part;
    bool disposition = false;
    std::string_view head = body.substr(pos, head_end - pos);
    while (!head.empty()) {
      const size_t eol = head.find("\r\n");
      std::string_view line = head.substr(0, eol);
      head = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2);
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) bad("a part's header line has no colon");
      const std::string_view name = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
      if (boost::beast::iequals(name, "content-disposition")) {
        if (!boost::beast::iequals(trim(value.substr(0, value.find(';'))), "form-data"))
          bad("a part's Content-Disposition is not form-data");
        disposition = param(value, "name", part.name);
        part.has_filename = param(value, "filename", part.filename);
      } else if (boost::beast::iequals(name, "content-type")) {
        part.content_type = std::string(value);
      }
    }
    if (!disposition || part.name.empty()) bad("a part has no Content-Disposition name");
    pos = head_end + 4;
    const size_t end = body.find(next, pos);
    if (end == std::string_view::npos) bad("the closing boundary is missing");
    part.body = body.substr(pos, end - pos);
    parts.push_back(std::move(part));
    if (parts.size() > max_parts) bad("more than " + std::to_string(max_parts) + " parts");
    pos = end + next.size();
  }
}

const Part* find_part(const std::vector<Part>& parts, std::string_view name) {
  for (const auto& p : parts)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace cdx::http
