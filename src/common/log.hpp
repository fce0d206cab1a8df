// Logging: JSON lines on stderr (application log) and stdout (access log), via spdlog.
//   log::info("server listening", {{"port", 3000}});
//   log::error("migration failed", {{"schema", "crm_db"}, {"error", e.what()}});
#pragma once
#include <nlohmann/json.hpp>

#include <string_view>

namespace spdlog {
class logger;
}

namespace cdx::log {

void init(std::string_view level, bool access_log);
void info(std::string_view msg, nlohmann::json fields = nlohmann::json::object());
void warn(std::string_view msg, nlohmann::json fields = nlohmann::json::object());
void error(std::string_view msg, nlohmann::json fields = nlohmann::json::object());
void debug(std::string_view msg, nlohmann::json fields = nlohmann::json::object());
// The access log, or nullptr when it is off. Lines are pre-built JSON.
spdlog::logger* access();
// Escapes s for inclusion inside a JSON string literal (quotes not added).
void append_json_escaped(std::string& out, std::string_view s);

}  // namespace cdx::log
