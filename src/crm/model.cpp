#include "crm/model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <set>

#include "common/clock.hpp"
#include "common/validate.hpp"
#include "http/pagination.hpp"

namespace cdx::crm {

using nlohmann::json;

// ---- rules ---------------------------------------------------------------------------------------------

bool valid_id(std::string_view id) { return valid_uuid(id); }

bool valid_currency(std::string_view code) {
  // ISO 4217 active codes (2024), without XTS (testing) and XXX (no currency).
  static const std::set<std::string, std::less<>> kCodes = {
      "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
      "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
      "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF",
      "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD",
      "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
      "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
      "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK",
      "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK",
      "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK",
      "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT",
      "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS",
      "VED", "VES", "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG",
      "XDR", "XOF", "XPD", "XPF", "XPT", "XSU", "XUA", "YER", "ZAR", "ZMW", "ZWG", "ZWL"};
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
    } else if (!(c == ' ' || c == '+' || c == '-' || c == '(' || c == ')' || c == '.' || c == '/' ||
                 c == 'x')) {
      return "must be a phone number: digits, spaces and + - ( ) . / x";
    }
  }
  if (digits < 3) return "must hold at least 3 digits";
  return std::nullopt;
}

std::string contact_search_text(const std::optional<std::string>& first_name,
                                const std::optional<std::string>& last_name,
                                const std::optional<std::string>& email) {
  return lowercase(first_name.value_or("") + " " + last_name.value_or("")) + "\n" +
         lowercase(email.value_or(""));
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
  static const std::vector<std::string> k = {"1-10",     "11-50",     "51-200",     "201-500",
                                             "501-1000", "1001-5000", "5001-10000", "10001+"};
  return k;
}

// ---- JSON ----------------------------------------------------------------------------------------------

namespace {
json opt(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }
}  // namespace

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
