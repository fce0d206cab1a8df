// GET /api/v1/events: the platform event log, and GET /api/v1/events/stream: the live feed over Server-Sent
// Events. The SUPERADMIN reads every tenant's (or one's, by tenant_id or X-Tenant-ID); a tenant's ADMIN, or a
// secret key holding events:read, its own tenant's only.
#include <charconv>
#include <utility>
#include "common/task.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "common/clock.hpp"
#include "core/event_stream.hpp"
#include "core/module.hpp"
#include "http/pagination.hpp"
#include "http/router.hpp"
#include "kit/seq_cursor.hpp"

namespace cdx::core {

using http::Access;
using http::Context;
using http::Method;

namespace {

// type=crm.*,cms.entry.published,*: exact names, prefixes ("crm.*" or "crm."), or everything ("*").
std::vector<std::string> type_filters(const Context& ctx) {
  auto v = kit::query_text(ctx, "type", 500);
  if (!v) return {};
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= v->size()) {
    size_t end = v->find(',', start);
    if (end == std::string::npos) end = v->size();
    std::string t = v->substr(start, end - start);
    start = end + 1;
    if (t.empty()) continue;
    if (t == "*") return {};  // everything
    if (t.size() > 2 && t.ends_with(".*")) t.pop_back();
    const bool ok = std::all_of(t.begin(), t.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
    });
    if (!ok || t.front() == '.')
      throw Error::validation({{"type",
                                "takes event types (crm.contact.created), prefixes (crm.* or crm.) or *, "
                                "comma-separated"}});
    out.push_back(std::move(t));
    if (out.size() > 20) throw Error::validation({{"type", "takes at most 20 types"}});
  }
  return out;
}

std::optional<std::string> time_param(const Context& ctx, std::string_view name) {
  auto v = kit::query_text(ctx, name, 64);
  if (!v) return std::nullopt;
  auto t = parse_rfc3339(*v);
  if (!t) throw Error::validation({{std::string(name), "must be an RFC 3339 time (2026-12-01T00:00:00Z)"}});
  return format_rfc3339(*t);  // the stored form, so text order is time order
}

// Who reads, and what: the tenant (none: every tenant's, for the SUPERADMIN only) and the types.
struct Reader {
  EventFilter filter;
  bool superadmin = false;
};

Reader reader_of(const Context& ctx) {
  const Principal& p = *ctx.principal;
  Reader out;
  out.filter.types = type_filters(ctx);
  const auto named = kit::query_text(ctx, "tenant_id", 100);
  if (p.kind == Principal::Kind::kSuperadmin) {
    out.superadmin = true;
    if (ctx.tenant) out.filter.tenant_id = std::string(ctx.tenant->tenant_id());
    if (named) {
      if (out.filter.tenant_id && *out.filter.tenant_id != *named)
        throw Error::validation({{"tenant_id", "names another tenant than X-Tenant-ID"}});
      out.filter.tenant_id = *named;
    }
  } else {
    if (!ctx.tenant || p.role == Role::kClient)
      throw Error(Code::kForbidden, "The event log is for the SUPERADMIN and a tenant's ADMINs.");
    out.filter.tenant_id = std::string(ctx.tenant->tenant_id());
    if (named && *named != *out.filter.tenant_id)
      throw Error(Code::kForbidden, "A tenant's credential reads its own tenant's events only.");
  }
  return out;
}

// Where a reconnecting client left off: the Last-Event-ID header, or last_event_id= for a client that
// cannot set headers.
std::optional<int64_t> last_event_id(const Context& ctx) {
  std::string v(ctx.req.header("last-event-id"));
  std::string field = "Last-Event-ID";
  if (v.empty()) {
    if (auto q = kit::query_text(ctx, "last_event_id", 40)) v = *q, field = "last_event_id";
  }
  if (v.empty()) return std::nullopt;
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < 0)
    throw Error::validation({{field, "must be the id of a message of the stream (an event's seq)"}});
  return n;
}

