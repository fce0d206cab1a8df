#include "webhooks/address.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace cdx::webhooks {

namespace ip = boost::asio::ip;

std::string Url::host_header() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) h += ":" + std::to_string(port);
  return h;
}

std::optional<Url> parse_url(std::string_view text, std::string* why) {
  auto fail = [&](std::string reason) -> std::optional<Url> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  if (text.empty()) return fail("must not be empty");
  if (text.size() > kMaxUrl) return fail("must be at most 2000 characters");
  for (unsigned char c : text)
    if (c <= 0x20 || c >= 0x7f) return fail("must not contain spaces, control or non-ASCII characters");
  Url u;
  std::string_view rest;
  auto lower_starts = [&](std::string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
    return true;
  };
  if (lower_starts("https://")) {
    u.tls = true;
    rest = text.substr(8);
  } else if (lower_starts("http://")) {
    rest = text.substr(7);
  } else {
    return fail("must be an absolute http:// or https:// URL");
  }
  const size_t end = std::min(rest.find_first_of("/?#"), rest.size());
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = rest.substr(end);
  if (authority.find('@') != std::string_view::npos)
    return fail("must not contain credentials (user:password@)");
  if (authority.empty()) return fail("must name a host");
  std::string_view host, port;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("has an unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("has garbage after the IPv6 literal");
      port = after.substr(1);
    }
    boost::system::error_code ec;
    ip::make_address_v6(std::string(host), ec);
    if (ec) return fail("has an invalid IPv6 literal");
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (host.empty() || host.size() > 253) return fail("must name a host");
    for (char c : host)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_'))
        return fail("has an invalid host name");
  }
  u.port = u.tls ? 443 : 80;
  if (!port.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || p != port.data() + port.size() || v == 0 || v > 65535)
      return fail("has an invalid port");
    u.port = static_cast<uint16_t>(v);
  }
  u.host = std::string(host);
  std::transform(u.host.begin(), u.host.end(), u.host.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  const size_t hash = tail.find('#');
  if (hash != std::string_view::npos) tail = tail.substr(0, hash);  // fragments are never sent
  u.target = tail.empty() || tail.front() != '/' ? "/" + std::string(tail) : std::string(tail);
  return u;
}

namespace {

bool in_v4(uint32_t a, uint32_t net, int bits) {
  const uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (a & mask) == (net & mask);
}

constexpr uint32_t v4(int a, int b, int c, int d) {
  return (uint32_t(a) << 24) | (uint32_t(b) << 16) | (uint32_t(c) << 8) | uint32_t(d);
}

std::optional<std::string> refused_v4(const ip::address_v4& addr, bool allow_loopback,
                                      const std::string& shown) {
  const uint32_t a = addr.to_uint();
  struct Range {
    uint32_t net;
    int bits;
    const char* what;
  };
  static constexpr std::array<Range, 17> kRanges = {{
      {v4(169, 254, 169, 254), 32, "a cloud metadata address"},
      {v4(0, 0, 0, 0), 8, "an unspecified (\"this network\") address"},
      {v4(10, 0, 0, 0), 8, "a private address"},
      {v4(100, 64, 0, 0), 10, "a shared (CGNAT) address"},
      {v4(127, 0, 0, 0), 8, "a loopback address"},
      {v4(169, 254, 0, 0), 16, "a link-local address"},
      {v4(172, 16, 0, 0), 12, "a private address"},
      {v4(192, 0, 0, 0), 24, "a reserved (IETF protocol) address"},
      {v4(192, 0, 2, 0), 24, "a documentation address"},
      {v4(192, 88, 99, 0), 24, "a reserved (6to4 relay) address"},
      {v4(192, 168, 0, 0), 16, "a private address"},
      {v4(198, 18, 0, 0), 15, "a benchmarking address"},
      {v4(198, 51, 100, 0), 24, "a documentation address"},
      {v4(203, 0, 113, 0), 24, "a documentation address"},
      {v4(224, 0, 0, 0), 4, "a multicast address"},
      {v4(255, 255, 255, 255), 32, "the broadcast address"},
      {v4(240, 0, 0, 0), 4, "a reserved address"},
  }};
  for (const Range& r : kRanges) {
    if (!in_v4(a, r.net, r.bits)) continue;
    if (allow_loopback && r.bits == 8 && r.net == v4(127, 0, 0, 0)) return std::nullopt;
    return shown + " is " + r.what;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> refused(const ip::address& addr, bool allow_loopback) {
  const std::string shown = addr.to_string();
  if (addr.is_v4()) return refused_v4(addr.to_v4(), allow_loopback, shown);
  const ip::address_v6 a = addr.to_v6();
  const auto b = a.to_bytes();
  // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), translated (::ffff:0:a.b.c.d, SIIT), compatible (::a.b.c.d),
  // NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::/48) are judged by the IPv4 address they carry: a
  // translator or relay on the way would reach it.
  auto judge = [&](size_t at) -> std::optional<std::string> {
    const ip::address_v4 inner(ip::address_v4::bytes_type{b[at], b[at + 1], b[at + 2], b[at + 3]});
    return refused_v4(inner, allow_loopback, shown + " (" + inner.to_string() + ")");
  };
  auto zeros = [&](size_t from, size_t to) {
    return std::all_of(b.begin() + from, b.begin() + to, [](unsigned char c) { return c == 0; });
  };
  const bool zero80 = zeros(0, 10);
  const bool nat64 = b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zeros(4, 12);
  const bool translated = zeros(0, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0;
  if ((zero80 && b[10] == 0xff && b[11] == 0xff) || nat64 || translated ||
      (zero80 && b[10] == 0 && b[11] == 0 && !a.is_loopback() && !a.is_unspecified()))
    return judge(12);
  if (b[0] == 0x20 && b[1] == 0x02) return judge(2);
  // Local-use NAT64 (64:ff9b:1::/48, RFC 8215) embeds an IPv4 address anywhere the operator chooses, and
  // Teredo (2001::/32) hides one (obfuscated) behind a relay: neither can be judged, so both are refused.
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0x00 && b[5] == 0x01)
    return shown + " is a local-use NAT64 address";
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00) return shown + " is a Teredo address";
  if (a.is_unspecified()) return shown + " is the unspecified address";
  if (a.is_loopback())
    return allow_loopback ? std::nullopt : std::optional<std::string>(shown + " is a loopback address");
  if (b[0] == 0xfd && b[1] == 0x00 && b[2] == 0x0e && b[3] == 0xc2 &&
      a == ip::make_address_v6("fd00:ec2::254"))
    return shown + " is a cloud metadata address";
  if ((b[0] & 0xfe) == 0xfc) return shown + " is a unique local (private) address";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return shown + " is a link-local address";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return shown + " is a site-local address";
  if (b[0] == 0xff) return shown + " is a multicast address";
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
    return shown + " is a documentation address";
  if (b[0] == 0x01 && std::all_of(b.begin() + 1, b.begin() + 8, [](unsigned char c) { return c == 0; }))
    return shown + " is a discard-only address";
  return std::nullopt;
}

}  // namespace cdx::webhooks
