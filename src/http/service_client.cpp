#include "http/service_client.hpp"

#include <curl/curl.h>
#include <boost/beast/core/string.hpp>

#include <memory>
#include <mutex>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace cdx::http {

namespace {

size_t append_body(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct CurlHandle {
  CURL* h = nullptr;
  CurlHandle() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    h = curl_easy_init();
  }
  ~CurlHandle() {
    if (h) curl_easy_cleanup(h);
  }
};

Code code_for(int status, std::string_view word) {
  for (int c = 0; c <= static_cast<int>(Code::kGatewayTimeout); ++c) {
    const CodeInfo& ci = info(static_cast<Code>(c));
    if (ci.code == word && ci.status == status) return static_cast<Code>(c);
  }
  for (int c = 0; c <= static_cast<int>(Code::kGatewayTimeout); ++c)
    if (info(static_cast<Code>(c)).status == status) return static_cast<Code>(c);
  return status >= 500 ? Code::kBadGateway : Code::kInvalidRequest;
}

// Keeps the answer's Retry-After (a refusal for overload or rate passes on to the end client with it).
size_t keep_retry_after(char* data, size_t size, size_t n, void* out) {
  std::string_view line(data, size * n);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size() && boost::beast::iequals(line.substr(0, kName.size()), kName)) {
    line.remove_prefix(kName.size());
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' '))
      line.remove_suffix(1);
    if (!line.empty() && line.size() <= 32) *static_cast<std::string*>(out) = std::string(line);
  }
  return size * n;
}

Error error_from_answer(const std::string& service, long status, const std::string& body) {
  // The service refused this process, not the end client: a secret that differs, clocks apart. The
  // client's own credential was checked already, so it must not see a 401 challenge for it.
  if (status == 401 || status == 403)
    return Error(Code::kBadGateway, "The " + service + " service refused this service's credentials (" +
                                        std::to_string(status) + "); check internal_secret and clocks.");
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object())
    return Error(Code::kBadGateway, "The " + service + " service answered " + std::to_string(status) + ".");
  const std::string detail =
      j.value("detail", std::string("The " + service + " service refused the request."));
  if (auto errs = j.find("errors"); errs != j.end() && errs->is_array() && status == 422) {
    std::vector<FieldError> fields;
    for (const auto& e : *errs)
      if (e.is_object())
        fields.push_back({e.value("field", std::string()), e.value("message", std::string())});
    Error e = Error::validation(std::move(fields));
    return e;
  }
  return Error(code_for(static_cast<int>(status), j.value("code", std::string())), detail);
}

}  // namespace

ServiceClient::ServiceClient(std::string service, std::string base_url, std::string caller,
                             const http::AssertionKey& key, std::chrono::milliseconds timeout)
    : service_(std::move(service)),
      base_url_(std::move(base_url)),
      caller_(std::move(caller)),
      key_(key),
      timeout_(timeout) {}

std::optional<nlohmann::json> ServiceClient::call(std::string_view method, const std::string& path,
                                                  const nlohmann::json* body, bool missing_ok) const {
  thread_local CurlHandle curl;
  if (!curl.h) throw Error(Code::kServiceUnavailable, "HTTP client unavailable");
  CURL* h = curl.h;
  curl_easy_reset(h);
  const std::string url = base_url_ + path;
  const std::string payload = body ? body->dump() : std::string();
  http::Assertion a;
  a.kind = http::Assertion::Kind::kService;
  a.service = caller_;
  const std::string header = std::string(http::kAssertionHeader) + ": " +
                             key_.bind(key_.sign(a, Clock::unix_seconds()), method, path);
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, header.c_str());
  headers = curl_slist_append(headers, "Accept: application/json");
  if (body) headers = curl_slist_append(headers, "Content-Type: application/json");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> guard(headers, curl_slist_free_all);
  std::string answer;
  const std::string verb(method);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, verb.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  if (body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
  }
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
  std::string retry_after;
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, keep_retry_after);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &retry_after);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");  // never through an http_proxy from the environment
  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK)
    throw Error(Code::kServiceUnavailable, "The " + service_ + " service is unreachable (" +
                                               curl_easy_strerror(rc) + "); retry shortly.")
        .with_header("Retry-After", "1");
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (status == 404 && missing_ok) return std::nullopt;
  if (status < 200 || status >= 300) {
    Error e = error_from_answer(service_, status, answer);
    if (!retry_after.empty() && (status == 429 || status == 503)) e.with_header("Retry-After", retry_after);
    throw e;
  }
  if (status == 204 || answer.empty()) return nlohmann::json();
  nlohmann::json j = nlohmann::json::parse(answer, nullptr, false);
  if (j.is_discarded())
    throw Error(Code::kBadGateway, "The " + service_ + " service answered malformed JSON.");
  return j;
}

HealthAnswer probe_health(const std::string& base_url, std::chrono::milliseconds timeout) {
  thread_local CurlHandle curl;
  HealthAnswer out;
  if (!curl.h) {
    out.error = "HTTP client unavailable";
    return out;
  }
  CURL* h = curl.h;
  curl_easy_reset(h);
  const std::string url = base_url + "/health";
  std::string answer;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
  std::string retry_after;
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, keep_retry_after);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &retry_after);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    out.error = curl_easy_strerror(rc);
    return out;
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  const nlohmann::json j = nlohmann::json::parse(answer, nullptr, false);
  if (j.is_object()) {
    out.version = j.value("version", std::string());
    if (auto c = j.find("checks"); c != j.end() && c->is_object()) out.checks = *c;
    const std::string s = j.value("status", std::string());
    out.ok = status == 200 && (s == "ok" || s == "degraded");
    if (!out.ok) out.error = "health answered " + std::to_string(status) + " " + s;
  } else {
    out.error = "health answered " + std::to_string(status) + " without JSON";
  }
  return out;
}

}  // namespace cdx::http
