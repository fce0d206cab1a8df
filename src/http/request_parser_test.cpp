#include "http/request_parser.hpp"

#include <gtest/gtest.h>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

namespace cdx::http {
namespace {

struct Parsed {
  int status = 0;  // 0: a request; else the refusal's
  std::string body;
  size_t body_capacity = 0;
};

Parsed parse(std::string_view bytes) {
  std::string head, body;
  std::vector<RequestParser::FieldSpan> fields;
  RequestParser p(head, body, fields);
  p.configure(16 * 1024, 1 << 20, nullptr);
  boost::beast::error_code ec;
  p.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  Parsed out;
  if (ec && ec != boost::beast::http::error::need_more)
    out.status = info(request_error(ec, 16 * 1024, p.applied_body_limit).code()).status;
  out.body = body;
  out.body_capacity = body.capacity();
  return out;
}

TEST(RequestParser, AChunkedBodyIsJoined) {
  const Parsed p = parse(
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n2\r\nde\r\n0\r\nT: "
      "1\r\n\r\n");
  EXPECT_EQ(p.status, 0);
  EXPECT_EQ(p.body, "abcde");
}

// Found by request_parser_fuzz: a refused header (here: no Host) went on to the body with its
// Content-Length unchecked, and the parser reserved that much: 2^64 - 1 threw std::length_error out of the
// connection (no answer), a few GiB were asked of the allocator.
TEST(RequestParser, ARefusedHeaderReservesNothingForItsBody) {
  for (std::string_view length : {"18446744073709551615", "000000000000000000000000004294967296"}) {
    const Parsed p = parse("POST /x HTTP/1.1\r\nContent-Length: " + std::string(length) + "\r\n\r\nabc");
    EXPECT_EQ(p.status, 400) << length;
    EXPECT_LT(p.body_capacity, 1024u) << length;
  }
  EXPECT_EQ(parse("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\nabc").status,
            413);
}

}  // namespace
}  // namespace cdx::http
