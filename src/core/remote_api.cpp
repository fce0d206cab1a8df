#include "core/remote_api.hpp"

#include "common/error.hpp"
#include "common/ids.hpp"

namespace cdx::core {

namespace {

SuperadminIdentity identity_from(const nlohmann::json& j) {
  return {j.at("id").get<std::string>(), j.at("username").get<std::string>()};
}

}  // namespace

nlohmann::json to_json(const TenantInfo& info) {
  return {{"tenant", to_json(info.tenant)}, {"plan", to_json(info.plan)}};
}

TenantInfo tenant_info_from_json(const nlohmann::json& j) {
  try {
    return {tenant_from_json(j.at("tenant")), plan_from_json(j.at("plan"))};
  } catch (const nlohmann::json::exception& e) {
    throw Error(Code::kBadGateway, std::string("The core service answered a malformed tenant: ") + e.what());
  }
}

std::optional<TenantInfo> RemoteApi::find_tenant(std::string_view id_or_slug) {
  if (!plausible_tenant_key(id_or_slug)) return std::nullopt;
  auto j = client_.call("GET", "/internal/v1/tenants/" + std::string(id_or_slug), nullptr, true);
  if (!j) return std::nullopt;
  return tenant_info_from_json(*j);
}

std::optional<SuperadminIdentity> RemoteApi::verify_superadmin(std::string_view username,
                                                               std::string_view password) {
  const nlohmann::json body = {{"username", username}, {"password", password}};
  auto j = client_.call("POST", "/internal/v1/superadmins/verify", &body, true);
  if (!j) return std::nullopt;
  return identity_from(*j);
}

nlohmann::json event_to_wire(const db::OutboxEvent& e) {
  // The payload as its JSON text: core records the text as it is, without building the object.
  return {{"id", e.id},     {"source", e.schema},         {"tenant_id", e.tenant_id},
          {"type", e.type}, {"created_at", e.created_at}, {"payload_text", db::payload_text_of(e)}};
}

db::OutboxEvent event_from_wire(const nlohmann::json& j) {
  auto text = [&](const char* k) {
    if (!j.is_object() || !j.contains(k) || !j[k].is_string() ||
        j[k].get_ref<const std::string&>().size() > 200)
      throw Error(Code::kInvalidRequest, std::string("An event's '") + k + "' is missing or not text.");
    return j[k].get<std::string>();
  };
  db::OutboxEvent e;
  e.id = text("id");
  e.schema = text("source");
  e.tenant_id = text("tenant_id");
  e.type = text("type");
  e.created_at = text("created_at");
  if (auto it = j.find("payload_text"); it != j.end() && it->is_string()) {
    // Text another process wrote: the log records it as it is and reads the subject and actor from it with
    // db::scan_payload, which follows only brackets and strings. So the whole text is validated here
    // (without building it): one JSON object, nothing after it.
    e.payload_text = it->get<std::string>();
    const size_t start = e.payload_text.find_first_not_of(" \t\r\n");
    if (start == std::string::npos || e.payload_text[start] != '{' || !nlohmann::json::accept(e.payload_text))
      throw Error(Code::kInvalidRequest, "An event's 'payload_text' must be a JSON object.");
    return e;
  }
  // The form of builds before payload_text (a service not yet upgraded): an object, valid by construction.
  if (!j.contains("payload") || !j["payload"].is_object())
    throw Error(Code::kInvalidRequest, "An event's 'payload_text' (or 'payload') must be a JSON object.");
  e.payload = j["payload"];
  return e;
}

void RemoteApi::record_events(const std::vector<db::OutboxEvent>& events) {
  // Requests of a few MiB each (an event may carry a large entry); in order, each recorded before the next.
  constexpr size_t kRequestBytes = 4 << 20;
  nlohmann::json body = {{"events", nlohmann::json::array()}};
  size_t bytes = 0;
  for (const auto& e : events) {
    nlohmann::json w = event_to_wire(e);
    // The size on the wire, near enough: the texts, with a quote or backslash in the payload escaped.
    const std::string& payload = w["payload_text"].get_ref<const std::string&>();
    size_t size = 160 + e.id.size() + e.schema.size() + e.tenant_id.size() + e.type.size() + payload.size();
    for (char c : payload) size += c == '"' || c == '\\';
    if (bytes > 0 && bytes + size > kRequestBytes) {
      client_.call("POST", "/internal/v1/events", &body);
      body["events"] = nlohmann::json::array();
      bytes = 0;
    }
    body["events"].push_back(std::move(w));
    bytes += size;
  }
  if (!body["events"].empty()) client_.call("POST", "/internal/v1/events", &body);
}

std::optional<SuperadminIdentity> RemoteApi::find_superadmin(std::string_view id) {
  if (!url_safe_id(id)) return std::nullopt;
  auto j = client_.call("GET", "/internal/v1/superadmins/" + std::string(id), nullptr, true);
  if (!j) return std::nullopt;
  return identity_from(*j);
}

}  // namespace cdx::core
