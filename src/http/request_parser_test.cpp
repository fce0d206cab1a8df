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

// Feeds bytes as the server does, `piece` bytes arriving at a time (0: all at once).
Parsed parse(std::string_view bytes, size_t piece = 0, size_t header_limit = 16 * 1024) {
  std::string head, body, buffered;
  std::vector<RequestParser::FieldSpan> fields;
  RequestParser p(head, body, fields);
  p.configure(header_limit, 1 << 20, nullptr);
  boost::beast::error_code ec;
  for (size_t arrived = 0; arrived < bytes.size() && !p.is_done();) {
    const size_t n = piece ? std::min(piece, bytes.size() - arrived) : bytes.size();
    buffered.append(bytes.substr(arrived, n));
    arrived += n;
    buffered.erase(0, p.feed(buffered.data(), buffered.size(), ec));
    if (ec == boost::beast::http::error::need_more) ec = {};
    if (ec) break;
  }
  Parsed out;
  if (ec) out.status = info(request_error(ec, header_limit, p.applied_body_limit).code()).status;
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

// Found by request_parser_fuzz: Beast applies its header limit to the bytes of one call and takes the
// complete fields of its first call at once, so a header arriving in parts passed the limit (by up to the
// limit again); all at once, the same header was refused.
TEST(RequestParser, TheHeaderLimitHoldsHoweverTheHeaderArrives) {
  std::string header = "GET /x HTTP/1.1\r\nHost: a\r\n";
  while (header.size() < 1500) header += "X-Pad: " + std::string(40, 'p') + "\r\n";
  const std::string request = header + "\r\n";
  for (size_t piece : {0, 1, 49, 50, 700}) EXPECT_EQ(parse(request, piece, 1024).status, 431) << piece;
  const std::string small = "GET /x HTTP/1.1\r\nHost: a\r\nX-Pad: " + std::string(900, 'p') + "\r\n\r\n";
  ASSERT_LE(small.size(), 1024u);
  for (size_t piece : {0, 1, 49, 50, 700}) EXPECT_EQ(parse(small, piece, 1024).status, 0) << piece;
  // A body after a header that fills the limit exactly is still read.
  const std::string post = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nX-Pad: ";
  const std::string full = post + std::string(1024 - post.size() - 4, 'p') + "\r\n\r\nabc";
  for (size_t piece : {0, 1, 7}) {
    const Parsed p = parse(full, piece, 1024);
    EXPECT_EQ(p.status, 0) << piece;
    EXPECT_EQ(p.body, "abc") << piece;
  }
}

}  // namespace
}  // namespace cdx::http