// A streamed answer's coroutine waits here for frames, its heartbeat or its end; woken from the
// publishing thread through a post to its own executor.
struct StreamWaiter {
  explicit StreamWaiter(Executor e) : ex(e), timer(e) {}
  Executor ex;
  boost::asio::basic_waitable_timer<std::chrono::steady_clock,
                                    boost::asio::wait_traits<std::chrono::steady_clock>, Executor>
      timer;
  bool stop = false;  // the client went away or the server drains; touched on the connection's thread only
};

constexpr int kReplayPage = 500;
// A stream's kernel send buffer: what a client that stops reading holds besides its queue.
constexpr size_t kSendBuffer = 256 * 1024;

}  // namespace

Task<void> CoreModule::stream_events(http::AnswerStream& out, EventFilter filter, bool superadmin,
                                     std::optional<int64_t> after) {
  namespace asio = boost::asio;
  auto w = std::make_shared<StreamWaiter>(co_await asio::this_coro::executor);
  // Subscribed before the replay reads the log: what is recorded meanwhile waits in the queue, and what the
  // replay also sent is skipped by its seq. No gap, no duplicate at the seam.
  struct Subscribed {
    EventStreamHub& hub;
    std::shared_ptr<EventStreamHub::Client> client;
    ~Subscribed() { hub.unsubscribe(client); }
  } sub{hub_,
        hub_.subscribe({.filter = filter, .service_events = superadmin && !filter.tenant_id, .wake = [w] {
                          asio::post(w->ex, [w] { w->timer.cancel(); });
                        }})};
  co_await out.begin(std::nullopt);
  out.watch(
      [w] {
        w->stop = true;
        w->timer.cancel();
      },
      kSendBuffer);
  std::string buf = "retry: 2000\n\n";
  int64_t last = 0;
  std::vector<Frame> frames;
  if (after) {
    // An id beyond the log's end (another deployment's, a reset log) would otherwise skip every live event
    // up to it: the replay starts at the end at most.
    last = co_await workers_.run([&] { return std::min(*after, feed().last_seq()); });
    // Pages of the client's events (tenant and types filtered by the log's reader), in seq order; a short
    // page is the end.
    for (bool more = true; more && !w->stop;) {
      // What the hub queued meanwhile: its events are in the log (the hub has them from it) after `last`,
      // so the pages still to come send them; they go, rather than fill the queue until a client that
      // never lagged is dropped for a long replay. Service messages go out with the page.
      frames.clear();
      if (!sub.client->take(frames)) break;  // dropped all the same: the live loop says so
      for (const auto& f : frames)
        if (f->seq == 0) buf += f->text;
      const auto page =
          co_await workers_.run([&, from = last] { return feed().read_after(from, filter, kReplayPage); });
      for (const auto& e : page) buf += EventStreamHub::frame_text(e);
      if (!page.empty()) last = page.back().seq;
      more = page.size() >= static_cast<size_t>(kReplayPage);
      if (!buf.empty()) co_await out.write(buf);
      buf.clear();
    }
  }
  if (buf.capacity() > 64 * 1024) buf = {};  // the replay's pages are not kept for the stream's life
  // Live: the queued frames go out as they are (shared with every other client), in one gathered write.
  std::vector<std::string_view> pieces;
  static constexpr std::string_view kHeartbeat = ": heartbeat\n\n";
  auto last_write = std::chrono::steady_clock::now();
  boost::system::error_code ec;
  while (!w->stop) {
    frames.clear();
    pieces.clear();
    if (!buf.empty()) pieces.push_back(buf);  // the opening retry line when nothing was replayed
    if (!sub.client->take(frames)) {
      // Dropped: its queue is gone already; a last message, given a bounded time to go out, then the end.
      buf += EventStreamHub::frame_text("dropped", {{"reason", sub.client->drop_reason()}});
      out.set_write_timeout(std::chrono::seconds(10));
      co_await out.write(buf);
      co_await out.finish();
      co_return;
    }
    for (const auto& f : frames) {
      if (f->seq != 0 && f->seq <= last) continue;  // replayed already
      if (f->seq != 0) last = f->seq;
      pieces.push_back(f->text);
    }
    if (pieces.empty() && std::chrono::steady_clock::now() - last_write >= stream_.heartbeat)
      pieces.push_back(kHeartbeat);
    if (!pieces.empty()) {
      co_await out.write_many(pieces);
      buf.clear();
      last_write = std::chrono::steady_clock::now();
      if (frames.capacity() > 4096) frames = {}, pieces = {};  // a burst's lists are not kept either
      continue;                                                // more may have come while writing
    }
    w->timer.expires_at(last_write + stream_.heartbeat);
    co_await w->timer.async_wait(asio::redirect_error(use_task, ec));
  }
  co_await out.finish();
}

