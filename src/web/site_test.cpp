#include "web/site.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace cdx::web {
namespace {

// A pack as scripts/pack-web writes it: manifest length (8 bytes, little-endian), manifest, data.
std::string pack(const nlohmann::json& files, std::string_view data) {
  const std::string manifest = nlohmann::json{{"files", files}}.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((manifest.size() >> (8 * i)) & 0xff);
  return out + manifest + std::string(data);
}

// index.html at [0,15), a hashed script at [15,27) with a "gzip" form at [27,31).
std::unique_ptr<Site> site() {
  return Site::from_pack(pack(
      {{{"path", "/index.html"}, {"type", "text/html; charset=utf-8"}, {"etag", "i1"}, {"identity", {0, 15}}},
       {{"path", "/assets/app-1a2b.js"},
        {"type", "text/javascript; charset=utf-8"},
        {"etag", "a1"},
        {"immutable", true},
        {"identity", {15, 12}},
        {"gzip", {27, 4}}}},
      "<html>app</html"
      "console.log1"
      "GZIP"));
}

struct Answer {
  int status;
  std::string type, lines, body;
};

Answer get(const Site& s, std::string_view path, std::vector<http::Header> headers = {}) {
  http::Context ctx;
  ctx.req.path = path;
  ctx.req.headers = std::move(headers);
  s.serve(ctx);
  return {ctx.res.status, std::string(ctx.res.content_type), ctx.res.header_lines,
          std::string(ctx.res.body_view())};
}

TEST(Site, TheRootAndClientRoutesAnswerIndexHtmlThatIsNeverCached) {
  auto s = site();
  for (std::string_view path : {"/", "/index.html", "/tenants/42", "/crm/deals"}) {
    const Answer a = get(*s, path);
    EXPECT_EQ(a.status, 200) << path;
    EXPECT_EQ(a.body, "<html>app</html") << path;
    EXPECT_NE(a.lines.find("Cache-Control: no-store\r\n"), std::string::npos);
    EXPECT_NE(a.lines.find("Content-Security-Policy: default-src 'self'; script-src 'self';"),
              std::string::npos);
    EXPECT_EQ(a.lines.find("unsafe-inline"), std::string::npos);
  }
}

TEST(Site, HashedAssetsAreImmutableAndGzippedWhenTheClientTakesIt) {
  auto s = site();
  Answer plain = get(*s, "/assets/app-1a2b.js");
  EXPECT_EQ(plain.body, "console.log1");
  EXPECT_EQ(plain.type, "text/javascript; charset=utf-8");
  EXPECT_NE(plain.lines.find("Cache-Control: public, max-age=31536000, immutable\r\n"), std::string::npos);
  EXPECT_NE(plain.lines.find("Vary: Accept-Encoding\r\n"), std::string::npos);
  EXPECT_EQ(plain.lines.find("Content-Encoding"), std::string::npos);
  Answer gz = get(*s, "/assets/app-1a2b.js", {{"accept-encoding", "br, gzip;q=0.8"}});
  EXPECT_EQ(gz.body, "GZIP");
  EXPECT_NE(gz.lines.find("Content-Encoding: gzip\r\n"), std::string::npos);
  EXPECT_EQ(get(*s, "/assets/app-1a2b.js", {{"accept-encoding", "gzip;q=0, br"}}).body, "console.log1");
  EXPECT_EQ(get(*s, "/assets/app-1a2b.js", {{"accept-encoding", "deflate"}}).body, "console.log1");
}

TEST(Site, AMatchingETagIsA304WithoutBody) {
  auto s = site();
  const Answer a = get(*s, "/assets/app-1a2b.js", {{"if-none-match", "\"a1\""}});
  EXPECT_EQ(a.status, 304);
  EXPECT_TRUE(a.body.empty());
  EXPECT_EQ(get(*s, "/assets/app-1a2b.js", {{"if-none-match", "\"zz\""}}).status, 200);
}

TEST(Site, ApiPathsAndMissingAssetsStayJson404s) {
  auto s = site();
  for (std::string_view path :
       {"/api", "/api/v1/nothing", "/oauth/x", "/.well-known/x", "/internal/v1/x", "/health", "/metrics",
        "/openapi.json", "/assets/gone-123.js", "/favicon.ico", "/openapi.yaml"}) {
    try {
      get(*s, path);
      ADD_FAILURE() << path << " was served";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::kNotFound) << path;
    }
  }
  EXPECT_EQ(get(*s, "/apis").status, 200);  // only the segment /api is reserved
}

TEST(Site, ADamagedPackIsRefusedNotServed) {
  EXPECT_THROW(Site::from_pack("short"), std::exception);
  EXPECT_THROW(
      Site::from_pack(pack(
          {{{"path", "/index.html"}, {"type", "text/html"}, {"etag", "x"}, {"identity", {0, 99}}}}, "tiny")),
      std::runtime_error);
  EXPECT_THROW(
      Site::from_pack(pack(
          {{{"path", "/a.js"}, {"type", "text/javascript"}, {"etag", "x"}, {"identity", {0, 4}}}}, "abcd")),
      std::runtime_error);  // no index.html
}

TEST(Site, MountsAsTheRoutersFallback) {
  auto s = site();
  http::Router router;
  s->mount(router);
  std::array<std::string_view, 4> params{};
  const http::Match m = router.match(http::Method::kGet, "/tenants", params);
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route, router.fallback());
}

}  // namespace
}  // namespace cdx::web
