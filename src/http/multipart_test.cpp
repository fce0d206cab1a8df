#include "http/multipart.hpp"

#include <gtest/gtest.h>

#include "common/error.hpp"

namespace cdx::http {
namespace {

const std::string kType = "multipart/form-data; boundary=\"XyZ\"";

TEST(Multipart, ReadsFieldsAndFiles) {
  const std::string body =
      "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"alt\"\r\n\r\nA cat\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c\\\"at.png\"\r\n"
      "Content-Type: image/png\r\n\r\n\x89PNG\r\n--X\r\n--XyZ--\r\nepilogue";
  auto parts = parse_multipart(kType, body);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(find_part(parts, "alt")->body, "A cat");
  const Part* file = find_part(parts, "file");
  ASSERT_NE(file, nullptr);
  EXPECT_TRUE(file->has_filename);
  EXPECT_EQ(file->filename, "c\"at.png");
  EXPECT_EQ(file->content_type, "image/png");
  EXPECT_EQ(file->body, "\x89PNG\r\n--X");  // a near-delimiter inside the bytes stays data
  EXPECT_EQ(find_part(parts, "nope"), nullptr);
}

TEST(Multipart, MalformedBodiesAreClientErrors) {
  auto code = [](const std::string& type, const std::string& body) {
    try {
      parse_multipart(type, body);
    } catch (const Error& e) {
      return info(e.code()).status;
    }
    return 200;
  };
  EXPECT_EQ(code("application/json", "{}"), 415);
  EXPECT_EQ(code("multipart/form-data", "--x--"), 400);                   // no boundary
  EXPECT_EQ(code(kType, "nothing here"), 400);                           // no opening delimiter
  EXPECT_EQ(code(kType, "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end"), 400);
  EXPECT_EQ(code(kType, "--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--"), 400);  // no name
  EXPECT_EQ(code(kType, "--XyZ\r\nno colon\r\n\r\nx\r\n--XyZ--"), 400);
  std::string many;
  for (int i = 0; i < 20; ++i) many += "--XyZ\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nx\r\n";
  EXPECT_EQ(code(kType, many + "--XyZ--"), 400);
  EXPECT_EQ(code(kType, "--XyZ--"), 200);  // no parts at all is well-formed
}

}  // namespace
}  // namespace cdx::http
