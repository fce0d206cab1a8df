#include "webhooks/client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <unordered_map>

#include "common/clock.hpp"
#include "webhooks/schedule.hpp"

namespace cdx::webhooks {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

std::string utf8_excerpt(std::string_view s, size_t max) {
  std::string out;
  out.reserve(std::min(s.size(), max));
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (ok && c == 0) ok = false;  // NUL is not stored
    const std::string_view piece = ok ? s.substr(i, n) : std::string_view("\xEF\xBF\xBD");
    if (out.size() + piece.size() > max) break;
    out.append(piece);
    i += ok ? n : 1;
  }
  return out;
}

namespace {

// One connection to a vetted address, plain or TLS.
struct Connection {
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  std::string key;  // scheme, name, port and address: what a POST must be going to, to reuse it
  std::chrono::steady_clock::time_point idle_since;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  // Whether the receiver has not closed it (nor sent anything unasked, which would spoil the next answer).
  bool alive() {
    char byte;
    const ssize_t n = ::recv(lowest().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
};

}  // namespace

class Client::Pool {
 public:
  explicit Pool(asio::io_context& io) : sweep_(io) {}

  // The most recently used live connection under key, or null.
  std::unique_ptr<Connection> take(const std::string& key) {
    auto it = idle_.find(key);
    if (it == idle_.end()) return nullptr;
    std::unique_ptr<Connection> found;
    auto& list = it->second;
    while (!found && !list.empty()) {
      std::unique_ptr<Connection> c = std::move(list.back());
      list.pop_back();
      --count_;
      if (std::chrono::steady_clock::now() - c->idle_since < kIdleFor && c->alive()) found = std::move(c);
    }
    if (list.empty()) idle_.erase(it);
    return found;
  }

  void put(std::unique_ptr<Connection> c) {
    if (count_ >= kIdleMax) return;  // closed as it goes
    auto& list = idle_[c->key];
    if (list.size() >= kIdlePerKey) return;
    c->lowest().expires_never();
    c->idle_since = std::chrono::steady_clock::now();
    list.push_back(std::move(c));
    ++count_;
    arm();
  }

