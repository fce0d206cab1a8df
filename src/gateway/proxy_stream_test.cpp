// Bodies through the gateway as they arrive, both ways: a real http::Server whose streamed route
// forwards with the Proxy, a scripted upstream and a client on plain blocking sockets. Each test holds
// one side back until the other has seen the first part, which only streaming can satisfy.
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <thread>

#include <sys/socket.h>
#include <sys/time.h>

#include "common/error.hpp"
#include "gateway/proxy.hpp"
#include "http/metrics.hpp"
#include "http/server.hpp"

namespace cdx::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

constexpr auto kWait = 10s;  // a side that waits longer than this for the other has failed

// A byte pattern that makes lost, repeated or reordered pieces visible.
char pattern(size_t i) { return static_cast<char>('a' + (i * 7 + i / 65536) % 26); }
std::string make_body(size_t from, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = pattern(from + i);
  return s;
}
bool is_pattern(std::string_view s, size_t from = 0) {
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] != pattern(from + i)) return false;
  return true;
}

// Blocking sockets time out, so a regression fails the test instead of hanging the suite.
void bound(tcp::socket& s) {
  const timeval tv{15, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

tcp::socket connect_to(asio::io_context& ioc, uint16_t port) {
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  bound(s);
  return s;
}

// Answers one request on the upstream side with `body`.
void answer_with(tcp::socket& s, beast::flat_buffer& buffer, std::string_view body) {
  bhttp::request_parser<bhttp::string_body> p;
  bhttp::read(s, buffer, p);
  asio::write(
      s, asio::buffer(fmt::format("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}", body.size(), body)));
}

// The upstream: accepts connections one after another and runs the test's script on each.
class Upstream {
 public:
  using Script = std::function<void(tcp::socket&)>;
  explicit Upstream(Script script)
      : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), script_(std::move(script)) {
    thread_ = std::thread([this] {
      for (;;) {
        boost::system::error_code ec;
        tcp::socket s(ioc_);
        acceptor_.accept(s, ec);
        if (ec || stopping_) return;
        ++accepted_;
        bound(s);
        try {
          script_(s);
        } catch (const std::exception&) {
          // a script that fails has already recorded why
        }
      }
    });
  }
  ~Upstream() {
    stopping_ = true;
    boost::system::error_code ec;
    tcp::socket wake(ioc_);
    wake.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int accepted() const { return accepted_.load(); }

 private:
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  Script script_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// The gateway: one I/O thread, streamed routes forwarding to the upstream.
class Gateway {
 public:
  explicit Gateway(uint16_t upstream_port, ProxyOptions proxy_options = {})
      : proxy_({{"svc", "127.0.0.1", upstream_port}}, proxy_options), metrics_(router_) {
    http::RouteDoc doc;
    doc.stream_body = true;
    doc.body_limit = 256u << 20;
    auto forward = [this](http::Context& ctx) { return proxy_.forward(ctx, 0, "X-Request-ID: gw\r\n"); };
    router_.add(http::Method::kPost, "/things", forward, doc);
    router_.add(http::Method::kGet, "/things", forward, doc);
    router_.add_sync(http::Method::kPost, "/echo",
                     [](http::Context& ctx) {
                       ctx.res.set(
                           200, "text/plain",
                           std::string(ctx.req.body) + "|" + std::string(ctx.req.header("x-smuggled")));
                     },
                     {});
    router_.add(
        http::Method::kPost, "/refuse",
        [](http::Context&) -> Task<void> {
          throw Error(Code::kForbidden, "Not for you.");
          co_return;
        },
        doc);
    http::ServerOptions o;
    o.port = 0;
    o.body_timeout = 5s;
    server_ = std::make_unique<http::Server>(o, router_, metrics_, nullptr);
    port_ = server_->listen();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~Gateway() {
    server_->stop();
    thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  Proxy proxy_;
  http::Router router_;
  http::Metrics metrics_;
  std::unique_ptr<http::Server> server_;
  uint16_t port_ = 0;
  std::thread thread_;
};

template <class T>
bool ready(std::future<T>& f) {
  return f.wait_for(kWait) == std::future_status::ready;
}

// Reads one whole answer on a blocking socket.
bhttp::response<bhttp::string_body> read_answer(tcp::socket& s, beast::flat_buffer& buffer) {
  bhttp::response_parser<bhttp::string_body> p;
  p.body_limit(512u << 20);
  bhttp::read(s, buffer, p);
  return p.release();
}

TEST(ProxyStream, RequestBodyReachesTheUpstreamBeforeTheClientHasSentItAll) {
  constexpr size_t kTotal = 8u << 20, kFirst = 1u << 20;
  std::promise<void> first_seen;
  std::promise<std::string> upstream_saw;
  Upstream up([&](tcp::socket& s) {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> p;
    p.body_limit(64u << 20);
    bhttp::read_header(s, buffer, p);
    while (!p.is_done() && p.get().body().size() < kFirst) bhttp::read_some(s, buffer, p);
    first_seen.set_value();
    bhttp::read(s, buffer, p);
    const auto& req = p.get();
    upstream_saw.set_value(fmt::format("{} {} {}", req[bhttp::field::content_length], req.body().size(),
                                       is_pattern(req.body())));
    const std::string n = std::to_string(req.body().size());
    asio::write(s, asio::buffer(fmt::format("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}", n.size(), n)));
    answer_with(s, buffer, "again");  // the next request comes on the same, pooled connection
  });
  Gateway gw(up.port());

  asio::io_context ioc;
  tcp::socket client = connect_to(ioc, gw.port());
  const std::string body = make_body(0, kTotal);
  asio::write(client, asio::buffer(fmt::format("POST /things HTTP/1.1\r\nHost: gw\r\nContent-Length: {}\r\n"
                                               "Content-Type: application/octet-stream\r\n\r\n",
                                               kTotal)));
  asio::write(client, asio::buffer(body.data(), kFirst));
  auto first = first_seen.get_future();
  ASSERT_TRUE(ready(first)) << "the upstream saw nothing of the body before the client sent all of it";
  asio::write(client, asio::buffer(body.data() + kFirst, kTotal - kFirst));

  beast::flat_buffer buffer;
  const auto res = read_answer(client, buffer);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), std::to_string(kTotal));
  auto saw = upstream_saw.get_future();
  ASSERT_TRUE(ready(saw));
  EXPECT_EQ(saw.get(), fmt::format("{} {} true", kTotal, kTotal));  // Content-Length kept, bytes intact

  asio::write(client, asio::buffer(std::string_view("GET /things HTTP/1.1\r\nHost: gw\r\n\r\n")));
  EXPECT_EQ(read_answer(client, buffer).body(), "again");
  EXPECT_EQ(up.accepted(), 1) << "the upstream connection was not reused after a streamed body";
}

TEST(ProxyStream, ChunkedRequestIsRelayedChunked) {
  std::promise<void> first_seen;
  std::promise<std::string> upstream_saw;
  Upstream up([&](tcp::socket& s) {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> p;
    p.body_limit(64u << 20);
    bhttp::read_header(s, buffer, p);
    while (!p.is_done() && p.get().body().size() < 100'000) bhttp::read_some(s, buffer, p);
    first_seen.set_value();
    bhttp::read(s, buffer, p);
    upstream_saw.set_value(
        fmt::format("{} {} {}", p.chunked(), p.get().body().size(), is_pattern(p.get().body())));
    asio::write(s, asio::buffer(std::string_view("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")));
  });
  Gateway gw(up.port());

  asio::io_context ioc;
  tcp::socket client = connect_to(ioc, gw.port());
  const std::string body = make_body(0, 300'000);
  asio::write(client, asio::buffer(std::string_view(
                          "POST /things HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n")));
  asio::write(client, asio::buffer(fmt::format("{:x}\r\n{}\r\n", 100'000, body.substr(0, 100'000))));
  auto first = first_seen.get_future();
  ASSERT_TRUE(ready(first)) << "the first chunk did not reach the upstream on its own";
  asio::write(client, asio::buffer(fmt::format("{:x}\r\n{}\r\n0\r\n\r\n", 200'000, body.substr(100'000))));

  beast::flat_buffer buffer;
  const auto res = read_answer(client, buffer);
  EXPECT_EQ(res.result_int(), 201);
  EXPECT_EQ(res.body(), "ok");
  auto saw = upstream_saw.get_future();
  ASSERT_TRUE(ready(saw));
  EXPECT_EQ(saw.get(), "true 300000 true");
}

TEST(ProxyStream, LongAnswerIsRelayedAsItArrivesAndIsNotBoundByTheBufferLimit) {
  constexpr size_t kTotal = 80u << 20, kFirst = 1u << 20;  // above the 64 MiB limit of buffered answers
  std::promise<void> client_got_first;
  auto got_first = client_got_first.get_future().share();
  std::atomic<bool> waited_ok{false};
  Upstream up([&](tcp::socket& s) {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> p;
    bhttp::read(s, buffer, p);
    asio::write(s, asio::buffer(fmt::format("HTTP/1.1 200 OK\r\nContent-Type: application/x-test\r\n"
                                            "Content-Length: {}\r\n\r\n",
                                            kTotal)));
    const std::string body = make_body(0, kTotal);
    asio::write(s, asio::buffer(body.data(), kFirst));
    waited_ok = got_first.wait_for(kWait) == std::future_status::ready;
    asio::write(s, asio::buffer(body.data() + kFirst, kTotal - kFirst));
    answer_with(s, buffer, "again");  // the next request comes on the same, pooled connection
  });
  Gateway gw(up.port());

  asio::io_context ioc;
  tcp::socket client = connect_to(ioc, gw.port());
  asio::write(client, asio::buffer(std::string_view("GET /things HTTP/1.1\r\nHost: gw\r\n\r\n")));
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> p;
  p.body_limit(512u << 20);
  bhttp::read_header(client, buffer, p);
  EXPECT_EQ(p.get().result_int(), 200);
  EXPECT_EQ(p.get()[bhttp::field::content_length], std::to_string(kTotal));
  EXPECT_EQ(p.get()[bhttp::field::content_type], "application/x-test");
  while (!p.is_done() && p.get().body().size() < kFirst) bhttp::read_some(client, buffer, p);
  client_got_first.set_value();
  bhttp::read(client, buffer, p);
  EXPECT_TRUE(waited_ok) << "the client saw nothing of the answer before the upstream sent all of it";
  EXPECT_EQ(p.get().body().size(), kTotal);
  EXPECT_TRUE(is_pattern(p.get().body()));
  EXPECT_TRUE(p.keep_alive());

  asio::write(client, asio::buffer(std::string_view("GET /things HTTP/1.1\r\nHost: gw\r\n\r\n")));
  EXPECT_EQ(read_answer(client, buffer).body(), "again");
  EXPECT_EQ(up.accepted(), 1) << "the upstream connection was not reused after a relayed answer";
}

TEST(ProxyStream, AnswerOfUnknownLengthIsRelayedChunkedAndTheConnectionKept) {
  std::promise<void> client_got_first;
  auto got_first = client_got_first.get_future().share();
  std::atomic<bool> waited_ok{false};
  Upstream up([&](tcp::socket& s) {
    beast::flat_buffer buffer;
    for (;;) {  // serves requests on this connection until the gateway closes it
      bhttp::request_parser<bhttp::string_body> p;
      beast::error_code ec;
      bhttp::read(s, buffer, p, ec);
      if (ec) return;
      if (p.get().target() == "/things?small") {
        asio::write(s, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmall")));
        continue;
      }
      asio::write(s, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                                   "5\r\nfirst\r\n")));
      waited_ok = got_first.wait_for(kWait) == std::future_status::ready;
      asio::write(s, asio::buffer(std::string_view("6\r\nsecond\r\n0\r\n\r\n")));
    }
  });
  Gateway gw(up.port());

  asio::io_context ioc;
  tcp::socket client = connect_to(ioc, gw.port());
  asio::write(client, asio::buffer(std::string_view("GET /things HTTP/1.1\r\nHost: gw\r\n\r\n")));
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> p;
  bhttp::read_header(client, buffer, p);
  EXPECT_TRUE(p.chunked());
  while (!p.is_done() && p.get().body().size() < 5) bhttp::read_some(client, buffer, p);
  client_got_first.set_value();
  bhttp::read(client, buffer, p);
  EXPECT_TRUE(waited_ok);
  EXPECT_EQ(p.get().body(), "firstsecond");
  EXPECT_TRUE(p.keep_alive());

  // The same client connection carries the next request.
  asio::write(client, asio::buffer(std::string_view("GET /things?small HTTP/1.1\r\nHost: gw\r\n\r\n")));
  const auto res = read_answer(client, buffer);
  EXPECT_EQ(res.body(), "small");
}

TEST(ProxyStream, UpstreamDyingMidAnswerCutsTheClientOffAndTheGatewayGoesOn) {
  std::atomic<int> connection{0};
  Upstream up([&](tcp::socket& s) {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> p;
    bhttp::read(s, buffer, p);
    if (connection++ == 0) {
      asio::write(s, asio::buffer(fmt::format("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", 10u << 20)));
      asio::write(s, asio::buffer(make_body(0, 1u << 20)));
      s.close();  // dies with 9 MiB unsent
      return;
    }
    asio::write(s, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")));
  });
  Gateway gw(up.port());

  asio::io_context ioc;
  tcp::socket client = connect_to(ioc, gw.port());
  asio::write(client, asio::buffer(std::string_view("GET /things HTTP/1.1\r\nHost: gw\r\n\r\n")));
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> p;
  p.body_limit(64u << 20);
  bhttp::read_header(client, buffer, p);
  EXPECT_EQ(p.get().result_int(), 200);
  beast::error_code ec;
  bhttp::read(client, buffer, p, ec);
  EXPECT_EQ(ec, bhttp::error::partial_message) << ec.message();  // cut off, never a complete wrong answer
  EXPECT_EQ(p.get().body().size(), 1u << 20);

  tcp::socket again = connect_to(ioc, gw.port());
  asio::write(again, asio::buffer(std::string_view("GET /things HTTP/1.1\r\nHost: gw\r\n\r\n")));
  beast::flat_buffer buffer2;
  const auto res = read_answer(again, buffer2);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "ok");
}

TEST(ProxyStream, ClientGoingAwayMidBodyReleasesTheUpstreamConnection) {
  std::promise<std::string> upstream_end;
  Upstream up([&](tcp::socket& s) {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> p;
    p.body_limit(64u << 20);
    beast::error_code ec;
    bhttp::read(s, buffer, p, ec);
    upstream_end.set_value(ec.message());
  });
  Gateway gw(up.port());

  {
    asio::io_context ioc;
    tcp::socket client = connect_to(ioc, gw.port());
    asio::write(client, asio::buffer(fmt::format(
                            "POST /things HTTP/1.1\r\nHost: gw\r\nContent-Length: {}\r\n\r\n", 4u << 20)));
    asio::write(client, asio::buffer(make_body(0, 256u << 10)));
  }  // closed with most of the body unsent
  auto end = upstream_end.get_future();
  ASSERT_TRUE(ready(end)) << "the upstream connection was left hanging";
  EXPECT_EQ(end.get(), beast::error_code(bhttp::error::partial_message).message());
}

TEST(ProxyStream, AnswerWithoutReadingTheBodyClosesAndOwesNoContinue) {
  Upstream up([](tcp::socket&) {});
  Gateway gw(up.port());
  asio::io_context ioc;
  tcp::socket client = connect_to(ioc, gw.port());
  asio::write(client,
              asio::buffer(std::string_view("POST /refuse HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000000\r\n"
                                            "Expect: 100-continue\r\n\r\n")));
  beast::flat_buffer buffer;
  const auto res = read_answer(client, buffer);  // the first answer: no 100 Continue precedes it
  EXPECT_EQ(res.result_int(), 403);
  EXPECT_FALSE(res.keep_alive());
}

TEST(ProxyStream, ExpectContinueIsAnsweredWhenTheBodyIsWanted) {
  Upstream up([](tcp::socket& s) {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> p;
    bhttp::read(s, buffer, p);
    asio::write(s, asio::buffer(fmt::format("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
                                            p.get().body().size(), p.get().body())));
  });
  Gateway gw(up.port());
  asio::io_context ioc;
  tcp::socket client = connect_to(ioc, gw.port());
  asio::write(client,
              asio::buffer(std::string_view("POST /things HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n"
                                            "Expect: 100-continue\r\n\r\n")));
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::empty_body> interim;
  bhttp::read_header(client, buffer, interim);
  EXPECT_EQ(interim.get().result_int(), 100);
  asio::write(client, asio::buffer(std::string_view("hello")));
  const auto res = read_answer(client, buffer);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "hello");
}

TEST(ProxyStream, TrailerFieldsNeverPassForHeaders) {
  std::promise<std::string> upstream_saw;
  Upstream up([&](tcp::socket& s) {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> p;
    bhttp::read(s, buffer, p);
    upstream_saw.set_value(fmt::format("{}|{}", p.get().body(), p.get().count("x-smuggled")));
    asio::write(s, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")));
  });
  Gateway gw(up.port());
  asio::io_context ioc;
  tcp::socket client = connect_to(ioc, gw.port());
  const std::string first = make_body(0, 70'000);  // more than comes with the header: the body streams
  asio::write(client, asio::buffer(fmt::format("POST /things HTTP/1.1\r\nHost: gw\r\nX-Request-ID: mine-1\r\n"
                                               "Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n",
                                               first.size(), first)));
  asio::write(client,
              asio::buffer(std::string_view("0\r\nX-Smuggled: yes\r\nX-Request-ID: trailer\r\n\r\n")));
  beast::flat_buffer buffer;
  const auto res = read_answer(client, buffer);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res["X-Request-ID"], "mine-1");  // the header's, intact after the body was read
  auto saw = upstream_saw.get_future();
  ASSERT_TRUE(ready(saw));
  EXPECT_EQ(saw.get(), first + "|0");

  // A buffered route: trailers are not headers there either.
  asio::write(client, asio::buffer(std::string_view(
                          "POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "2\r\nhi\r\n0\r\nX-Smuggled: yes\r\n\r\n")));
  const auto echo = read_answer(client, buffer);
  EXPECT_EQ(echo.body(), "hi|");
}

TEST(ProxyStream, AnHttp10ClientGetsAnAnswerOfUnknownLengthEndedByClose) {
  Upstream up([](tcp::socket& s) {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> p;
    bhttp::read(s, buffer, p);
    asio::write(s, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                                 "5\r\nfirst\r\n6\r\nsecond\r\n0\r\n\r\n")));
  });
  Gateway gw(up.port());
  asio::io_context ioc;
  tcp::socket client = connect_to(ioc, gw.port());
  asio::write(client, asio::buffer(std::string_view("GET /things HTTP/1.0\r\n\r\n")));
  std::string raw;
  boost::system::error_code ec;
  char chunk[4096];
  for (;;) {
    const size_t n = client.read_some(asio::buffer(chunk), ec);
    if (ec) break;
    raw.append(chunk, n);
  }
  EXPECT_EQ(ec, asio::error::eof) << ec.message();
  const size_t end = raw.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos) << raw;
  const std::string head = raw.substr(0, end);
  EXPECT_EQ(head.find("Transfer-Encoding"), std::string::npos) << head;  // HTTP/1.0 has no chunks
  EXPECT_NE(head.find("Connection: close"), std::string::npos) << head;
  EXPECT_EQ(raw.substr(end + 4), "firstsecond");
}

TEST(ProxyStream, HeadGetsTheServicesLengthWithoutItsBody) {
  std::promise<std::string> method;
  Upstream up([&](tcp::socket& s) {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::empty_body> p;
    bhttp::read(s, buffer, p);
    method.set_value(std::string(p.get().method_string()));
    asio::write(s, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n"
                                                 "Content-Length: 12345\r\n\r\n")));
    answer_with(s, buffer, "after");
  });
  Gateway gw(up.port());
  asio::io_context ioc;
  tcp::socket client = connect_to(ioc, gw.port());
  asio::write(client, asio::buffer(std::string_view("HEAD /things HTTP/1.1\r\nHost: gw\r\n\r\n")));
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::empty_body> head;
  head.skip(true);
  bhttp::read(client, buffer, head);
  EXPECT_EQ(head.get().result_int(), 200);
  EXPECT_EQ(head.get()[bhttp::field::content_length], "12345");
  EXPECT_EQ(head.get()[bhttp::field::content_type], "text/csv");
  auto m = method.get_future();
  ASSERT_TRUE(ready(m));
  EXPECT_EQ(m.get(), "HEAD");  // the service answers HEAD itself: no body crosses the hop
  // Nothing of a body followed the head: the next answer on the connection is read cleanly.
  asio::write(client, asio::buffer(std::string_view("GET /things HTTP/1.1\r\nHost: gw\r\n\r\n")));
  EXPECT_EQ(read_answer(client, buffer).body(), "after");
}

