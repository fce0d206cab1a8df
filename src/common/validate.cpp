#include "common/validate.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>

namespace cdx {

bool valid_email(std::string_view e) {
  if (e.size() < 3 || e.size() > 254) return false;
  const size_t at = e.find('@');
  if (at == std::string_view::npos || at == 0 || at > 64 || e.find('@', at + 1) != std::string_view::npos)
    return false;
  std::string_view domain = e.substr(at + 1);
  if (domain.size() < 3 || domain.find('.') == std::string_view::npos || domain.front() == '.' ||
      domain.back() == '.' || domain.find("..") != std::string_view::npos)
    return false;
  return std::none_of(e.begin(), e.end(), [](char c) {
    return static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '(' || c == ')' || c == ',' || c == ':' ||
           c == ';' || c == '<' || c == '>' || c == '[' || c == ']' || c == '\\';
  });
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return std::string(s);
}

bool valid_uuid(std::string_view id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (id[i] != '-') return false;
    } else if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) {
      return false;
    }
  }
  return true;
}

bool valid_date(std::string_view d) {
  if (d.size() != 10 || d[4] != '-' || d[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (d[i] < '0' || d[i] > '9') return false;
  const int y = (d[0] - '0') * 1000 + (d[1] - '0') * 100 + (d[2] - '0') * 10 + (d[3] - '0');
  const int m = (d[5] - '0') * 10 + (d[6] - '0');
  const int day = (d[8] - '0') * 10 + (d[9] - '0');
  if (y < 1 || m < 1 || m > 12 || day < 1) return false;
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return day <= kDays[m - 1] + (m == 2 && leap ? 1 : 0);
}

bool clean_text(std::string_view s, bool allow_newlines) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == 0x7f) return false;
      if (c < 0x20 && !(allow_newlines && (c == '\t' || c == '\n' || c == '\r'))) return false;
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8; C1 controls are controls.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp <= 0x9F))
      return false;
    i += n + 1;
  }
  return true;
}

namespace {

// An absolute http(s) URL a browser can be sent to: https, or http for the loopback host; no user info,
// no fragment, no wildcard; origin_only: scheme://host[:port] and nothing after.
std::optional<std::string> url_problem(std::string_view uri, bool origin_only) {
  const char* what = origin_only ? "an origin" : "a redirect URI";
  if (uri.empty() || uri.size() > 2000) return std::string("must be 1 to 2000 characters long");
  for (char c : uri) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '\\' || c == '"' || c == '<' || c == '>' || c == '`' || c == '{' ||
        c == '}' || c == '|' || c == '^')
      return std::string("must be a plain ASCII URL without spaces or characters that need escaping");
  }
  if (uri.find('#') != std::string_view::npos) return std::string("must not contain a fragment (#)");
  if (uri.find('*') != std::string_view::npos)
    return std::string("must not contain wildcards (*); list each URL");
  const size_t sep = uri.find("://");
  if (sep == std::string_view::npos) return std::string("must be absolute: https://host/…");
  const std::string scheme = lowercase(uri.substr(0, sep));
  if (scheme != "https" && scheme != "http") return std::string("must use https (or http for localhost)");
  std::string_view rest = uri.substr(sep + 3);
  const size_t end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, end);
  const std::string_view after = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  if (authority.empty()) return std::string("must name a host");
  if (authority.find('@') != std::string_view::npos) return std::string("must not contain user info (user@)");
  std::string_view host, port;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::string("has a malformed IPv6 host");
    host = authority.substr(0, close + 1);
    std::string_view tail = authority.substr(close + 1);
    if (!tail.empty()) {
      if (tail.front() != ':') return std::string("has a malformed host");
      port = tail.substr(1);
      if (port.empty()) return std::string("has an empty port");
    }
    for (char c : host.substr(1, host.size() - 2))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.')
        return std::string("has a malformed IPv6 host");
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return std::string("has an empty port");
    }
    if (host.empty()) return std::string("must name a host");
    for (char c : host)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-')
        return std::string("has a host with characters a host name cannot have");
  }
  if (!port.empty()) {
    int n = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (ec != std::errc() || p != port.data() + port.size() || n < 1 || n > 65535 || port.size() > 5)
      return std::string("has a port that is not 1 to 65535");
  }
  if (scheme == "http") {
    const std::string h = lowercase(host);
    if (h != "localhost" && h != "127.0.0.1" && h != "[::1]")
      return std::string("may use http only for localhost, 127.0.0.1 or [::1]; use https");
  }
  if (origin_only && !after.empty())
    return std::string("must be ") + what + " only: scheme://host[:port], without a path or a trailing slash";
  return std::nullopt;
}

}  // namespace

std::optional<std::string> redirect_uri_problem(std::string_view uri) { return url_problem(uri, false); }
std::optional<std::string> origin_problem(std::string_view origin) { return url_problem(origin, true); }

}  // namespace cdx