void CoreModule::mount_events(http::Router& r) {
  r.add(
      Method::kGet, "/api/v1/events",
      [this](Context& ctx) -> Task<void> {
        const http::Page page = http::parse_page(ctx.req);
        EventQuery q;
        q.limit = page.limit;
        q.before_seq = kit::seq_cursor(page, "ev");
        Reader who = reader_of(ctx);
        q.types = std::move(who.filter.types);
        q.tenant_id = std::move(who.filter.tenant_id);
        q.since = time_param(ctx, "since");
        q.until = time_param(ctx, "until");
        nlohmann::json rows = co_await workers_.run([&] { return service_.list_events(q); });
        nlohmann::json next = nullptr;
        if (rows.size() > static_cast<size_t>(q.limit)) {
          rows.erase(rows.size() - 1);
          next = http::encode_cursor("ev|" + std::to_string(rows.back().at("seq").get<int64_t>()));
        }
        ctx.res.json(200, nlohmann::json{{"data", std::move(rows)}, {"next_cursor", std::move(next)}}.dump());
      },
      {.access = Access::kAuthenticated,
       .scope = "events:read",
       .summary =
           "The platform event log, newest first: every module's events with a global sequence. The "
           "SUPERADMIN reads every tenant's (tenant_id= for one); a tenant's ADMIN its own. type= takes "
           "names, prefixes (crm.*) or *, comma-separated; since= and until= (RFC 3339) bound the time",
       .tag = "events",
       .response_schema = "Event",
       .list = true,
       .query_params = {"tenant_id", "type", "since", "until"}});

  r.add(Method::kGet, "/api/v1/events/stream",
        [this](Context& ctx) -> Task<void> {
          Reader who = reader_of(ctx);
          const auto after = last_event_id(ctx);
          http::AnswerStream* out = ctx.answer_stream;
          if (!out) throw Error(Code::kInternal, "The live feed needs a streamed answer.");
          ctx.res.set(200, "text/event-stream", "");
          ctx.res.header("Cache-Control", "no-cache");
          ctx.res.header("X-Accel-Buffering", "no");  // a proxy in front must not hold the messages back
          if (ctx.req.method == Method::kHead) {
            co_await out->begin(std::nullopt);
            co_await out->finish();
            co_return;
          }
          co_await stream_events(*out, std::move(who.filter), who.superadmin, after);
        },
        {.access = Access::kAuthenticated,
         .scope = "events:read",
         .summary =
             "The live feed of the event log over Server-Sent Events (text/event-stream): each event as "
             "it is recorded (id: seq, event: type, data: the event as GET /api/v1/events shows it), and "
             "for the SUPERADMIN service.down / service.up / service.status. Who and filters as GET "
             "/api/v1/events; Last-Event-ID (or last_event_id=) replays what was missed; a heartbeat "
             "comment every 15 s; a client that cannot keep up gets event: dropped and is closed",
         .tag = "events",
         .query_params = {"tenant_id", "type", "last_event_id"},
         .stream_answer = true});
}

}  // namespace cdx::core
