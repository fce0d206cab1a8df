// Logging: JSON lines on stderr (application log, via spdlog) and the access log (stdout or a file, written
// in blocks by each I/O thread: common/access_log.hpp).
//   log::info("server listening", {{"port", 3000}});
//   log::error("migration failed", {{"schema", "crm_db"}, {"error", e.what()}});
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace cdx::log {

class FileSink;

// access_log_file: empty = standard output. Throws std::system_error when the file cannot be opened.
void init(std::string_view level, bool access_log, const std::string& access_log_file = {});
void info(std::string_view msg, nlohmann::json fields = nlohmann::json::object());
void warn(std::string_view msg, nlohmann::json fields = nlohmann::json::object());
void error(std::string_view msg, nlohmann::json fields = nlohmann::json::object());
void debug(std::string_view msg, nlohmann::json fields = nlohmann::json::object());
// Where the access log goes, or nullptr when it is off.
FileSink* access();
// Escapes s for inclusion inside a JSON string literal (quotes not added).
void append_json_escaped(std::string& out, std::string_view s);

}  // namespace cdx::log
