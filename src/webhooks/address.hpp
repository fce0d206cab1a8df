// Where a webhook may go: endpoint URLs (http or https, absolute, no credentials, at most 2000 characters)
// and the SSRF guard's address classifier, applied to every address a host resolves to before connecting.
//   auto u = webhooks::parse_url("https://hooks.example.com/in?x=1");   // nullopt + why when refused
//   if (auto why = webhooks::refused(addr, allow_loopback)) fail(*why);  // "10.0.0.1 is a private address"
#pragma once
#include <boost/asio/ip/address.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cdx::webhooks {

struct Url {
  bool tls = false;
  std::string host;  // a name, an IPv4 literal, or an IPv6 literal without brackets
  uint16_t port = 0;
  std::string target;  // path and query, at least "/"
  // The Host header's value: the name (bracketed for IPv6) and the port when not the scheme's default.
  std::string host_header() const;
};

inline constexpr size_t kMaxUrl = 2000;

// The URL, or the reason it is refused (in `why`).
std::optional<Url> parse_url(std::string_view text, std::string* why = nullptr);

// Why a connection to addr is refused (private, loopback, link-local, shared, metadata, multicast, …),
// or nullopt when it may be used. Loopback (127/8, ::1 and their mapped forms) passes when allow_loopback.
std::optional<std::string> refused(const boost::asio::ip::address& addr, bool allow_loopback);

}  // namespace cdx::webhooks