// The live feed: an event stream passes each piece on as it comes however long it lasts (its pieces come
// further apart than the total timeout), and the upstream goes as soon as the client does.
TEST(ProxyStream, AnEventStreamOutlivesTheTotalTimeoutAndEndsWithItsClient) {
  constexpr int kPieces = 3;
  std::promise<void> upstream_released;
  Upstream up([&](tcp::socket& s) {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> p;
    bhttp::read(s, buffer, p);
    asio::write(
        s, asio::buffer(std::string_view(
               "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")));
    for (int i = 0; i < kPieces; ++i) {
      const std::string msg = fmt::format("id: {}\nevent: e\ndata: {{}}\n\n", i + 1);
      asio::write(s, asio::buffer(fmt::format("{:x}\r\n{}\r\n", msg.size(), msg)));
      std::this_thread::sleep_for(600ms);  // longer than the gateway's total timeout
    }
    char c;
    boost::system::error_code ec;
    s.read_some(asio::buffer(&c, 1), ec);  // the gateway sends nothing more: this ends when it closes
    if (ec == asio::error::eof || ec == asio::error::connection_reset) upstream_released.set_value();
  });
  ProxyOptions o;
  o.total_timeout = 400ms;
  Gateway gw(up.port(), o);

  asio::io_context ioc;
  tcp::socket client = connect_to(ioc, gw.port());
  asio::write(client, asio::buffer(std::string_view("GET /things HTTP/1.1\r\nHost: gw\r\n\r\n")));
  std::string got;
  std::array<char, 4096> buf;
  const auto t0 = std::chrono::steady_clock::now();
  while (got.find(fmt::format("id: {}\n", kPieces)) == std::string::npos &&
         std::chrono::steady_clock::now() - t0 < kWait) {
    boost::system::error_code ec;
    const size_t n = client.read_some(asio::buffer(buf), ec);
    ASSERT_FALSE(ec) << "the stream was cut: " << ec.message() << "\n" << got;
    got.append(buf.data(), n);
  }
  EXPECT_NE(got.find("text/event-stream"), std::string::npos) << got;
  for (int i = 1; i <= kPieces; ++i)
    EXPECT_NE(got.find(fmt::format("id: {}\n", i)), std::string::npos) << got;
  EXPECT_EQ(got.find("504"), std::string::npos) << got;

  client.close();
  auto released = upstream_released.get_future();
  EXPECT_EQ(released.wait_for(2s), std::future_status::ready)
      << "the upstream was held after the client left";
}

