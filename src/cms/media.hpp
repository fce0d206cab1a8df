// Media bytes: what an upload really is (libmagic on the bytes, never the client's word), an image's size
// (libvips reads the header only), files stored once per tenant under their SHA-256, and image transforms
// made on first request and kept on disk. Blocking: call from a worker.
//   auto kind = media::inspect(bytes, "cat.png");           // 422 when the bytes are not a PNG
//   std::string hash = files.store(tenant_id, bytes);
//   std::string path = files.variant(tenant_id, hash, kind.mime, media::parse_transform(query));
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cdx::cms::media {

inline constexpr int64_t kMaxPixels = 100'000'000;  // what an image may declare (decompression bombs)
inline constexpr int kMaxSide = 4096;               // a transform's largest width or height

struct Kind {
  std::string mime;
  std::optional<int64_t> width, height;  // images
  bool is_image() const { return width.has_value(); }
};

// The type of the bytes; 422 when the file name's extension names another type, or an image declares more
// than kMaxPixels or cannot be read.
Kind inspect(std::string_view bytes, const std::string& filename);

struct Transform {
  int width = 0, height = 0;  // 0: keep the aspect ratio from the other side
  std::string fit = "inside";  // inside | cover | fill
  std::string format;          // "" (the original's) | webp | jpeg | png
  bool empty() const { return width == 0 && height == 0 && format.empty(); }
  std::string suffix() const;  // the cached variant's name
};
// From the query (w, h, fit, format): 422 naming a bad one (sizes 1 to kMaxSide).
Transform parse_transform(const std::vector<std::pair<std::string, std::string>>& query);

// The MIME type a transform answers with.
std::string output_mime(const Kind& kind, const Transform& t);

class Files {
 public:
  explicit Files(std::string root) : root_(std::move(root)) {}
  // Writes the bytes once (atomically) under their hash; answers the hash.
  std::string store(const std::string& tenant_id, std::string_view bytes) const;
  std::string path(const std::string& tenant_id, const std::string& hash) const;
  // The transformed image's file, made (and kept) when missing. 422 when the original is not an image.
  std::string variant(const std::string& tenant_id, const std::string& hash, const Kind& kind,
                      const Transform& t) const;
  // Files of the tenant whose hash no media row holds any more, older than min_age_s: removed (and their
  // variants). Answers how many.
  int sweep(const std::string& tenant_id, const std::vector<std::string>& live_hashes, int64_t min_age_s) const;
  // Tenant directories present on disk.
  std::vector<std::string> tenants() const;
  void remove_tenant(const std::string& tenant_id) const;

 private:
  std::string root_;
};

// Starts libvips once per process (single-threaded per call, no operation cache).
void start();

}  // namespace cdx::cms::media
