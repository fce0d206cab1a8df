#include "gateway/proxy.hpp"

#include <utility>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"

namespace cdx::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---- a scripted upstream: a plain Beast server on its own io_context thread ----

struct Seen {  // one request as the upstream received it
  std::string method;
  std::string target;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  int connection = 0;       // which accepted connection it came on
  int on_connection = 0;    // its index on that connection

  size_t count(std::string_view name) const {
    return std::count_if(headers.begin(), headers.end(),
                         [&](const auto& h) { return beast::iequals(h.first, name); });
  }
  std::string get(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (beast::iequals(k, name)) return v;
    return {};
  }
};

struct Reply {
  std::string raw;     // bytes written as the answer
  bool close = false;  // close the connection after writing
  bool hang = false;   // never answer; hold the connection until the peer closes it
};

std::string answer(int status, std::string_view body, std::string_view headers = "",
                   std::string_view type = "text/plain") {
  return fmt::format("HTTP/1.1 {} Status\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}\r\n{}", status, type,
                     body.size(), headers, body);
}

class TestUpstream {
 public:
  using Script = std::function<Reply(const Seen&)>;

  explicit TestUpstream(Script script) : script_(std::move(script)), acceptor_(ioc_) {
    const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(ioc_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~TestUpstream() {
    ioc_.stop();
    thread_.join();
  }

  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }
  int closed() const { return closed_.load(); }  // connections the proxy closed (EOF seen)
  std::vector<Seen> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  size_t requests() const {
    std::lock_guard lock(mutex_);
    return seen_.size();
  }

 private:
  Task<void> accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      Socket s = co_await acceptor_.async_accept(asio::redirect_error(use_task, ec));
      if (ec) co_return;
      const int index = connections_.fetch_add(1);
      asio::co_spawn(ioc_, session(std::move(s), index), asio::detached);
    }
  }

  Task<void> session(Socket s, int index) {
    beast::flat_buffer buffer;
    boost::system::error_code ec;
    for (int n = 0;; ++n) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(16u << 20);
      co_await bhttp::async_read(s, buffer, parser, asio::redirect_error(use_task, ec));
      if (ec) {
        if (ec == bhttp::error::end_of_stream) closed_.fetch_add(1);
        co_return;
      }
      Seen seen;
      const auto& req = parser.get();
      seen.method = std::string(req.method_string());
      seen.target = std::string(req.target());
      seen.body = req.body();
      for (const auto& f : req) seen.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
      seen.connection = index;
      seen.on_connection = n;
      {
        std::lock_guard lock(mutex_);
        seen_.push_back(seen);
      }
      Reply reply = script_(seen);
      if (reply.hang) {
        char sink[512];
        while (!ec) co_await s.async_read_some(asio::buffer(sink), asio::redirect_error(use_task, ec));
        co_return;
      }
      if (!reply.raw.empty()) co_await asio::async_write(s, asio::buffer(reply.raw), asio::redirect_error(use_task, ec));
      if (ec) co_return;
      if (reply.close) {
        s.shutdown(Socket::shutdown_both, ec);
        s.close(ec);
        co_return;
      }
    }
  }

  Script script_;
  asio::io_context ioc_;
  Acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<int> connections_{0};
  std::atomic<int> closed_{0};
  mutable std::mutex mutex_;
  std::vector<Seen> seen_;
};

