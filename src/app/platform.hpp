// The one place that knows every module: builds them for a topology, migrates, seeds, mounts their
// routes and the operational ones (/health, /metrics, /openapi.json), and serves.
//   Platform platform(config);  platform.migrate();  platform.start();  platform.serve();
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config.hpp"

namespace cdx::app {

class Platform {
 public:
  explicit Platform(Config config);
  ~Platform();

  void migrate();                                   // every module's migrations
  void start();                                     // keys, bootstrap superadmin, demo data
  bool create_superadmin(const std::string& username, const std::string& password);
  // Token signing keys: with `rotate`, a new active key (older ones keep verifying); then retires the keys
  // that stopped signing at least retire_after seconds ago (default: the access-token lifetime + 60 s, after
  // which no token they signed is still valid). A running server picks the change up within seconds.
  struct KeyRotation {
    std::string new_kid;               // empty without `rotate`
    std::vector<std::string> retired;  // kids
  };
  KeyRotation rotate_keys(bool rotate, std::optional<int64_t> retire_after);
  // Seals every stored secret not sealed with the key encryption key `kek` yet (with kek_previous, what
  // the old key sealed). Answers how many it sealed and the KEK's id.
  std::pair<size_t, std::string> rotate_kek();
  // `cdx admin rebuild-aggregates`: every tenant's overview counters recounted from the modules' own rows
  // (Module::aggregate_counts), and the aggregates subscriber's cursor moved to the log's end. Answers the
  // tenants rebuilt and that end.
  std::pair<size_t, int64_t> rebuild_aggregates();
  std::string openapi();  // the OpenAPI description this platform's server answers at /openapi.json
  int serve();                                      // until SIGTERM/SIGINT; returns the exit code

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cdx::app
