// The framing half of the HTTP/1.1 server: Beast's basic_parser with our rules (one Host, one
// Content-Length value, no Transfer-Encoding but chunked, chunk extensions and trailer fields counted
// against the header limit and trailers dropped, the matched route's body limit applied before any body
// byte), keeping the header's bytes and copying the body. The server feeds it from its read buffer.
//   RequestParser p(head, body, fields);  p.configure(16 * 1024, 1 << 20, &router);
//   start += p.put(asio::buffer(in.data() + start, end - start), ec);   // need_more: read, call again
#pragma once
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)

#include <boost/beast/http/basic_parser.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "http/router.hpp"

namespace cdx::http {

Method to_method(boost::beast::http::verb v);

class RequestParser final : public boost::beast::http::basic_parser<true> {
 public:
  struct Span {
    size_t off = 0, len = 0;
  };
  struct FieldSpan {
    Span name, value;
  };

  // head, body and fields are the connection's storage, reused (cleared) for each request.
  RequestParser(std::string& head, std::string& body, std::vector<FieldSpan>& fields);

  // The server's limits: header bytes (and, together, chunk extensions and trailers), the body of a route
  // that declares none, and the router whose matched route may allow a larger body (nullptr: none).
  void configure(size_t header_limit, size_t body_limit, const Router* router);

  // Beast's put() with the header limit counted over the whole header. Beast applies its limit to the
  // bytes of one call (and again after the request line) and takes the complete fields of its first call
  // at once, so a header arriving in parts could reach nearly twice the limit. Until the header is
  // complete no more than what is left of the limit is offered; then the body is parsed from the rest.
  std::size_t feed(const char* data, std::size_t size, boost::beast::error_code& ec);

  boost::beast::http::verb verb = boost::beast::http::verb::unknown;
  Span target;
  bool expect_continue = false;
  size_t max_fields = 100;
  size_t metadata_limit = 16 * 1024;  // chunk extensions and trailers, together: the header limit
  // The body limit is the matched route's (RouteDoc::body_limit), else the server's. Beast checks a
  // Content-Length against its own limit before on_header_impl, so the parser starts unlimited and the
  // request's limit is applied there, once the target is known and before any body byte is read.
  const Router* router = nullptr;
  size_t default_body_limit = 1 << 20;
  size_t applied_body_limit = 1 << 20;
  bool stream = false;         // the route takes its body as it arrives (RouteDoc::stream_body)
  bool stream_answer = false;  // the route writes its answer in pieces (stream_body or stream_answer)
  // The route, found once the header is complete (its limit applies before the body), reused to dispatch.
  Match match;
  std::array<std::string_view, 4> params{};  // views into the kept header, stable once it is complete

  bool http11() const { return http11_; }

 private:
  Span keep(std::string_view s);

  void on_request_impl(boost::beast::http::verb method, std::string_view, std::string_view t, int version,
                       boost::beast::error_code& ec) override;
  void on_response_impl(int, std::string_view, int, boost::beast::error_code& ec) override;
  void on_field_impl(boost::beast::http::field f, std::string_view name, std::string_view value,
                     boost::beast::error_code& ec) override;
  void on_header_impl(boost::beast::error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, boost::beast::error_code&) override;
  std::size_t on_body_impl(std::string_view b, boost::beast::error_code&) override;
  void on_chunk_header_impl(std::uint64_t, std::string_view extensions,
                            boost::beast::error_code& ec) override;
  std::size_t on_chunk_body_impl(std::uint64_t, std::string_view b, boost::beast::error_code&) override;
  void on_finish_impl(boost::beast::error_code&) override {}

  size_t header_limit_ = 16 * 1024;
  size_t header_taken_ = 0;  // bytes of the header Beast has taken so far
  std::string& head_;
  std::string& body_;
  std::vector<FieldSpan>& fields_;
  int hosts_ = 0;
  int lengths_ = 0;
  size_t trailers_ = 0;
  size_t metadata_ = 0;  // bytes of chunk extensions and trailer fields
  bool te_seen_ = false;
  bool http11_ = true;
};

// The answer to a request that could not be framed: 431, 413 or 400 (the connection is then closed).
Error request_error(const boost::beast::error_code& ec, size_t header_limit, size_t body_limit);

}  // namespace cdx::http