// A port nothing listens on: bound once to get it from the kernel, then released.
uint16_t closed_port() {
  asio::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

// ---- the gateway side: the proxy runs in a coroutine on the client's io_context ----

struct Call {
  http::Method method = http::Method::kGet;
  std::string target = "/api/v1/things";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string extra = "X-Request-ID: gw-1\r\n";
  std::string header_lines;  // set by middleware before the proxy runs
};

struct Outcome {
  int status = 0;
  std::string content_type;
  std::string body;
  std::string header_lines;
  std::optional<Code> error;
  std::string detail;
  std::vector<std::pair<std::string, std::string>> error_headers;
  std::chrono::milliseconds elapsed{0};
};

Task<Outcome> call(Proxy& proxy, size_t upstream, Call c) {
  http::Context ctx;
  ctx.request_id = "test-request";
  ctx.req.method = c.method;
  ctx.req.target = c.target;
  ctx.req.path = std::string_view(c.target).substr(0, c.target.find('?'));
  for (const auto& [k, v] : c.headers) ctx.req.headers.push_back({k, v});
  ctx.req.body = c.body;
  ctx.res.header_lines = c.header_lines;
  Outcome out;
  const auto t0 = Clock::now();
  try {
    co_await proxy.forward(ctx, upstream, c.extra);
    out.status = ctx.res.status;
    out.content_type = std::string(ctx.res.content_type);
    out.body = ctx.res.body;
    out.header_lines = ctx.res.header_lines;
  } catch (const Error& e) {
    out.error = e.code();
    out.status = info(e.code()).status;
    out.detail = e.detail();
    out.error_headers = e.headers();
  }
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  co_return out;
}

// Runs the io_context on this thread until the futures are ready. Not run(): pooled connections keep
// their watchdog timers pending, so the context never runs out of work while they are idle.
template <class T>
void run_until(asio::io_context& ioc, std::vector<std::future<T>>& futures) {
  ioc.restart();
  for (auto& f : futures)
    while (f.valid() && f.wait_for(0s) != std::future_status::ready) ioc.run_one();
}

// One io_context that keeps its connection pool between calls; run on the calling thread.
class Client {
 public:
  Outcome forward(Proxy& proxy, Call c = {}, size_t upstream = 0) {
    std::vector<std::future<Outcome>> f;
    f.push_back(asio::co_spawn(ioc_, call(proxy, upstream, std::move(c)), asio::use_future));
    run_until(ioc_, f);
    return f[0].get();
  }
  // Lets the pooled connections' watchdogs run for a while.
  void idle(std::chrono::milliseconds d) {
    ioc_.restart();
    ioc_.run_for(d);
  }

 private:
  asio::io_context ioc_;
};

Reply ok(const Seen& s) { return {answer(200, "hello " + s.target)}; }

std::string header_value(const std::vector<std::pair<std::string, std::string>>& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (beast::iequals(k, name)) return v;
  return {};
}

// ---- forwarding ----

TEST(ProxyForward, ReusesOneKeepAliveConnection) {
  TestUpstream up([](const Seen& s) { return Reply{answer(200, "hello " + s.target, "", "text/plain; charset=utf-8")}; });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  Client client;
  for (int i = 0; i < 10; ++i) {
    Outcome out = client.forward(proxy, {.target = fmt::format("/api/v1/things/{}?q={}", i, i)});
    ASSERT_FALSE(out.error) << out.detail;
    EXPECT_EQ(out.status, 200);
    EXPECT_EQ(out.body, fmt::format("hello /api/v1/things/{}?q={}", i, i));
    EXPECT_EQ(out.content_type, "text/plain; charset=utf-8");
  }
  EXPECT_EQ(up.connections(), 1);
  const auto seen = up.seen();
  ASSERT_EQ(seen.size(), 10u);
  EXPECT_EQ(seen[9].on_connection, 9);
  EXPECT_EQ(seen[3].get("host"), fmt::format("127.0.0.1:{}", up.port()));  // the client sent none
  const UpstreamCounters c = proxy.counters(0);
  EXPECT_EQ(c.requests, 10u);
  EXPECT_EQ(c.failures, 0u);
  EXPECT_EQ(c.retries, 0u);
}

TEST(ProxyForward, LargeBodiesArriveIntactBothWays) {
  std::string sent(200 * 1024, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + (i * 31 + i / 977) % 26);
  TestUpstream up([](const Seen& s) {
    std::string back(s.body.rbegin(), s.body.rend());
    return Reply{answer(200, back, "", "application/octet-stream")};
  });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  Client client;
  Outcome out = client.forward(proxy, {.method = http::Method::kPost,
                                       .headers = {{"Content-Type", "application/octet-stream"}},
                                       .body = sent});
  ASSERT_FALSE(out.error) << out.detail;
  ASSERT_EQ(up.requests(), 1u);
  const Seen s = up.seen()[0];
  EXPECT_EQ(s.method, "POST");
  EXPECT_EQ(s.get("content-length"), "204800");
  EXPECT_TRUE(s.body == sent);
  ASSERT_EQ(out.body.size(), sent.size());
  EXPECT_TRUE(out.body == std::string(sent.rbegin(), sent.rend()));
}

TEST(ProxyForward, ChunkedAnswerIsReassembled) {
  TestUpstream up([](const Seen&) {
    return Reply{
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
        "5\r\n{\"a\":\r\n3\r\n123\r\n1;ext=1\r\n}\r\n0\r\nX-Sum: 9\r\n\r\n"};
  });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  Client client;
  for (int i = 0; i < 2; ++i) {
    Outcome out = client.forward(proxy);
    ASSERT_FALSE(out.error) << out.detail;
    EXPECT_EQ(out.body, R"({"a":123})");
    EXPECT_EQ(out.content_type, "application/json");
    EXPECT_EQ(out.header_lines.find("Transfer-Encoding"), std::string::npos);
    EXPECT_EQ(out.header_lines.find("Trailer"), std::string::npos);
  }
  EXPECT_EQ(up.connections(), 1);  // the chunked framing ended where it should: the connection was reused
}

TEST(ProxyForward, DropsHopByHopAndInjectedInternalRequestHeaders) {
  TestUpstream up(ok);
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  Client client;
  Outcome out = client.forward(
      proxy, {.method = http::Method::kPost,
              .target = "/api/v1/companies?x=1",
              .headers = {{"Host", "api.example.com"},
                          {"Connection", "keep-alive, X-Hop-Custom"},
                          {"X-Hop-Custom", "secret"},
                          {"Keep-Alive", "timeout=5"},
                          {"Proxy-Connection", "keep-alive"},
                          {"Proxy-Authorization", "Basic eHk="},
                          {"TE", "trailers"},
                          {"Upgrade", "websocket"},
                          {"Transfer-Encoding", "chunked"},
                          {"Expect", "100-continue"},
                          {"Content-Length", "999"},
                          {"X-CDX-Assertion", "forged"},
                          {"x-cdx-tenant", "evil"},
                          {"X-Request-ID", "client-chosen"},
                          {"traceparent", "00-client-01"},
                          {"X-Forwarded-For", "10.9.9.9"},
                          {"Forwarded", "for=10.9.9.9"},
                          {"X-Real-IP", "10.9.9.9"},
                          {"Authorization", "Bearer abc"},
                          {"Accept", "application/json"},
                          {"X-Custom", "kept"}},
              .body = "{}",
              .extra = "X-CDX-Assertion: signed\r\nX-Request-ID: gw-1\r\ntraceparent: 00-gw-01\r\n"
                       "X-Forwarded-For: 203.0.113.7\r\n"});
  ASSERT_FALSE(out.error) << out.detail;
  ASSERT_EQ(up.requests(), 1u);
  const Seen s = up.seen()[0];
  EXPECT_EQ(s.target, "/api/v1/companies?x=1");
  EXPECT_EQ(s.count("x-cdx-assertion"), 1u);
  EXPECT_EQ(s.get("x-cdx-assertion"), "signed");
  EXPECT_EQ(s.count("x-cdx-tenant"), 0u);
  EXPECT_EQ(s.count("x-request-id"), 1u);
  EXPECT_EQ(s.get("x-request-id"), "gw-1");
  EXPECT_EQ(s.count("traceparent"), 1u);
  EXPECT_EQ(s.get("traceparent"), "00-gw-01");
  EXPECT_EQ(s.count("x-forwarded-for"), 1u);
  EXPECT_EQ(s.get("x-forwarded-for"), "203.0.113.7");
  EXPECT_EQ(s.count("forwarded"), 0u);
  EXPECT_EQ(s.count("x-real-ip"), 0u);
  for (const char* gone : {"connection", "x-hop-custom", "keep-alive", "proxy-connection", "proxy-authorization", "te",
                           "upgrade", "transfer-encoding", "expect"})
    EXPECT_EQ(s.count(gone), 0u) << gone;
  EXPECT_EQ(s.count("content-length"), 1u);
  EXPECT_EQ(s.get("content-length"), "2");
  EXPECT_EQ(s.body, "{}");
  EXPECT_EQ(s.count("host"), 1u);
  EXPECT_EQ(s.get("host"), "api.example.com");
  EXPECT_EQ(s.get("authorization"), "Bearer abc");
  EXPECT_EQ(s.get("accept"), "application/json");
  EXPECT_EQ(s.get("x-custom"), "kept");
}

TEST(ProxyForward, BodylessPostCarriesContentLengthZero) {
  TestUpstream up(ok);
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  Client client;
  ASSERT_FALSE(client.forward(proxy, {.method = http::Method::kPost}).error);
  ASSERT_FALSE(client.forward(proxy, {.method = http::Method::kDelete}).error);
  const auto seen = up.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].get("content-length"), "0");
  EXPECT_EQ(seen[1].count("content-length"), 0u);
}

