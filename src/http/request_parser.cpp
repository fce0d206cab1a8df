#include "http/request_parser.hpp"

#include <fmt/format.h>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <limits>

namespace cdx::http {

namespace bhttp = boost::beast::http;

Method to_method(bhttp::verb v) {
  switch (v) {
    case bhttp::verb::get:
      return Method::kGet;
    case bhttp::verb::head:
      return Method::kHead;
    case bhttp::verb::post:
      return Method::kPost;
    case bhttp::verb::put:
      return Method::kPut;
    case bhttp::verb::patch:
      return Method::kPatch;
    case bhttp::verb::delete_:
      return Method::kDelete;
    case bhttp::verb::options:
      return Method::kOptions;
    default:
      return Method::kOther;
  }
}

RequestParser::RequestParser(std::string& head, std::string& body, std::vector<FieldSpan>& fields)
    : head_(head), body_(body), fields_(fields) {
  head_.clear();
  fields_.clear();
  body_.clear();
}

void RequestParser::configure(size_t header_limit, size_t body_limit, const Router* r) {
  eager(true);
  header_limit_ = header_limit;
  basic_parser::header_limit(static_cast<std::uint32_t>(header_limit));
  metadata_limit = header_limit;
  basic_parser::body_limit(std::numeric_limits<std::uint64_t>::max());  // the request's: see on_header_impl
  router = r;
  default_body_limit = applied_body_limit = body_limit;
}

std::size_t RequestParser::feed(const char* data, std::size_t size, boost::beast::error_code& ec) {
  std::size_t taken = 0;
  ec = {};
  if (!is_header_done()) {
    const std::size_t allowance = header_limit_ - std::min(header_taken_, header_limit_);
    const std::size_t offered = std::min(size, allowance);
    if (offered == 0) {
      ec = bhttp::error::header_limit;
      return 0;
    }
    taken = put(boost::asio::buffer(data, offered), ec);
    if (!is_header_done()) {
      header_taken_ += taken;
      // Everything the limit allows is here and the header has not ended: it is too long.
      if (ec == bhttp::error::need_more && offered == allowance) ec = bhttp::error::header_limit;
      return taken;
    }
    if (ec && ec != bhttp::error::need_more) return taken;
  }
  if (!is_done() && taken < size) {
    ec = {};
    taken += put(boost::asio::buffer(data + taken, size - taken), ec);
  }
  return taken;
}

// Beast may deliver the start line and the fields from different reads (the read buffer moves in
// between), so each piece is copied into the connection's header storage as it arrives.
RequestParser::Span RequestParser::keep(std::string_view s) {
  Span out{head_.size(), s.size()};
  head_.append(s);
  return out;
}

void RequestParser::on_request_impl(bhttp::verb method, std::string_view, std::string_view t, int version,
                                    boost::beast::error_code& ec) {
  verb = method;
  target = keep(t);
  if (version != 11 && version != 10) ec = bhttp::error::bad_version;
  if (t.empty() || (t.front() != '/' && t != "*")) ec = bhttp::error::bad_target;
  http11_ = version == 11;
}

void RequestParser::on_response_impl(int, std::string_view, int, boost::beast::error_code& ec) {
  ec = bhttp::error::bad_method;
}

void RequestParser::on_field_impl(bhttp::field f, std::string_view name, std::string_view value,
                                  boost::beast::error_code& ec) {
  // Trailer fields of a chunked body are dropped: they must not pass for headers (a credential or a
  // tenant after the body), and the header's views must not move while a handler reads the body. They
  // count against the header's limits all the same, as chunk extensions do.
  if (is_header_done()) {
    metadata_ += name.size() + value.size() + 4;
    if (++trailers_ > max_fields || metadata_ > metadata_limit) ec = bhttp::error::header_limit;
    return;
  }
  if (fields_.size() >= max_fields) {
    ec = bhttp::error::header_limit;
    return;
  }
  // One Content-Length, one value (RFC 9112 §6.3): a repeated or listed one could frame differently for
  // a proxy in front of us.
  if (f == bhttp::field::content_length && (++lengths_ > 1 || value.find(',') != std::string_view::npos)) {
    ec = bhttp::error::bad_content_length;
    return;
  }
  fields_.push_back({keep(name), keep(value)});
  if (f == bhttp::field::host) ++hosts_;
  if (f == bhttp::field::transfer_encoding) te_seen_ = true;
  if (f == bhttp::field::expect && boost::beast::iequals(value, "100-continue")) expect_continue = true;
}

void RequestParser::on_header_impl(boost::beast::error_code& ec) {
  // RFC 9112: a Transfer-Encoding we cannot frame, or an HTTP/1.1 request without exactly one Host.
  if (te_seen_ && !chunked()) ec = bhttp::error::bad_transfer_encoding;
  if (http11_ && hosts_ != 1) ec = bhttp::error::bad_field;
  if (ec) return;
  applied_body_limit = default_body_limit;
  if (router) {
    std::string_view path = std::string_view(head_).substr(target.off, target.len);
    path = path.substr(0, path.find('?'));
    match = router->match(to_method(verb), path, params);
    if (match.route && match.route->doc.body_limit > 0)
      applied_body_limit = std::max(applied_body_limit, match.route->doc.body_limit);
    stream = match.route && match.route->doc.stream_body;
    stream_answer = match.route && (match.route->doc.stream_body || match.route->doc.stream_answer);
  }
  if (auto length = content_length(); length && *length > applied_body_limit) {
    ec = bhttp::error::body_limit;
    return;
  }
  basic_parser::body_limit(applied_body_limit);  // counts down chunked bodies
}

void RequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& length,
                                      boost::beast::error_code& ec) {
  // Beast 1.74 comes here even when on_header_impl refused the header (it leaves the header state with
  // ec set and loops on while bytes remain), so the Content-Length may be unchecked: nothing is reserved
  // then, and never more than the limit that applies.
  if (ec) return;
  if (length && !stream && *length <= applied_body_limit)
    body_.reserve(*length);  // a stream passes in pieces
}

std::size_t RequestParser::on_body_impl(std::string_view b, boost::beast::error_code&) {
  body_.append(b);
  return b.size();
}

void RequestParser::on_chunk_header_impl(std::uint64_t, std::string_view extensions,
                                         boost::beast::error_code& ec) {
  metadata_ += extensions.size();
  if (metadata_ > metadata_limit) ec = bhttp::error::header_limit;
}

std::size_t RequestParser::on_chunk_body_impl(std::uint64_t, std::string_view b, boost::beast::error_code&) {
  body_.append(b);
  return b.size();
}

Error request_error(const boost::beast::error_code& ec, size_t header_limit, size_t body_limit) {
  if (ec == bhttp::error::header_limit)
    return Error(Code::kHeadersTooLarge,
                 fmt::format("The request header exceeds {} bytes or 100 fields.", header_limit));
  if (ec == bhttp::error::body_limit || ec == bhttp::error::buffer_overflow)
    return Error(Code::kPayloadTooLarge, fmt::format("The request body exceeds {} bytes.", body_limit));
  if (ec == bhttp::error::bad_content_length || ec == bhttp::error::bad_transfer_encoding)
    return Error(Code::kInvalidRequest, "Conflicting or invalid Content-Length / Transfer-Encoding.");
  if (ec == bhttp::error::bad_field)
    return Error(Code::kInvalidRequest,
                 "Malformed header field (an HTTP/1.1 request needs exactly one Host).");
  return Error(Code::kInvalidRequest, "Malformed HTTP request: " + ec.message() + ".");
}

}  // namespace cdx::http
