#include "cms/media.hpp"

#include <fmt/format.h>
#include <magic.h>
#include <unistd.h>
#include <vips/vips.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include "common/error.hpp"
#include "common/ids.hpp"
#include "common/validate.hpp"

namespace cdx::cms::media {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void bad(std::string field, std::string message) {
  throw Error::validation({{std::move(field), std::move(message)}});
}

// libmagic's handle is not thread-safe and loading its database costs milliseconds: one per worker thread.
std::string detect(std::string_view bytes) {
  struct Handle {
    magic_t m = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);
    Handle() {
      if (!m || magic_load(m, nullptr) != 0) throw std::runtime_error("libmagic: cannot load its database");
    }
    ~Handle() {
      if (m) magic_close(m);
    }
  };
  thread_local Handle h;
  const char* type = magic_buffer(h.m, bytes.data(), bytes.size());
  return type ? type : "application/octet-stream";
}

// What a file name's extension says the bytes are (only the ones we can tell apart).
const std::map<std::string, std::set<std::string>>& extensions() {
  static const std::map<std::string, std::set<std::string>> kTypes = {
      {"jpg", {"image/jpeg"}},      {"jpeg", {"image/jpeg"}},     {"png", {"image/png"}},
      {"gif", {"image/gif"}},       {"webp", {"image/webp"}},     {"svg", {"image/svg+xml", "image/svg"}},
      {"tif", {"image/tiff"}},      {"tiff", {"image/tiff"}},     {"pdf", {"application/pdf"}},
      {"mp4", {"video/mp4"}},       {"webm", {"video/webm"}},     {"mp3", {"audio/mpeg"}},
      {"zip", {"application/zip"}}, {"json", {"application/json", "text/plain"}},
      {"txt", {"text/plain"}},      {"csv", {"text/csv", "text/plain"}},
      {"html", {"text/html"}},      {"htm", {"text/html"}}};
  return kTypes;
}

const std::set<std::string>& raster() {
  static const std::set<std::string> kRaster = {"image/jpeg", "image/png", "image/gif", "image/webp", "image/tiff"};
  return kRaster;
}

struct Unref {
  void operator()(VipsImage* im) const {
    if (im) g_object_unref(im);
  }
};
using Image = std::unique_ptr<VipsImage, Unref>;

std::string vips_failure() {
  std::string e = vips_error_buffer();
  vips_error_clear();
  return e.substr(0, e.find('\n'));
}

void write_atomically(const fs::path& to, std::string_view bytes) {
  fs::create_directories(to.parent_path());
  const fs::path tmp = to.string() + ".tmp" + std::to_string(::getpid()) + "-" + random_token(8);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw Error(Code::kServiceUnavailable, "The media store cannot be written (disk full?).");
    }
  }
  fs::rename(tmp, to);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(Code::kNotFound, "The media file is missing.");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

void start() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (VIPS_INIT("cdx") != 0) throw std::runtime_error("libvips: " + vips_failure());
    vips_concurrency_set(1);  // the worker pool is the concurrency
    vips_cache_set_max(0);
  });
}

Kind inspect(std::string_view bytes, const std::string& filename) {
  if (bytes.empty()) bad("file", "is empty");
  Kind k;
  k.mime = detect(bytes);
  const size_t dot = filename.rfind('.');
  const std::string ext = dot == std::string::npos ? "" : lowercase(filename.substr(dot + 1));
  if (auto it = extensions().find(ext); it != extensions().end() && !it->second.count(k.mime))
    bad("file", fmt::format("is {} by its bytes, not what its name ({}) says", k.mime, filename));
  if (!raster().count(k.mime)) return k;
  start();
  // The header only: the pixels are not decoded, so a bomb is refused before it costs memory.
  Image im(vips_image_new_from_buffer(bytes.data(), bytes.size(), "", "access", VIPS_ACCESS_SEQUENTIAL, nullptr));
  if (!im) bad("file", "is not a readable image: " + vips_failure());
  const int64_t w = vips_image_get_width(im.get()), h = vips_image_get_height(im.get());
  if (w <= 0 || h <= 0 || w * h > kMaxPixels)
    bad("file", fmt::format("declares {}x{} pixels; images may have at most {} megapixels", w, h, kMaxPixels / 1'000'000));
  k.width = w, k.height = h;
  return k;
}

std::string Transform::suffix() const { return fmt::format("{}x{}-{}.{}", width, height, fit, format); }