TEST(ProxyForward, StripsHopByHopAnswerHeadersAndKeepsEarlierLines) {
  TestUpstream up([](const Seen&) {
    return Reply{
        "HTTP/1.1 201 Created\r\n"
        "Server: upstream\r\n"
        "Date: Tue, 01 Jan 2030 00:00:00 GMT\r\n"
        "X-Upstream-Hop: 1\r\n"
        "Connection: keep-alive, X-Upstream-Hop\r\n"
        "Keep-Alive: timeout=5\r\n"
        "Proxy-Authenticate: Basic\r\n"
        "Upgrade: h2c\r\n"
        "X-Request-ID: upstream-id\r\n"
        "Set-Cookie: a=1\r\n"
        "Set-Cookie: b=2\r\n"
        "Location: /api/v1/things/7\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: 8\r\n"
        "\r\n"
        "{\"id\":7}"};
  });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  Client client;
  Outcome out = client.forward(proxy, {.header_lines = "RateLimit-Limit: 60\r\n"});
  ASSERT_FALSE(out.error) << out.detail;
  EXPECT_EQ(out.status, 201);
  EXPECT_EQ(out.content_type, "application/json");
  EXPECT_EQ(out.body, R"({"id":7})");
  EXPECT_EQ(out.header_lines,
            "RateLimit-Limit: 60\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nLocation: /api/v1/things/7\r\n");
}

