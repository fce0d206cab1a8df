#include "http/types.hpp"

#include <strings.h>

#include "common/error.hpp"
#include "common/validate.hpp"

namespace cdx {

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kSuperadmin:
      return "SUPERADMIN";
    case Role::kAdmin:
      return "ADMIN";
    case Role::kClient:
      return "CLIENT";
  }
  return "CLIENT";
}

}  // namespace cdx

namespace cdx::http {

std::string_view method_name(Method m) {
  static constexpr std::string_view kNames[] = {"GET",   "HEAD",   "POST",    "PUT",
                                                "PATCH", "DELETE", "OPTIONS", "OTHER"};
  return kNames[static_cast<int>(m)];
}

std::string_view Request::header(std::string_view name) const {
  for (const auto& h : headers)
    if (h.name.size() == name.size() && strncasecmp(h.name.data(), name.data(), name.size()) == 0)
      return h.value;
  return {};
}

namespace {
// Well-formed UTF-8 (RFC 3629): no overlong forms, surrogates or code points past U+10FFFF, all of which
// PostgreSQL refuses as text.
bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0, least = 0;
    if (c >= 0xC2 && c <= 0xDF)
      n = 1, cp = c & 0x1F, least = 0x80;
    else if ((c & 0xF0) == 0xE0)
      n = 2, cp = c & 0x0F, least = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
      n = 3, cp = c & 0x07, least = 0x10000;
    else
      return false;
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3F);
    }
    if (cp < least || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}
}  // namespace

namespace {
// Checked here, once, so no handler hands broken text to a database or a JSON answer.
std::string checked_value(std::string_view name, std::string value) {
  if (!valid_utf8(value)) throw Error::validation({{std::string(name), "must be valid UTF-8 (percent-encoded)"}});
  // No query parameter of ours holds control characters (C0, DEL or C1); PostgreSQL refuses a NUL in text
  // outright.
  if (!clean_text(value, false)) throw Error::validation({{std::string(name), "must not contain control characters"}});
  return value;
}
}  // namespace

std::optional<std::string> Request::query_param(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    const size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (percent_decode(key) == name)
      return checked_value(name, eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1)));
  }
  return std::nullopt;
}

std::vector<std::pair<std::string, std::string>> Request::query_params() const {
  std::vector<std::pair<std::string, std::string>> out;
  std::string_view q = query;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string key = checked_value("query", percent_decode(pair.substr(0, eq)));
    std::string value = eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1));
    out.emplace_back(key, checked_value(key, std::move(value)));
  }
  return out;
}

}  // namespace cdx::http
