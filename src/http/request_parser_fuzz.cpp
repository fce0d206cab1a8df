// libFuzzer target: HTTP/1.1 request framing (http/request_parser.hpp), pipelined requests with
// Content-Length or chunked bodies, fed at once, a byte at a time and in the pieces the fuzzer chooses, as
// the server feeds its parser from its read buffer (after need_more, again once more bytes are in). Checks
// that the pieces change nothing (the same requests served: a parser that waited for bytes it already had
// would serve fewer), and the framing rules of docs/operations.md#limits on every request that passes.
#include <fuzzer/FuzzedDataProvider.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_parser.hpp"

namespace {

using namespace cdx;
using namespace cdx::http;
namespace bhttp = boost::beast::http;

// Small limits, so that the fuzzer reaches them.
constexpr size_t kHeaderLimit = 1024;
constexpr size_t kBodyLimit = 64;
constexpr size_t kUploadLimit = 512;

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "request_parser_fuzz: %s\n", what);
  std::abort();
}

struct Routes {
  Router router;
  Routes() {
    auto none = [](Context&) {};
    router.add_sync(Method::kGet, "/items", none, {});
    router.add_sync(Method::kPost, "/items", none, {});
    router.add_sync(Method::kGet, "/items/{id}", none, {});
    router.add_sync(Method::kPatch, "/items/{id}", none, {});
    router.add_sync(Method::kPost, "/items/import", none, {.body_limit = kUploadLimit});
    router.add_sync(Method::kPost, "/proxy/{rest}", none, {.stream_body = true});
    router.add_sync(Method::kGet, "/items/export", none, {.stream_answer = true});
  }
};
const Router& routes() {
  static const Routes r;
  return r.router;
}

// What one request came to: a complete request, a refusal, or bytes that ran out first.
struct Outcome {
  enum Kind { kRequest, kRefused, kIncomplete } kind = kIncomplete;
  int status = 0;  // of a refusal
  Method method = Method::kGet;
  std::string target, body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool keep_alive = false, http11 = false, stream = false;
  size_t end = 0;  // where in the input the request ends

  bool operator==(const Outcome&) const = default;
};

// Parses the requests in `input` as the server does: a fresh parser per request over the connection's
// storage, fed what has arrived; the input arrives in pieces of the sizes in `cuts` (cycled).
std::vector<Outcome> parse(std::string_view input, const std::vector<size_t>& cuts) {
  std::vector<Outcome> out;
  std::string buffered;  // arrived, not yet consumed
  size_t arrived = 0, cut = 0;
  std::string head, body;
  std::vector<RequestParser::FieldSpan> fields;
  for (;;) {
    if (buffered.empty() && arrived == input.size()) return out;  // the client is done
    RequestParser p(head, body, fields);
    p.configure(kHeaderLimit, kBodyLimit, &routes());
    Outcome o;
    for (;;) {
      boost::beast::error_code ec;
      if (!buffered.empty()) {
        const size_t n = p.feed(buffered.data(), buffered.size(), ec);
        buffered.erase(0, n);
        if (ec == bhttp::error::need_more) ec = {};
      }
      if (ec) {
        o.kind = Outcome::kRefused;
        o.status = info(request_error(ec, kHeaderLimit, p.applied_body_limit).code()).status;
        require(o.status == 400 || o.status == 413 || o.status == 431, "a refusal that is not 400/413/431");
        out.push_back(std::move(o));
        return out;  // the server answers and closes
      }
      if (p.is_done()) break;
      if (arrived == input.size()) {
        out.push_back(std::move(o));  // incomplete: the client stopped sending
        return out;
      }
      const size_t n = std::min(input.size() - arrived, std::max<size_t>(1, cuts[cut++ % cuts.size()]));
      buffered.append(input.substr(arrived, n));
      arrived += n;
    }
    o.kind = Outcome::kRequest;
    o.end = arrived - buffered.size();
    o.method = to_method(p.verb);
    o.target = head.substr(p.target.off, p.target.len);
    for (const auto& f : fields)
      o.headers.emplace_back(head.substr(f.name.off, f.name.len), head.substr(f.value.off, f.value.len));
    o.body = body;
    o.keep_alive = p.keep_alive();
    o.http11 = p.http11();
    o.stream = p.stream;

    // The rules every request that passes keeps.
    require(body.size() <= p.applied_body_limit, "a body over its limit");
    require(!o.target.empty() && (o.target.front() == '/' || o.target == "*"), "a target that is no path");
    require(fields.size() <= 100, "more than 100 header fields");
    require(head.size() <= kHeaderLimit, "a header over the limit");
    int hosts = 0, lengths = 0, encodings = 0;
    for (const auto& [name, value] : o.headers) {
      require(value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos,
              "CR, LF or NUL in a header value");
      require(name.find_first_of(std::string_view(" \t\r\n:\0", 6)) == std::string::npos && !name.empty(),
              "a header name that is no token");
      if (boost::beast::iequals(name, "host")) ++hosts;
      if (boost::beast::iequals(name, "content-length")) ++lengths;
      if (boost::beast::iequals(name, "transfer-encoding")) ++encodings;
    }
    require(!o.http11 || hosts == 1, "an HTTP/1.1 request without exactly one Host");
    require(lengths <= 1, "Content-Length twice");
    require(lengths == 0 || encodings == 0, "Content-Length with Transfer-Encoding");
    if (auto length = p.content_length())
      require(*length == body.size(), "a body short of its Content-Length");
    out.push_back(std::move(o));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<size_t> cuts(in.ConsumeIntegralInRange<size_t>(1, 8));
  for (auto& c : cuts) c = in.ConsumeIntegralInRange<size_t>(1, 300);
  const std::string bytes = in.ConsumeRemainingBytesAsString();

  const std::vector<Outcome> whole = parse(bytes, {bytes.size()});
  const std::vector<Outcome> pieces = parse(bytes, cuts);
  const std::vector<Outcome> bytewise = parse(bytes, {1});
  // A refusal may come sooner or later (Beast checks a start line it has seen in part once the whole header
  // is in), and an answer at 400 or 431 alike, but the requests served must be the same.
  auto served = [](std::vector<Outcome> run) {
    std::erase_if(run, [](const Outcome& o) { return o.kind != Outcome::kRequest; });
    return run;
  };
  if (served(whole) != served(pieces) || served(whole) != served(bytewise)) {
    for (const auto* run : {&whole, &pieces, &bytewise}) {
      std::fprintf(stderr, "--\n");
      for (const Outcome& o : *run) {
        std::fprintf(stderr, "kind %d status %d method %s target %s headers %zu body %zu keep %d end %zu\n",
                     o.kind, o.status, std::string(method_name(o.method)).c_str(), o.target.c_str(),
                     o.headers.size(), o.body.size(), o.keep_alive, o.end);
        for (const auto& [name, value] : o.headers)
          std::fprintf(stderr, "  %s: %s\n", name.c_str(), value.c_str());
      }
    }
  }
  require(served(whole) == served(pieces), "pieces change what the requests are");
  require(served(whole) == served(bytewise), "single bytes change what the requests are");
  return 0;
}