TEST(ProxyForward, SkipsInterimAnswers) {
  TestUpstream up([](const Seen&) {
    return Reply{"HTTP/1.1 100 Continue\r\n\r\n"
                 "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
                 answer(200, "ok")};
  });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  Client client;
  Outcome out = client.forward(proxy, {.method = http::Method::kPut, .body = "x"});
  ASSERT_FALSE(out.error) << out.detail;
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(out.body, "ok");
  EXPECT_EQ(out.header_lines.find("Link"), std::string::npos);
}

TEST(ProxyForward, CloseDelimitedAnswerEndsAtEofAndIsNotPooled) {
  const std::string body(50'000, 'z');
  TestUpstream up([&](const Seen&) {
    return Reply{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" + body, true};
  });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  Client client;
  for (int i = 0; i < 2; ++i) {
    Outcome out = client.forward(proxy);
    ASSERT_FALSE(out.error) << out.detail;
    EXPECT_EQ(out.body.size(), body.size());
    EXPECT_TRUE(out.body == body);
  }
  EXPECT_EQ(up.connections(), 2);
  EXPECT_EQ(proxy.counters(0).retries, 0u);
}

TEST(ProxyForward, ContentTypeDefaultsOnlyForABody) {
  int n = 0;
  TestUpstream up([&](const Seen&) {
    if (n++ == 0) return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"};
    return Reply{"HTTP/1.1 204 No Content\r\nContent-Type: text/plain\r\n\r\n"};
  });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  Client client;
  Outcome first = client.forward(proxy);
  EXPECT_EQ(first.content_type, "application/octet-stream");
  EXPECT_EQ(first.body, "abc");
  Outcome second = client.forward(proxy, {.method = http::Method::kDelete});
  EXPECT_EQ(second.status, 204);
  EXPECT_EQ(second.content_type, "application/json");  // left as it was
  EXPECT_TRUE(second.body.empty());
  EXPECT_EQ(up.connections(), 1);
}

TEST(ProxyForward, HeadAnswerHasNoBodyAndKeepsTheConnection) {
  TestUpstream up([](const Seen& s) {
    if (s.method == "HEAD") return Reply{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"};
    return Reply{answer(200, "hello")};
  });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}}, {.total_timeout = 2000ms});
  Client client;
  Outcome head = client.forward(proxy, {.method = http::Method::kHead});
  ASSERT_FALSE(head.error) << head.detail;
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_LT(head.elapsed, 1000ms);
  Outcome get = client.forward(proxy);
  EXPECT_EQ(get.body, "hello");
  EXPECT_EQ(up.connections(), 1);
}

TEST(ProxyForward, UnknownMethodIsRefusedBeforeConnecting) {
  TestUpstream up(ok);
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  Client client;
  Outcome out = client.forward(proxy, {.method = http::Method::kOther});
  EXPECT_EQ(out.error, Code::kMethodNotAllowed);
  EXPECT_EQ(up.connections(), 0);
  EXPECT_EQ(proxy.counters(0).failures, 0u);
}

