// libFuzzer target: the JSON body reader (common/json_body.hpp under kit::read_body) over real
// declarations: the CRM's resources, core's tenants and plans and its hand-written bodies, auth's sign-in
// and password bodies. The first byte picks the declaration and create or update; the rest is the body.
// Checks: a bad body is cdx::Error 400 or 422, nothing else; the nesting prefilter never measures less than
// the nesting of valid JSON (so nothing deeper than kMaxJsonDepth reaches the recursion); what is
// read holds only writable declared fields, no control characters in text, prints as strict UTF-8, and
// reads again to itself.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "auth/resources.hpp"
#include "common/error.hpp"
#include "common/json_body.hpp"
#include "common/validate.hpp"
#include "core/resources.hpp"
#include "crm/resources.hpp"
#include "kit/kit.hpp"

namespace {

using namespace cdx;
using namespace cdx::kit;
using nlohmann::json;

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "read_body_fuzz: %s\n", what);
  std::abort();
}

struct Declarations {
  std::vector<std::unique_ptr<Resource>> owned;
  std::vector<const Resource*> all;
  Declarations() {
    auto own = [&](Resource r) {
      all.push_back(owned.emplace_back(std::make_unique<Resource>(std::move(r))).get());
    };
    own(crm::company_resource());
    own(crm::contact_resource());
    own(crm::activity_resource());
    own(crm::deal_resource());
    own(crm::pipeline_resource());
    own(crm::stage_resource(*all.back()));
    own(core::tenant_resource());
    own(core::tenant_create_body(*all.back()));
    own(core::plan_resource());
    own(core::superadmin_login_body());
    for (const Resource* r :
         {&auth::bodies::superadmin_login(), &auth::bodies::login(), &auth::bodies::refresh(),
          &auth::bodies::logout(), &auth::bodies::sign_up(), &auth::bodies::password_forgot(),
          &auth::bodies::password_reset(), &auth::bodies::first_admin(), &auth::bodies::seed_user()})
      all.push_back(r);
  }
};
const Declarations& declarations() {
  static const Declarations d;
  return d;
}

std::optional<json> read(const Resource& r, std::string_view body, Mode mode) {
  try {
    return read_body(r, body, mode);
  } catch (const Error& e) {
    require(e.code() == Code::kInvalidRequest || e.code() == Code::kValidationFailed,
            "a body failure that is not 400 or 422");
    return std::nullopt;
  }
}

size_t depth(const json& j) {
  if (!j.is_structured()) return 0;
  size_t deepest = 0;
  for (const auto& v : j) deepest = std::max(deepest, depth(v));
  return deepest + 1;
}

void no_control_characters(const json& v) {
  if (v.is_string()) require(clean_text(v.get_ref<const std::string&>(), true), "control characters in text");
  if (v.is_array())
    for (const auto& item : v) no_control_characters(item);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const auto& all = declarations().all;
  const Resource& r = *all[in.ConsumeIntegralInRange<size_t>(0, all.size() - 1)];
  const Mode mode = in.ConsumeBool() ? Mode::kCreate : Mode::kUpdate;
  const std::string body = in.ConsumeRemainingBytesAsString();

  // The prefilter against the parser, on any text (without the prefilter: the parser's own loop is
  // iterative, and the depth below only runs on what parsed).
  // (nlohmann's parser stops at a NUL byte, which JSON text never holds: such bodies are refused.)
  const bool has_nul = body.find('\0') != std::string::npos;
  const json parsed = has_nul ? json(json::value_t::discarded) : json::parse(body, nullptr, false);
  // At least the nesting of what parsed: more only when a repeated member's earlier value (dropped: the
  // last one wins) was deeper.
  if (!parsed.is_discarded())
    require(json_nesting_depth(body) >= depth(parsed), "the nesting prefilter misses nesting in valid JSON");

  const std::optional<json> patch = read(r, body, mode);
  if (!patch) return 0;
  require(!parsed.is_discarded() && parsed.is_object() && depth(parsed) <= kMaxJsonDepth,
          "a body read that is not a JSON object within the nesting limit");
  require(patch->is_object(), "what is read is not an object");
  for (const auto& [name, value] : patch->items()) {
    const Field* f = r.find(name);
    require(f != nullptr, "a field the declaration lacks");
    require(!f->is_read_only && !f->is_hidden, "a read-only or hidden field");
    require(!(f->is_create_only && mode == Mode::kUpdate), "a create-only field in an update");
    if (f->type != Type::kObject) no_control_characters(value);
  }
  std::string printed;
  try {
    printed = patch->dump();
  } catch (const json::exception&) {
    require(false, "what is read does not print as UTF-8");
  }
  const std::optional<json> again = read(r, printed, mode);
  require(again.has_value(), "what is read is refused when sent again");
  require(*again == *patch, "what is read reads again otherwise");
  return 0;
}