// After an outage the half-open breaker's one probe may be a reconnecting event stream: the breaker closes
// when its head is relayed (the upstream answered), not when the stream ends, so the service's other
// requests are admitted while it lasts.
TEST(ProxyStream, AnEventStreamThatProbesTheBreakerClosesItWithItsHead) {
  std::atomic<int> requests{0};
  std::promise<void> stream_released;
  struct Joined {  // holds the stream's upstream side while the test goes on; joined after the upstream's
    std::thread t;
    ~Joined() {
      if (t.joinable()) t.join();
    }
  } stream_thread;
  Upstream up([&](tcp::socket& s) {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> p;
    bhttp::read(s, buffer, p);
    const int n = requests++;
    if (n == 0) {  // the outage: opens the breaker (one failure is enough here)
      asio::write(
          s, asio::buffer(std::string_view(
                 "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown")));
      return;
    }
    if (n == 1) {  // the probe: an event stream that lasts until its client leaves
      asio::write(s, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                                   "Transfer-Encoding: chunked\r\n\r\n")));
      const std::string msg = "id: 1\nevent: e\ndata: {}\n\n";
      asio::write(s, asio::buffer(fmt::format("{:x}\r\n{}\r\n", msg.size(), msg)));
      stream_thread.t = std::thread([&stream_released, sock = std::move(s)]() mutable {
        char c;
        boost::system::error_code ec;
        sock.read_some(asio::buffer(&c, 1), ec);  // until the gateway lets go
        stream_released.set_value();
      });
      return;
    }
    asio::write(s, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n"
                                                 "Connection: close\r\n\r\nfine")));
  });
  ProxyOptions o;
  o.breaker_failures = 1;
  o.breaker_open = 200ms;
  Gateway gw(up.port(), o);
  asio::io_context ioc;
  auto get = [&] {
    tcp::socket c = connect_to(ioc, gw.port());
    asio::write(c, asio::buffer(std::string_view("GET /things HTTP/1.1\r\nHost: gw\r\n\r\n")));
    beast::flat_buffer buffer;
    return read_answer(c, buffer);
  };

  EXPECT_EQ(get().result_int(), 503);  // the upstream's own 503: the breaker opens
  const auto refused = get();
  EXPECT_EQ(refused.result_int(), 503);
  EXPECT_NE(refused.body().find("unavailable"), std::string::npos) << refused.body();  // the breaker's
  EXPECT_EQ(requests.load(), 1);
  std::this_thread::sleep_for(300ms);  // half-open: the next request is the probe

  tcp::socket stream = connect_to(ioc, gw.port());
  asio::write(stream, asio::buffer(std::string_view("GET /things HTTP/1.1\r\nHost: gw\r\n\r\n")));
  std::string got;
  std::array<char, 4096> buf;
  const auto t0 = std::chrono::steady_clock::now();
  while (got.find("id: 1\n") == std::string::npos && std::chrono::steady_clock::now() - t0 < kWait) {
    boost::system::error_code ec;
    const size_t n = stream.read_some(asio::buffer(buf), ec);
    ASSERT_FALSE(ec) << ec.message() << "\n" << got;
    got.append(buf.data(), n);
  }
  ASSERT_NE(got.find("text/event-stream"), std::string::npos) << got;

  // The stream is still open: another request goes through to the upstream.
  const auto after = get();
  EXPECT_EQ(after.result_int(), 200) << after.body();
  EXPECT_EQ(after.body(), "fine");
  EXPECT_EQ(requests.load(), 3);

  stream.close();
  auto released = stream_released.get_future();
  EXPECT_EQ(released.wait_for(2s), std::future_status::ready)
      << "the upstream was held after the client left";
}

