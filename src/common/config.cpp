#include "common/config.hpp"

#include "common/key_encryption.hpp"

#include <toml.hpp>

#include <charconv>
#include <cstdlib>
#include <functional>
#include <thread>

extern char** environ;

namespace cdx {

namespace {

struct Setting {
  SettingInfo info;
  std::function<void(Config&, const std::string&)> apply;  // throws ConfigError on a bad value
};

int64_t parse_int(const std::string& key, const std::string& v, int64_t min, int64_t max) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size())
    throw ConfigError("setting '" + key + "': '" + v + "' is not an integer");
  if (n < min || n > max)
    throw ConfigError("setting '" + key + "': " + v + " is out of range [" + std::to_string(min) + ", " +
                      std::to_string(max) + "]");
  return n;
}

bool parse_bool(const std::string& key, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  throw ConfigError("setting '" + key + "': '" + v + "' is not a boolean (true/false)");
}

// The key itself is never quoted in the message.
void check_kek(const std::string& key, const std::string& v) {
  if (!v.empty() && !decode_kek(v))
    throw ConfigError("setting '" + key +
                      "': expected 32 bytes as base64 (openssl rand -base64 32) or 64 hex digits");
}

void check_url(const std::string& key, const std::string& v) {
  if (!v.empty() && v.rfind("postgres://", 0) != 0 && v.rfind("postgresql://", 0) != 0)
    throw ConfigError("setting '" + key + "': expected a postgresql:// URL");
}

