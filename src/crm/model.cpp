#include "crm/model.hpp"

#include "common/json_body.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <set>

#include "common/clock.hpp"
#include "common/validate.hpp"
#include "http/pagination.hpp"

namespace cdx::crm {

namespace {

using nlohmann::json;



std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out;
}


// Reads one JSON object field by field, collecting every problem; fields may be absent, null or a value.
class Reader {
 public:
  Reader(const json& doc, Mode mode, std::vector<FieldError>& errors, std::string prefix = "")
      : doc_(doc), mode_(mode), errors_(errors), prefix_(std::move(prefix)) {}

  // Unknown fields are refused (a typo must not be silently dropped); read-only ones say so.
  void only(std::initializer_list<std::string_view> known) {
    static const std::set<std::string, std::less<>> kReadOnly = {"id", "tenant_id", "created_at", "updated_at",
                                                                  "closed_at", "completed_at"};
    for (const auto& [name, _] : doc_.items()) {
      if (std::find(known.begin(), known.end(), name) != known.end()) continue;
      if (kReadOnly.count(name))
        fail(name, "is read-only");
      else
        fail(name, "is not a known field (known: " + list(known) + ")");
    }
  }

  void fail(std::string_view field, std::string message) {
    errors_.push_back({prefix_ + std::string(field), std::move(message)});
  }

  // nullptr when absent; the JSON null when null.
  const json* raw(std::string_view f) const {
    auto it = doc_.find(f);
    return it == doc_.end() ? nullptr : &*it;
  }

  // Absent and null handling shared by every reader: answers true when the caller should read a value.
  template <class T>
  bool present(std::string_view f, bool required, Field<T>& out) {
    const json* v = raw(f);
    if (!v || v->is_null()) {
      if (required && (mode_ == Mode::kCreate || v)) {
        fail(f, v ? "cannot be null" : "is required");
      } else if (v) {
        out.emplace(std::nullopt);  // explicit null: clear
      }
      return false;
    }
    return true;
  }

  Field<std::string> text(std::string_view f, size_t min, size_t max, bool required = false,
                          bool multiline = false) {
    Field<std::string> out;
    if (!present(f, required, out)) return out;
    const json& v = *raw(f);
    if (!v.is_string()) {
      fail(f, "must be a string");
      return out;
    }
    std::string s = trim(v.get_ref<const std::string&>());
    if (!clean_text(s, multiline)) {
      fail(f, multiline ? "must not contain control characters other than tab and newline"
                        : "must not contain control characters");
      return out;
    }
    const size_t len = utf8_length(s);
    if (len < min || len > max) {
      fail(f, min <= 1 ? fmt::format("must be 1 to {} characters long (not blank)", max)
                       : fmt::format("must be {} to {} characters long", min, max));
      return out;
    }
    out.emplace(std::move(s));
    return out;
  }

  Field<std::string> choice(std::string_view f, const std::vector<std::string>& values, bool required = false) {
    Field<std::string> out;
    if (!present(f, required, out)) return out;
    const json& v = *raw(f);
    if (!v.is_string() || !one_of(values, v.get_ref<const std::string&>())) {
      fail(f, "must be one of: " + join(values));
      return out;
    }
    out.emplace(v.get<std::string>());
    return out;
  }

  Field<std::string> id(std::string_view f, bool required = false) {
    Field<std::string> out;
    if (!present(f, required, out)) return out;
    const json& v = *raw(f);
    if (!v.is_string() || !valid_id(lowercase(v.get_ref<const std::string&>()))) {
      fail(f, "must be an id (a UUID such as 01930000-0000-7000-8000-000000000001)");
      return out;
    }
    out.emplace(lowercase(v.get_ref<const std::string&>()));
    return out;
  }

  Field<int64_t> integer(std::string_view f, int64_t min, int64_t max, bool required = false) {
    Field<int64_t> out;
    if (!present(f, required, out)) return out;
    const json& v = *raw(f);
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
      fail(f, fmt::format("must be an integer between {} and {}", min, max));
      return out;
    }
    const int64_t n = v.get<int64_t>();
    if (n < min || n > max) {
      fail(f, fmt::format("must be an integer between {} and {}", min, max));
      return out;
    }
    out.emplace(n);
    return out;
  }

  Field<bool> boolean(std::string_view f, bool required = false) {
    Field<bool> out;
    if (!present(f, required, out)) return out;
    const json& v = *raw(f);
    if (!v.is_boolean()) {
      fail(f, "must be true or false");
      return out;
    }
    out.emplace(v.get<bool>());
    return out;
  }

  Field<json> object(std::string_view f, size_t max_bytes) {
    Field<json> out;
    if (!present(f, false, out)) return out;
    const json& v = *raw(f);
    if (!v.is_object()) {
      fail(f, "must be an object");
      return out;
    }
    if (v.dump(-1, ' ', false, json::error_handler_t::replace).size() > max_bytes) {
      fail(f, fmt::format("must be at most {} bytes as JSON", max_bytes));
      return out;
    }
    out.emplace(v);
    return out;
  }

