// The one place that knows every module: builds them for a topology, migrates, seeds, mounts their
// routes and the operational ones (/health, /metrics, /openapi.json), and serves.
//   Platform platform(config);  platform.migrate();  platform.start();  platform.serve();
#pragma once
#include <memory>

#include "common/config.hpp"

namespace cdx::app {

class Platform {
 public:
  explicit Platform(Config config);
  ~Platform();

  void migrate();                                   // every module's migrations
  void start();                                     // keys, bootstrap superadmin, demo data
  bool create_superadmin(const std::string& username, const std::string& password);
  int serve();                                      // until SIGTERM/SIGINT; returns the exit code

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cdx::app
