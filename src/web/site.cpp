#include "web/site.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <stdexcept>

#include <sys/mman.h>
#include <unistd.h>

#include "common/error.hpp"

namespace cdx::web {

namespace {

// Trailer at the very end of the executable: the pack's length, then the magic.
constexpr std::string_view kMagic = "CDXWEB01";
constexpr size_t kTrailer = 8 + kMagic.size();

uint64_t read_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// The strictest policy the dashboard runs under: its own scripts, styles and API only, never framed.
constexpr std::string_view kDocumentHeaders =
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: "
    "blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "X-Frame-Options: DENY\r\n"
    "Cross-Origin-Opener-Policy: same-origin\r\n";

// The API and operational paths: an unknown one is a JSON 404, never the dashboard.
bool reserved(std::string_view path) {
  for (std::string_view prefix : {"/api", "/internal", "/oauth", "/.well-known"})
    if (path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/')) return true;
  return path == "/health" || path == "/metrics" || path == "/openapi.json";
}

// True when Accept-Encoding names gzip with a weight above zero (or none).
bool accepts_gzip(std::string_view accept) {
  const size_t pos = accept.find("gzip");
  if (pos == std::string_view::npos) return false;
  std::string_view rest = accept.substr(pos + 4);
  rest = rest.substr(0, rest.find(','));
  const size_t q = rest.find("q=");
  if (q == std::string_view::npos) return true;
  double weight = 1;
  std::from_chars(rest.data() + q + 2, rest.data() + rest.size(), weight);
  return weight > 0;
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  if (if_none_match == "*") return true;
  return if_none_match.find(etag) != std::string_view::npos;
}

}  // namespace

std::unique_ptr<Site> Site::from_executable() {
  std::ifstream in("/proc/self/exe", std::ios::binary | std::ios::ate);
  if (!in) return nullptr;
  const auto size = static_cast<uint64_t>(in.tellg());
  if (size < kTrailer) return nullptr;
  char trailer[kTrailer];
  in.seekg(static_cast<std::streamoff>(size - kTrailer));
  in.read(trailer, kTrailer);
  if (!in || std::string_view(trailer + 8, kMagic.size()) != kMagic) return nullptr;
  const uint64_t length = read_u64(trailer);
  if (length > size - kTrailer) throw std::runtime_error("the dashboard pack at the end of cdx is damaged");
  std::string bytes(length + kTrailer, '\0');
  in.seekg(static_cast<std::streamoff>(size - kTrailer - length));
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!in) throw std::runtime_error("the dashboard pack at the end of cdx could not be read");
  return from_pack(std::move(bytes));
}

std::unique_ptr<Site> Site::from_pack(std::string bytes) {
  return std::unique_ptr<Site>(new Site(std::move(bytes)));
}

Site::Site(std::string bytes) : bytes_(std::move(bytes)) {
  std::string_view all = bytes_;
  if (all.size() >= kTrailer && all.substr(all.size() - kMagic.size()) == kMagic) all.remove_suffix(kTrailer);
  // The pack: an 8-byte manifest length, the JSON manifest, then the files' bytes.
  if (all.size() < 8) throw std::runtime_error("dashboard pack: too short");
  const uint64_t manifest_length = read_u64(all.data());
  if (manifest_length > all.size() - 8) throw std::runtime_error("dashboard pack: bad manifest length");
  const auto manifest = nlohmann::json::parse(all.substr(8, manifest_length));
  const std::string_view data = all.substr(8 + manifest_length);
  // A memory file with the same bytes: what a large file is sent from by sendfile(2), with no copy.
  fd_ = memfd_create("cdx-dashboard", MFD_CLOEXEC);
  for (size_t done = 0; fd_ >= 0 && done < data.size();) {
    const ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n <= 0) {
      ::close(fd_);
      fd_ = -1;  // served from bytes_ alone
    } else {
      done += static_cast<size_t>(n);
    }
  }
  auto slice = [&](const nlohmann::json& range) -> std::string_view {
    if (!range.is_array() || range.size() != 2) return {};
    const auto off = range[0].get<uint64_t>(), len = range[1].get<uint64_t>();
    if (off > data.size() || len > data.size() - off) throw std::runtime_error("dashboard pack: bad range");
    return data.substr(off, len);
  };
  for (const auto& f : manifest.at("files")) {
    File file;
    file.path = f.at("path").get<std::string>();
    file.content_type = f.at("type").get<std::string>();
    file.etag = "\"" + f.at("etag").get<std::string>() + "\"";
    file.identity = slice(f.at("identity"));
    file.identity_at = static_cast<uint64_t>(file.identity.data() - data.data());
    if (f.contains("gzip")) {
      file.gzip = slice(f.at("gzip"));
      file.gzip_at = static_cast<uint64_t>(file.gzip.data() - data.data());
    }
    const bool immutable = f.value("immutable", false);
    const bool document = file.content_type.starts_with("text/html");
    std::string head = immutable  ? "Cache-Control: public, max-age=31536000, immutable\r\n"
                       : document ? "Cache-Control: no-store\r\n"
                                  : "Cache-Control: no-cache\r\n";
    if (!document) head += fmt::format("ETag: {}\r\n", file.etag);
    head += "X-Content-Type-Options: nosniff\r\n";
    if (document) head += kDocumentHeaders;
    if (!file.gzip.empty()) head += "Vary: Accept-Encoding\r\n";
    file.head_identity = head;
    file.head_gzip = head + "Content-Encoding: gzip\r\n";
    files_.push_back(std::move(file));
  }
  std::sort(files_.begin(), files_.end(), [](const File& a, const File& b) { return a.path < b.path; });
  index_ = find("/index.html");
  if (!index_) throw std::runtime_error("dashboard pack: no /index.html");
}

Site::~Site() {
  if (fd_ >= 0) ::close(fd_);
}

const Site::File* Site::find(std::string_view path) const {
  auto it = std::lower_bound(files_.begin(), files_.end(), path,
                             [](const File& f, std::string_view p) { return f.path < p; });
  return it != files_.end() && it->path == path ? &*it : nullptr;
}

void Site::mount(http::Router& router) const {
  router.set_fallback([this](http::Context& ctx) { serve(ctx); }, {.summary = "The dashboard"});
}

void Site::serve(http::Context& ctx) const {
  const std::string_view path = ctx.req.path;
  if (reserved(path)) throw Error(Code::kNotFound, fmt::format("No route matches {}.", path));
  const File* file = path == "/" ? index_ : find(path);
  if (!file) {
    // A missing file is a 404 (index.html in place of a script or an image would fail as one): under
    // /assets/, or named with an extension. Any other path is a client-side route of the app.
    const std::string_view last = path.substr(path.rfind('/') + 1);
    if (path.starts_with("/assets/") || last.find('.') != std::string_view::npos)
      throw Error(Code::kNotFound, fmt::format("No file {}.", path));
    file = index_;
  }
  const bool gzip = !file->gzip.empty() && accepts_gzip(ctx.req.header("accept-encoding"));
  ctx.res.content_type = file->content_type;
  ctx.res.header_lines.assign(gzip ? file->head_gzip : file->head_identity);
  if (file != index_ && etag_matches(ctx.req.header("if-none-match"), file->etag)) {
    ctx.res.status = 304;
    ctx.res.body.clear();
    return;
  }
  ctx.res.status = 200;
  ctx.res.static_body = gzip ? file->gzip : file->identity;
  ctx.res.static_fd = fd_;
  ctx.res.static_offset = gzip ? file->gzip_at : file->identity_at;
}

}  // namespace cdx::web
