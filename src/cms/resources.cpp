// The CMS's kit resources: locales, content types (their fields a list of declarations), entries nested
// under their type, and media. What a declaration cannot say (an entry's data under its type, versions,
// the published copy) is the service's hooks.
#include "cms/resources.hpp"

#include "cms/schema.hpp"
#include "common/validate.hpp"

namespace cdx::cms {

using nlohmann::json;

namespace {

// Keys are what paths, filters and JSON paths are made of: lower-case letters, digits and underscores.
constexpr const char* kKeyPattern = "^[a-z][a-z0-9_]*$";
constexpr const char* kLocalePattern = "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$";

kit::Check key_rule() {
  return [](json& v, kit::Problems& p) {
    const std::string& s = v.get_ref<const std::string&>();
    bool ok = !s.empty() && s[0] >= 'a' && s[0] <= 'z';
    for (char c : s) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
    if (!ok) p.fail("must start with a lower-case letter and hold only a-z, 0-9 and _");
  };
}

kit::Check locale_rule() {
  return [](json& v, kit::Problems& p) {
    // BCP 47 as content systems use it: a language, then optional subtags (en, en-US, zh-Hant-TW).
    const std::string& s = v.get_ref<const std::string&>();
    size_t part = 0, len = 0;
    bool ok = true;
    for (size_t i = 0; i <= s.size() && ok; ++i) {
      if (i == s.size() || s[i] == '-') {
        ok = part == 0 ? (len >= 2 && len <= 3) : (len >= 2 && len <= 8);
        ++part, len = 0;
        continue;
      }
      const char c = s[i];
      ok = part == 0 ? (c >= 'a' && c <= 'z') : std::isalnum(static_cast<unsigned char>(c)) != 0;
      ++len;
    }
    if (!ok) p.fail("must be a locale code such as en, fr or en-US");
  };
}

// Every string an entry holds (every locale), lower-cased: the management list's q= matches it.
db::Param search_of(const json& row, std::string& keep) {
  keep.clear();
  std::function<void(const json&)> walk = [&](const json& v) {
    if (keep.size() > 100000) return;
    if (v.is_string()) {
      if (!keep.empty()) keep += ' ';
      keep += lowercase(v.get_ref<const std::string&>());
    } else if (v.is_object() || v.is_array()) {
      for (const auto& x : v) walk(x);
    }
  };
  if (row.contains("data")) walk(row["data"]);
  return std::string_view(keep);
}

}  // namespace

kit::Resource locale_resource() {
  kit::Resource r("cms", "locale", "locales");
  r.key("code")
      .item_param("code")
      .field(kit::text("code", 35)
                 .min(2)
                 .required()
                 .immutable()
                 .unique()
                 .sortable()
                 .check(locale_rule(), kLocalePattern))
      .field(kit::text("name", 100))
      .field(kit::boolean("is_default")
                 .not_null()
                 .defaults(false)
                 .doc("the locale a read falls back to; setting it moves the default here"))
      .default_sort("code")
      .describe_list("The tenant's locales (en is made the default when the tenant has none)")
      .describe_delete(
          "Delete a locale (not the default); an entry keeps its values in it until its next save, which "
          "drops them");
  return r;
}

kit::Resource content_type_resource() {
  kit::Resource r("cms", "content_type", "content_types");
  const std::vector<kit::Field> members = {
      kit::text("key", 64)
          .required()
          .check(key_rule(), kKeyPattern)
          .doc("the key of the field in an entry's data"),
      kit::text("name", 100),
      kit::choice("type", field_types()).required(),
      kit::boolean("required").doc("an entry must give it (a localized one: in the default locale)"),
      kit::boolean("unique").doc("no two entries of the type share the value (per locale)"),
      kit::boolean("localized").doc("holds a value per locale: {\"en\": …, \"fr\": …}"),
      kit::boolean("multiple").doc("reference and media: a list of ids instead of one"),
      kit::number("min").doc("the least length (text), value (integer, number) or count (lists)"),
      kit::number("max").doc("the greatest length (text), value (integer, number) or count (lists)"),
      kit::text("pattern", 500)
          .doc("text: a regular expression (RE2 syntax) the value must contain a match of"),
      kit::text_list("values", 200, 100).doc("enum: the values it may take"),
      kit::text("references", 64)
          .check(key_rule(), kKeyPattern)
          .doc("reference: the key of the content type it points to"),
      kit::any_json("default", 4096).doc("the value an entry gets when it gives none"),
      kit::text("description", 500),
  };
  r.segment("content-types")
      .key("key")
      .item_param("key")
      .field(kit::text("key", 64)
                 .required()
                 .immutable()
                 .unique()
                 .sortable()
                 .check(key_rule(), kKeyPattern)
                 .doc("addresses the type: /content-types/{key}, /published/{key}"))
      .field(kit::text("name", 100).required().searchable().sortable())
      .field(kit::text("description", 1000).multiline())
      .field(kit::object_list("fields", members, 100)
                 .not_null()
                 .defaults(json::array())
                 .renders_as("ContentTypeField"))
      .default_sort("key")
      .delete_param("cascade")
      .schema_name("ContentType")
      .describe_create("Create a content type: its key, name and fields")
      .describe_delete(
          "Delete a content type; 409 while it has entries, unless ?cascade=true deletes them too");
  return r;
}

kit::Resource entry_resource(const kit::Resource& content_types) {
  kit::Resource r("cms", "entry", "entries");
  r.parent(content_types, "type_id")
      .field(kit::object("data", kMaxEntryBytes)
                 .not_null()
                 .defaults(json::object())
                 .merge_patch()
                 .doc("the fields of the entry's content type; a PATCH merges into the stored data (null "
                      "removes a field)"))
      .field(kit::choice("status", {"draft", "published", "changed"})
                 .read_only("use /publish and /unpublish")
                 .not_null()
                 .defaults("draft")
                 .filter()
                 .doc("draft: never published or taken off; published: the draft is what is published; "
                      "changed: published, with later edits not yet published"))
      .field(kit::integer("version", 1, INT64_MAX)
                 .read_only()
                 .not_null()
                 .defaults(1)
                 .doc("the draft's version: every save that changes data makes a new one"))
      .field(kit::integer("published_version", 1, INT64_MAX).read_only())
      .field(kit::datetime("published_at").read_only())
      .field(kit::datetime("publish_at").doc("publish at this time (scheduled); null cancels"))
      .field(kit::datetime("unpublish_at").doc("take off the delivery API at this time; null cancels"))
      .field(kit::object("created_by", 200).read_only())
      .field(kit::object("updated_by", 200).read_only())
      .derived("search", search_of)
      .search_column("search")
      .default_sort("-updated_at")
      .side_table("cms_db.entry_versions")
      .side_table("cms_db.entry_unique")
      .side_table("cms_db.published")
      .side_table("cms_db.preview_tokens")
      .schema_name("Entry")
      .describe_create("Create an entry (a draft, version 1) under its content type's rules")
      .describe_list("List the type's entries, drafts included (newest change first; q, status)")
      .describe_delete("Delete an entry, its versions and its published copy");
  return r;
}

kit::Resource media_resource() {
  kit::Resource r("cms", "media", "media");
  r.field(kit::text("filename", 255)
              .not_null()
              .read_only("upload with POST /api/v1/cms/media (multipart/form-data)")
              .sortable()
              .searchable())
      .field(kit::text("mime_type", 100).read_only().filter())
      .field(kit::integer("size", 0, INT64_MAX).read_only())
      .field(kit::integer("width", 0, 1000000).read_only())
      .field(kit::integer("height", 0, 1000000).read_only())
      .field(kit::text("hash", 64).read_only().doc("SHA-256 of the bytes: the same bytes are stored once"))
      .field(kit::text("alt", 500).searchable())
      .field(kit::text("folder", 200).filter())
      .field(kit::text("url", 300).read_only().no_column())
      .routes({kit::Op::kList, kit::Op::kGet, kit::Op::kUpdate, kit::Op::kDelete})
      .schema_name("Media")
      .describe_list("The media library (newest first; q over file names and alt text, folder, mime_type)")
      .describe_delete("Delete a media object; 409 while entries use it");
  return r;
}

}  // namespace cdx::cms
