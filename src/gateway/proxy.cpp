// Forwarding over pooled HTTP/1.1 connections. Per request: one coroutine frame; one header block
// built in a reused buffer and written together with the body in one gather write; the answer framed
// by Beast's basic_parser straight into ctx.res (no intermediate message object); deadlines kept by a
// per-connection watchdog that closes the socket when time runs out, with no timer operation per
// request. Idle connections live in an Asio service of the io_context they were opened on, one stack
// per (proxy, thread, upstream), so they are closed with that io_context and never cross threads.
#include "gateway/proxy.hpp"

#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)

#include <fmt/format.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <sys/socket.h>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/log.hpp"

namespace cdx::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Timer = asio::basic_waitable_timer<SteadyClock, asio::wait_traits<SteadyClock>, Executor>;
using http::Method;

namespace internal {

// Cache-line aligned: the counters of one upstream are bumped from every I/O thread.
struct alignas(64) UpstreamState {
  tcp::endpoint endpoint;
  std::string host_line;  // "Host: 127.0.0.1:3102\r\n", for clients that sent none (HTTP/1.0)
  std::string name;

  std::atomic<int> consecutive_failures{0};
  std::atomic<int64_t> open_until{0};  // steady-clock ns; 0 while closed
  std::atomic<bool> probing{false};    // the one half-open probe is in flight

  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> failures{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> breaker_opens{0};
};

}  // namespace internal

using internal::UpstreamState;

namespace {

constexpr size_t kReadChunk = 32 * 1024;
constexpr uint32_t kResponseHeaderLimit = 64 * 1024;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch()).count();
}

