// The one error vocabulary: handlers throw cdx::Error; the HTTP edge renders it as RFC 9457 problem+json.
//   throw Error(Code::kNotFound, "tenant 'acme' does not exist");
//   throw Error::validation({{"slug", "must match ^[a-z0-9-]{3,63}$"}});
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cdx {

enum class Code {
  kInvalidRequest,
  kValidationFailed,
  kUnauthorized,
  kForbidden,
  kNotFound,
  kMethodNotAllowed,
  kConflict,
  kPayloadTooLarge,
  kHeadersTooLarge,
  kUnsupportedMediaType,
  kRequestTimeout,
  kRateLimited,
  kTenantSuspended,
  kQuotaExceeded,
  kServiceUnavailable,
  kInternal,
  kBadGateway,      // an upstream service failed or answered garbage
  kGatewayTimeout,  // an upstream service did not answer in time
};

struct FieldError {
  std::string field;
  std::string message;
};

struct CodeInfo {
  int status;
  std::string_view code;   // stable machine-readable word
  std::string_view title;  // short human summary
};

const CodeInfo& info(Code code);

class Error : public std::exception {
 public:
  Error(Code code, std::string detail) : code_(code), detail_(std::move(detail)) {}

  static Error validation(std::vector<FieldError> errors);

  Code code() const { return code_; }
  const std::string& detail() const { return detail_; }
  const std::vector<FieldError>& field_errors() const { return field_errors_; }
  const std::vector<std::pair<std::string, std::string>>& headers() const { return headers_; }
  const char* what() const noexcept override { return detail_.c_str(); }

  // Field errors on an answer that is not a 422 (a 409 naming each field a change would break).
  Error& with_errors(std::vector<FieldError> errors) {
    field_errors_ = std::move(errors);
    return *this;
  }
  // Extra response headers, e.g. WWW-Authenticate on 401 or Retry-After on 429.
  Error& with_header(std::string name, std::string value) {
    headers_.emplace_back(std::move(name), std::move(value));
    return *this;
  }

 private:
  Code code_;
  std::string detail_;
  std::vector<FieldError> field_errors_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

// problem+json body for an error; request_id may be empty.
std::string render_problem(const Error& error, std::string_view request_id);

}  // namespace cdx
