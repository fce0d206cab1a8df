#include "common/error.hpp"

#include <nlohmann/json.hpp>

namespace cdx {

const CodeInfo& info(Code code) {
  static const CodeInfo kTable[] = {
      {400, "invalid_request", "Invalid request"},
      {422, "validation_failed", "Validation failed"},
      {401, "unauthorized", "Unauthorized"},
      {403, "forbidden", "Forbidden"},
      {404, "not_found", "Not found"},
      {405, "method_not_allowed", "Method not allowed"},
      {409, "conflict", "Conflict"},
      {413, "payload_too_large", "Payload too large"},
      {431, "headers_too_large", "Request header fields too large"},
      {415, "unsupported_media_type", "Unsupported media type"},
      {408, "request_timeout", "Request timeout"},
      {429, "rate_limited", "Too many requests"},
      {403, "tenant_suspended", "Tenant suspended"},
      {403, "quota_exceeded", "Plan quota exceeded"},
      {503, "service_unavailable", "Service unavailable"},
      {500, "internal", "Internal server error"},
      {502, "bad_gateway", "Bad gateway"},
      {504, "gateway_timeout", "Gateway timeout"},
  };
  return kTable[static_cast<int>(code)];
}

Error Error::validation(std::vector<FieldError> errors) {
  std::string detail = "The request has invalid fields: ";
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i) detail += ", ";
    detail += errors[i].field;
  }
  Error e(Code::kValidationFailed, std::move(detail));
  e.field_errors_ = std::move(errors);
  return e;
}

std::string render_problem(const Error& error, std::string_view request_id) {
  const CodeInfo& ci = info(error.code());
  nlohmann::json j = {
      {"type", "https://docs.cdx.dev/problems/" + std::string(ci.code)},
      {"title", ci.title},
      {"status", ci.status},
      {"detail", error.detail()},
      {"code", ci.code},
  };
  if (!request_id.empty()) j["request_id"] = request_id;
  if (!error.field_errors().empty()) {
    auto& arr = j["errors"] = nlohmann::json::array();
    for (const auto& fe : error.field_errors()) arr.push_back({{"field", fe.field}, {"message", fe.message}});
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace cdx
