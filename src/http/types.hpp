// Request, Response and the per-request Context that handlers receive. Views in Request point into
// connection-owned buffers that live until the response is written.
//   void health(Context& ctx) { ctx.res.set(200, "application/json", R"({"status":"ok"})"); }
#pragma once
#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/principal.hpp"
#include "common/task.hpp"
#include "common/tenant_scope.hpp"

namespace cdx::http {

enum class Method : uint8_t { kGet, kHead, kPost, kPut, kPatch, kDelete, kOptions, kOther };
inline constexpr size_t kMethodCount = 8;
std::string_view method_name(Method m);

struct Header {
  std::string_view name;
  std::string_view value;
};

// The rest of a request body still on its way (a route declared with RouteDoc::stream_body whose body
// did not arrive with its header). Request::body holds what came with the header; the rest is read here.
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  // The whole body's length when the client declared one (Content-Length); nullopt when chunked.
  virtual std::optional<uint64_t> length() const = 0;
  // The next piece, valid until the next call (Request::body is stale after the first call); empty
  // once the body is complete. Throws cdx::Error: 400 bad framing, 413 over the route's limit, 408 when
  // the client stalls past the body timeout or is gone.
  virtual Task<std::string_view> next() = 0;
};

// Writes an answer while it is produced (a route declared with RouteDoc::stream_body): the head from
// Response's status, content type and headers, then the body in pieces. Once begun, the server writes
// nothing else for the request; a handler that throws after begin() gets the connection closed, so the
// client sees a truncated answer rather than a wrong one.
class AnswerStream {
 public:
  virtual ~AnswerStream() = default;
  // length: the body's Content-Length, or nullopt for a chunked body. Throws cdx::Error when the
  // client is gone.
  virtual Task<void> begin(std::optional<uint64_t> length) = 0;
  virtual Task<void> write(std::string_view piece) = 0;
  // The pieces in order, as one piece of the body, in one gathered write: what they view is not copied
  // (an event stream's frames, shared by every client they go to). They must live until it returns.
  virtual Task<void> write_many(std::span<const std::string_view> pieces) = 0;
  virtual Task<void> finish() = 0;
  // For a long-lived answer (an event stream), after begin(): `stop` is called on the connection's thread
  // when the client closes the connection or the server starts to drain, so the handler ends the answer at
  // once rather than at its next write. What the client sends meanwhile is dropped; the connection closes
  // after such an answer. send_buffer, when not 0, fixes the connection's kernel send buffer at about that
  // many bytes (no autotuning up to megabytes): with a bounded queue in the handler, a client that stops
  // reading holds a bounded amount of memory.
  virtual void watch(std::function<void()> stop, size_t send_buffer = 0) = 0;
  // Bounds each later write (the server's body timeout by default): a client that takes no more than that
  // is gone.
  virtual void set_write_timeout(std::chrono::milliseconds timeout) = 0;
};

struct Request {
  Method method = Method::kGet;
  std::string_view target;  // path + query as sent
  std::string_view path;
  std::string_view query;  // without '?'
  std::vector<Header> headers;
  std::string_view body;
  BodyStream* body_stream = nullptr;         // set when more of the body follows `body` (streamed routes)
  std::array<std::string_view, 4> params{};  // path parameters in pattern order
  std::string_view remote;                   // client address

  std::string_view header(std::string_view name) const;  // case-insensitive; empty if absent
  std::string_view param(size_t i) const { return params[i]; }
  // Percent-decoded value of a query parameter, or nullopt when absent.
  std::optional<std::string> query_param(std::string_view name) const;
  // Every query parameter in order, percent-decoded and checked like query_param (422 naming a bad one).
  std::vector<std::pair<std::string, std::string>> query_params() const;
};

struct Response {
  int status = 200;
  std::string_view content_type = "application/json";
  std::string body;
  // When set (non-null), the body instead of `body`: bytes that outlive the request (the dashboard's files
  // in memory), written from where they are, never copied.
  std::string_view static_body;
  // When not -1, a file holding static_body's bytes at static_offset: a large one is sent from it with
  // sendfile(2), as nginx sends files, instead of being copied from user memory into the socket.
  int static_fd = -1;
  uint64_t static_offset = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header_lines;          // pre-formatted "Name: value\r\n" lines, appended without allocating
  std::string content_type_storage;  // owns content_type when it is not a literal (a proxied answer)

  void set(int s, std::string_view type, std::string_view b) {
    status = s;
    content_type = type;
    body.assign(b);
  }
  std::string_view body_view() const { return static_body.data() ? static_body : std::string_view(body); }
  void json(int s, std::string b) {
    status = s;
    content_type = "application/json";
    body = std::move(b);
  }
  void no_content() {
    status = 204;
    body.clear();
  }
  void header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

struct Context {
  Request req;
  Response res;
  std::string_view request_id;
  std::shared_ptr<const Principal> principal;  // set by the authenticator on non-public routes
  const TenantScope* tenant = nullptr;         // the tenant this request acts in, if any
  AnswerStream* answer_stream = nullptr;       // set by the server on streamed routes
  std::optional<TenantScope> tenant_storage;   // owns the scope when a SUPERADMIN names a tenant
  int route_id = -1;
  std::array<std::shared_ptr<const void>, 2> step_state;  // see http/middleware.hpp (StepSlot)

  // Per-request reset; keeps buffer capacity so the hot path does not allocate.
  void reset() {
    req.headers.clear();
    req.params = {};
    req.body = {};
    req.body_stream = nullptr;
    answer_stream = nullptr;
    res.status = 200;
    res.content_type = "application/json";
    res.body.clear();
    res.static_body = {};
    res.static_fd = -1;
    res.headers.clear();
    res.header_lines.clear();
    principal.reset();
    tenant = nullptr;
    tenant_storage.reset();
    route_id = -1;
    step_state[0].reset();
    step_state[1].reset();
  }
};

}  // namespace cdx::http