  Mode mode() const { return mode_; }
  bool has_error(std::string_view f) const {
    return std::any_of(errors_.begin(), errors_.end(), [&](const FieldError& e) { return e.field == prefix_ + std::string(f); });
  }

 private:
  static std::string list(std::initializer_list<std::string_view> names) {
    std::string out;
    for (auto n : names) out += (out.empty() ? "" : ", ") + std::string(n);
    return out;
  }

  const json& doc_;
  Mode mode_;
  std::vector<FieldError>& errors_;
  std::string prefix_;
};


void finish(std::vector<FieldError>& errors) {
  if (!errors.empty()) throw Error::validation(std::move(errors));
}

Field<std::string> read_owner(Reader& in) { return in.id("owner_id"); }

}  // namespace

// ---- lists ---------------------------------------------------------------------------------------------

std::optional<std::pair<std::string, bool>> parse_sort(std::string_view sort) {
  bool desc = false;
  if (!sort.empty() && sort.front() == '-') {
    desc = true;
    sort.remove_prefix(1);
  }
  if (sort != "created_at" && sort != "updated_at") return std::nullopt;
  return std::pair{std::string(sort), desc};
}

std::string encode_list_cursor(const ListQuery& q, const std::string& value, const std::string& id) {
  return http::encode_cursor((q.descending ? "-" : "") + q.sort_column + "|" + value + "|" + id);
}

std::optional<Cursor> decode_list_cursor(const ListQuery& q, std::string_view decoded) {
  const std::string sort = (q.descending ? "-" : "") + q.sort_column;
  if (decoded.substr(0, sort.size() + 1) != sort + "|") return std::nullopt;
  decoded.remove_prefix(sort.size() + 1);
  const size_t bar = decoded.find('|');
  if (bar == std::string_view::npos) return std::nullopt;
  Cursor c{std::string(decoded.substr(0, bar)), std::string(decoded.substr(bar + 1))};
  if (!valid_id(c.id) || !parse_rfc3339(c.value)) return std::nullopt;
  return c;
}

// ---- rules ---------------------------------------------------------------------------------------------

bool valid_id(std::string_view id) { return valid_uuid(id); }