 private:
  // Closes what has been idle kIdleFor, every few seconds while anything is idle.
  void arm() {
    if (armed_) return;
    armed_ = true;
    sweep_.expires_after(std::chrono::seconds(5));
    sweep_.async_wait([this](error_code ec) {
      armed_ = false;
      if (ec) return;
      const auto now = std::chrono::steady_clock::now();
      for (auto it = idle_.begin(); it != idle_.end();) {
        auto& list = it->second;
        const size_t before = list.size();
        std::erase_if(list, [&](const auto& c) { return now - c->idle_since >= kIdleFor; });
        count_ -= before - list.size();
        it = list.empty() ? idle_.erase(it) : std::next(it);
      }
      if (count_ > 0) arm();
    });
  }

  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;  // oldest first
  size_t count_ = 0;
  asio::steady_timer sweep_;
  bool armed_ = false;
};

Client::~Client() = default;

Client::Client(asio::io_context& io, Options options)
    : io_(io), options_(options), tls_(asio::ssl::context::tls_client), pool_(std::make_unique<Pool>(io)) {
  tls_.set_default_verify_paths();
  tls_.set_verify_mode(asio::ssl::verify_peer);
  tls_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
}

namespace {

std::string describe(const error_code& ec, std::chrono::milliseconds timeout) {
  if (ec == beast::error::timeout) return "timed out after " + std::to_string(timeout.count()) + " ms";
  if (ec == asio::error::connection_reset) return "connection reset by the receiver";
  if (ec == asio::error::connection_refused) return "connection refused";
  if (ec == http::error::end_of_stream || ec == asio::error::eof) return "the receiver closed the connection";
  return ec.message();
}

// Writes req and reads the answer into out. keep: the whole answer came and allows another request on the
// connection; answered: some of an answer came (or the wait timed out), so the request must not go again.
template <class Stream>
Task<void> exchange(Stream& stream, const http::request<http::string_body>& req, SendResult& out,
                    error_code& ec, bool& keep, bool& answered) {
  keep = answered = false;
  co_await http::async_write(stream, req, asio::redirect_error(use_task, ec));
  if (ec) {
    answered = ec == beast::error::timeout;
    co_return;
  }
  beast::flat_buffer buf;
  std::optional<http::response_parser<http::string_body>> parser;
  // An interim answer (100 Continue, 103 Early Hints) comes before the final one: read on, a few at most.
  for (int interim = 0;; ++interim) {
    parser.emplace();
    parser->body_limit(64 * 1024);
    co_await http::async_read(stream, buf, *parser, asio::redirect_error(use_task, ec));
    answered = answered || parser->got_some() || ec == beast::error::timeout;
    const unsigned status = parser->is_header_done() ? parser->get().result_int() : 0;
    if (ec || status < 100 || status >= 200 || status == 101 || interim == 4) break;
  }
  // Kept only after a whole final answer that allows it, with nothing read beyond it: the next request on
  // the connection must read its own answer.
  keep = !ec && parser->is_done() && parser->get().result_int() >= 200 && parser->get().keep_alive() &&
         buf.size() == 0;
  if (ec == http::error::body_limit) ec = {};  // the head and a first part of the body are all we keep
  if (ec && !parser->is_header_done()) co_return;
  ec = {};
  const auto& res = parser->get();
  out.status = static_cast<int>(res.result_int());
  out.excerpt = utf8_excerpt(res.body(), 1024);
  if (auto it = res.find(http::field::retry_after); it != res.end())
    out.retry_after =
        parse_retry_after(std::string_view(it->value().data(), it->value().size()), Clock::unix_seconds());
}

std::string key_of(const Url& url, const tcp::endpoint& to) {
  return (url.tls ? "https " : "http ") + url.host + ' ' + std::to_string(to.port()) + ' ' +
         to.address().to_string();
}

// A new connection to one of the vetted endpoints, TLS handshake done for https; null, with out.error, when
// none could be made.
Task<std::unique_ptr<Connection>> open(asio::io_context& io, asio::ssl::context& tls_context, const Url& url,
                                       const std::vector<tcp::endpoint>& endpoints,
                                       std::chrono::steady_clock::time_point deadline,
                                       std::chrono::milliseconds timeout, SendResult& out) {
  error_code ec;
  beast::tcp_stream tcp_stream(io);
  tcp_stream.expires_at(deadline);
  const tcp::endpoint to = co_await tcp_stream.async_connect(endpoints, asio::redirect_error(use_task, ec));
  if (ec) {
    out.error = "cannot connect to " + url.host_header() + ": " + describe(ec, timeout);
    co_return nullptr;
  }
  auto c = std::make_unique<Connection>();
  c->key = key_of(url, to);
  if (!url.tls) {
    c->plain.emplace(std::move(tcp_stream));
    co_return c;
  }
  auto& tls = c->tls.emplace(std::move(tcp_stream), tls_context);
  error_code not_ip;
  asio::ip::make_address(url.host, not_ip);
  if (not_ip && !SSL_set_tlsext_host_name(tls.native_handle(), url.host.c_str())) {
    out.error = "cannot set the TLS server name";
    co_return nullptr;
  }
  tls.set_verify_callback(asio::ssl::host_name_verification(url.host));
  co_await tls.async_handshake(asio::ssl::stream_base::client, asio::redirect_error(use_task, ec));
  if (ec) {
    out.error = "TLS handshake with " + url.host_header() + " failed: " + describe(ec, timeout);
    co_return nullptr;
  }
  co_return c;
}

}  // namespace

Task<SendResult> Client::post(const Url& url, const std::string& body, const Headers& headers,
                              const std::string& group) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + options_.timeout;
  SendResult out;
  auto done = [&] {
    out.latency_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
            .count();
    return out;
  };
  error_code ec;
  std::vector<tcp::endpoint> endpoints;
  const auto literal = asio::ip::make_address(url.host, ec);
  if (!ec) {
    endpoints.emplace_back(literal, url.port);
  } else {
    // Looked up on the resolver's pool (one slow name holds one of its threads, never this io thread), the
    // wait bounded by the attempt's deadline: the answer, when it comes, cancels the timer.
    struct Wait {
      asio::steady_timer timer;
      std::optional<Resolver::Answer> answer;
      explicit Wait(asio::io_context& io) : timer(io) {}
    };
    auto w = std::make_shared<Wait>(io_);
    w->timer.expires_at(deadline);
    resolver_.resolve(url.host, group, [w, ex = io_.get_executor()](const Resolver::Answer& a) {
      asio::post(ex, [w, a] {
        w->answer = a;
        w->timer.cancel();
      });
    });
    ec = {};
    co_await w->timer.async_wait(asio::redirect_error(use_task, ec));
    if (!w->answer) {
      out.error = "resolving " + url.host + " timed out";
      co_return done();
    }
    if (!w->answer->error.empty()) {
      out.error = "cannot resolve " + url.host + ": " + w->answer->error;
      co_return done();
    }
    for (const auto& a : w->answer->addresses) endpoints.emplace_back(a, url.port);
  }
  // Every address the name has must pass: one refused address refuses the name (a record set mixing public
  // and private addresses is how DNS rebinding reaches inside).
  for (const auto& e : endpoints) {
    if (auto why = refused(e.address(), options_.allow_loopback)) {
      out.refused = true;
      out.error = "refused by the SSRF guard: " + url.host + " resolves to " + *why;
      co_return done();
    }
  }
  http::request<http::string_body> req{http::verb::post, url.target, 11};
  req.set(http::field::host, url.host_header());
  req.set(http::field::user_agent, "CDX-Webhooks/1.0");
  req.set(http::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();

  std::unique_ptr<Connection> c;
  for (const auto& e : endpoints)
    if ((c = pool_->take(key_of(url, e)))) break;
  bool reused = c != nullptr, keep = false, answered = false;
  for (;;) {
    if (!c) {
      c = co_await open(io_, tls_, url, endpoints, deadline, options_.timeout, out);
      if (!c) co_return done();
    }
    c->lowest().expires_at(deadline);
    if (c->tls)
      co_await exchange(*c->tls, req, out, ec, keep, answered);
    else
      co_await exchange(*c->plain, req, out, ec, keep, answered);
    if (!ec || !reused || answered) break;
    // The receiver closed the reused connection before answering: once more, on a new one.
    reused = false;
    c.reset();
    ec = {};
  }
  if (ec) out.error = describe(ec, options_.timeout);
  if (keep) pool_->put(std::move(c));
  co_return done();
}

}  // namespace cdx::webhooks