// ---- failures ----

TEST(ProxyFailure, RefusedConnectionIs502Quickly) {
  Proxy proxy({{"crm", "127.0.0.1", closed_port()}});
  Client client;
  Outcome get = client.forward(proxy);
  EXPECT_EQ(get.error, Code::kBadGateway);
  EXPECT_EQ(get.status, 502);
  EXPECT_EQ(get.detail, "The crm service is unreachable.");
  EXPECT_LT(get.elapsed, 500ms);
  EXPECT_EQ(proxy.counters(0).retries, 1u);  // GET: one more try on a fresh connection

  Outcome post = client.forward(proxy, {.method = http::Method::kPost, .body = "{}"});
  EXPECT_EQ(post.error, Code::kBadGateway);
  EXPECT_LT(post.elapsed, 500ms);
  EXPECT_EQ(proxy.counters(0).retries, 1u);  // POST: never a second connect
  EXPECT_EQ(proxy.counters(0).failures, 2u);
}

TEST(ProxyFailure, SilentUpstreamIs504AfterTheTotalTimeout) {
  TestUpstream up([](const Seen&) { return Reply{.hang = true}; });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}}, {.total_timeout = 200ms});
  Client client;
  Outcome post = client.forward(proxy, {.method = http::Method::kPost, .body = "{}"});
  EXPECT_EQ(post.error, Code::kGatewayTimeout);
  EXPECT_EQ(post.status, 504);
  EXPECT_GE(post.elapsed, 190ms);
  EXPECT_LT(post.elapsed, 1000ms);

  Outcome get = client.forward(proxy);
  EXPECT_EQ(get.error, Code::kGatewayTimeout);
  EXPECT_LT(get.elapsed, 1000ms);
  EXPECT_EQ(up.connections(), 2);  // a timed-out request is never sent twice, GET included
  EXPECT_EQ(proxy.counters(0).retries, 0u);
}

TEST(ProxyFailure, PooledConnectionTimesOutToo) {
  TestUpstream up([](const Seen& s) { return s.on_connection == 0 ? Reply{answer(200, "first")} : Reply{.hang = true}; });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}}, {.total_timeout = 200ms});
  Client client;
  ASSERT_EQ(client.forward(proxy).body, "first");
  client.idle(50ms);
  Outcome out = client.forward(proxy);  // on the pooled connection, whose watchdog already slept once
  EXPECT_EQ(out.error, Code::kGatewayTimeout);
  EXPECT_GE(out.elapsed, 190ms);
  EXPECT_LT(out.elapsed, 1000ms);
  EXPECT_EQ(up.connections(), 1);
}

TEST(ProxyFailure, StalePooledConnectionIsReplacedTransparently) {
  // The upstream answers keep-alive, then closes the connection behind the proxy's back.
  TestUpstream up([](const Seen& s) { return Reply{answer(200, s.method), true}; });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  Client client;
  ASSERT_EQ(client.forward(proxy).body, "GET");
  std::this_thread::sleep_for(50ms);  // the upstream's FIN reaches the pooled socket

  Outcome get = client.forward(proxy);  // written on the stale connection, EOF, retried
  ASSERT_FALSE(get.error) << get.detail;
  EXPECT_EQ(get.body, "GET");
  EXPECT_EQ(up.connections(), 2);
  EXPECT_EQ(proxy.counters(0).retries, 1u);
  std::this_thread::sleep_for(50ms);

  // A POST cannot be retried once written, so a pooled connection is checked before it is used.
  Outcome post = client.forward(proxy, {.method = http::Method::kPost, .body = "{}"});
  ASSERT_FALSE(post.error) << post.detail;
  EXPECT_EQ(post.body, "POST");
  EXPECT_EQ(up.connections(), 3);
  EXPECT_EQ(up.requests(), 3u);
  EXPECT_EQ(proxy.counters(0).retries, 1u);
  EXPECT_EQ(proxy.counters(0).failures, 0u);
}

TEST(ProxyFailure, OnlyIdempotentRequestsAreRetriedAfterTheUpstreamHungUp) {
  TestUpstream up([](const Seen&) { return Reply{.close = true}; });  // reads the request, closes, no answer
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  Client client;
  Outcome post = client.forward(proxy, {.method = http::Method::kPost, .body = "{}"});
  EXPECT_EQ(post.error, Code::kBadGateway);
  EXPECT_EQ(up.requests(), 1u);  // delivered once, not repeated

  Outcome put = client.forward(proxy, {.method = http::Method::kPut, .body = "{}"});
  EXPECT_EQ(put.error, Code::kBadGateway);
  EXPECT_EQ(up.requests(), 3u);  // PUT is idempotent: tried twice
  EXPECT_EQ(proxy.counters(0).retries, 1u);
}

