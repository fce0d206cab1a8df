#include "cms/schema.hpp"

#include <cmark.h>
#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "common/validate.hpp"
#include "kit/kit.hpp"

namespace cdx::cms {

using nlohmann::json;

namespace {

constexpr int64_t kSafeInteger = 9007199254740991;  // 2^53 - 1: what every JSON client reads exactly
constexpr size_t kTextMax = 2000, kRichTextMax = 200000, kJsonMax = 65536, kListMax = 1000;

bool has(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out;
}

size_t as_size(const std::optional<double>& v, size_t fallback) {
  return v ? static_cast<size_t>(std::max(0.0, *v)) : fallback;
}

// A list of ids (references or media, many): each a lower-case UUID, distinct, within the count rules.
kit::Check id_list_check(std::optional<double> min) {
  return [min](json& v, kit::Problems& p) {
    for (auto& id : v) {
      std::string s = lowercase(id.get<std::string>());
      if (!valid_uuid(s)) return p.fail("must hold ids (UUIDs such as 01930000-0000-7000-8000-000000000001)");
      id = s;
    }
    if (min && v.size() < static_cast<size_t>(*min))
      p.fail(fmt::format("must hold at least {} items", static_cast<size_t>(*min)));
  };
}

// The kit field checking one value of a field definition (one locale's value when localized).
kit::Field rule_of(const FieldDef& d) {
  const std::string& t = d.type;
  kit::Field f;
  if (t == "text" || t == "rich_text") {
    f = kit::text(d.key, as_size(d.max, t == "text" ? kTextMax : kRichTextMax));
    f.min_len = as_size(d.min, 0);
    if (t == "rich_text") f.multiline();
    if (d.regex) {
      auto re = d.regex;
      f.check([re, pattern = d.pattern](json& v, kit::Problems& p) {
        if (!RE2::PartialMatch(v.get<std::string>(), *re)) p.fail("must match the pattern " + pattern);
      });
    }
  } else if (t == "integer") {
    f = kit::integer(d.key, d.min ? static_cast<int64_t>(std::ceil(*d.min)) : -kSafeInteger,
                     d.max ? static_cast<int64_t>(std::floor(*d.max)) : kSafeInteger);
  } else if (t == "number") {
    f = kit::number(d.key, d.min, d.max);
  } else if (t == "boolean") {
    f = kit::boolean(d.key);
  } else if (t == "date") {
    f = kit::date(d.key);
  } else if (t == "datetime") {
    f = kit::datetime(d.key);
  } else if (t == "enum") {
    f = kit::choice(d.key, d.values);
  } else if (d.is_link()) {
    if (d.multiple) {
      f = kit::text_list(d.key, as_size(d.max, 100), 36);
      f.check(id_list_check(d.min));
    } else {
      f = kit::id(d.key);
    }
  } else if (t == "json") {
    f = kit::any_json(d.key, kJsonMax);
  } else if (t == "text_list") {
    f = kit::text_list(d.key, as_size(d.max, kListMax), 500);
    if (d.min) {
      const size_t min = as_size(d.min, 0);
      f.check([min](json& v, kit::Problems& p) {
        if (v.size() < min) p.fail(fmt::format("must hold at least {} items", min));
      });
    }
  } else {
    throw std::logic_error("cms: unknown field type " + t);
  }
  return f;
}

FieldDef def_of(const json& j) {
  FieldDef d;
  d.key = j.at("key").get<std::string>();
  d.name = j.value("name", d.key);
  d.type = j.at("type").get<std::string>();
  d.required = j.value("required", false);
  d.unique = j.value("unique", false);
  d.localized = j.value("localized", false);
  d.multiple = j.value("multiple", false);
  if (j.contains("min") && j["min"].is_number()) d.min = j["min"].get<double>();
  if (j.contains("max") && j["max"].is_number()) d.max = j["max"].get<double>();
  d.pattern = j.value("pattern", "");
  if (j.contains("values") && j["values"].is_array()) d.values = j["values"].get<std::vector<std::string>>();
  d.references = j.value("references", "");
  if (j.contains("default")) d.default_value = j["default"];
  if (!d.pattern.empty()) {
    RE2::Options o;
    o.set_log_errors(false);
    o.set_max_mem(1 << 20);
    d.regex = std::make_shared<re2::RE2>(d.pattern, o);
    if (!d.regex->ok()) d.regex.reset();
  }
  d.rule = rule_of(d);
  return d;
}

// Which rules each field type accepts.
bool takes_min_max(const std::string& t) {
  return t != "boolean" && t != "date" && t != "datetime" && t != "enum" && t != "json";
}

void html_into(json& out, const std::string& key, const json& v, bool localized) {
  if (localized && v.is_object()) {
    json per = json::object();
    for (const auto& [loc, text] : v.items())
      if (text.is_string()) per[loc] = markdown_html(text.get<std::string>());
    out[key] = std::move(per);
  } else if (v.is_string()) {
    out[key] = markdown_html(v.get<std::string>());
  }
}

}  // namespace

const std::vector<std::string>& field_types() {
  static const std::vector<std::string> kTypes = {"text",      "rich_text", "integer",  "number",
                                                  "boolean",   "date",      "datetime", "enum",
                                                  "reference", "media",     "json",     "text_list"};
  return kTypes;
}

const FieldDef* ContentType::find(std::string_view k) const {
  for (const auto& f : fields)
    if (f.key == k) return &f;
  return nullptr;
}

std::vector<std::pair<std::string, json>> ContentType::sort_keys(const json& data) const {
  std::vector<std::pair<std::string, json>> out;
  for (const auto& f : fields) {
    if (f.sort_column.empty()) continue;
    auto it = data.find(f.key);
    const bool number = f.sort_column[0] == 'n';
    if (it == data.end() || it->is_null()) {
      out.emplace_back(f.sort_column, number ? json(-1e300) : json(""));
    } else if (number) {
      out.emplace_back(f.sort_column,
                       it->is_boolean() ? json(it->get<bool>() ? 1.0 : 0.0) : json(it->get<double>()));
    } else {
      // Sorting looks at the first 200 characters: enough to order by, and it keeps the index small.
      const std::string& s = it->get_ref<const std::string&>();
      size_t n = std::min<size_t>(s.size(), 200);
      while (n < s.size() && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
        --n;  // whole characters
      out.emplace_back(f.sort_column, s.substr(0, n));
    }
  }
  return out;
}

bool ContentType::has_rich_text() const {
  return std::any_of(fields.begin(), fields.end(), [](const FieldDef& f) { return f.type == "rich_text"; });
}

std::shared_ptr<const ContentType> compile(const json& row) {
  auto t = std::make_shared<ContentType>();
  t->id = row.value("id", "");
  t->key = row.value("key", "");
  t->name = row.value("name", "");
  t->updated_at = row.value("updated_at", "");
  if (row.contains("fields") && row["fields"].is_array())
    for (const auto& f : row["fields"]) t->fields.push_back(def_of(f));
  // The first four text-like and number-like fields that are not localized get the indexed sort columns.
  int texts = 0, numbers = 0;
  for (auto& f : t->fields) {
    if (f.localized) continue;
    if ((f.type == "integer" || f.type == "number" || f.type == "boolean") && numbers < 4)
      f.sort_column = "n" + std::to_string(++numbers);
    else if ((f.type == "text" || f.type == "date" || f.type == "datetime" || f.type == "enum") && texts < 4)
      f.sort_column = "s" + std::to_string(++texts);
  }
  return t;
}

void check_fields(const json& fields, std::vector<FieldError>& errors) {
  std::set<std::string> keys;
  for (size_t i = 0; i < fields.size(); ++i) {
    const json& f = fields[i];
    const std::string at = fmt::format("fields[{}]", i);
    auto fail = [&](const char* member, std::string message) {
      errors.push_back({at + "." + member, std::move(message)});
    };
    const std::string key = f.value("key", ""), type = f.value("type", "");
    if (!keys.insert(key).second) fail("key", "is used by another field of this type");
    const bool link = type == "reference" || type == "media";
    const bool text = type == "text" || type == "rich_text";
    const auto min = f.contains("min") ? std::optional<double>(f["min"].get<double>()) : std::nullopt;
    const auto max = f.contains("max") ? std::optional<double>(f["max"].get<double>()) : std::nullopt;
    if ((min || max) && !takes_min_max(type))
      fail(min ? "min" : "max", "does not apply to a " + type + " field");
    if (min && max && *min > *max) fail("min", "must not be greater than max");
    const bool counts = text || type == "text_list" || link;
    if (counts && ((min && *min < 0) || (max && *max < 0)))
      fail(min && *min < 0 ? "min" : "max", "must not be negative (a length or a count)");
    if (text && max && *max > (type == "text" ? 100000 : 1000000))
      fail("max", fmt::format("must be at most {} characters", type == "text" ? 100000 : 1000000));
    if (link && !f.value("multiple", false) && (min || max))
      fail(min ? "min" : "max", "applies to a reference or media field only with multiple: true (a count)");
    if (f.contains("pattern")) {
      if (!text) {
        fail("pattern", "applies to text and rich_text fields only");
      } else {
        RE2::Options o;
        o.set_log_errors(false);
        o.set_max_mem(1 << 20);
        RE2 re(f["pattern"].get<std::string>(), o);
        if (!re.ok()) fail("pattern", "is not a valid regular expression: " + re.error());
      }
    }
    if (type == "enum") {
      if (!f.contains("values") || f["values"].empty())
        fail("values", "must list the values of an enum field");
    } else if (f.contains("values")) {
      fail("values", "applies to enum fields only");
    }
    if (type == "reference") {
      if (f.value("references", "").empty())
        fail("references", "must name the content type (its key) whose entries this field references");
    } else if (f.contains("references")) {
      fail("references", "applies to reference fields only");
    }
    if (f.value("multiple", false) && !link) fail("multiple", "applies to reference and media fields only");
    if (f.value("unique", false) &&
        (link || type == "json" || type == "text_list" || type == "boolean" || type == "rich_text"))
      fail("unique", "applies to text, integer, number, date, datetime and enum fields only");
    if (f.value("localized", false) && !(text || type == "text_list" || type == "json"))
      fail("localized", "applies to text, rich_text, text_list and json fields only");
    if (f.contains("default") && !f["default"].is_null()) {
      if (link) {
        fail("default", "does not apply to reference and media fields");
      } else if (errors.empty() || errors.back().field.rfind(at, 0) != 0) {
        // The default obeys the field's own rules (checked once the field itself is sound).
        FieldDef d = def_of(f);
        std::vector<FieldError> bad;
        kit::Problems p(at + ".default", bad);
        kit::check_value(d.rule, f["default"], p);
        for (auto& e : bad) errors.push_back({at + ".default", e.message});
      }
    }
  }
}

json check_data(const ContentType& type, const json& data, const std::vector<std::string>& locales,
                const std::string& default_locale, std::vector<FieldError>& errors) {
  json out = json::object();
  for (const auto& [k, _] : data.items())
    if (!type.find(k)) {
      std::vector<std::string> keys;
      for (const auto& f : type.fields) keys.push_back(f.key);
      errors.push_back({"data." + k, fmt::format("is not a field of {} (fields: {})", type.key, join(keys))});
    }
  for (const FieldDef& f : type.fields) {
    const std::string at = "data." + f.key;
    auto it = data.find(f.key);
    if (it == data.end() || it->is_null()) {
      if (!f.default_value.is_null()) {
        out[f.key] = f.localized ? json{{default_locale, f.default_value}} : f.default_value;
      } else if (f.required) {
        errors.push_back({at, "is required"});
      }
      continue;
    }
    if (!f.localized) {
      kit::Problems p(at, errors);
      if (auto v = kit::check_value(f.rule, *it, p)) out[f.key] = std::move(*v);
      continue;
    }
    if (!it->is_object()) {
      errors.push_back({at, fmt::format("is localized: must be an object of locale → value (locales: {})",
                                        join(locales))});
      continue;
    }
    json per = json::object();
    for (const auto& [loc, v] : it->items()) {
      if (!has(locales, loc)) {
        errors.push_back({at + "." + loc, "is not a locale of this tenant (locales: " + join(locales) + ")"});
        continue;
      }
      if (v.is_null()) continue;
      kit::Problems p(at + "." + loc, errors);
      if (auto nv = kit::check_value(f.rule, v, p)) per[loc] = std::move(*nv);
    }
    if (f.required && !per.contains(default_locale))
      errors.push_back({at + "." + default_locale, "is required (the default locale's value)"});
    if (!per.empty()) out[f.key] = std::move(per);
  }
  return out;
}

void drop_deleted_locales(const ContentType& type, json& data, const std::vector<std::string>& locales,
                          const json* named) {
  for (const FieldDef& f : type.fields) {
    if (!f.localized) continue;
    auto it = data.find(f.key);
    if (it == data.end() || !it->is_object()) continue;
    const json* given =
        named && named->contains(f.key) && (*named)[f.key].is_object() ? &(*named)[f.key] : nullptr;
    for (auto v = it->begin(); v != it->end();) {
      if (!has(locales, v.key()) && !(given && given->contains(v.key()) && !(*given)[v.key()].is_null()))
        v = it->erase(v);
      else
        ++v;
    }
  }
}

json resolve_locale(const ContentType& type, const json& data, const std::string& locale,
                    const std::string& default_locale, const std::vector<std::string>& fields) {
  json out = json::object();
  for (const FieldDef& f : type.fields) {
    if (!fields.empty() && !has(fields, f.key)) continue;
    auto it = data.find(f.key);
    if (it == data.end() || it->is_null()) {
      out[f.key] = nullptr;
      continue;
    }
    if (!f.localized || !it->is_object()) {
      out[f.key] = *it;
      continue;
    }
    auto v = it->find(locale);
    if (v == it->end()) v = it->find(default_locale);
    out[f.key] = v == it->end() ? json(nullptr) : *v;
  }
  return out;
}

std::string markdown_html(const std::string& markdown) {
  // CMARK_OPT_DEFAULT is safe: raw HTML becomes a comment, javascript:/vbscript:/file: and most data: link
  // targets are dropped.
  char* html = cmark_markdown_to_html(markdown.data(), markdown.size(), CMARK_OPT_DEFAULT);
  std::string out(html ? html : "");
  free(html);
  return out;
}

json render_html(const ContentType& type, const json& data) {
  json out = json::object();
  for (const FieldDef& f : type.fields)
    if (f.type == "rich_text" && data.contains(f.key)) html_into(out, f.key, data[f.key], f.localized);
  return out;
}

namespace {

json value_schema(const FieldDef& f, SchemaFor what) {
  auto limits = [&](json& s, const char* lo, const char* hi) {
    if (f.min) s[lo] = static_cast<int64_t>(*f.min);
    if (f.max) s[hi] = static_cast<int64_t>(*f.max);
  };
  const json uuid = {{"type", "string"}, {"format", "uuid"}};
  json s;
  if (f.is_text()) {
    s = {{"type", "string"}};
    limits(s, "minLength", "maxLength");
    if (!f.pattern.empty()) s["pattern"] = f.pattern;
    if (f.type == "rich_text") s["contentMediaType"] = "text/markdown";
  } else if (f.type == "integer" || f.type == "number") {
    s = {{"type", f.type}};
    if (f.min) s["minimum"] = *f.min;
    if (f.max) s["maximum"] = *f.max;
  } else if (f.type == "boolean") {
    s = {{"type", "boolean"}};
  } else if (f.type == "date" || f.type == "datetime") {
    s = {{"type", "string"}, {"format", f.type == "date" ? "date" : "date-time"}};
  } else if (f.type == "enum") {
    s = {{"type", "string"}, {"enum", f.values}};
  } else if (f.is_link()) {
    const std::string what_id =
        f.type == "media" ? "a media object's id" : "the id of an entry of " + f.references;
    json one = uuid;
    if (what == SchemaFor::kDelivery)
      one = {{"oneOf", {uuid, {{"type", "object"}, {"description", "populated: what the id names"}}}}};
    one["description"] = what_id;
    if (f.multiple) {
      s = {{"type", "array"}, {"items", one}};
      // Populating drops what is no longer published: a delivered list may hold fewer than its minimum.
      if (what != SchemaFor::kDelivery) limits(s, "minItems", "maxItems");
    } else {
      s = one;
    }
  } else if (f.type == "text_list") {
    s = {{"type", "array"}, {"items", {{"type", "string"}}}};
    limits(s, "minItems", "maxItems");
  } else {  // json
    s = json::object();
  }
  return s;
}

}  // namespace

json data_schema(const ContentType& type, SchemaFor what) {
  const bool write = what != SchemaFor::kDelivery;
  json props = json::object();
  json required = json::array();
  for (const FieldDef& f : type.fields) {
    json v = value_schema(f, what);
    if (write && f.localized)
      v = {{"type", "object"}, {"description", "a value per locale code"}, {"additionalProperties", v}};
    // Delivered values may be missing (null); an update's null clears the field.
    if (what != SchemaFor::kWrite && !v.empty()) v = {{"oneOf", {v, {{"type", "null"}}}}};
    if (!f.name.empty()) v["title"] = f.name;
    // A localized field's default is the default locale's value when none is given.
    if (what == SchemaFor::kWrite && !f.default_value.is_null() && !f.localized)
      v["default"] = f.default_value;
    if (what == SchemaFor::kWrite && f.required && f.default_value.is_null()) required.push_back(f.key);
    props[f.key] = std::move(v);
  }
  json out = {{"type", "object"}, {"properties", std::move(props)}, {"additionalProperties", false}};
  if (!required.empty()) out["required"] = std::move(required);
  return out;
}

std::string search_text(const ContentType& type, const json& data) {
  std::string out;
  auto add = [&](const json& v) {
    if (!v.is_string()) return;
    if (!out.empty()) out += ' ';
    out += lowercase(v.get<std::string>());
  };
  for (const FieldDef& f : type.fields) {
    if (!f.is_text() || !data.contains(f.key)) continue;
    const json& v = data[f.key];
    if (f.localized && v.is_object())
      for (const auto& [_, x] : v.items()) add(x);
    else
      add(v);
    if (out.size() > 100000) break;  // enough to find an entry by; keeps the column bounded
  }
  if (out.size() > 100000) {
    size_t cut = 100000;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // a character's start
    out.resize(cut);
  }
  return out;
}

namespace {

// A code point that separates words: ASCII other than letters and digits, and the punctuation, symbol and
// space blocks both databases' tokenizers split on (Latin-1 punctuation, general punctuation, currency,
// arrows and mathematical signs, box drawing and dingbats, CJK and full-width punctuation, emoji).
bool separates(char32_t c) {
  if (c < 0x80) return !std::isalnum(static_cast<int>(c));
  return (c >= 0x80 && c <= 0xBF && c != 0xAA && c != 0xB2 && c != 0xB3 && c != 0xB5 && c != 0xB9 &&
          c != 0xBA) ||
         c == 0xD7 || c == 0xF7 || (c >= 0x2000 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F) ||
         (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) ||
         (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65) || (c >= 0x1F000 && c <= 0x1FAFF);
}

// The code point at text[i] and its length in bytes; an ill-formed sequence reads as one byte of a control
// character (a separator), so no byte of it can join a word and no ASCII byte hides inside one.
std::pair<char32_t, size_t> code_point(std::string_view text, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(k < text.size() ? text[k] : 0); };
  const unsigned char c = b(i);
  if (c < 0x80) return {c, 1};
  const size_t n = c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
  if (n == 0 || i + n > text.size()) return {U'\x01', 1};
  char32_t cp = c & (0xFFu >> (n + 1));
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return {U'\x01', 1};
    cp = (cp << 6) | (b(i + k) & 0x3Fu);
  }
  return {cp, n};
}

// Lower case for the scripts whose case most text uses: ASCII, Latin-1, Latin Extended-A, Greek and
// Cyrillic. Done here rather than by the databases: PostgreSQL folds non-ASCII letters only under a
// database locale other than C, SQLite always.
char32_t fold(char32_t c) {
  if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 0x20 : c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
  if (c >= 0x100 && c <= 0x17F) {
    if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F) return c;
    if (c == 0x178) return 0xFF;
    const bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    return (c % 2 == 1) == odd_upper ? c + 1 : c;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 0x20;
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 0x25;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 0x3F;
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  return c;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// Calls f(word) for each word of text, folded to lower case, until f answers false.
template <class F>
void each_word(std::string_view text, F&& f) {
  std::string word;
  size_t i = 0;
  while (i <= text.size()) {
    auto [c, n] = i < text.size() ? code_point(text, i) : std::pair<char32_t, size_t>{U' ', 1};
    i += n;
    if (!separates(c)) {
      append_utf8(word, fold(c));
      continue;
    }
    if (!word.empty() && !f(std::move(word))) return;
    word.clear();
  }
}

}  // namespace

std::string search_words(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  each_word(text, [&](std::string w) {
    if (!out.empty()) out += ' ';
    out += w;
    return true;
  });
  return out;
}

std::vector<std::string> query_words(std::string_view q) {
  std::vector<std::string> out;
  each_word(q, [&](std::string w) {
    out.push_back(std::move(w));
    return out.size() < 16;
  });
  return out;
}

std::vector<std::pair<const FieldDef*, std::vector<std::string>>> links(const ContentType& type,
                                                                        const json& data) {
  std::vector<std::pair<const FieldDef*, std::vector<std::string>>> out;
  for (const FieldDef& f : type.fields) {
    if (!f.is_link() || !data.contains(f.key)) continue;
    std::vector<std::string> ids;
    const json& v = data[f.key];
    if (v.is_string()) ids.push_back(v.get<std::string>());
    if (v.is_array())
      for (const auto& id : v)
        if (id.is_string()) ids.push_back(id.get<std::string>());
    if (!ids.empty()) out.emplace_back(&f, std::move(ids));
  }
  return out;
}

}  // namespace cdx::cms
