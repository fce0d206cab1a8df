#include "common/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "common/access_log.hpp"
#include "common/clock.hpp"

namespace cdx::log {

namespace {
std::shared_ptr<spdlog::logger> g_app;
std::unique_ptr<FileSink> g_access;

void write(spdlog::level::level_enum level, std::string_view msg, nlohmann::json& fields) {
  if (!g_app) {
    g_app = spdlog::stderr_logger_mt("cdx");
    g_app->set_pattern("%v");
  }
  if (!g_app->should_log(level)) return;
  nlohmann::json line = {{"ts", format_rfc3339(Clock::now())}, {"level", spdlog::level::to_string_view(level).data()},
                         {"msg", msg}};
  if (fields.is_object()) line.update(fields);
  g_app->log(level, "{}", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}
}  // namespace

void init(std::string_view level, bool access_log, const std::string& access_log_file) {
  spdlog::drop_all();
  g_app = spdlog::stderr_logger_mt("cdx");
  g_app->set_pattern("%v");
  g_app->set_level(spdlog::level::from_str(std::string(level)));
  g_app->flush_on(spdlog::level::trace);
  g_access.reset();
  if (access_log && access_log_file.empty()) {
    g_access = FileSink::standard_output();
  } else if (access_log) {
    g_access = FileSink::open(access_log_file);
    g_access->install_reopen_on_sighup();
  }
}

void info(std::string_view msg, nlohmann::json fields) { write(spdlog::level::info, msg, fields); }
void warn(std::string_view msg, nlohmann::json fields) { write(spdlog::level::warn, msg, fields); }
void error(std::string_view msg, nlohmann::json fields) { write(spdlog::level::err, msg, fields); }
void debug(std::string_view msg, nlohmann::json fields) { write(spdlog::level::debug, msg, fields); }

FileSink* access() { return g_access.get(); }

void append_json_escaped(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
}

}  // namespace cdx::log