TEST(ProxyFailure, OversizedAnswerIs502) {
  TestUpstream up([](const Seen&) { return Reply{answer(200, std::string(4096, 'x'))}; });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}}, {.response_limit = 1024});
  Client client;
  Outcome out = client.forward(proxy, {.header_lines = "X-Before: 1\r\n"});
  EXPECT_EQ(out.error, Code::kBadGateway);
  EXPECT_NE(out.detail.find("more than 1024 bytes"), std::string::npos) << out.detail;
  EXPECT_EQ(proxy.counters(0).failures, 0u);  // not held against the upstream's health
}

TEST(ProxyFailure, MalformedAnswerIs502) {
  TestUpstream up([](const Seen&) { return Reply{"SMTP ready\r\n\r\n", true}; });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  Client client;
  Outcome out = client.forward(proxy);
  EXPECT_EQ(out.error, Code::kBadGateway);
  EXPECT_EQ(out.detail, "The crm service sent a malformed answer.");
  EXPECT_EQ(up.requests(), 1u);  // the upstream answered (badly): not retried
}

TEST(ProxyFailure, TruncatedAnswerIs502) {
  TestUpstream up([](const Seen&) { return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", true}; });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  Client client;
  Outcome out = client.forward(proxy);
  EXPECT_EQ(out.error, Code::kBadGateway);
  EXPECT_NE(out.detail.find("before its answer was complete"), std::string::npos) << out.detail;
}

// ---- circuit breaker ----

TEST(ProxyBreaker, OpensAfterFailuresFailsFastThenCloses) {
  std::atomic<bool> healthy{false};
  TestUpstream up([&](const Seen&) {
    return healthy ? Reply{answer(200, "fine")} : Reply{answer(503, "overloaded")};
  });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}}, {.breaker_failures = 3, .breaker_open = 300ms});
  Client client;
  for (int i = 0; i < 3; ++i) {
    Outcome out = client.forward(proxy);
    EXPECT_FALSE(out.error);
    EXPECT_EQ(out.status, 503);  // the upstream's own answer passes through…
    EXPECT_EQ(out.body, "overloaded");
  }
  EXPECT_TRUE(proxy.open(0));  // …and counts against it

  Outcome refused = client.forward(proxy);
  EXPECT_EQ(refused.error, Code::kServiceUnavailable);
  EXPECT_EQ(refused.detail, "The crm service is unavailable; retry shortly.");
  EXPECT_EQ(header_value(refused.error_headers, "Retry-After"), "1");
  EXPECT_LT(refused.elapsed, 100ms);
  EXPECT_EQ(up.requests(), 3u);  // nothing reached the upstream
  EXPECT_EQ(proxy.counters(0).breaker_opens, 1u);

  std::this_thread::sleep_for(350ms);
  EXPECT_FALSE(proxy.open(0));          // half-open: the next request is the probe
  Outcome probe = client.forward(proxy);  // still failing: open again
  EXPECT_EQ(probe.status, 503);
  EXPECT_EQ(up.requests(), 4u);
  EXPECT_TRUE(proxy.open(0));
  EXPECT_EQ(proxy.counters(0).breaker_opens, 2u);
  EXPECT_EQ(client.forward(proxy).error, Code::kServiceUnavailable);
  EXPECT_EQ(up.requests(), 4u);

  healthy = true;
  std::this_thread::sleep_for(350ms);
  Outcome recovered = client.forward(proxy);
  EXPECT_FALSE(recovered.error);
  EXPECT_EQ(recovered.body, "fine");
  EXPECT_FALSE(proxy.open(0));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(client.forward(proxy).status, 200);
  EXPECT_EQ(up.requests(), 8u);
  EXPECT_EQ(proxy.counters(0).failures, 4u);
}