// An event stream whose upstream sends nothing, not even a heartbeat, for event_stream_quiet is gone: the
// gateway lets go of both sides.
TEST(ProxyStream, AQuietEventStreamEndsAfterItsQuietLimit) {
  std::promise<void> upstream_released;
  Upstream up([&](tcp::socket& s) {
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> p;
    bhttp::read(s, buffer, p);
    asio::write(s, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                                 "Transfer-Encoding: chunked\r\n\r\n")));
    const std::string msg = "id: 1\nevent: e\ndata: {}\n\n";
    asio::write(s, asio::buffer(fmt::format("{:x}\r\n{}\r\n", msg.size(), msg)));
    char c;
    boost::system::error_code ec;
    s.read_some(asio::buffer(&c, 1), ec);  // silent until the gateway closes
    upstream_released.set_value();
  });
  ProxyOptions o;
  o.total_timeout = 5s;  // the quiet limit, not the total timeout, bounds an event stream
  o.event_stream_quiet = 400ms;
  Gateway gw(up.port(), o);

  asio::io_context ioc;
  tcp::socket client = connect_to(ioc, gw.port());
  asio::write(client, asio::buffer(std::string_view("GET /things HTTP/1.1\r\nHost: gw\r\n\r\n")));
  const auto t0 = std::chrono::steady_clock::now();
  std::string got;
  std::array<char, 4096> buf;
  boost::system::error_code ec;
  while (!ec) {
    const size_t n = client.read_some(asio::buffer(buf), ec);
    got.append(buf.data(), n);
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_NE(got.find("id: 1\n"), std::string::npos) << got;
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_GE(took, 350ms);
  EXPECT_LT(took, 3s) << "the stream outlived its quiet limit";
  auto released = upstream_released.get_future();
  EXPECT_EQ(released.wait_for(2s), std::future_status::ready) << "the upstream was held";
}

}  // namespace
}  // namespace cdx::gateway
