// The dashboard (web/dist), packed by the build onto the end of the cdx executable and served from memory
// at `/`: hashed assets cached for a year, index.html never, client-side routes answered with index.html.
//   if (auto site = web::Site::from_executable()) site->mount(router);
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/router.hpp"

namespace cdx::web {

class Site {
 public:
  // The pack the build appended to the running executable (/proc/self/exe); null when it carries none (a
  // build without the dashboard). Throws std::runtime_error on a damaged pack.
  static std::unique_ptr<Site> from_executable();
  // A pack as scripts/pack-web writes it, optionally followed by its trailer (the file appended to cdx).
  static std::unique_ptr<Site> from_pack(std::string bytes);
  ~Site();
  Site(const Site&) = delete;
  Site& operator=(const Site&) = delete;

  // Installs the router's fallback: GET and HEAD of any path no route has. Paths of the API and of the
  // operational endpoints keep their JSON 404.
  void mount(http::Router& router) const;
  // Answers one request (what the fallback runs).
  void serve(http::Context& ctx) const;

 private:
  struct File {
    std::string path;
    std::string content_type;
    std::string etag;  // quoted
    std::string_view identity;
    std::string_view gzip;                  // empty when not worth compressing
    uint64_t identity_at = 0, gzip_at = 0;  // their offsets in fd_
    std::string head_identity;              // pre-built header lines (cache, validators, security)
    std::string head_gzip;
  };
  explicit Site(std::string bytes);
  const File* find(std::string_view path) const;

  std::string bytes_;
  int fd_ = -1;  // the files' bytes again, in memory the kernel can send from (sendfile); -1: none
  std::vector<File> files_;  // by path
  const File* index_ = nullptr;
};

}  // namespace cdx::web
