// The HTTP/1.1 server: keep-alive, pipelining, limits, timeouts, request ids, problem+json errors,
// access log, metrics and graceful drain. Routes come from a Router; a middleware Chain (credential,
// tenant, plan, rate limit, access, …) runs before every non-public handler.
//   Server server(options, router, metrics, &chain);
//   uint16_t port = server.listen();  server.run();   // until stop()
#pragma once
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)
#include "common/task.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "http/metrics.hpp"
#include "http/middleware.hpp"
#include "http/router.hpp"

namespace cdx::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 3000;
  int threads = 1;
  size_t body_limit = 1 << 20;
  size_t header_limit = 16 * 1024;
  std::chrono::milliseconds header_timeout{10'000};  // whole header, from its first byte (slow clients)
  std::chrono::milliseconds body_timeout{30'000};    // body and response write
  std::chrono::milliseconds idle_timeout{75'000};    // keep-alive between requests
  std::chrono::milliseconds drain_timeout{10'000};   // graceful shutdown
  // Open connections, in all and per client address; beyond, a new connection gets 503 and is closed.
  // 0 in all: the descriptor limit (raised to its hard maximum at listen()) less a reserve for files and
  // database connections. 0 per client: no per-address cap (a service whose one client is the gateway).
  size_t max_connections = 0;
  size_t max_connections_per_client = 256;
  // The chain also runs for public routes: a service behind the gateway checks the gateway's signed
  // assertion on every request, not only on those that need a principal.
  bool authenticate_public = false;
};

class Server {
 public:
  Server(ServerOptions options, const Router& router, Metrics& metrics, const Chain* chain);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t listen();  // binds and returns the bound port (useful with port 0)
  void run();         // serves on options.threads threads; returns once stopped and drained
  void stop();        // thread-safe: stop accepting, finish in-flight requests, close idle connections

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cdx::http
