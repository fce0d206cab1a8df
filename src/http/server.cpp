// The connection loop. Per connection: one coroutine reading into a reused buffer, the request parser
// for framing (http/request_parser.hpp: limits, CL/TE conflicts, chunked), responses serialised into a
// reused string and written once per batch of pipelined requests, and a watchdog coroutine enforcing
// deadlines without a timer operation per request.
#include "http/server.hpp"

#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)

#include <fmt/format.h>
#include <boost/asio.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <charconv>
#include <cstring>
#include <ctime>
#include <limits>
#include <random>
#include <thread>
#include <unordered_set>

#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <unordered_map>

#include "common/access_log.hpp"
#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "http/request_parser.hpp"

namespace cdx::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
// Concrete executor types: no type-erased executor on the per-request path.
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;
using Timer = asio::basic_waitable_timer<SteadyClock, asio::wait_traits<SteadyClock>, Executor>;

namespace {

// clang-format off
std::string_view status_line(int status) {
  switch (status) {
    case 100: return "HTTP/1.1 100 Continue\r\n";
    case 200: return "HTTP/1.1 200 OK\r\n";
    case 201: return "HTTP/1.1 201 Created\r\n";
    case 202: return "HTTP/1.1 202 Accepted\r\n";
    case 204: return "HTTP/1.1 204 No Content\r\n";
    case 301: return "HTTP/1.1 301 Moved Permanently\r\n";
    case 302: return "HTTP/1.1 302 Found\r\n";
    case 303: return "HTTP/1.1 303 See Other\r\n";
    case 304: return "HTTP/1.1 304 Not Modified\r\n";
    case 400: return "HTTP/1.1 400 Bad Request\r\n";
    case 401: return "HTTP/1.1 401 Unauthorized\r\n";
    case 403: return "HTTP/1.1 403 Forbidden\r\n";
    case 404: return "HTTP/1.1 404 Not Found\r\n";
    case 405: return "HTTP/1.1 405 Method Not Allowed\r\n";
    case 408: return "HTTP/1.1 408 Request Timeout\r\n";
    case 409: return "HTTP/1.1 409 Conflict\r\n";
    case 413: return "HTTP/1.1 413 Content Too Large\r\n";
    case 415: return "HTTP/1.1 415 Unsupported Media Type\r\n";
    case 422: return "HTTP/1.1 422 Unprocessable Content\r\n";
    case 429: return "HTTP/1.1 429 Too Many Requests\r\n";
    case 431: return "HTTP/1.1 431 Request Header Fields Too Large\r\n";
    case 500: return "HTTP/1.1 500 Internal Server Error\r\n";
    case 502: return "HTTP/1.1 502 Bad Gateway\r\n";
    case 503: return "HTTP/1.1 503 Service Unavailable\r\n";
    case 504: return "HTTP/1.1 504 Gateway Timeout\r\n";
    default: return {};
  }
}
// clang-format on

// "Date: …\r\n", rebuilt at most once a second per thread.
std::string_view date_header() {
  thread_local time_t last = 0;
  thread_local char buf[64];
  thread_local size_t len = 0;
  const time_t now = std::time(nullptr);
  if (now != last) {
    last = now;
    std::tm tm{};
    gmtime_r(&now, &tm);
    len = std::strftime(buf, sizeof buf, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
  }
  return {buf, len};
}

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':' ||
          c == '/' || c == '+' || c == '=' || c == '@'))
      return false;
  return true;
}

// Request ids: a random per-thread prefix and a counter; unique, cheap, allocation-free.
size_t mint_request_id(char* out) {
  thread_local char prefix[9] = {0};
  thread_local uint64_t counter = 0;
  if (!prefix[0]) {
    static const char kAlphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    std::random_device rd;
    for (int i = 0; i < 8; ++i) prefix[i] = kAlphabet[rd() % 36];
  }
  std::memcpy(out, prefix, 8);
  out[8] = '-';
  static const char* kHex = "0123456789abcdef";
  uint64_t n = ++counter;
  for (int i = 23; i >= 9; --i, n >>= 4) out[i] = kHex[n & 15];
  return 24;
}

struct Conn : std::enable_shared_from_this<Conn> {
  Conn(Socket s, log::AccessBuffer* log, std::string from)
      : sock(std::move(s)), timer(sock.get_executor()), access_log(log), client(std::move(from)) {}
  Socket sock;
  Timer timer;
  SteadyClock::time_point deadline;
  bool idle = true;   // waiting for the first byte of a request: may be closed at once on drain
  bool busy = false;  // a handler runs: the watchdog leaves it alone
  bool closed = false;
  log::AccessBuffer* access_log;      // the shard's, or nullptr when the access log is off
  std::string client;                 // the peer's address, counted against the per-client cap
  std::function<void()> stop_stream;  // a watched long-lived answer's (AnswerStream::watch)
};

struct Shard {
  // A shard's sockets and timers are only touched from its own thread (accepted sockets are handed
  // over as raw descriptors), so the reactor can skip its per-descriptor locks. Posts from other
  // threads (worker completions, drain) still go through the locked scheduler.
  asio::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::unordered_set<Conn*> conns;  // touched only on this shard's thread
  // This thread's access-log lines, written in blocks (see flush_access_log); only this thread appends.
  std::unique_ptr<log::AccessBuffer> access_log;
};

}  // namespace

