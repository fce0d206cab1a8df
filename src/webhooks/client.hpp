// The webhook sender's HTTP/1.1 client: one POST per call, over http or https (OpenSSL, the system's CA
// store, SNI and host name verification), to an address the SSRF guard vetted after resolving the host (the
// connection goes to that address; Host and SNI keep the name), within one overall timeout. Names are
// resolved on the client's own small pool (resolver.hpp), never on the io thread.
// Connections are kept alive: after a whole answer that allows it, the connection waits (at most
// kIdleFor, kIdlePerKey to one scheme, name, port and address, kIdleMax in all) for the next POST to that
// address; a POST that meets its reused connection closed, before any byte of an answer, is sent once more on
// a new one (a receiver closing an idle connection races with the next request). Single-threaded: call from
// the io_context's one thread.
//   Client client(io, {.allow_loopback = false, .timeout = 15s});
//   SendResult r = co_await client.post(url, body, headers, tenant_id);   // never throws: r.error says what
//   failed
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/task.hpp"
#include "webhooks/address.hpp"
#include "webhooks/resolver.hpp"

namespace cdx::webhooks {

struct SendResult {
  int status = 0;        // 0 when no answer came
  std::string excerpt;   // the answer's body, at most 1 KiB, valid UTF-8
  std::string error;     // empty on an answer (whatever its status)
  bool refused = false;  // the SSRF guard refused every address
  std::optional<std::chrono::milliseconds> retry_after;
  int64_t latency_ms = 0;
};

class Client {
 public:
  struct Options {
    bool allow_loopback = false;
    std::chrono::milliseconds timeout{15000};
  };
  static constexpr std::chrono::seconds kIdleFor{15};
  static constexpr size_t kIdlePerKey = 32;  // the sender's default in-flight bound per endpoint
  static constexpr size_t kIdleMax = 512;

  Client(boost::asio::io_context& io, Options options);
  ~Client();

  using Headers = std::vector<std::pair<std::string, std::string>>;
  // group: who the attempt is for (the tenant), which bounds its share of the name lookups.
  Task<SendResult> post(const Url& url, const std::string& body, const Headers& headers,
                        const std::string& group);

 private:
  class Pool;  // idle connections (client.cpp)

  boost::asio::io_context& io_;
  Options options_;
  boost::asio::ssl::context tls_;
  Resolver resolver_{{.max_threads = 16, .per_group = 2}};
  std::unique_ptr<Pool> pool_;
};

// Cuts text to at most max bytes of valid UTF-8 (invalid bytes become U+FFFD).
std::string utf8_excerpt(std::string_view text, size_t max);

}  // namespace cdx::webhooks