bool idempotent(Method m) {
  return m == Method::kGet || m == Method::kHead || m == Method::kPut || m == Method::kDelete ||
         m == Method::kOptions;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Appends the tokens of a Connection header that name other headers ("close" and "keep-alive" name
// none that survive anyway), comma-terminated.
void collect_connection_tokens(std::string_view value, std::string& out) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view token = trim(value.substr(0, comma));
    if (!token.empty() && !beast::iequals(token, "close") && !beast::iequals(token, "keep-alive")) {
      out.append(token);
      out += ',';
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

bool listed(std::string_view tokens, std::string_view name) {
  while (!tokens.empty()) {
    const size_t comma = tokens.find(',');
    if (beast::iequals(tokens.substr(0, comma), name)) return true;
    if (comma == std::string_view::npos) break;
    tokens.remove_prefix(comma + 1);
  }
  return false;
}

bool hop_by_hop(bhttp::field f) {
  switch (f) {
    case bhttp::field::connection:
    case bhttp::field::keep_alive:
    case bhttp::field::proxy_connection:
    case bhttp::field::proxy_authenticate:
    case bhttp::field::proxy_authorization:
    case bhttp::field::te:
    case bhttp::field::trailer:
    case bhttp::field::transfer_encoding:
    case bhttp::field::upgrade:
      return true;
    default:
      return false;
  }
}

enum class RequestHeader : uint8_t { kForward, kDrop, kHost };

RequestHeader classify_request_header(std::string_view name) {
  // Internal headers: only the gateway speaks them (in `extra`), never a client.
  if (name.size() >= 6 && beast::iequals(name.substr(0, 6), "x-cdx-")) return RequestHeader::kDrop;
  // The caller forwards its own request id, trace context and client address: a module must not be
  // able to mistake a client's claim for the gateway's.
  if (beast::iequals(name, "x-request-id") || beast::iequals(name, "traceparent") ||
      beast::iequals(name, "x-forwarded-for") || beast::iequals(name, "forwarded") ||
      beast::iequals(name, "x-real-ip"))
    return RequestHeader::kDrop;
  const bhttp::field f = bhttp::string_to_field(name);
  if (hop_by_hop(f) || f == bhttp::field::content_length || f == bhttp::field::expect)
    return RequestHeader::kDrop;
  return f == bhttp::field::host ? RequestHeader::kHost : RequestHeader::kForward;
}

void append_number(std::string& out, uint64_t n) {
  char num[24];
  auto [p, _] = std::to_chars(num, num + sizeof num, n);
  out.append(num, p);
}

// The request head: request line, the client's end-to-end headers, Content-Length, `extra`, blank line.
void build_head(std::string& out, std::string& tokens, const http::Request& req, std::string_view extra,
                const UpstreamState& st) {
  out.clear();
  tokens.clear();
  for (const http::Header& h : req.headers)
    if (beast::iequals(h.name, "connection")) collect_connection_tokens(h.value, tokens);

  out += http::method_name(req.method);
  out += ' ';
  out += req.target;
  out += " HTTP/1.1\r\n";
  bool host = false;
  for (const http::Header& h : req.headers) {
    const RequestHeader kind = classify_request_header(h.name);
    if (kind == RequestHeader::kDrop) continue;
    if (!tokens.empty() && listed(tokens, h.name)) continue;
    host = host || kind == RequestHeader::kHost;
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  if (!host) out += st.host_line;
  if (req.body_stream) {
    if (const auto length = req.body_stream->length()) {
      out += "Content-Length: ";
      append_number(out, *length);
      out += "\r\n";
    } else {
      out += "Transfer-Encoding: chunked\r\n";
    }
  } else if (!req.body.empty() || req.method == Method::kPost || req.method == Method::kPut ||
             req.method == Method::kPatch) {
    out += "Content-Length: ";
    append_number(out, req.body.size());
    out += "\r\n";
  }
  out += extra;
  out += "\r\n";
}

// Frames the upstream's answer and writes it straight into the response: status, content type (into
// content_type_storage), body, and the end-to-end headers appended to header_lines.
class ResponseParser final : public bhttp::basic_parser<false> {
 public:
  ResponseParser(http::Response& res, std::string& tokens, size_t lines_start)
      : res_(res), tokens_(tokens), lines_start_(lines_start) {
    tokens_.clear();
  }

  int status = 0;
  bool informational = false;  // a 1xx interim answer: skipped, the real one follows
  bool content_type_seen = false;
  size_t reserve_up_to = 0;  // a declared length above this is not reserved (the body is relayed)

 private:
  void on_request_impl(bhttp::verb, std::string_view, std::string_view, int, beast::error_code& ec) override {
    ec = bhttp::error::bad_method;
  }
  void on_response_impl(int code, std::string_view, int version, beast::error_code& ec) override {
    status = code;
    informational = code / 100 == 1;
    if (version != 11 && version != 10) ec = bhttp::error::bad_version;
    if (code == 101 || code < 100 || code > 599) ec = bhttp::error::bad_status;  // we never ask to upgrade
  }
  void on_field_impl(bhttp::field f, std::string_view name, std::string_view value,
                     beast::error_code&) override {
    if (informational) return;
    switch (f) {
      case bhttp::field::content_type:
        res_.content_type_storage.assign(value);
        content_type_seen = true;
        return;
      case bhttp::field::connection:
        collect_connection_tokens(value, tokens_);
        return;
      case bhttp::field::content_length:
      case bhttp::field::date:
      case bhttp::field::server:
        return;  // the gateway's server writes its own
      default:
        if (hop_by_hop(f)) return;
        break;
    }
    if (beast::iequals(name, "x-request-id")) return;
    std::string& lines = res_.header_lines;
    lines.append(name);
    lines += ": ";
    lines.append(value);
    lines += "\r\n";
  }
  void on_header_impl(beast::error_code&) override {
    if (!informational && !tokens_.empty()) drop_listed();
  }
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, beast::error_code&) override {
    if (length && *length <= reserve_up_to) res_.body.reserve(static_cast<size_t>(*length));
  }
  std::size_t on_body_impl(std::string_view b, beast::error_code&) override {
    res_.body.append(b);
    return b.size();
  }
  void on_chunk_header_impl(std::uint64_t, std::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, std::string_view b, beast::error_code&) override {
    res_.body.append(b);
    return b.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  // Headers named by the upstream's Connection header are hop-by-hop too; they may precede it, so
  // they are removed from the lines already written (rare: only when Connection lists a header).
  void drop_listed() {
    std::string& s = res_.header_lines;
    size_t r = lines_start_, w = lines_start_;
    while (r < s.size()) {
      size_t eol = s.find("\r\n", r);
      eol = eol == std::string::npos ? s.size() : eol + 2;
      const std::string_view line(s.data() + r, eol - r);
      if (!listed(tokens_, line.substr(0, line.find(':')))) {
        if (w != r) std::memmove(s.data() + w, s.data() + r, eol - r);
        w += eol - r;
      }
      r = eol;
    }
    s.resize(w);
  }

  http::Response& res_;
  std::string& tokens_;
  size_t lines_start_;
};

// One upstream connection, heap-allocated once and pooled. Its deadline is enforced by a watchdog
// that re-arms the connection's timer only when it fires or when a deadline moves earlier, so a
// request on a pooled connection costs no timer operation (the server's connections work the same).
struct Conn {
  Conn(const Executor& ex, const ProxyOptions& o)
      : sock(ex), timer(ex), total(o.total_timeout), idle_max(o.idle_timeout) {}
  Socket sock;
  Timer timer;
  const std::chrono::milliseconds total;
  const std::chrono::milliseconds idle_max;
  SteadyClock::time_point deadline;    // of the running phase (connect, or write + read)
  SteadyClock::time_point idle_since;  // while pooled
  bool busy = false;                   // a phase is running: the deadline applies
  bool timed_out = false;              // the watchdog closed the socket
  bool closed = false;
};
using ConnPtr = std::shared_ptr<Conn>;

// The watchdog never sleeps past now + total while the connection is idle, nor past the deadline
// while it is busy; any later phase starts at or after now with a deadline of at least now + total,
// so a pooled connection's timer normally need not be touched when it is taken.
void watch(ConnPtr c) {
  Conn& conn = *c;
  const auto now = SteadyClock::now();
  conn.timer.expires_at(conn.busy ? conn.deadline
                                  : std::min(conn.idle_since + conn.idle_max, now + conn.total));
  conn.timer.async_wait([c = std::move(c)](const boost::system::error_code&) mutable {
    Conn& conn = *c;
    if (conn.closed) return;  // discarded: the last reference goes with this handler
    const auto now = SteadyClock::now();
    boost::system::error_code ignored;
    if (conn.busy ? now >= conn.deadline : now - conn.idle_since >= conn.idle_max) {
      // Out of time: the pending connect, write or read fails at once. An idle connection past its
      // keep-alive time is closed too; the pool skips it.
      conn.timed_out = conn.busy;
      conn.closed = true;
      conn.sock.close(ignored);
      return;
    }
    watch(std::move(c));  // woken early (deadline moved, or cancelled to re-arm): sleep again
  });
}

// Starts a phase bounded by `timeout`.
void begin_phase(Conn& c, std::chrono::milliseconds timeout) {
  c.busy = true;
  c.deadline = coarse_now() + timeout;
  if (c.deadline < c.timer.expiry()) c.timer.cancel();  // the watchdog re-arms for the earlier deadline
}

void release(Conn& c) {
  c.busy = false;
  c.idle_since = coarse_now();
}

constexpr size_t kEventStreamBuffer = 256 * 1024;

bool is_event_stream(std::string_view content_type) {
  return content_type.size() >= 17 && boost::beast::iequals(content_type.substr(0, 17), "text/event-stream");
}

void discard(Conn& c) {
  c.closed = true;
  boost::system::error_code ignored;
  c.sock.close(ignored);
  c.timer.cancel();
}

// An idle connection the upstream has closed (EOF waiting) or that holds unexpected bytes is unusable.
// One non-blocking peek; used before requests that cannot be retried once written.
bool looks_alive(Socket& s) {
  char b;
  const ssize_t r = ::recv(s.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// ---- connection pools: one Asio service per io_context, one stack per (proxy, thread, upstream) ----

struct ThreadPools {
  uint64_t proxy_id = 0;
  std::thread::id thread;
  std::vector<std::vector<ConnPtr>> idle;  // per upstream, most recently used last
};

// Bumped whenever a pool service goes away, invalidating every thread's cached pool pointer.
std::atomic<uint64_t> g_pool_epoch{1};

class PoolService final : public asio::execution_context::service {
 public:
  static asio::execution_context::id id;

  explicit PoolService(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}
  ~PoolService() override { g_pool_epoch.fetch_add(1, std::memory_order_acq_rel); }

  ThreadPools& pools(uint64_t proxy_id, size_t upstreams) {
    const std::thread::id self = std::this_thread::get_id();
    std::lock_guard lock(mutex_);  // only on a thread's first use (or after another context went away)
    for (auto& p : pools_)
      if (p->proxy_id == proxy_id && p->thread == self) return *p;
    auto p = std::make_unique<ThreadPools>();
    p->proxy_id = proxy_id;
    p->thread = self;
    p->idle.resize(upstreams);
    pools_.push_back(std::move(p));
    return *pools_.back();
  }

 private:
  void shutdown() override {
    g_pool_epoch.fetch_add(1, std::memory_order_acq_rel);
    std::lock_guard lock(mutex_);
    for (auto& p : pools_)
      for (auto& stack : p->idle)
        for (auto& c : stack) discard(*c);
    pools_.clear();
  }

  std::mutex mutex_;
  std::vector<std::unique_ptr<ThreadPools>> pools_;
};

asio::execution_context::id PoolService::id;

ThreadPools& pools_for(asio::io_context& ctx, uint64_t proxy_id, size_t upstreams) {
  struct Cached {
    const asio::io_context* ctx = nullptr;
    uint64_t proxy_id = 0;
    uint64_t epoch = 0;
    ThreadPools* pools = nullptr;
  };
  thread_local Cached cached;
  const uint64_t epoch = g_pool_epoch.load(std::memory_order_acquire);
  if (cached.ctx == &ctx && cached.proxy_id == proxy_id && cached.epoch == epoch) return *cached.pools;
  ThreadPools& p = asio::use_service<PoolService>(ctx).pools(proxy_id, upstreams);
  cached = {&ctx, proxy_id, epoch, &p};
  return p;
}

ConnPtr take_idle(std::vector<ConnPtr>& stack, bool check, std::chrono::milliseconds idle_timeout) {
  if (stack.empty()) return nullptr;
  const auto now = coarse_now();
  while (!stack.empty()) {
    ConnPtr c = std::move(stack.back());
    stack.pop_back();
    if (c->closed || now - c->idle_since > idle_timeout || (check && !looks_alive(c->sock))) {
      discard(*c);
      continue;
    }
    return c;
  }
  return nullptr;
}

// ---- per-request scratch: leased from a per-thread free list, so buffers keep their capacity ----

struct Scratch {
  std::string head;    // the request head
  std::string tokens;  // Connection tokens of the client's request, then of the upstream's answer
  beast::flat_buffer in;
};

struct ScratchList {
  std::vector<std::unique_ptr<Scratch>> free;
  ~ScratchList();
};
thread_local bool t_scratch_gone = false;  // trivially destructible: readable after ~ScratchList
ScratchList::~ScratchList() { t_scratch_gone = true; }
thread_local ScratchList t_scratch;

class ScratchLease {
 public:
  ScratchLease() {
    if (!t_scratch_gone && !t_scratch.free.empty()) {
      s_ = std::move(t_scratch.free.back());
      t_scratch.free.pop_back();
    } else {
      s_ = std::make_unique<Scratch>();
    }
  }
  ~ScratchLease() {
    if (t_scratch_gone || t_scratch.free.size() >= 256) return;
    // A huge one-off request or answer does not pin its memory.
    if (s_->head.capacity() > (1u << 20)) s_->head = std::string();
    if (s_->in.capacity() > (1u << 20)) s_->in = beast::flat_buffer();
    s_->in.clear();
    t_scratch.free.push_back(std::move(s_));
  }
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;
  Scratch& operator*() { return *s_; }
  Scratch* operator->() { return s_.get(); }

 private:
  std::unique_ptr<Scratch> s_;
};

// ---- one attempt ----

enum class Failure : uint8_t {
  kNone,
  kConnect,  // refused, unreachable, …
  kConnectTimeout,
  kWrite,      // writing the request failed
  kRead,       // the connection failed before any byte of the answer arrived
  kTruncated,  // the connection failed in the middle of the answer
  kTimeout,    // the attempt's total time ran out
  kMalformed,
  kTooLarge,
};

struct Attempt {
  Failure failure = Failure::kNone;
  boost::system::error_code ec;
};

// Opens a fresh connection and starts its watchdog.
Task<Attempt> connect(const ConnPtr& c, const tcp::endpoint& ep, std::chrono::milliseconds timeout) {
  Attempt a;
  c->sock.open(ep.protocol(), a.ec);
  if (a.ec) {
    a.failure = Failure::kConnect;
    co_return a;
  }
  c->busy = true;
  c->deadline = coarse_now() + timeout;
  watch(c);
  co_await c->sock.async_connect(ep, asio::redirect_error(use_task, a.ec));
  if (c->timed_out) {
    a.failure = Failure::kConnectTimeout;
  } else if (a.ec) {
    a.failure = Failure::kConnect;
  } else {
    c->sock.set_option(tcp::no_delay(true), a.ec);
    a.ec = {};
  }
  co_return a;
}

bool stale_connection_error(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted;
}

// Feeds the upstream's bytes to a ResponseParser, skipping interim (1xx) answers. Not a coroutine: it
// lives in forward()'s frame, so a request costs one coroutine frame, not two.
class AnswerReader {
 public:
  enum class Step : uint8_t { kMore, kDone, kTooLarge, kMalformed };

  // `limit` bounds a buffered answer; with an answer stream it is `buffer_up_to` and longer answers
  // are relayed, so the parser itself is unbounded.
  AnswerReader(http::Context& ctx, std::string& tokens, size_t lines_start, size_t limit, bool relay)
      : ctx_(ctx), tokens_(tokens), lines_start_(lines_start), limit_(limit), relay_(relay) {}

  void reset() {
    parser_.emplace(ctx_.res, tokens_, lines_start_);
    parser_->eager(true);
    parser_->header_limit(kResponseHeaderLimit);
    parser_->body_limit(relay_ ? std::numeric_limits<std::uint64_t>::max() : limit_);
    parser_->reserve_up_to = limit_;
    if (ctx_.req.method == Method::kHead) parser_->skip(true);
  }

  // Whether the answer (its head complete, its body not) is relayed rather than read whole: its length
  // is unknown or above the buffering limit.
  bool relay_body() const {
    if (!relay_ || parser_->is_done()) return false;
    const auto length = parser_->content_length();
    return !length || *length > limit_;
  }
  bool head_done() const { return parser_->is_header_done() && !parser_->informational; }
  std::optional<uint64_t> length() const {
    const auto n = parser_->content_length();
    return n ? std::optional<uint64_t>(*n) : std::nullopt;
  }

  // Consumes what `in` holds.
  Step put(beast::flat_buffer& in, beast::error_code& ec) {
    while (in.size() != 0) {
      const size_t n = parser_->put(in.data(), ec);
      in.consume(n);
      if (ec == bhttp::error::need_more) {
        ec = {};
        return Step::kMore;
      }
      if (ec) return ec == bhttp::error::body_limit ? Step::kTooLarge : Step::kMalformed;
      if (parser_->is_done()) {
        if (!parser_->informational) return Step::kDone;
        reset();  // 100 Continue, 103 Early Hints: the real answer follows
        continue;
      }
      if (n == 0) break;
    }
    return Step::kMore;
  }

  // The upstream closed the connection: complete if the body was close-delimited.
  bool put_eof() {
    if (!parser_->got_some()) return false;
    beast::error_code ec;
    parser_->put_eof(ec);
    return !ec && parser_->is_done();
  }

  const ResponseParser& parser() const { return *parser_; }

 private:
  http::Context& ctx_;
  std::string& tokens_;
  size_t lines_start_;
  size_t limit_;
  bool relay_;
  std::optional<ResponseParser> parser_;
};

// Whether a failed first attempt is tried once more on a fresh connection.
bool retryable(const Attempt& a, bool reused, Method m) {
  switch (a.failure) {
    case Failure::kWrite:
      // Nothing reached a handler: a stale pooled connection, or an idempotent request.
      return reused || idempotent(m);
    case Failure::kRead:
      // On a pooled connection, EOF or reset before the first byte is the upstream having closed it
      // while idle; but a POST or PATCH may already have been acted on.
      if (reused) return idempotent(m) && stale_connection_error(a.ec);
      return idempotent(m);
    case Failure::kConnect:
    case Failure::kConnectTimeout:
      return idempotent(m);
    default:
      return false;  // answered in part, malformed, too large, or out of time: never twice
  }
}

// Gives the breaker at most one verdict per admitted request, whatever happens to the coroutine: the first
// one counts, later calls do nothing.
class BreakerTicket {
 public:
  BreakerTicket(UpstreamState& st, const ProxyOptions& o, bool probe) : st_(st), o_(o), probe_(probe) {}
  ~BreakerTicket() {
    if (!settled_ && probe_) failure();  // an abandoned probe re-opens the breaker rather than wedge it
  }
  BreakerTicket(const BreakerTicket&) = delete;
  BreakerTicket& operator=(const BreakerTicket&) = delete;

  // The upstream's answer had this status: 502/503/504 count against it, anything else for it.
  void answered(int status) {
    if (status == 502 || status == 503 || status == 504) {
      failure();
    } else {
      success();
    }
  }
  void success() {
    if (settled_) return;
    settled_ = true;
    st_.consecutive_failures.store(0, std::memory_order_relaxed);
    if (probe_) {
      st_.open_until.store(0, std::memory_order_release);
      st_.probing.store(false, std::memory_order_release);
    }
  }
  void failure() {
    if (settled_) return;
    settled_ = true;
    st_.failures.fetch_add(1, std::memory_order_relaxed);
    const int n = st_.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
    const int64_t until = now_ns() + std::chrono::nanoseconds(o_.breaker_open).count();
    if (probe_) {
      st_.open_until.store(until, std::memory_order_release);
      st_.breaker_opens.fetch_add(1, std::memory_order_relaxed);
      st_.probing.store(false, std::memory_order_release);
      return;
    }
    int64_t closed = 0;
    if (n >= o_.breaker_failures &&
        st_.open_until.compare_exchange_strong(closed, until, std::memory_order_acq_rel))
      st_.breaker_opens.fetch_add(1, std::memory_order_relaxed);
  }
  // No verdict on the upstream's health (an oversized answer).
  void neutral() {
    if (settled_) return;
    settled_ = true;
    if (probe_) st_.probing.store(false, std::memory_order_release);
  }

 private:
  UpstreamState& st_;
  const ProxyOptions& o_;
  bool probe_;
  bool settled_ = false;
};

Error unavailable(const UpstreamState& st, int64_t wait_ns) {
  const int64_t seconds = std::max<int64_t>(1, (wait_ns + 999'999'999) / 1'000'000'000);
  return Error(Code::kServiceUnavailable,
               fmt::format("The {} service is unavailable; retry shortly.", st.name))
      .with_header("Retry-After", std::to_string(seconds));
}

// Admits a request through the breaker; returns whether it is the half-open probe, throws when open.
bool admit(UpstreamState& st) {
  const int64_t until = st.open_until.load(std::memory_order_acquire);
  if (until == 0) return false;
  const int64_t now = now_ns();
  if (now < until) throw unavailable(st, until - now);
  bool expected = false;
  if (st.probing.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) return true;
  throw unavailable(st, 0);  // another request is probing
}

Error failure_error(const Attempt& a, const UpstreamState& st, const ProxyOptions& o) {
  switch (a.failure) {
    case Failure::kTimeout:
      return Error(Code::kGatewayTimeout, fmt::format("The {} service did not answer within {} ms.", st.name,
                                                      o.total_timeout.count()));
    case Failure::kMalformed:
      return Error(Code::kBadGateway, fmt::format("The {} service sent a malformed answer.", st.name));
    case Failure::kTooLarge:
      return Error(Code::kBadGateway, fmt::format("The {} service answered with more than {} bytes.", st.name,
                                                  o.response_limit));
    case Failure::kTruncated:
      return Error(
          Code::kBadGateway,
          fmt::format("The {} service closed the connection before its answer was complete.", st.name));
    default:
      return Error(Code::kBadGateway, fmt::format("The {} service is unreachable.", st.name));
  }
}

std::string_view failure_name(Failure f) {
  switch (f) {
    case Failure::kConnect:
      return "connect";
    case Failure::kConnectTimeout:
      return "connect_timeout";
    case Failure::kWrite:
      return "write";
    case Failure::kRead:
      return "read";
    case Failure::kTruncated:
      return "truncated";
    case Failure::kTimeout:
      return "timeout";
    case Failure::kMalformed:
      return "malformed";
    case Failure::kTooLarge:
      return "too_large";
    default:
      return "none";
  }
}

std::atomic<uint64_t> g_next_proxy_id{1};

// The answer's status and content type, once its head is complete.
void settle_head(http::Response& res, const ResponseParser& p, bool body_follows) {
  res.status = p.status;
  if (p.status == 204 || p.status == 304) return;
  if (p.content_type_seen) {
    res.content_type = res.content_type_storage;
  } else if (body_follows || !res.body.empty()) {
    res.content_type = "application/octet-stream";
  }
}

// A chunk-size line for `n` bytes: "1f40\r\n".
size_t chunk_line(char (&out)[20], size_t n) {
  auto [p, _] = std::to_chars(out, out + 16, n, 16);
  *p++ = '\r';
  *p++ = '\n';
  return static_cast<size_t>(p - out);
}

}  // namespace

Proxy::Proxy(std::vector<Upstream> upstreams, ProxyOptions options)
    : upstreams_(std::move(upstreams)), options_(options), id_(g_next_proxy_id.fetch_add(1)) {
  for (const Upstream& u : upstreams_) {
    auto st = std::make_unique<UpstreamState>();
    st->name = u.name;
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(u.host, ec);
    if (!ec) {
      st->endpoint = tcp::endpoint(address, u.port);
    } else {
      // Start-up only: a name (e.g. "localhost") is resolved once, never on the request path.
      asio::io_context ioc;
      tcp::resolver resolver(ioc);
      const auto results = resolver.resolve(u.host, std::to_string(u.port), ec);
      if (ec || results.empty())
        throw std::invalid_argument(fmt::format("upstream {}: cannot resolve host '{}'", u.name, u.host));
      st->endpoint = results.begin()->endpoint();
    }
    const bool v6 = st->endpoint.address().is_v6();
    st->host_line = fmt::format("Host: {}{}{}:{}\r\n", v6 ? "[" : "", st->endpoint.address().to_string(),
                                v6 ? "]" : "", u.port);
    states_.push_back(std::move(st));
  }
}

Proxy::~Proxy() = default;

Task<void> Proxy::forward(http::Context& ctx, size_t upstream, std::string_view extra,
                          AnswerObserver* observer) {
  UpstreamState& st = *states_.at(upstream);
  st.requests.fetch_add(1, std::memory_order_relaxed);
  const Method method = ctx.req.method;
  if (method == Method::kOther)  // its name is not kept in the request, so it cannot be forwarded
    throw Error(Code::kMethodNotAllowed,
                "The gateway forwards GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS only.");
  BreakerTicket ticket(st, options_, admit(st));

  const Executor ex = co_await asio::this_coro::executor;
  ScratchLease scratch;
  build_head(scratch->head, scratch->tokens, ctx.req, extra, st);
  // A body still arriving is relayed after the head and what came with it, chunk-framed when the
  // client gave no length.
  http::BodyStream* const body_stream = ctx.req.body_stream;
  const bool chunked_request = body_stream && !body_stream->length();
  char first_line[20];
  const size_t first_line_len =
      chunked_request && !ctx.req.body.empty() ? chunk_line(first_line, ctx.req.body.size()) : 0;
  const std::array<asio::const_buffer, 4> request{
      asio::buffer(scratch->head), asio::buffer(first_line, first_line_len), asio::buffer(ctx.req.body),
      asio::buffer("\r\n", first_line_len ? 2 : 0)};

  http::Response& res = ctx.res;
  const size_t lines_start = res.header_lines.size();  // lines added before us (rate-limit headers) stay
  res.body.clear();
  res.content_type_storage.clear();
  // With an answer stream, answers above buffer_up_to (or of unknown length) are relayed as they come.
  http::AnswerStream* const answer = ctx.answer_stream;
  AnswerReader reader(ctx, scratch->tokens, lines_start,
                      answer ? options_.buffer_up_to : options_.response_limit, answer != nullptr);

  Attempt a;
  bool streamed = false;   // a piece of the body stream was taken: the request cannot be sent again
  bool relaying = false;   // the answer's head went to the client: no error answer can replace it now
  bool cut_short = false;  // the upstream stopped taking the body: its answer ends the exchange
  // A relayed text/event-stream answer (the live feed) lasts as long as the client stays: no total time,
  // and the upstream goes as soon as the client does (or the gateway drains).
  bool event_stream = false;
  bool client_left = false;
  for (int attempt = 0;; ++attempt) {
    ConnPtr c;
    bool reused = false;
    if (attempt == 0) {
      // The pool is looked up again after each suspension: on a multi-threaded io_context this
      // coroutine may resume on another thread, and a pool belongs to one thread.
      auto& stack = pools_for(ex.context(), id_, states_.size()).idle[upstream];
      c = take_idle(stack, !idempotent(method) || body_stream, options_.idle_timeout);
      reused = c != nullptr;
    }
    if (c) {
      a = Attempt{};
    } else {
      c = std::make_shared<Conn>(ex, options_);
      a = co_await connect(c, st.endpoint, options_.connect_timeout);
    }

    if (a.failure == Failure::kNone) {
      begin_phase(*c, options_.total_timeout);
      co_await asio::async_write(c->sock, request, asio::redirect_error(use_task, a.ec));
      if (a.ec) a.failure = c->timed_out ? Failure::kTimeout : Failure::kWrite;
    }
    while (a.failure == Failure::kNone && body_stream) {
      std::string_view piece;
      try {
        streamed = true;
        piece = co_await body_stream->next();
      } catch (...) {  // the client failed: the upstream is not to blame, and its connection is mid-request
        discard(*c);
        ticket.neutral();
        throw;
      }
      char line[20];
      const size_t line_len = chunked_request && !piece.empty() ? chunk_line(line, piece.size()) : 0;
      const std::string_view tail = !chunked_request ? "" : piece.empty() ? "0\r\n\r\n" : "\r\n";
      if (piece.empty() && tail.empty()) break;
      begin_phase(*c, options_.total_timeout);  // each piece gives the hop its full time again
      const std::array<asio::const_buffer, 3> buffers{asio::buffer(line, line_len), asio::buffer(piece),
                                                      asio::buffer(tail)};
      co_await asio::async_write(c->sock, buffers, asio::redirect_error(use_task, a.ec));
      if (a.ec) a.failure = c->timed_out ? Failure::kTimeout : Failure::kWrite;
      if (piece.empty()) break;
    }
    // An upstream may answer (413, 401, …) and stop reading before the body is all there: take its answer.
    if (a.failure == Failure::kWrite && streamed) {
      cut_short = true;
      a = Attempt{};
    }

    if (a.failure == Failure::kNone) {
      reader.reset();
      scratch->in.clear();
      bool any = false;  // a byte of the answer arrived
      beast::error_code pec;
      for (;;) {
        const AnswerReader::Step step = reader.put(scratch->in, pec);
        if (answer && (step == AnswerReader::Step::kMore || step == AnswerReader::Step::kDone)) {
          try {
            if (!relaying && reader.head_done() && reader.relay_body()) {
              settle_head(res, reader.parser(), true);
              // The upstream answered: its health is known now, not when the body ends. An event stream
              // lasts as long as its client, and a half-open breaker's probe must not be held that long.
              ticket.answered(res.status);
              if (observer) observer->on_head(ctx);
              relaying = true;
              co_await answer->begin(reader.length());
              event_stream = is_event_stream(res.content_type);
              if (event_stream) {
                answer->watch(
                    [&client_left, c] {
                      client_left = true;
                      discard(*c);  // the pending read ends at once
                    },
                    kEventStreamBuffer);
                // Bounded buffers on both hops: a client that stops reading holds the upstream's writes
                // back soon, and the upstream's bounded queue drops it.
                boost::system::error_code ignored;
                c->sock.set_option(
                    asio::socket_base::receive_buffer_size(static_cast<int>(kEventStreamBuffer)), ignored);
                begin_phase(*c, options_.event_stream_quiet);
              }
            }
            if (relaying && !res.body.empty()) {
              co_await answer->write(res.body);
              res.body.clear();
            }
          } catch (...) {  // the client went away: the upstream's connection is mid-answer
            discard(*c);
            ticket.neutral();
            throw;
          }
        }
        if (step == AnswerReader::Step::kDone) break;
        if (step != AnswerReader::Step::kMore) {
          a.failure = step == AnswerReader::Step::kTooLarge ? Failure::kTooLarge : Failure::kMalformed;
          a.ec = pec;
          break;
        }
        const size_t n = co_await c->sock.async_read_some(scratch->in.prepare(kReadChunk),
                                                          asio::redirect_error(use_task, a.ec));
        if (a.ec) {
          if (c->timed_out) {
            a.failure = Failure::kTimeout;
          } else if (a.ec == asio::error::eof && reader.put_eof()) {
            a.ec = {};  // a close-delimited body ends here
          } else {
            a.failure = any ? Failure::kTruncated : Failure::kRead;
          }
          break;
        }
        any = true;
        scratch->in.commit(n);
        // A relayed answer is bounded per piece; an event stream's pieces (at least its heartbeats) come
        // within event_stream_quiet.
        if (relaying) begin_phase(*c, event_stream ? options_.event_stream_quiet : options_.total_timeout);
      }
    }

    if (a.failure == Failure::kNone) {
      auto& stack = pools_for(ex.context(), id_, states_.size()).idle[upstream];
      if (reader.parser().keep_alive() && !cut_short && !event_stream && scratch->in.size() == 0 &&
          !c->closed && stack.size() < options_.max_idle_per_upstream) {
        release(*c);
        stack.push_back(std::move(c));
      } else {
        discard(*c);
      }
      break;
    }
    discard(*c);
    if (relaying) break;  // the client holds part of this answer: it cannot get another
    res.header_lines.resize(lines_start);
    res.body.clear();
    res.content_type_storage.clear();
    if (attempt > 0 || streamed || !retryable(a, reused, method)) break;
    st.retries.fetch_add(1, std::memory_order_relaxed);
  }

  if (client_left) {  // not the upstream's failure: the client closed its event stream, or the gateway drains
    ticket.neutral();
    try {
      co_await answer->finish();
    } catch (...) {  // the client is gone
    }
    co_return;
  }
  if (a.failure != Failure::kNone) {
    if (a.failure == Failure::kTooLarge) {
      ticket.neutral();  // one oversized answer says nothing about the upstream's health
    } else {
      ticket.failure();
    }
    log::warn("upstream request failed", {{"upstream", st.name},
                                          {"failure", failure_name(a.failure)},
                                          {"error", a.ec.message()},
                                          {"request_id", ctx.request_id},
                                          {"answer_begun", relaying}});
    throw failure_error(a, st, options_);  // after a begun answer, the server closes the connection
  }

  ticket.answered(reader.parser().status);  // already settled when the answer was relayed
  if (relaying) {
    co_await answer->finish();
    co_return;
  }
  if (answer && method == Method::kHead) {
    // No body, but the head gives the length of the GET's: passed on as the service sent it.
    settle_head(res, reader.parser(), false);
    if (observer) observer->on_head(ctx);
    co_await answer->begin(reader.length());
    co_await answer->finish();
    co_return;
  }
  settle_head(res, reader.parser(), false);
  if (observer) observer->on_head(ctx);
}

bool Proxy::open(size_t upstream) const {
  const UpstreamState& st = *states_.at(upstream);
  const int64_t until = st.open_until.load(std::memory_order_acquire);
  if (until == 0) return false;
  return now_ns() < until || st.probing.load(std::memory_order_acquire);
}

UpstreamCounters Proxy::counters(size_t upstream) const {
  const UpstreamState& st = *states_.at(upstream);
  return {st.requests.load(std::memory_order_relaxed), st.failures.load(std::memory_order_relaxed),
          st.retries.load(std::memory_order_relaxed), st.breaker_opens.load(std::memory_order_relaxed)};
}

void Proxy::render_metrics(std::string& out) const {
  struct Family {
    const char* name;
    const char* help;
    const char* type;
  };
  static constexpr Family kFamilies[] = {
      {"cdx_upstream_requests_total", "Requests forwarded to a module's process, by upstream.", "counter"},
      {"cdx_upstream_failures_total", "Upstream transport failures and 502/503/504 answers, by upstream.",
       "counter"},
      {"cdx_upstream_retries_total", "Requests tried a second time on a fresh connection, by upstream.",
       "counter"},
      {"cdx_upstream_breaker_opens_total", "Times the upstream's circuit breaker opened.", "counter"},
      {"cdx_upstream_breaker_open", "1 while the upstream's circuit breaker refuses requests.", "gauge"},
  };
  for (size_t f = 0; f < std::size(kFamilies); ++f) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", kFamilies[f].name, kFamilies[f].help,
                       kFamilies[f].name, kFamilies[f].type);
    for (size_t i = 0; i < states_.size(); ++i) {
      const UpstreamCounters c = counters(i);
      const uint64_t values[] = {c.requests, c.failures, c.retries, c.breaker_opens, open(i) ? 1u : 0u};
      out += fmt::format("{}{{upstream=\"{}\"}} {}\n", kFamilies[f].name, states_[i]->name, values[f]);
    }
  }
}

}  // namespace cdx::gateway