struct Server::Impl {
  ServerOptions opts;
  const Router& router;
  Metrics& metrics;
  const Chain* chain;
  std::vector<std::unique_ptr<Shard>> shards;
  std::unique_ptr<Acceptor> acceptor;
  std::atomic<bool> draining{false};
  std::atomic<int64_t> live{0};
  size_t next_shard = 0;
  size_t max_live = 1024;  // set by listen()
  std::mutex clients_mu;   // taken once per connection, never per request
  std::unordered_map<std::string, size_t> clients;

  // Counts a new connection of `client`; false when it would pass a cap.
  bool admit(const std::string& client) {
    if (static_cast<size_t>(live.load()) >= max_live) return false;
    if (opts.max_connections_per_client == 0) return true;
    std::lock_guard lock(clients_mu);
    size_t& n = clients[client];
    if (n >= opts.max_connections_per_client) return false;
    ++n;
    return true;
  }
  void release(const std::string& client) {
    if (opts.max_connections_per_client == 0) return;
    std::lock_guard lock(clients_mu);
    auto it = clients.find(client);
    if (it != clients.end() && --it->second == 0) clients.erase(it);
  }
  // Over a cap: a canned 503 on the fresh socket (its send buffer is empty, so this never blocks) and
  // close, without a coroutine, a timer or a parse: refusing costs about what accepting did.
  void refuse(Socket& sock) {
    static const std::string kAnswer = [] {
      const std::string body =
          R"({"type":"https://docs.cdx.dev/problems/service_unavailable","title":"Service unavailable","status":503,)"
          R"("detail":"Too many open connections; retry shortly."})";
      return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nRetry-After: "
             "1\r\n"
             "Connection: close\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body;
    }();
    ::send(sock.native_handle(), kAnswer.data(), kAnswer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    boost::system::error_code ec;
    sock.shutdown(Socket::shutdown_both, ec);
    sock.close(ec);
    metrics.connection_refused();
  }

  Impl(ServerOptions o, const Router& r, Metrics& m, const Chain* a)
      : opts(std::move(o)), router(r), metrics(m), chain(a) {
    const int n = std::max(1, opts.threads);
    for (int i = 0; i < n; ++i) {
      shards.push_back(std::make_unique<Shard>());
      if (log::FileSink* sink = log::access())
        shards.back()->access_log = std::make_unique<log::AccessBuffer>(*sink);
    }
  }

  // A quiet server's lines still appear promptly: what a shard's buffer holds goes out every 500 ms (a
  // busy one writes whenever the buffer fills). The last lines are written once the threads stopped.
  static Task<void> flush_access_log(Shard& shard) {
    Timer t(shard.ioc);
    boost::system::error_code ec;
    for (;;) {
      t.expires_after(std::chrono::milliseconds(500));
      co_await t.async_wait(asio::redirect_error(use_task, ec));
      shard.access_log->flush();
    }
  }

  Task<void> accept_loop() {
    for (;;) {
      Shard& shard = *shards[next_shard];
      next_shard = (next_shard + 1) % shards.size();
      boost::system::error_code ec;
      Socket sock = co_await acceptor->async_accept(asio::redirect_error(use_task, ec));
      if (ec) {
        if (!acceptor->is_open() || draining) co_return;
        if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
          log::error("accept failed; pausing", {{"error", ec.message()}});
          Timer t(acceptor->get_executor(), std::chrono::milliseconds(100));
          co_await t.async_wait(asio::redirect_error(use_task, ec));
        }
        continue;
      }
      std::string client;
      if (auto peer = sock.remote_endpoint(ec); !ec) client = peer.address().to_string();
      if (!admit(client)) {
        refuse(sock);
        continue;
      }
      sock.set_option(tcp::no_delay(true), ec);
      live.fetch_add(1);
      if (&shard == shards[0].get()) {
        start_session(std::move(sock), shard, std::move(client));
        continue;
      }
      const auto protocol = sock.local_endpoint(ec).protocol();
      const int fd = sock.release(ec);
      if (ec) {
        live.fetch_sub(1);
        release(client);
        continue;
      }
      asio::post(shard.ioc, [this, &shard, protocol, fd, client = std::move(client)]() mutable {
        Socket s(shard.ioc);
        boost::system::error_code e;
        s.assign(protocol, fd, e);
        if (e) {
          ::close(fd);
          live.fetch_sub(1);
          release(client);
          return;
        }
        start_session(std::move(s), shard, std::move(client));
      });
    }
  }

  void start_session(Socket sock, Shard& shard, std::string client) {
    auto conn = std::make_shared<Conn>(std::move(sock), shard.access_log.get(), std::move(client));
    asio::co_spawn(shard.ioc, session(conn, shard), asio::detached);
  }

  Task<void> watchdog(std::shared_ptr<Conn> c) {
    boost::system::error_code ec;
    while (!c->closed) {
      // At least once a second: a deadline brought forward (the first byte of a request ends the idle
      // wait, whose deadline is far later) is enforced on time.
      c->timer.expires_at(std::min(c->deadline, SteadyClock::now() + std::chrono::seconds(1)));
      co_await c->timer.async_wait(asio::redirect_error(use_task, ec));
      if (c->closed) break;
      if (c->busy) {
        c->deadline = SteadyClock::now() + std::chrono::seconds(1);
        continue;
      }
      if (SteadyClock::now() >= c->deadline) {
        c->sock.close(ec);  // wakes the pending read or write with an error
        break;
      }
    }
  }