TEST(ProxyBreaker, TransportFailuresOpenItWithoutFurtherConnects) {
  const uint16_t port = closed_port();
  Proxy proxy({{"crm", "127.0.0.1", port}}, {.total_timeout = 500ms, .breaker_failures = 2, .breaker_open = 10'000ms});
  Client client;
  EXPECT_EQ(client.forward(proxy).error, Code::kBadGateway);
  EXPECT_FALSE(proxy.open(0));
  EXPECT_EQ(client.forward(proxy).error, Code::kBadGateway);
  EXPECT_TRUE(proxy.open(0));
  const uint64_t retries = proxy.counters(0).retries;

  // Something listens now, but the breaker does not look.
  asio::io_context ioc;
  tcp::acceptor listener(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  Outcome out = client.forward(proxy);
  EXPECT_EQ(out.error, Code::kServiceUnavailable);
  EXPECT_LT(out.elapsed, 100ms);
  EXPECT_EQ(header_value(out.error_headers, "Retry-After"), "10");
  listener.non_blocking(true);
  boost::system::error_code ec;
  listener.accept(ec);
  EXPECT_EQ(ec, asio::error::would_block);  // no connection attempt reached it
  EXPECT_EQ(proxy.counters(0).retries, retries);
  EXPECT_EQ(proxy.counters(0).requests, 3u);
  EXPECT_EQ(proxy.counters(0).breaker_opens, 1u);
}

// ---- pools and metrics ----

TEST(ProxyPool, EachIoThreadKeepsItsOwnConnections) {
  TestUpstream up(ok);
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  std::atomic<int> good{0};
  auto worker = [&] {
    Client client;
    for (int i = 0; i < 20; ++i) good += client.forward(proxy).status == 200;
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  EXPECT_EQ(good.load(), 40);
  EXPECT_EQ(up.connections(), 2);
  EXPECT_EQ(proxy.counters(0).requests, 40u);
}

TEST(ProxyPool, IdleConnectionsAreCapped) {
  TestUpstream up([](const Seen& s) { return Reply{answer(200, s.target)}; });
  Proxy proxy({{"crm", "127.0.0.1", up.port()}}, {.max_idle_per_upstream = 1});
  // Two requests in flight at once need two connections; only one is kept afterwards.
  asio::io_context ioc;
  std::vector<std::future<Outcome>> futures;
  futures.push_back(asio::co_spawn(ioc, call(proxy, 0, {.target = "/a"}), asio::use_future));
  futures.push_back(asio::co_spawn(ioc, call(proxy, 0, {.target = "/b"}), asio::use_future));
  run_until(ioc, futures);
  EXPECT_EQ(futures[0].get().body, "/a");
  EXPECT_EQ(futures[1].get().body, "/b");
  EXPECT_EQ(up.connections(), 2);
  for (int i = 0; i < 3; ++i) {
    futures.push_back(asio::co_spawn(ioc, call(proxy, 0, {.target = "/c"}), asio::use_future));
    run_until(ioc, futures);
    EXPECT_EQ(futures.back().get().status, 200);
  }
  EXPECT_EQ(up.connections(), 2);  // the kept one served the rest
}

TEST(ProxyPool, IdleConnectionsAreClosedAfterIdleTimeout) {
  TestUpstream up(ok);
  // The watchdog looks at an idle connection at least once per total_timeout; short ones keep the test short.
  Proxy proxy({{"crm", "127.0.0.1", up.port()}},
              {.connect_timeout = 50ms, .total_timeout = 150ms, .idle_timeout = 100ms});
  Client client;
  ASSERT_EQ(client.forward(proxy).status, 200);
  client.idle(20ms);
  EXPECT_EQ(up.closed(), 0);  // still pooled
  client.idle(300ms);
  for (int i = 0; i < 100 && up.closed() == 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(up.closed(), 1);  // the watchdog let it go, releasing the descriptor
  EXPECT_EQ(client.forward(proxy).status, 200);
  EXPECT_EQ(up.connections(), 2);
}

TEST(ProxyMetrics, RendersCountersPerUpstream) {
  TestUpstream up(ok);
  Proxy proxy({{"crm", "127.0.0.1", up.port()}, {"core", "127.0.0.1", closed_port()}});
  Client client;
  ASSERT_FALSE(client.forward(proxy).error);
  EXPECT_EQ(client.forward(proxy, {}, 1).error, Code::kBadGateway);
  std::string text;
  proxy.render_metrics(text);
  EXPECT_NE(text.find("cdx_upstream_requests_total{upstream=\"crm\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cdx_upstream_failures_total{upstream=\"core\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cdx_upstream_retries_total{upstream=\"core\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cdx_upstream_breaker_open{upstream=\"crm\"} 0\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace cdx::gateway
