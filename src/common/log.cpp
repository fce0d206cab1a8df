#include "common/log.hpp"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "common/clock.hpp"

namespace cdx::log {

namespace {
std::shared_ptr<spdlog::logger> g_app;
std::shared_ptr<spdlog::logger> g_access;

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

void init(std::string_view level, bool access_log) {
  spdlog::drop_all();
  g_app = spdlog::stderr_logger_mt("cdx");
  g_app->set_pattern("%v");
  g_app->set_level(spdlog::level::from_str(std::string(level)));
  g_app->flush_on(spdlog::level::trace);
  g_access.reset();
  if (access_log) {
    // Asynchronous so an I/O thread never waits on the terminal or a pipe.
    spdlog::init_thread_pool(8192, 1);
    g_access = spdlog::create_async_nb<spdlog::sinks::stdout_sink_mt>("access");
    g_access->set_pattern("%v");
  }
}

void info(std::string_view msg, nlohmann::json fields) { write(spdlog::level::info, msg, fields); }
void warn(std::string_view msg, nlohmann::json fields) { write(spdlog::level::warn, msg, fields); }
void error(std::string_view msg, nlohmann::json fields) { write(spdlog::level::err, msg, fields); }
void debug(std::string_view msg, nlohmann::json fields) { write(spdlog::level::debug, msg, fields); }

spdlog::logger* access() { return g_access.get(); }

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