const std::vector<Setting>& table() {
  static const std::vector<Setting> kTable = {
      {{"host", "CDX_HOST", "address to listen on"},
       [](Config& c, const std::string& v) {
         if (v.empty()) throw ConfigError("setting 'host': empty");
         c.host = v;
       }},
      {{"port", "CDX_PORT", "TCP port (0 = any free port)"},
       [](Config& c, const std::string& v) { c.port = static_cast<int>(parse_int("port", v, 0, 65535)); }},
      {{"data_dir", "CDX_DATA_DIR", "directory of the SQLite files"},
       [](Config& c, const std::string& v) {
         if (v.empty()) throw ConfigError("setting 'data_dir': empty");
         c.data_dir = v;
       }},
      {{"database_url", "CDX_DATABASE_URL", "PostgreSQL URL; overrides SQLite"},
       [](Config& c, const std::string& v) {
         check_url("database_url", v);
         c.database_url = v;
       }},
      {{"migration_database_url", "CDX_MIGRATION_DATABASE_URL", "PostgreSQL URL used for migrations"},
       [](Config& c, const std::string& v) {
         check_url("migration_database_url", v);
         c.migration_database_url = v;
       }},
      {{"threads", "CDX_THREADS", "I/O threads (0 = cores)"},
       [](Config& c, const std::string& v) {
         c.threads = static_cast<int>(parse_int("threads", v, 0, 256));
       }},
      {{"worker_queue_limit", "CDX_WORKER_QUEUE_LIMIT",
        "jobs that may wait per worker pool before 503 (0 = no bound)"},
       [](Config& c, const std::string& v) {
         c.worker_queue_limit = parse_int("worker_queue_limit", v, 0, 10'000'000);
       }},
      {{"workers", "CDX_WORKERS", "threads for blocking I/O: database calls, mail (0 = max(4, 2 x cores))"},
       [](Config& c, const std::string& v) {
         c.workers = static_cast<int>(parse_int("workers", v, 0, 512));
       }},
      {{"hash_workers", "CDX_HASH_WORKERS", "threads for password hashing (0 = cores)"},
       [](Config& c, const std::string& v) {
         c.hash_workers = static_cast<int>(parse_int("hash_workers", v, 0, 256));
       }},
      {{"db_pool_size", "CDX_DB_POOL_SIZE", "PostgreSQL connections per server"},
       [](Config& c, const std::string& v) {
         c.db_pool_size = static_cast<int>(parse_int("db_pool_size", v, 1, 1000));
       }},
      {{"demo", "CDX_DEMO", "seed demo data once"},
       [](Config& c, const std::string& v) { c.demo = parse_bool("demo", v); }},
      {{"public_url", "CDX_PUBLIC_URL", "token issuer and link base"},
       [](Config& c, const std::string& v) {
         if (!v.empty() && v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0)
           throw ConfigError("setting 'public_url': expected an http:// or https:// URL");
         c.public_url = v;
         while (!c.public_url.empty() && c.public_url.back() == '/') c.public_url.pop_back();
       }},
      {{"log_level", "CDX_LOG_LEVEL", "trace, debug, info, warn, error"},
       [](Config& c, const std::string& v) {
         if (v != "trace" && v != "debug" && v != "info" && v != "warn" && v != "error")
           throw ConfigError("setting 'log_level': '" + v +
                             "' is not one of trace, debug, info, warn, error");
         c.log_level = v;
       }},
      {{"access_log", "CDX_ACCESS_LOG", "JSON access log (stdout, or access_log_file)"},
       [](Config& c, const std::string& v) { c.access_log = parse_bool("access_log", v); }},
      {{"access_log_file", "CDX_ACCESS_LOG_FILE",
        "append the access log to this file (reopened on SIGHUP) instead of stdout"},
       [](Config& c, const std::string& v) { c.access_log_file = v; }},
      {{"body_limit", "CDX_BODY_LIMIT", "largest request body in bytes"},
       [](Config& c, const std::string& v) {
         c.body_limit = parse_int("body_limit", v, 1024, int64_t{1} << 32);
       }},
      {{"media_limit", "CDX_MEDIA_LIMIT", "largest media upload in bytes, whatever the tenant's plan"},
       [](Config& c, const std::string& v) {
         c.media_limit = parse_int("media_limit", v, 1024, int64_t{1} << 34);
       }},
      {{"cms_cache_entries", "CDX_CMS_CACHE_ENTRIES", "CMS delivery answers kept in memory (0: none)"},
       [](Config& c, const std::string& v) {
         c.cms_cache_entries = parse_int("cms_cache_entries", v, 0, 10'000'000);
       }},
      {{"event_retention_days", "CDX_EVENT_RETENTION_DAYS", "days the platform event log keeps an event"},
       [](Config& c, const std::string& v) {
         c.event_retention_days = parse_int("event_retention_days", v, 1, 36500);
       }},
      {{"sse_heartbeat_ms", "CDX_SSE_HEARTBEAT_MS", "live feed (SSE) heartbeat comment interval in ms"},
       [](Config& c, const std::string& v) {
         // At most 5 min: well below the gateway's quiet limit for an event stream (ProxyOptions, 10 min),
         // which ends a stream whose heartbeats come further apart.
         c.sse_heartbeat_ms = parse_int("sse_heartbeat_ms", v, 50, 300'000);
       }},
      {{"sse_queue_messages", "CDX_SSE_QUEUE_MESSAGES",
        "live feed (SSE): messages waiting for one client before it is dropped"},
       [](Config& c, const std::string& v) {
         c.sse_queue_messages = parse_int("sse_queue_messages", v, 1, 10'000'000);
       }},
      {{"sse_queue_bytes", "CDX_SSE_QUEUE_BYTES", "live feed (SSE): bytes waiting for one client before it is dropped"},
       [](Config& c, const std::string& v) {
         c.sse_queue_bytes = parse_int("sse_queue_bytes", v, 1024, int64_t{1} << 32);
       }},
      {{"header_limit", "CDX_HEADER_LIMIT", "largest request header in bytes"},
       [](Config& c, const std::string& v) { c.header_limit = parse_int("header_limit", v, 1024, 1 << 20); }},
      {{"max_connections", "CDX_MAX_CONNECTIONS",
        "open connections in all (0: the descriptor limit less a reserve)"},
       [](Config& c, const std::string& v) {
         c.max_connections = parse_int("max_connections", v, 0, 10'000'000);
       }},
      {{"max_connections_per_client", "CDX_MAX_CONNECTIONS_PER_CLIENT",
        "open connections per client address (0: no cap)"},
       [](Config& c, const std::string& v) {
         c.max_connections_per_client = parse_int("max_connections_per_client", v, 0, 10'000'000);
       }},
      {{"access_token_ttl", "CDX_ACCESS_TOKEN_TTL", "access token lifetime in seconds (60..3600)"},
       [](Config& c, const std::string& v) {
         c.access_token_ttl = static_cast<int>(parse_int("access_token_ttl", v, 60, 3600));
       }},
      {{"refresh_token_ttl", "CDX_REFRESH_TOKEN_TTL", "refresh token lifetime in seconds"},
       [](Config& c, const std::string& v) {
         c.refresh_token_ttl = static_cast<int>(parse_int("refresh_token_ttl", v, 300, 365 * 24 * 3600));
       }},
      {{"bootstrap_superadmin", "CDX_BOOTSTRAP_SUPERADMIN", "user:password created on an empty cdx_db"},
       [](Config& c, const std::string& v) {
         const size_t colon = v.find(':');
         if (!v.empty() && (colon == std::string::npos || colon == 0 || colon + 1 == v.size()))
           throw ConfigError("setting 'bootstrap_superadmin': expected <username>:<password>");
         c.bootstrap_superadmin = v;
       }},
      {{"smtp_url", "CDX_SMTP_URL", "SMTP server for outgoing mail (smtp:// or smtps://)"},
       [](Config& c, const std::string& v) {
         if (!v.empty() && v.rfind("smtp://", 0) != 0 && v.rfind("smtps://", 0) != 0)
           throw ConfigError("setting 'smtp_url': expected an smtp:// or smtps:// URL");
         c.smtp_url = v;
       }},
      {{"smtp_from", "CDX_SMTP_FROM", "sender address of outgoing mail"},
       [](Config& c, const std::string& v) {
         if (v.find('@') == std::string::npos)
           throw ConfigError("setting 'smtp_from': expected an email address");
         c.smtp_from = v;
       }},
      {{"webhooks_allow_loopback", "CDX_WEBHOOKS_ALLOW_LOOPBACK",
        "let webhooks reach loopback addresses (127.0.0.0/8, ::1): local development and tests only"},
       [](Config& c, const std::string& v) { c.webhooks_allow_loopback = parse_bool("webhooks_allow_loopback", v); }},
      {{"webhooks_timeout_ms", "CDX_WEBHOOKS_TIMEOUT_MS", "time one webhook attempt may take, all included (ms)"},
       [](Config& c, const std::string& v) {
         c.webhooks_timeout_ms = parse_int("webhooks_timeout_ms", v, 100, 120'000);
       }},
      {{"webhooks_retry_schedule", "CDX_WEBHOOKS_RETRY_SCHEDULE",
        "webhook retry delays in seconds, comma-separated, replacing 0,5,300,1800,7200,18000,36000,36000"},
       [](Config& c, const std::string& v) {
         for (char ch : v)
           if (!((ch >= '0' && ch <= '9') || ch == '.' || ch == ',' || ch == ' '))
             throw ConfigError("setting 'webhooks_retry_schedule': expected delays in seconds, comma-separated");
         c.webhooks_retry_schedule = v;
       }},
      {{"webhooks_disable_after", "CDX_WEBHOOKS_DISABLE_AFTER",
        "seconds of continuous failure after which a webhook endpoint is disabled"},
       [](Config& c, const std::string& v) {
         c.webhooks_disable_after = parse_int("webhooks_disable_after", v, 1, 365LL * 86400);
       }},
      // The names are the module registry's (src/app/modules.cpp), checked when the platform starts.
      {{"module", "CDX_MODULE",
        "serve one service of the constellation: gateway or a module such as crm (default: all)"},
       [](Config& c, const std::string& v) {
         if (v.size() > 32 ||
             !std::all_of(v.begin(), v.end(), [](char ch) { return ch >= 'a' && ch <= 'z'; }))
           throw ConfigError("setting 'module': '" + v + "' is not a module name");
         c.module = v;
       }},
      {{"port_base", "CDX_PORT_BASE",
        "constellation ports: gateway at BASE, core +1, auth +3, crm +4, cms +5, …"},
       [](Config& c, const std::string& v) {
         c.port_base = static_cast<int>(parse_int("port_base", v, 1, 65528));
       }},
      {{"internal_secret", "CDX_INTERNAL_SECRET",
        "key of the gateway's signed assertions (constellation; 32+ chars)"},
       [](Config& c, const std::string& v) {
         if (!v.empty() && v.size() < 32)
           throw ConfigError("setting 'internal_secret': at least 32 characters");
         c.internal_secret = v;
       }},
      {{"kek", "CDX_KEK",
        "key encryption key of the stored token signing keys: 32 bytes as base64 or hex (prefer kek_file)"},
       [](Config& c, const std::string& v) {
         check_kek("kek", v);
         c.kek = v;
       }},
      {{"kek_file", "CDX_KEK_FILE", "file holding the key encryption key (mode 600)"},
       [](Config& c, const std::string& v) { c.kek_file = v; }},
      {{"kek_previous", "CDX_KEK_PREVIOUS",
        "the key encryption key being replaced: what it sealed is re-sealed under kek"},
       [](Config& c, const std::string& v) {
         check_kek("kek_previous", v);
         c.kek_previous = v;
       }},
      {{"kek_previous_file", "CDX_KEK_PREVIOUS_FILE", "file holding the key encryption key being replaced"},
       [](Config& c, const std::string& v) { c.kek_previous_file = v; }},
  };
  return kTable;
}

std::string toml_value_text(const toml::value& v) {
  if (v.is_string()) return v.as_string().str;
  if (v.is_integer()) return std::to_string(v.as_integer());
  if (v.is_boolean()) return v.as_boolean() ? "true" : "false";
  throw ConfigError("config value of unsupported type (use strings, integers or booleans)");
}

}  // namespace

const std::vector<SettingInfo>& settings() {
  static const std::vector<SettingInfo> kInfos = [] {
    std::vector<SettingInfo> out;
    for (const auto& s : table()) out.push_back(s.info);
    return out;
  }();
  return kInfos;
}

Config load_config(const std::map<std::string, std::string>& flags, const std::string& config_file) {
  std::map<std::string, std::string> file_values;
  if (!config_file.empty()) {
    toml::value doc;
    try {
      doc = toml::parse(config_file);
    } catch (const std::exception& e) {
      throw ConfigError("cannot read config file " + config_file + ": " + e.what());
    }
    if (!doc.is_table()) throw ConfigError("config file " + config_file + " is not a TOML table");
    for (const auto& [key, value] : doc.as_table()) {
      bool known = false;
      for (const auto& s : table()) known = known || s.info.key == key;
      if (!known) throw ConfigError("config file " + config_file + ": unknown key '" + key + "'");
      try {
        file_values[key] = toml_value_text(value);
      } catch (const ConfigError& e) {
        throw ConfigError("config file " + config_file + ": key '" + key + "': " + e.what());
      }
    }
  }
  Config cfg;
  for (const auto& s : table()) {
    if (auto f = flags.find(s.info.key); f != flags.end()) {
      s.apply(cfg, f->second);
    } else if (const char* env = std::getenv(s.info.env.c_str())) {
      try {
        s.apply(cfg, env);
      } catch (const ConfigError& e) {
        throw ConfigError(std::string(e.what()) + " (from " + s.info.env + ")");
      }
    } else if (auto fv = file_values.find(s.info.key); fv != file_values.end()) {
      s.apply(cfg, fv->second);
    }
  }
  // CDX_<MODULE>_DATABASE_URL for any module (CDX_CRM_DATABASE_URL → crm_db; CDX_CDX_… → cdx_db, core's).
  for (char** e = environ; *e; ++e) {
    const std::string_view entry(*e);
    const size_t eq = entry.find('=');
    constexpr std::string_view kPrefix = "CDX_", kSuffix = "_DATABASE_URL";
    if (eq == std::string_view::npos || eq + 1 == entry.size()) continue;
    const std::string_view name = entry.substr(0, eq), url = entry.substr(eq + 1);
    if (name.size() <= kPrefix.size() + kSuffix.size() || name.substr(0, kPrefix.size()) != kPrefix ||
        name.substr(name.size() - kSuffix.size()) != kSuffix)
      continue;
    std::string module(name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size()));
    if (module == "MIGRATION" || module.find('_') != std::string::npos) continue;
    for (auto& ch : module) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    check_url(std::string(name), std::string(url));
    cfg.module_database_urls[module + "_db"] = std::string(url);
  }
  if (!cfg.kek.empty() && !cfg.kek_file.empty())
    throw ConfigError("settings 'kek' and 'kek_file' are both set: give the key encryption key one way");
  if (!cfg.kek_previous.empty() && !cfg.kek_previous_file.empty())
    throw ConfigError("settings 'kek_previous' and 'kek_previous_file' are both set: give it one way");
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (cfg.threads == 0) cfg.threads = cores;
  if (cfg.workers == 0) cfg.workers = std::max(4, 2 * cores);
  if (cfg.hash_workers == 0) cfg.hash_workers = cores;
  return cfg;
}

}  // namespace cdx
