// The gateway's HTTP/1.1 client for the constellation topology: forwards a request to a module's own
// process over pooled keep-alive connections (per I/O thread), bounded by connect and total timeouts,
// retried once when a pooled connection turns out stale (or, for idempotent methods, when the upstream
// could not be reached), and fenced by a circuit breaker per upstream. Bodies stream both ways when the
// server hands the route a body stream and an answer stream (RouteDoc::stream_body).
//   Proxy proxy({{"crm", "127.0.0.1", 3102}});
//   co_await proxy.forward(ctx, 0, "X-CDX-Assertion: …\r\nX-Request-ID: …\r\n");  // fills ctx.res or throws
#pragma once
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)
#include "common/task.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/types.hpp"

namespace cdx::gateway {

namespace internal {
struct UpstreamState;  // endpoint, Host line, breaker and counters of one upstream (proxy.cpp)
}

struct Upstream {
  std::string name;  // the module, used in error details and metric labels ("crm")
  std::string host;  // an IP address, or a name resolved once at construction
  uint16_t port = 0;
};

struct ProxyOptions {
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds total_timeout{30000};  // one attempt: write request + read whole response
  size_t max_idle_per_upstream = 64;               // kept-alive connections per upstream per I/O thread
  size_t response_limit = 64u << 20;               // bigger answers → 502 (without an answer stream)
  // With an answer stream: answers of a known length up to this are read whole and written in one go
  // (an observer may look at them); longer ones, chunked or close-delimited ones are relayed piece by
  // piece as they arrive, without a size limit.
  size_t buffer_up_to = 256u << 10;
  int breaker_failures = 5;                      // consecutive failures that open the breaker
  std::chrono::milliseconds breaker_open{2000};  // open time; then one probe request is let through
  // A pooled connection idle for longer is not reused, and is closed by its watchdog (which looks at
  // least once per total_timeout). Below the upstream server's keep-alive timeout (75 s), so the
  // upstream rarely closes a connection we are about to use.
  std::chrono::milliseconds idle_timeout{50000};
  // A relayed text/event-stream answer (the live feed) whose upstream sends nothing, not even a heartbeat,
  // for this long is gone. Twice the longest heartbeat sse_heartbeat_ms allows (5 min).
  std::chrono::milliseconds event_stream_quiet{std::chrono::minutes(10)};
};

// Monotonic counters for /metrics, per upstream.
struct UpstreamCounters {
  uint64_t requests = 0;       // forward() calls
  uint64_t failures = 0;       // transport failures and 502/503/504 answers (what the breaker counts)
  uint64_t retries = 0;        // second attempts on a fresh connection
  uint64_t breaker_opens = 0;  // closed/half-open → open transitions
};

// Sees an answer's head before the client does (the gateway consumes internal headers here). For an
// answer read whole, the body is in ctx.res.body too.
class AnswerObserver {
 public:
  virtual ~AnswerObserver() = default;
  virtual void on_head(http::Context& ctx) = 0;
};

class Proxy {
 public:
  // Throws std::invalid_argument when a host neither parses as an address nor resolves.
  explicit Proxy(std::vector<Upstream> upstreams, ProxyOptions options = {});
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Forwards ctx.req to upstreams[upstream] and fills ctx.res (status, content type, body, end-to-end
  // headers appended to header_lines) from the answer. `extra` is pre-formatted "Name: value\r\n" lines
  // added to the upstream request (the gateway's signed assertion, X-Request-ID, traceparent,
  // X-Forwarded-For); it is copied before the first suspension, so a reused buffer may back it.
  // The client's own X-CDX-*, X-Request-ID, traceparent, X-Forwarded-For, Forwarded and X-Real-IP
  // headers are never forwarded, nor hop-by-hop ones, Content-Length (rewritten) or Expect.
  // Throws cdx::Error: 502 unreachable / malformed / too large, 504 timeout, 503 + Retry-After while
  // the breaker is open. Must run on an io_context's thread; connections never leave that thread.
  // Streaming: with ctx.req.body_stream the rest of the body is relayed as it arrives (Content-Length
  // kept, or chunked); such a request is never retried once a piece was taken. With ctx.answer_stream
  // a long answer is relayed through it; a failure after its head went out throws too, and the
  // server then ends the client's connection (the client sees a truncated answer, never a wrong one).
  // A pooled connection keeps a watchdog timer pending on its io_context until it is closed (within
  // idle_timeout + total_timeout of its last use), so io_context::run() does not return meanwhile.
  Task<void> forward(http::Context& ctx, size_t upstream, std::string_view extra,
                     AnswerObserver* observer = nullptr);

  // The breaker is open: a request arriving now is refused without a connection attempt.
  bool open(size_t upstream) const;
  UpstreamCounters counters(size_t upstream) const;

  // Appends Prometheus text (cdx_upstream_* counters and the breaker gauge); for Metrics::add_collector.
  void render_metrics(std::string& out) const;

 private:
  std::vector<Upstream> upstreams_;
  ProxyOptions options_;
  std::vector<std::unique_ptr<internal::UpstreamState>> states_;
  uint64_t id_;  // unique per instance: keys the per-thread connection pools
};

}  // namespace cdx::gateway
