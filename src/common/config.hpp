// Server configuration, layered flags > CDX_* environment > TOML file (--config) > defaults, validated
// once at start: an unknown key or a bad value stops the start with a message naming the setting.
//   Config cfg = load_config(flag_values, config_path);   // throws ConfigError
#pragma once
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cdx {

struct Config {
  std::string host = "127.0.0.1";
  int port = 3000;
  std::string data_dir = "./data";
  std::string database_url;            // PostgreSQL; empty = embedded SQLite
  std::string migration_database_url;  // optional login for migrations
  int threads = 0;                     // I/O threads; 0 = number of cores
  int workers = 0;                     // blocking I/O threads (database, mail); 0 = max(4, 2 × cores)
  int hash_workers = 0;                // CPU-bound threads (password hashing); 0 = cores
  int db_pool_size = 8;
  int64_t worker_queue_limit = 4096;  // jobs waiting per pool before 503 (0 = no bound)
  bool demo = false;
  std::string public_url;  // token issuer and link base; default http://<host>:<port>
  std::string log_level = "info";
  bool access_log = true;
  std::string access_log_file;  // empty = stdout
  int64_t body_limit = 1 << 20;
  int64_t media_limit = 64 << 20;  // largest media upload, whatever the plan
  int64_t cms_cache_entries = 10000;  // delivery answers kept in memory (0: none)
  int64_t event_retention_days = 30;  // the platform event log keeps this long
  int64_t header_limit = 16 * 1024;
  // The live feed (GET /api/v1/events/stream): heartbeat comment interval, and the bound of one client's
  // queue beyond which a client that cannot keep up is dropped.
  int64_t sse_heartbeat_ms = 15'000;
  int64_t sse_queue_messages = 4096;
  int64_t sse_queue_bytes = 4 << 20;
  int64_t max_connections = 0;               // 0 = the descriptor limit less a reserve
  int64_t max_connections_per_client = 256;  // 0 = no per-address cap
  int access_token_ttl = 900;                // seconds, at most 3600
  int refresh_token_ttl = 30 * 24 * 3600;
  std::string bootstrap_superadmin;  // "user:password" on an empty cdx_db
  std::string smtp_url;              // smtp://host:port; empty = mails go to the log
  std::string smtp_from = "no-reply@cdx.local";
  // Topology: empty = the monolith; "gateway" or a module name = one service of a constellation.
  std::string module;
  int port_base = 3000;         // constellation ports: gateway B, core B+1, auth B+3, crm B+4, …
  std::string internal_secret;  // HMAC key of the gateway's assertions (constellation only)
  // Key encryption key of the secrets stored in auth_db (common/key_encryption.hpp): the text of the key, or
  // a file holding it; the previous one while moving to a new key.
  std::string kek, kek_file, kek_previous, kek_previous_file;
  // Webhooks (docs/webhooks.md): loopback allowed past the SSRF guard (development, tests), one attempt's
  // timeout, the retry delays (empty: the standard schedule) and how long failing disables an endpoint.
  bool webhooks_allow_loopback = false;
  int64_t webhooks_timeout_ms = 15000;
  std::string webhooks_retry_schedule;
  int64_t webhooks_disable_after = 5 * 86400;
  std::map<std::string, std::string> module_database_urls;  // schema → URL, from CDX_<MODULE>_DATABASE_URL

  // Tokens name the address clients use: in a constellation that is the gateway's, not this service's.
  std::string issuer() const {
    if (!public_url.empty()) return public_url;
    if (!module.empty()) return "http://" + host + ":" + std::to_string(port_base);  // the gateway
    return "http://" + host + ":" + std::to_string(port);
  }
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SettingInfo {
  std::string key;  // TOML key and flag name with '_' → '-'
  std::string env;  // CDX_…
  std::string help;
};
const std::vector<SettingInfo>& settings();

// flags: values given on the command line, keyed by setting key. Environment read from the process.
Config load_config(const std::map<std::string, std::string>& flags, const std::string& config_file);

}  // namespace cdx