bool valid_currency(std::string_view code) {
  // ISO 4217 active codes (2024), without XTS (testing) and XXX (no currency).
  static const std::set<std::string, std::less<>> kCodes = {
      "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD",
      "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF",
      "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
      "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD",
      "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR",
      "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA",
      "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO",
      "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB",
      "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC",
      "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN",
      "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC",
      "XBD", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF", "XPT", "XSU", "XUA", "YER", "ZAR", "ZMW", "ZWG", "ZWL"};
  return kCodes.count(code) > 0;
}



std::optional<std::string> domain_problem(std::string_view d) {
  const char* kShape = "must be a domain name such as example.com (no scheme, path or port)";
  if (d.size() < 3 || d.size() > 253) return kShape;
  size_t labels = 0;
  std::string_view rest = d, label;
  while (!rest.empty()) {
    const size_t dot = rest.find('.');
    label = rest.substr(0, dot);
    rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    if (dot != std::string_view::npos && rest.empty()) return kShape;  // trailing dot
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return kShape;
    for (char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return kShape;
    ++labels;
  }
  if (labels < 2) return kShape;
  if (std::none_of(label.begin(), label.end(), [](char c) { return c >= 'a' && c <= 'z'; })) return kShape;
  return std::nullopt;
}

std::optional<std::string> phone_problem(std::string_view p) {
  size_t digits = 0;
  for (char c : p) {
    if (c >= '0' && c <= '9') {
      ++digits;
    } else if (!(c == ' ' || c == '+' || c == '-' || c == '(' || c == ')' || c == '.' || c == '/' || c == 'x')) {
      return "must be a phone number: digits, spaces and + - ( ) . / x";
    }
  }
  if (digits < 3) return "must hold at least 3 digits";
  return std::nullopt;
}

std::string normalize_email(std::string_view email) { return lowercase(email); }

std::string contact_search_text(const std::optional<std::string>& first_name,
                                const std::optional<std::string>& last_name, const std::optional<std::string>& email) {
  return lowercase(first_name.value_or("") + " " + last_name.value_or("")) + "\n" + lowercase(email.value_or(""));
}

const std::vector<std::string>& lifecycle_stages() {
  static const std::vector<std::string> k = {"lead", "qualified", "customer", "churned"};
  return k;
}
const std::vector<std::string>& deal_statuses() {
  static const std::vector<std::string> k = {"open", "won", "lost"};
  return k;
}
const std::vector<std::string>& activity_types() {
  static const std::vector<std::string> k = {"note", "call", "email", "meeting", "task"};
  return k;
}
const std::vector<std::string>& company_sizes() {
  static const std::vector<std::string> k = {"1-10",      "11-50",      "51-200",     "201-500",
                                             "501-1000",  "1001-5000",  "5001-10000", "10001+"};
  return k;
}

bool one_of(const std::vector<std::string>& values, std::string_view v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}


// ---- request bodies ------------------------------------------------------------------------------------

namespace {
StageInput read_stage(Reader& in) {
  in.only({"name", "probability", "position"});
  StageInput s;
  s.name = in.text("name", 1, 100, true);
  s.probability = in.integer("probability", 0, 100, in.mode() == Mode::kCreate);
  s.position = in.integer("position", 0, 1000);
  if (s.position && !*s.position) {
    in.fail("position", "cannot be null");
    s.position.reset();
  }
  return s;
}
}  // namespace

StageInput parse_stage(std::string_view body, Mode mode) {
  const json doc = parse_json_object(body);
  std::vector<FieldError> errors;
  Reader in(doc, mode, errors);
  StageInput s = read_stage(in);
  finish(errors);
  return s;
}

PipelineInput parse_pipeline(std::string_view body, Mode mode) {
  const json doc = parse_json_object(body);
  std::vector<FieldError> errors;
  Reader in(doc, mode, errors);
  if (mode == Mode::kCreate)
    in.only({"name", "is_default", "stages"});
  else
    in.only({"name", "is_default"});
  PipelineInput p;
  p.name = in.text("name", 1, 100, true);
  p.is_default = in.boolean("is_default");
  if (p.is_default && (!*p.is_default || !**p.is_default)) {
    in.fail("is_default", "can only be set to true (make another pipeline the default instead)");
    p.is_default.reset();
  }
  if (mode == Mode::kCreate) {
    if (const json* stages = in.raw("stages"); stages && !stages->is_null()) {
      if (!stages->is_array() || stages->size() > 50) {
        in.fail("stages", "must be an array of at most 50 stages");
      } else {
        p.stages.emplace();
        std::set<std::string> names;
        for (size_t i = 0; i < stages->size(); ++i) {
          const json& s = (*stages)[i];
          const std::string prefix = fmt::format("stages[{}].", i);
          if (!s.is_object()) {
            errors.push_back({fmt::format("stages[{}]", i), "must be an object with name and probability"});
            continue;
          }
          Reader sr(s, Mode::kCreate, errors, prefix);
          sr.only({"name", "probability"});
          StageInput st;
          st.name = sr.text("name", 1, 100, true);
          st.probability = sr.integer("probability", 0, 100, true);
          if (st.name && *st.name && !names.insert(lowercase(**st.name)).second)
            errors.push_back({prefix + "name", "is used by another stage of this pipeline"});
          p.stages->push_back(std::move(st));
        }
      }
    }
  }
  finish(errors);
  return p;
}

// ---- JSON ----------------------------------------------------------------------------------------------

namespace {
json opt(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }
}  // namespace

nlohmann::json to_json(const Company& c) {
  return {{"id", c.id},
          {"name", c.name},
          {"domain", opt(c.domain)},
          {"industry", opt(c.industry)},
          {"size", opt(c.size)},
          {"address", c.address},
          {"owner_id", opt(c.owner_id)},
          {"custom", c.custom},
          {"created_at", c.created_at},
          {"updated_at", c.updated_at}};
}

nlohmann::json to_json(const Contact& c) {
  return {{"id", c.id},
          {"first_name", opt(c.first_name)},
          {"last_name", opt(c.last_name)},
          {"email", opt(c.email)},
          {"phone", opt(c.phone)},
          {"title", opt(c.title)},
          {"company_id", opt(c.company_id)},
          {"owner_id", opt(c.owner_id)},
          {"lifecycle_stage", c.lifecycle_stage},
          {"tags", c.tags},
          {"custom", c.custom},
          {"created_at", c.created_at},
          {"updated_at", c.updated_at}};
}

nlohmann::json to_json(const Stage& s) {
  return {{"id", s.id},
          {"pipeline_id", s.pipeline_id},
          {"name", s.name},
          {"position", s.position},
          {"probability", s.probability},
          {"created_at", s.created_at},
          {"updated_at", s.updated_at}};
}

nlohmann::json to_json(const Pipeline& p) {
  json stages = json::array();
  for (const auto& s : p.stages) stages.push_back(to_json(s));
  return {{"id", p.id},
          {"name", p.name},
          {"is_default", p.is_default},
          {"stages", std::move(stages)},
          {"created_at", p.created_at},
          {"updated_at", p.updated_at}};
}

nlohmann::json to_json(const DealChange& c) {
  return {{"id", c.id},
          {"deal_id", c.deal_id},
          {"pipeline_id", c.pipeline_id},
          {"from_stage_id", opt(c.from_stage_id)},
          {"to_stage_id", opt(c.to_stage_id)},
          {"from_status", opt(c.from_status)},
          {"to_status", opt(c.to_status)},
          {"changed_by", {{"type", c.actor.type}, {"id", c.actor.id}}},
          {"changed_at", c.changed_at}};
}

}  // namespace cdx::crm
