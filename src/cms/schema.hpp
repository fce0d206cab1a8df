// A content type's fields, checked once when the type is written and compiled into kit fields that check
// every entry written under it. Pure: no database, no I/O.
//   auto type = cms::compile(type_row);                 // from the content type's stored row
//   json data = cms::check_data(*type, body_data, locales, errors);   // normalised (errors: data.<key>)
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "kit/resource.hpp"

namespace re2 {
class RE2;
}

namespace cdx::cms {

// The kinds of field a content type may declare.
const std::vector<std::string>& field_types();

struct FieldDef {
  std::string key, name, type;
  bool required = false, unique = false, localized = false, multiple = false;
  std::optional<double> min, max;
  std::string pattern;
  std::vector<std::string> values;  // enum
  std::string references;           // reference: the content type key its entries must have
  nlohmann::json default_value;     // null: none
  kit::Field rule;                  // the value's rules as a kit field (one value: one locale's value)
  std::shared_ptr<re2::RE2> regex;  // pattern, compiled
  std::string sort_column;          // "s1".."s4" (text-like) or "n1".."n4" (number-like), or "" (no index)

  bool is_link() const { return type == "reference" || type == "media"; }
  bool is_text() const { return type == "text" || type == "rich_text"; }
};

struct ContentType {
  std::string id, key, name, updated_at;
  std::vector<FieldDef> fields;
  const FieldDef* find(std::string_view key) const;
  bool has_rich_text() const;
  // The published copy's sort keys for data: {"s1", "text"}, {"n2", 42.0}, … (every assigned column).
  std::vector<std::pair<std::string, nlohmann::json>> sort_keys(const nlohmann::json& data) const;
};

// The type's rules from its stored row ({"id", "key", "fields": [...], "updated_at", …}). The fields were
// checked when written; a row that does not compile is a logic error.
std::shared_ptr<const ContentType> compile(const nlohmann::json& type_row);

// The rules a declaration cannot say about a type's field list: each rule fits its field's type, min ≤ max,
// a pattern compiles, an enum lists its values, a default obeys the field's own rules, keys are distinct.
// Errors are named fields[i].<member>. References to other types are checked by the caller (a query).
void check_fields(const nlohmann::json& fields, std::vector<FieldError>& errors);

// An entry's data under its type: unknown keys refused, values checked and normalised, defaults filled,
// required fields present (a localized one in the default locale). Localized fields hold an object of
// locale → value. Errors are named data.<key> (data.<key>.<locale>).
nlohmann::json check_data(const ContentType& type, const nlohmann::json& data,
                          const std::vector<std::string>& locales, const std::string& default_locale,
                          std::vector<FieldError>& errors);

// Drops from the data's localized fields the values in locales the tenant no longer has (a locale deleted
// after they were written), except those `named` (the write's own data, or null) gives: check_data then
// refuses them by name. An entry keeps such values until its next save, which drops them.
void drop_deleted_locales(const ContentType& type, nlohmann::json& data,
                          const std::vector<std::string>& locales, const nlohmann::json* named);

// The data as one locale reads it: localized fields resolved to that locale, else the default locale's
// value, else null. fields: the keys to keep (empty: all).
nlohmann::json resolve_locale(const ContentType& type, const nlohmann::json& data, const std::string& locale,
                              const std::string& default_locale, const std::vector<std::string>& fields = {});

// Sanitized HTML of every rich-text field ({"body": "<p>…</p>"}; localized fields per locale); raw HTML in
// the Markdown is dropped and unsafe link targets removed. Empty object when the type has none.
nlohmann::json render_html(const ContentType& type, const nlohmann::json& data);
std::string markdown_html(const std::string& markdown);

// JSON Schema of an entry's data under its type. kWrite: what create takes (localized fields as locale →
// value, required fields listed, defaults named); kUpdate: what an update takes (nothing required, null
// clears a field, no defaults); kDelivery: what the delivery API answers (one
// locale's value, every field nullable, links an id or, populated, the object they name).
enum class SchemaFor { kWrite, kUpdate, kDelivery };
nlohmann::json data_schema(const ContentType& type, SchemaFor what);

// Lower-cased text of the text and rich-text fields (every locale), for q= searches.
std::string search_text(const ContentType& type, const nlohmann::json& data);
// The full-text index's reading of text, the same on both databases: words are runs of ASCII letters and
// digits and of non-ASCII characters, lower-cased; everything else separates them.
std::string search_words(std::string_view text);
// q= as its words under the same reading, at most 16 (none: nothing to search for).
std::vector<std::string> query_words(std::string_view q);

// The ids every reference or media field of data names, by field (both one and many; every locale).
std::vector<std::pair<const FieldDef*, std::vector<std::string>>> links(const ContentType& type,
                                                                        const nlohmann::json& data);

}  // namespace cdx::cms