  // Renders an error in the one problem+json shape.
  static void render_error(Context& ctx, const Error& e) {
    ctx.res.status = info(e.code()).status;
    ctx.res.content_type = "application/problem+json";
    ctx.res.body = render_problem(e, ctx.request_id);
    ctx.res.static_body = {};
    ctx.res.static_fd = -1;
    ctx.res.headers.clear();
    bool challenge = false;
    for (const auto& [k, v] : e.headers()) {
      ctx.res.headers.emplace_back(k, v);
      challenge = challenge || boost::beast::iequals(k, "www-authenticate");
    }
    // RFC 9110 §11.6.1: every 401 carries a challenge, whichever layer raised it.
    if (e.code() == Code::kUnauthorized && !challenge)
      ctx.res.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"cdx\"");
  }

  static void render_unexpected(Context& ctx, const std::exception_ptr& ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const Error& e) {
      // A dependency that failed (a database) says why in what(); the client gets only the detail.
      if (e.code() == Code::kServiceUnavailable && e.what() != e.detail().c_str())
        log::error("dependency unavailable", {{"request_id", ctx.request_id}, {"error", e.what()}});
      render_error(ctx, e);
    } catch (const std::exception& e) {
      log::error("unhandled exception", {{"request_id", ctx.request_id}, {"error", e.what()}});
      render_error(ctx,
                   Error(Code::kInternal, "An unexpected error occurred; quote the request id to support."));
    } catch (...) {
      log::error("unhandled non-standard exception", {{"request_id", ctx.request_id}});
      render_error(ctx,
                   Error(Code::kInternal, "An unexpected error occurred; quote the request id to support."));
    }
  }

  static bool is_json(std::string_view ct) {
    const size_t semi = ct.find(';');
    std::string_view media = ct.substr(0, semi);
    while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
    return boost::beast::iequals(media, "application/json") ||
           (media.size() > 5 && boost::beast::iequals(media.substr(media.size() - 5), "+json"));
  }

  // Checks that cannot complete synchronously go through here.
  Task<void> dispatch(Context& ctx, const Route& route) {
    try {
      if (route.doc.access != Access::kPublic || opts.authenticate_public) {
        if (!chain) throw Error(Code::kServiceUnavailable, "No middleware chain is configured.");
        if (auto rest = chain->start(ctx, route)) co_await std::move(*rest);  // its steps, then the handler
      } else if (route.sync_handler) {
        route.sync_handler(ctx);
      } else if (!route.fast_handler || !route.fast_handler(ctx)) {
        co_await route.async_handler(ctx);
      }
    } catch (...) {
      render_unexpected(ctx, std::current_exception());
    }
  }

  // Routes one parsed request; returns a non-null route only when the handler must be awaited.
  const Route* route_request(Context& ctx, const Match& m) {
    try {
      if (!m.route) {
        if (m.path_found && ctx.req.method == Method::kOptions) {
          ctx.res.status = 204;
          ctx.res.header("Allow", std::string(m.allow));
          // CORS preflight: answered without credentials (browsers send none). The real request is
          // checked against the tenant's allowed origins once its credential names the tenant.
          if (std::string_view origin = ctx.req.header("origin");
              !origin.empty() && !ctx.req.header("access-control-request-method").empty()) {
            ctx.res.header("Access-Control-Allow-Origin", std::string(origin));
            ctx.res.header("Access-Control-Allow-Methods", std::string(m.allow));
            ctx.res.header(
                "Access-Control-Allow-Headers",
                "Authorization, Content-Type, X-API-Key, X-Tenant-ID, X-Request-ID, Idempotency-Key");
            ctx.res.header("Access-Control-Max-Age", "600");
            ctx.res.header("Vary", "Origin");
          }
          return nullptr;
        }
        if (m.path_found)
          throw Error(Code::kMethodNotAllowed,
                      fmt::format("{} is not allowed on {}.", method_name(ctx.req.method), ctx.req.path))
              .with_header("Allow", std::string(m.allow));
        throw Error(Code::kNotFound, fmt::format("No route matches {}.", ctx.req.path));
      }
      const Route& route = *m.route;
      ctx.route_id = route.id;
      if (!route.doc.request_schema.empty() && (!ctx.req.body.empty() || ctx.req.body_stream) &&
          !is_json(ctx.req.header("content-type")))
        throw Error(Code::kUnsupportedMediaType,
                    "The request body must be JSON (Content-Type: application/json).");
      if (route.doc.access == Access::kPublic && route.sync_handler && !opts.authenticate_public) {
        route.sync_handler(ctx);
        return nullptr;
      }
      if (route.doc.access == Access::kPublic && route.fast_handler && !opts.authenticate_public &&
          route.fast_handler(ctx))
        return nullptr;
      return &route;
    } catch (...) {
      render_unexpected(ctx, std::current_exception());
      return nullptr;
    }
  }

  // How an answer's body is delimited.
  enum class Framing : uint8_t { kLength, kChunked, kClose };

  static constexpr size_t kLargeBody = 64 * 1024;
  static constexpr size_t kLargeStaticBody = 16 * 1024;
  // A static body up to this size goes by sendfile(2); a larger one by a gathered write from memory, which
  // measured faster there (bench/dashboard_bench.py: a 185 KiB script at 0.75× nginx by sendfile, 1.0×
  // gathered; its 62 KiB gzip form at 0.72× gathered, 0.99× by sendfile).
  static constexpr size_t kSendfileMax = 128 * 1024;

  void serialize(Context& ctx, bool head_only, bool close, std::string& out) {
    const std::string_view body = ctx.res.body_view();
    serialize_head(ctx, Framing::kLength, body.size(), close, out);
    const bool bodyless = ctx.res.status == 204 || ctx.res.status == 304;
    if (!bodyless && !head_only) out += body;
  }

  // The head, then a body held in a file, by sendfile(2): the kernel puts the file's pages in the socket
  // without a copy from user memory. The head goes first with MSG_MORE, so head and body leave in full
  // segments. False when the client is gone or the connection's deadline closed the socket.
  static Task<bool> send_file(Conn& c, const std::string& head, int fd, uint64_t offset, size_t length) {
    boost::system::error_code ec;
    if (!c.sock.native_non_blocking()) c.sock.native_non_blocking(true, ec);
    const int sock = c.sock.native_handle();
    size_t sent = 0;
    while (sent < head.size()) {
      const ssize_t n = ::send(sock, head.data() + sent, head.size() - sent, MSG_MORE | MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        co_await c.sock.async_wait(Socket::wait_write, asio::redirect_error(use_task, ec));
        if (ec) co_return false;
      } else if (n < 0 && errno != EINTR) {
        co_return false;
      }
    }
    auto at = static_cast<off_t>(offset);
    while (length > 0) {
      const ssize_t n = ::sendfile(sock, fd, &at, length);
      if (n > 0) {
        length -= static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        co_await c.sock.async_wait(Socket::wait_write, asio::redirect_error(use_task, ec));
        if (ec) co_return false;
      } else if (n == 0 || errno != EINTR) {
        co_return false;
      }
    }
    co_return true;
  }

  // Status line and headers.
  static void serialize_head(Context& ctx, Framing framing, uint64_t length, bool close, std::string& out) {
    Response& res = ctx.res;
    std::string_view line = status_line(res.status);
    if (line.empty()) {
      out += "HTTP/1.1 ";
      out += std::to_string(res.status);
      out += " Status\r\n";
    } else {
      out += line;
    }
    out += "Server: cdx\r\n";
    out += date_header();
    const bool bodyless = res.status == 204 || res.status == 304;
    if (!bodyless) {
      out += "Content-Type: ";
      out += res.content_type;
      out += "\r\n";
      if (framing == Framing::kLength) {
        out += "Content-Length: ";
        char num[24];
        auto [p, _] = std::to_chars(num, num + sizeof num, length);
        out.append(num, p);
        out += "\r\n";
      } else if (framing == Framing::kChunked) {
        out += "Transfer-Encoding: chunked\r\n";
      }
    }
    out += "X-Request-ID: ";
    out += ctx.request_id;
    out += "\r\n";
    for (const auto& [k, v] : res.headers) {
      out += k;
      out += ": ";
      out += v;
      out += "\r\n";
    }
    out += res.header_lines;
    if (close) out += "Connection: close\r\n";
    out += "\r\n";
  }

  // One line into the connection's shard buffer: formatted in place, written with the buffer's next block.
  static void access_log(const Conn& c, const Context& ctx, std::string_view method, int status,
                         SteadyClock::duration took) {
    if (!c.access_log) return;
    log::AccessLine line;
    line.method = method;
    line.path = ctx.req.path;
    line.status = status;
    line.duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(took).count();
    line.request_id = ctx.request_id;
    line.remote = ctx.req.remote;
    if (ctx.principal) line.principal = ctx.principal->id;
    if (ctx.tenant) line.tenant_id = ctx.tenant->tenant_id();
    // W3C Trace Context: the trace this request belongs to (the gateway forwards one to every service).
    line.trace_id = w3c_trace_id(ctx.req.header("traceparent"));
    clock_gettime(CLOCK_REALTIME, &line.time);
    c.access_log->append(line);
  }

  // What one connection's loop owns, shared with the streamed body and answer of its current request.
  struct Io {
    Conn& c;
    std::vector<char> in = std::vector<char>(16 * 1024);
    size_t start = 0, end = 0;  // unparsed input is in[start, end)
    std::string out;            // answers not yet written (pipelining)
    std::optional<RequestParser> parser;

    // Writes from inside a handler, bounded by `timeout`: the watchdog ignores a busy connection, so the
    // write lifts the flag for its duration. False when the client is gone or stopped reading.
    template <typename Buffers>
    Task<bool> write(const Buffers& buffers, std::chrono::milliseconds timeout) {
      boost::system::error_code ec;
      const bool busy = c.busy;
      c.busy = false;
      c.deadline = coarse_now() + timeout;
      co_await asio::async_write(c.sock, buffers, asio::redirect_error(use_task, ec));
      c.busy = busy;
      co_return !ec;
    }
    // Writes what `out` holds (answers to earlier pipelined requests, a head).
    Task<bool> flush(std::chrono::milliseconds timeout) {
      if (out.empty()) co_return true;
      const std::array<asio::const_buffer, 1> b{asio::buffer(out)};
      const bool ok = co_await write(b, timeout);
      out.clear();
      co_return ok;
    }
  };

  // The rest of a body the handler reads as it arrives: the parser is fed from the connection's
  // buffer and socket, and its body callback fills the body string with one piece at a time.
  class StreamedBody final : public BodyStream {
   public:
    StreamedBody(Impl& impl, Io& io, std::string& body) : impl_(impl), io_(io), body_(body) {}

    void start(bool expect_continue) {
      active_ = true;
      continue_due_ = expect_continue;
    }
    void stop() { active_ = false; }
    // The handler did not read the whole body: the connection cannot carry another request.
    bool unread() const { return active_ && !io_.parser->is_done(); }

    std::optional<uint64_t> length() const override {
      auto n = io_.parser->content_length();
      return n ? std::optional<uint64_t>(*n) : std::nullopt;
    }

    Task<std::string_view> next() override {
      RequestParser& parser = *io_.parser;
      body_.clear();
      if (!active_) co_return std::string_view{};
      Conn& c = io_.c;
      for (;;) {
        if (parser.is_done()) co_return std::string_view{};
        if (io_.start < io_.end) {
          boost::beast::error_code perr;
          const size_t n = parser.feed(io_.in.data() + io_.start, io_.end - io_.start, perr);
          io_.start += n;
          if (perr == bhttp::error::need_more) perr = {};
          if (perr) throw request_error(perr, impl_.opts.header_limit, parser.applied_body_limit);
          if (io_.start == io_.end) io_.start = io_.end = 0;
          if (!body_.empty()) co_return std::string_view(body_);
          if (n > 0) continue;
        }
        // Need more bytes: first what is owed (earlier pipelined answers, then 100 Continue, only now
        // that the handler wants the body), then read.
        if (continue_due_) {
          io_.out += "HTTP/1.1 100 Continue\r\n\r\n";
          continue_due_ = false;
        }
        const bool flushed = co_await io_.flush(impl_.opts.body_timeout);
        if (!flushed) throw gone();
        if (io_.start > 0) {
          std::memmove(io_.in.data(), io_.in.data() + io_.start, io_.end - io_.start);
          io_.end -= io_.start;
          io_.start = 0;
        }
        // What waits unparsed is a chunk header or the trailers (body bytes pass at once): no more room
        // than a header gets.
        if (io_.end > impl_.opts.header_limit)
          throw request_error(bhttp::error::header_limit, impl_.opts.header_limit, parser.applied_body_limit);
        if (io_.end == io_.in.size()) {
          if (io_.in.size() >= kStreamBuffer)
            throw Error(Code::kInvalidRequest, "Malformed chunked request body.");
          io_.in.resize(kStreamBuffer);
        }
        boost::system::error_code ec;
        c.busy = false;  // a client that sends nothing for the body timeout is cut off
        c.deadline = coarse_now() + impl_.opts.body_timeout;
        const size_t n =
            co_await c.sock.async_read_some(asio::buffer(io_.in.data() + io_.end, io_.in.size() - io_.end),
                                            asio::redirect_error(use_task, ec));
        c.busy = true;
        if (ec) throw gone();
        io_.end += n;
      }
    }

   private:
    static constexpr size_t kStreamBuffer = 64 * 1024;
    static Error gone() {
      return Error(Code::kRequestTimeout,
                   "The request body did not arrive in time, or the client went away.");
    }
    Impl& impl_;
    Io& io_;
    std::string& body_;
    bool active_ = false;
    bool continue_due_ = false;
  };

  // An answer the handler writes in pieces: the head goes out with whatever answers to earlier
  // pipelined requests are pending, then each piece (chunk-framed when the length is unknown).
  class StreamedAnswer final : public AnswerStream {
   public:
    StreamedAnswer(Impl& impl, Io& io, Context& ctx, StreamedBody& body)
        : impl_(impl), io_(io), ctx_(ctx), body_(body) {}

    void reset(bool head_only) {
      head_only_ = head_only;
      started_ = finished_ = chunked_ = bodyless_ = close_ = false;
      write_timeout_ = impl_.opts.body_timeout;
      status_ = 0;
    }
    bool started() const { return started_; }
    bool finished() const { return finished_; }
    bool close() const { return close_; }
    int status() const { return status_; }

    Task<void> begin(std::optional<uint64_t> length) override {
      if (started_) throw std::logic_error("answer already begun");
      started_ = true;
      status_ = ctx_.res.status;
      bodyless_ = status_ == 204 || status_ == 304;
      // A body of unknown length is chunked for HTTP/1.1; an HTTP/1.0 client knows no chunks, so its
      // body ends with the connection.
      const bool http11 = io_.parser->http11();
      chunked_ = !length && !bodyless_ && http11;
      close_ =
          !io_.parser->keep_alive() || impl_.draining || body_.unread() || (!length && !bodyless_ && !http11);
      const Framing framing = length ? Framing::kLength : chunked_ ? Framing::kChunked : Framing::kClose;
      impl_.serialize_head(ctx_, framing, length.value_or(0), close_, io_.out);
      const bool flushed = co_await io_.flush(impl_.opts.body_timeout);
      if (!flushed) throw gone();
    }

    Task<void> write(std::string_view piece) override {
      if (!started_) throw std::logic_error("answer not begun");
      if (piece.empty() || head_only_ || bodyless_) co_return;
      char size_line[24];
      size_t size_len = 0;
      if (chunked_) {
        auto [p, _] = std::to_chars(size_line, size_line + 20, piece.size(), 16);
        *p++ = '\r';
        *p++ = '\n';
        size_len = static_cast<size_t>(p - size_line);
      }
      const std::array<asio::const_buffer, 3> buffers{asio::buffer(size_line, size_len), asio::buffer(piece),
                                                      asio::buffer("\r\n", chunked_ ? 2 : 0)};
      co_await send(buffers);
    }

    Task<void> write_many(std::span<const std::string_view> pieces) override {
      if (!started_) throw std::logic_error("answer not begun");
      if (head_only_ || bodyless_) co_return;
      size_t total = 0;
      for (std::string_view p : pieces) total += p.size();
      if (total == 0) co_return;
      char size_line[24];
      size_t size_len = 0;
      if (chunked_) {
        auto [p, _] = std::to_chars(size_line, size_line + 20, total, 16);
        *p++ = '\r';
        *p++ = '\n';
        size_len = static_cast<size_t>(p - size_line);
      }
      gather_.clear();
      gather_.push_back(asio::buffer(size_line, size_len));
      for (std::string_view p : pieces)
        if (!p.empty()) gather_.push_back(asio::buffer(p));
      if (chunked_) gather_.push_back(asio::buffer("\r\n", 2));
      co_await send(gather_);
      if (gather_.capacity() > 4096) gather_ = {};  // a burst's list is not kept for the stream's life
    }

    Task<void> finish() override {
      if (!started_) throw std::logic_error("answer not begun");
      if (finished_) co_return;
      if (chunked_ && !head_only_) {
        const std::array<asio::const_buffer, 1> last{asio::buffer("0\r\n\r\n", 5)};
        co_await send(last);
      }
      finished_ = true;
    }

    void watch(std::function<void()> stop, size_t send_buffer) override {
      if (!started_) throw std::logic_error("answer not begun");
      close_ = true;  // the watcher reads the socket: nothing after this answer can be parsed
      if (send_buffer > 0) {
        boost::system::error_code ec;
        io_.c.sock.set_option(asio::socket_base::send_buffer_size(static_cast<int>(send_buffer)), ec);
      }
      if (io_.c.stop_stream) {
        io_.c.stop_stream = std::move(stop);
        return;
      }
      io_.c.stop_stream = std::move(stop);
      asio::co_spawn(io_.c.sock.get_executor(), watch_peer(io_.c.shared_from_this()), asio::detached);
      if (impl_.draining) io_.c.stop_stream();  // begun after the drain's call to the watched answers
    }

    void set_write_timeout(std::chrono::milliseconds timeout) override { write_timeout_ = timeout; }

   private:
    static Error gone() { return Error(Code::kRequestTimeout, "The client stopped reading the answer."); }

    // Reads (and drops) what the client sends until it closes: then the watched answer is told to stop.
    // Ends when the session closes the socket; the session clears stop_stream first.
    static Task<void> watch_peer(std::shared_ptr<Conn> c) {
      std::array<char, 512> sink;
      boost::system::error_code ec;
      while (!ec && !c->closed)
        co_await c->sock.async_read_some(asio::buffer(sink), asio::redirect_error(use_task, ec));
      if (auto stop = std::move(c->stop_stream)) {
        c->stop_stream = nullptr;
        stop();
      }
    }

    template <typename Buffers>
    Task<void> send(const Buffers& buffers) {
      const bool sent = co_await io_.write(buffers, write_timeout_);
      if (!sent) throw gone();
    }

    Impl& impl_;
    Io& io_;
    Context& ctx_;
    StreamedBody& body_;
    bool head_only_ = false, started_ = false, finished_ = false, chunked_ = false, bodyless_ = false;
    bool close_ = false;
    int status_ = 0;
    std::chrono::milliseconds write_timeout_{0};
    std::vector<asio::const_buffer> gather_;  // write_many's buffers, reused
  };

  Task<void> lingering_close(Conn& c) {
    // Read and drop what the client still sends so it can read our error instead of a reset.
    boost::system::error_code ec;
    c.sock.shutdown(Socket::shutdown_send, ec);
    c.deadline = SteadyClock::now() + std::chrono::seconds(5);
    std::array<char, 16384> sink;
    size_t total = 0;
    while (!ec && total < (256u << 20)) {
      total += co_await c.sock.async_read_some(asio::buffer(sink), asio::redirect_error(use_task, ec));
    }
  }

  Task<void> session(std::shared_ptr<Conn> c, Shard& shard) {
    shard.conns.insert(c.get());
    metrics.connection_opened();
    c->deadline = SteadyClock::now() + opts.header_timeout;
    asio::co_spawn(shard.ioc, watchdog(c), asio::detached);
    try {
      co_await serve_connection(*c);
    } catch (const std::exception& e) {
      log::error("connection failed", {{"error", e.what()}});
    }
    c->closed = true;
    boost::system::error_code ec;
    c->timer.cancel();
    c->sock.close(ec);
    shard.conns.erase(c.get());
    metrics.connection_closed();
    live.fetch_sub(1);
    release(c->client);
  }

  Task<void> serve_connection(Conn& c) {
    boost::system::error_code ec;
    const std::string remote = [&] {
      auto ep = c.sock.remote_endpoint(ec);
      return ec ? std::string() : ep.address().to_string();
    }();
    Io io{c};
    std::vector<char>& in = io.in;
    size_t& start = io.start;
    size_t& end = io.end;
    std::string& out = io.out;
    std::optional<RequestParser>& parser = io.parser;
    std::string head, body;
    std::vector<RequestParser::FieldSpan> fields;
    char request_id[24];
    Context ctx;
    ctx.req.remote = remote;
    StreamedBody streamed_body(*this, io, body);
    StreamedAnswer streamed_answer(*this, io, ctx, streamed_body);
    bool served = false;

    for (;;) {
      ctx.reset();
      streamed_body.stop();
      parser.emplace(head, body, fields);
      parser->configure(opts.header_limit, opts.body_limit, &router);
      c.idle = start == end;
      // A new connection owes its first request within the header timeout; the idle keep-alive timeout
      // is for a connection that has served one.
      c.deadline = coarse_now() + (c.idle && served ? opts.idle_timeout : opts.header_timeout);
      served = true;
      // A request's time runs from its first byte: already here (pipelined), or when the next read brings it.
      SteadyClock::time_point t0 = c.idle ? SteadyClock::time_point{} : precise_now();
      bool sent_continue = false;
      bool header_seen = false;
      bool streaming = false;  // the handler reads the rest of the body
      boost::beast::error_code perr;

      for (;;) {
        if (start < end) {
          start += parser->feed(in.data() + start, end - start, perr);
          if (perr == bhttp::error::need_more) perr = {};
          if (perr || parser->is_done()) break;
          if (parser->is_header_done() && !header_seen) {
            header_seen = true;
            c.deadline = coarse_now() + opts.body_timeout;
            // A streamed route's handler is called now; it owes 100 Continue only if it reads the body.
            if (parser->stream) {
              streaming = true;
              break;
            }
            if (parser->expect_continue && !sent_continue) {
              out += "HTTP/1.1 100 Continue\r\n\r\n";
              sent_continue = true;
            }
          }
        }
        if (!out.empty()) {  // flush answers to pipelined requests before waiting for input
          co_await asio::async_write(c.sock, asio::buffer(out), asio::redirect_error(use_task, ec));
          out.clear();
          if (ec) co_return;
        }
        if (start == end) {
          start = end = 0;
        } else if (start > 0 && (parser->is_header_done() || start > in.size() / 2)) {
          std::memmove(in.data(), in.data() + start, end - start);
          end -= start;
          start = 0;
        }
        if (end == in.size()) {
          // Body bytes are taken as they come: what waits after the header is a chunk header or the
          // trailers, which Beast reads whole; they get no more room than a header.
          const size_t room = parser->is_header_done() ? opts.header_limit : opts.header_limit + 65536;
          if (end - start > room) {
            perr = bhttp::error::header_limit;
            break;
          }
          in.resize(in.size() * 2);
        }
        if (draining && c.idle) co_return;
        const size_t n = co_await c.sock.async_read_some(asio::buffer(in.data() + end, in.size() - end),
                                                         asio::redirect_error(use_task, ec));
        if (ec) co_return;  // peer closed, reset, or the watchdog closed a slow client
        if (c.idle) {
          c.idle = false;
          t0 = precise_now();
          c.deadline = coarse_now() + opts.header_timeout;
        }
        end += n;
      }

      const size_t id_len = mint_request_id(request_id);
      ctx.request_id = {request_id, id_len};

      if (perr) {
        const Error e = request_error(perr, opts.header_limit, parser->applied_body_limit);
        render_error(ctx, e);
        serialize(ctx, false, true, out);
        const auto took = precise_now() - t0;
        metrics.record(-1, ctx.res.status, std::chrono::duration<double>(took).count());
        access_log(c, ctx, "-", ctx.res.status, took);
        const bool flushed = co_await io.flush(opts.body_timeout);
        if (flushed) co_await lingering_close(c);
        co_return;
      }

      // Build the request view over the kept header.
      Request& req = ctx.req;
      req.method = to_method(parser->verb);
      req.target = std::string_view(head).substr(parser->target.off, parser->target.len);
      const size_t qmark = req.target.find('?');
      req.path = req.target.substr(0, qmark);
      req.query = qmark == std::string_view::npos ? std::string_view{} : req.target.substr(qmark + 1);
      for (const auto& f : fields)
        req.headers.push_back({std::string_view(head).substr(f.name.off, f.name.len),
                               std::string_view(head).substr(f.value.off, f.value.len)});
      req.body = body;
      if (streaming) {
        streamed_body.start(parser->expect_continue);
        req.body_stream = &streamed_body;
      }
      if (parser->stream_answer) {
        streamed_answer.reset(req.method == Method::kHead);
        ctx.answer_stream = &streamed_answer;
      }
      if (std::string_view given = req.header("x-request-id"); valid_request_id(given))
        ctx.request_id = given;

      c.busy = true;
      ctx.req.params = parser->params;
      if (const Route* route = route_request(ctx, parser->match)) co_await dispatch(ctx, *route);
      c.busy = false;
      c.stop_stream = nullptr;  // a watched answer is over

      // A body the handler left unread cannot be skipped safely: answer, then close.
      const bool unread = streamed_body.unread();
      if (ctx.answer_stream && streamed_answer.started()) {
        const auto took = precise_now() - t0;
        metrics.record(ctx.route_id, streamed_answer.status(), std::chrono::duration<double>(took).count());
        access_log(c, ctx, method_name(req.method), streamed_answer.status(), took);
        // An answer cut short (the handler failed after its head went out) ends with the connection.
        if (!streamed_answer.finished() || streamed_answer.close()) {
          if (streamed_answer.finished() && unread) co_await lingering_close(c);
          co_return;
        }
        continue;
      }

      const bool keep = parser->keep_alive() && !draining && !unread;
      // A large body (an import's report) goes out from where it is, after the head: copied into `out` it
      // would be held twice, and `out` would keep its size for the connection's life. So does a static body
      // of more than a few pages (a dashboard script): no copy at all.
      const std::string_view body = ctx.res.body_view();
      const bool large = body.size() > (ctx.res.static_body.data() ? kLargeStaticBody : kLargeBody) &&
                         req.method != Method::kHead && ctx.res.status != 204 && ctx.res.status != 304;
      if (large)
        serialize_head(ctx, Framing::kLength, body.size(), !keep, out);
      else
        serialize(ctx, req.method == Method::kHead, !keep, out);
      const auto t1 = precise_now();
      metrics.record(ctx.route_id, ctx.res.status, std::chrono::duration<double>(t1 - t0).count());
      access_log(c, ctx, method_name(req.method), ctx.res.status, t1 - t0);

      if (!keep || start == end || large) {
        // Written here rather than through Io::flush: one coroutine frame fewer per request.
        c.deadline = t1 + opts.body_timeout;
        if (large && ctx.res.static_fd >= 0 && body.size() <= kSendfileMax) {
          if (!co_await send_file(c, out, ctx.res.static_fd, ctx.res.static_offset, body.size())) co_return;
        } else if (large) {
          const std::array<asio::const_buffer, 2> both{asio::buffer(out),
                                                       asio::buffer(body.data(), body.size())};
          co_await asio::async_write(c.sock, both, asio::redirect_error(use_task, ec));
          if (!ctx.res.static_body.data()) ctx.res.body = std::string();
        } else {
          co_await asio::async_write(c.sock, asio::buffer(out), asio::redirect_error(use_task, ec));
        }
        out.clear();
        if (ec) co_return;
        if (!keep) {
          if (unread) co_await lingering_close(c);
          co_return;
        }
      }
    }
  }

  Task<void> drain() {
    draining = true;
    boost::system::error_code ec;
    if (acceptor) acceptor->close(ec);
    for (auto& s : shards) {
      asio::post(s->ioc, [shard = s.get()] {
        for (Conn* c : shard->conns) {
          boost::system::error_code e;
          if (c->idle && !c->busy) c->sock.cancel(e);
          if (c->stop_stream) c->stop_stream();  // a long-lived answer (an event stream) ends now
        }
      });
    }
    const auto deadline = SteadyClock::now() + opts.drain_timeout;
    Timer t(shards[0]->ioc);
    while (live.load() > 0 && SteadyClock::now() < deadline) {
      t.expires_after(std::chrono::milliseconds(20));
      co_await t.async_wait(asio::redirect_error(use_task, ec));
    }
    if (live.load() > 0) log::warn("drain timeout; closing remaining connections", {{"open", live.load()}});
    for (auto& s : shards) s->ioc.stop();
  }
};