Transform parse_transform(const std::vector<std::pair<std::string, std::string>>& query) {
  Transform t;
  for (const auto& [name, value] : query) {
    if (name == "w" || name == "h") {
      int n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || p != value.data() + value.size() || n < 1 || n > kMaxSide)
        bad(name, fmt::format("must be an integer from 1 to {}", kMaxSide));
      (name == "w" ? t.width : t.height) = n;
    } else if (name == "fit") {
      if (value != "inside" && value != "cover" && value != "fill") bad("fit", "must be one of: inside, cover, fill");
      t.fit = value;
    } else if (name == "format") {
      if (value != "webp" && value != "jpeg" && value != "png") bad("format", "must be one of: webp, jpeg, png");
      t.format = value;
    } else {
      bad(name, "is not a parameter of this endpoint (known: w, h, fit, format)");
    }
  }
  if (t.fit != "inside" && (t.width == 0 || t.height == 0)) bad("fit", "cover and fill need both w and h");
  return t;
}

std::string output_mime(const Kind& kind, const Transform& t) {
  if (t.format.empty()) return kind.mime;
  return "image/" + t.format;
}

std::string Files::path(const std::string& tenant_id, const std::string& hash) const {
  return (fs::path(root_) / tenant_id / hash).string();
}

std::string Files::store(const std::string& tenant_id, std::string_view bytes) const {
  const std::string hash = sha256_hex(bytes);
  const fs::path p = path(tenant_id, hash);
  if (!fs::exists(p)) write_atomically(p, bytes);
  return hash;
}

std::string Files::variant(const std::string& tenant_id, const std::string& hash, const Kind& kind,
                           const Transform& t) const {
  if (!raster().count(kind.mime)) bad("w", "only images (JPEG, PNG, GIF, WebP, TIFF) can be transformed");
  Transform out = t;
  if (out.format.empty()) out.format = kind.mime == "image/png" ? "png" : kind.mime == "image/webp" ? "webp" : "jpeg";
  const fs::path p = fs::path(root_) / tenant_id / "variants" / (hash + "-" + out.suffix());
  if (fs::exists(p)) return p.string();
  start();
  const std::string original = read_file(path(tenant_id, hash));
  VipsImage* raw = nullptr;
  const int width = out.width ? out.width : kMaxSide;
  const int height = out.height ? out.height : kMaxSide;
  const VipsSize size = out.fit == "fill" ? VIPS_SIZE_FORCE : (out.width && out.height ? VIPS_SIZE_BOTH : VIPS_SIZE_DOWN);
  const VipsInteresting crop = out.fit == "cover" ? VIPS_INTERESTING_CENTRE : VIPS_INTERESTING_NONE;
  // Shrink-on-load: a large JPEG is decoded at a fraction of its size.
  if (vips_thumbnail_buffer(const_cast<char*>(original.data()), original.size(), &raw, width, "height", height,
                            "size", size, "crop", crop, nullptr) != 0)
    bad("file", "cannot be transformed: " + vips_failure());
  Image im(raw);
  void* buf = nullptr;
  size_t len = 0;
  const std::string suffix = "." + out.format;
  const int rc = out.format == "png" ? vips_image_write_to_buffer(im.get(), suffix.c_str(), &buf, &len, nullptr)
                                     : vips_image_write_to_buffer(im.get(), suffix.c_str(), &buf, &len, "Q", 82,
                                                                  "strip", TRUE, nullptr);
  if (rc != 0) bad("format", "cannot be written: " + vips_failure());
  std::unique_ptr<void, decltype(&g_free)> keep(buf, &g_free);
  write_atomically(p, std::string_view(static_cast<const char*>(buf), len));
  return p.string();
}

int Files::sweep(const std::string& tenant_id, const std::vector<std::string>& live, int64_t min_age_s) const {
  const fs::path dir = fs::path(root_) / tenant_id;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  const std::set<std::string> keep(live.begin(), live.end());
  const auto now = fs::file_time_type::clock::now();
  int removed = 0;
  for (const auto& sub : {dir, dir / "variants"}) {
    for (const auto& e : fs::directory_iterator(sub, ec)) {
      if (!e.is_regular_file(ec)) continue;
      const std::string name = e.path().filename().string();
      const std::string hash = name.substr(0, std::min<size_t>(64, name.size()));
      if (keep.count(hash)) continue;
      if (now - e.last_write_time(ec) < std::chrono::seconds(min_age_s)) continue;  // an upload under way
      if (fs::remove(e.path(), ec)) ++removed;
    }
  }
  return removed;
}

std::vector<std::string> Files::tenants() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_, ec))
    if (e.is_directory(ec) && valid_uuid(e.path().filename().string())) out.push_back(e.path().filename().string());
  return out;
}

void Files::remove_tenant(const std::string& tenant_id) const {
  if (!valid_uuid(tenant_id)) return;
  std::error_code ec;
  fs::remove_all(fs::path(root_) / tenant_id, ec);
}

}  // namespace cdx::cms::media
