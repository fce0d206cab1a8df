#include <benchmark/benchmark.h>

#include <utility>
#include <boost/asio.hpp>

#include <array>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gateway/proxy.hpp"

namespace cdx::gateway {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;

// The cheapest possible upstream: one fixed keep-alive answer per request head (bodyless GETs), so
// the numbers are mostly the proxy's own cost plus two loopback hops.
class RawUpstream {
 public:
  RawUpstream() : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(ioc_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~RawUpstream() {
    ioc_.stop();
    thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  static constexpr std::string_view kAnswer =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\nCache-Control: no-store\r\n\r\n"
      "{\"id\":\"c_1\",\"name\":\"Acme\"}\n";

  Task<void> accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      Socket s = co_await acceptor_.async_accept(asio::redirect_error(use_task, ec));
      if (ec) co_return;
      s.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(ioc_, session(std::move(s)), asio::detached);
    }
  }
  Task<void> session(Socket s) {
    std::array<char, 65536> in;
    std::string out;
    size_t matched = 0;  // bytes of "\r\n\r\n" seen at the end of the previous read
    boost::system::error_code ec;
    for (;;) {
      const size_t n = co_await s.async_read_some(asio::buffer(in), asio::redirect_error(use_task, ec));
      if (ec) co_return;
      out.clear();
      for (size_t i = 0; i < n; ++i) {
        const char want = "\r\n\r\n"[matched];
        matched = in[i] == want ? matched + 1 : (in[i] == '\r' ? 1 : 0);
        if (matched == 4) {
          out += kAnswer;
          matched = 0;
        }
      }
      if (!out.empty()) co_await asio::async_write(s, asio::buffer(out), asio::redirect_error(use_task, ec));
      if (ec) co_return;
    }
  }

  asio::io_context ioc_;
  Acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
};

// Runs handlers until `done` reaches `target`. Not run(): pooled connections keep their watchdog
// timers pending, so the context never runs out of work.
void run_until(asio::io_context& ioc, size_t& done, size_t target) {
  done = 0;
  ioc.restart();
  while (done < target) ioc.run_one();
}

void fill_request(http::Context& ctx) {
  ctx.req.method = http::Method::kGet;
  ctx.req.target = "/api/v1/crm/companies/c_1?expand=contacts";
  ctx.req.headers = {{"Host", "api.example.com"},
                     {"User-Agent", "bench/1.0"},
                     {"Accept", "application/json"},
                     {"Accept-Encoding", "gzip, br"},
                     {"Authorization", "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1XzEifQ.c2ln"},
                     {"X-Tenant-ID", "acme"},
                     {"Connection", "keep-alive"},
                     {"X-Request-ID", "client-1"}};
}

constexpr std::string_view kExtra =
    "X-CDX-Assertion: v1.eyJzdWIiOiJ1XzEiLCJ0ZW5hbnQiOiJhY21lIn0.c2lnbmF0dXJl\r\n"
    "X-Request-ID: 0123abcd-000000000000001\r\n"
    "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n";

// One request at a time: the latency of a proxied GET over a pooled connection.
void BM_ProxyGetSequential(benchmark::State& state) {
  RawUpstream up;
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  asio::io_context ioc;
  http::Context ctx;
  fill_request(ctx);
  size_t done = 0;
  auto one = [&]() -> Task<void> {
    ctx.res.body.clear();
    ctx.res.header_lines.clear();
    co_await proxy.forward(ctx, 0, kExtra);
    ++done;
  };
  for (auto _ : state) {
    asio::co_spawn(ioc, one(), asio::detached);
    run_until(ioc, done, 1);
  }
  if (ctx.res.status != 200) state.SkipWithError("upstream did not answer 200");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ProxyGetSequential)->UseRealTime();

// Many requests in flight on one I/O thread: throughput, with as many pooled connections.
void BM_ProxyGetConcurrent(benchmark::State& state) {
  const auto in_flight = static_cast<size_t>(state.range(0));
  RawUpstream up;
  Proxy proxy({{"crm", "127.0.0.1", up.port()}});
  asio::io_context ioc;
  std::vector<http::Context> ctxs(in_flight);
  for (auto& ctx : ctxs) fill_request(ctx);
  size_t done = 0;
  auto one = [&](http::Context& ctx) -> Task<void> {
    ctx.res.body.clear();
    ctx.res.header_lines.clear();
    co_await proxy.forward(ctx, 0, kExtra);
    ++done;
  };
  for (auto _ : state) {
    for (auto& ctx : ctxs) asio::co_spawn(ioc, one(ctx), asio::detached);
    run_until(ioc, done, in_flight);
  }
  for (const auto& ctx : ctxs)
    if (ctx.res.status != 200) state.SkipWithError("upstream did not answer 200");
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(in_flight));
}
BENCHMARK(BM_ProxyGetConcurrent)->Arg(16)->Arg(64)->UseRealTime();

}  // namespace
}  // namespace cdx::gateway