Server::Server(ServerOptions options, const Router& router, Metrics& metrics, const Chain* chain)
    : impl_(std::make_unique<Impl>(std::move(options), router, metrics, chain)) {}

Server::~Server() = default;

uint16_t Server::listen() {
  auto& ioc = impl_->shards[0]->ioc;
  const auto address = asio::ip::make_address(impl_->opts.host);
  tcp::endpoint ep(address, impl_->opts.port);
  impl_->acceptor = std::make_unique<Acceptor>(ioc);
  impl_->acceptor->open(ep.protocol());
  impl_->acceptor->set_option(asio::socket_base::reuse_address(true));
  impl_->acceptor->bind(ep);
  impl_->acceptor->listen(asio::socket_base::max_listen_connections);
  // As many descriptors as the system lets us have; connections stay below them, with a reserve for
  // database connections, files and the service clients, so accept never fails for want of one.
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  const size_t fds = lim.rlim_cur == RLIM_INFINITY ? size_t{1} << 20 : static_cast<size_t>(lim.rlim_cur);
  const size_t room = fds > 256 ? fds - 128 : fds / 2;
  impl_->max_live = impl_->opts.max_connections ? std::min(impl_->opts.max_connections, room) : room;
  return impl_->acceptor->local_endpoint().port();
}

void Server::run() {
  asio::co_spawn(impl_->shards[0]->ioc, impl_->accept_loop(), asio::detached);
  for (auto& s : impl_->shards)
    if (s->access_log) asio::co_spawn(s->ioc, Impl::flush_access_log(*s), asio::detached);
  std::vector<std::thread> threads;
  for (size_t i = 1; i < impl_->shards.size(); ++i) {
    threads.emplace_back([this, i] {
      auto guard = asio::make_work_guard(impl_->shards[i]->ioc);
      impl_->shards[i]->ioc.run();
    });
  }
  {
    auto guard = asio::make_work_guard(impl_->shards[0]->ioc);
    impl_->shards[0]->ioc.run();
  }
  for (auto& t : threads) t.join();
  // Every I/O thread has stopped: the last lines of each go out now, so none is lost at exit.
  for (auto& s : impl_->shards)
    if (s->access_log) s->access_log->flush();
}

void Server::stop() {
  asio::post(impl_->shards[0]->ioc, [this] {
    if (impl_->draining.exchange(true)) return;
    asio::co_spawn(impl_->shards[0]->ioc, impl_->drain(), asio::detached);
  });
}

}  // namespace cdx::http
