#include "kit/resource.hpp"

#include <stdexcept>

#include "common/principal.hpp"

namespace cdx::kit {

namespace {

bool sql_name(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

Field make(std::string name, Type type) {
  Field f;
  f.name = std::move(name);
  f.type = type;
  return f;
}

}  // namespace

Field text(std::string name, size_t max_length) {
  Field f = make(std::move(name), Type::kText);
  f.min_len = 1;
  f.max_len = max_length;
  return f;
}

Field integer(std::string name, int64_t minimum, int64_t maximum) {
  Field f = make(std::move(name), Type::kInteger);
  f.minimum = minimum;
  f.maximum = maximum;
  return f;
}

Field boolean(std::string name) { return make(std::move(name), Type::kBoolean); }

Field id(std::string name) {
  Field f = make(std::move(name), Type::kId);
  f.openapi_format = "uuid";
  return f;
}

Field choice(std::string name, std::vector<std::string> values) {
  Field f = make(std::move(name), Type::kEnum);
  f.values = std::move(values);
  return f;
}

Field date(std::string name) {
  Field f = make(std::move(name), Type::kDate);
  f.openapi_format = "date";
  return f;
}

Field datetime(std::string name) {
  Field f = make(std::move(name), Type::kDateTime);
  f.openapi_format = "date-time";
  return f;
}

Field object(std::string name, size_t max_bytes) {
  Field f = make(std::move(name), Type::kObject);
  f.max_len = max_bytes;
  return f;
}

Field object(std::string name, std::vector<Field> properties) {
  Field f = make(std::move(name), Type::kObject);
  f.properties = std::move(properties);
  return f;
}

Field text_list(std::string name, size_t max_items, size_t item_max) {
  Field f = make(std::move(name), Type::kTextList);
  f.max_len = max_items;
  f.item_max = item_max;
  return f;
}

Field number(std::string name, std::optional<double> minimum, std::optional<double> maximum) {
  Field f = make(std::move(name), Type::kNumber);
  f.number_min = minimum;
  f.number_max = maximum;
  return f;
}

Field any_json(std::string name, size_t max_bytes) {
  Field f = make(std::move(name), Type::kJson);
  f.max_len = max_bytes;
  return f;
}

Field object_list(std::string name, std::vector<Field> properties, size_t max_items) {
  Field f = make(std::move(name), Type::kObjectList);
  f.properties = std::move(properties);
  f.max_len = max_items;
  return f;
}

Actor actor_of(const http::Context& ctx) {
  const Principal& p = *ctx.principal;
  switch (p.kind) {
    case Principal::Kind::kSuperadmin:
      return {"superadmin", p.id};
    case Principal::Kind::kApiKey:
      return {"api_key", p.id};
    case Principal::Kind::kUser:
      break;
  }
  return {"user", p.id};
}

const nlohmann::json* Change::value(std::string_view f) const {
  auto it = row.find(f);
  return it == row.end() || it->is_null() ? nullptr : &*it;
}

std::optional<std::string> Change::param(std::string_view name) const {
  if (!params) return std::nullopt;
  auto it = params->find(name);
  if (it == params->end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

Resource::Resource(std::string module, std::string kind, std::string plural)
    : module_(std::move(module)), kind_(std::move(kind)), plural_(std::move(plural)) {
  read_scope_ = module_ + ":read";
  write_scope_ = module_ + ":write";
  schema_name_ = kind_;
  if (!schema_name_.empty()) schema_name_[0] = static_cast<char>(std::toupper(schema_name_[0]));
}

const Field* Resource::find(std::string_view name) const {
  for (const auto& f : fields_)
    if (f.name == name) return &f;
  return nullptr;
}

bool Resource::sortable(std::string_view name) const {
  if (name == "created_at" || name == "updated_at") return true;
  const Field* f = find(name);
  return f && f->is_sortable;
}

void Resource::seal() {
  auto bad = [&](const std::string& what) {
    throw std::logic_error("resource " + module_ + "." + plural_ + ": " + what);
  };
  if (!sql_name(module_) || !sql_name(plural_)) bad("module and plural must be SQL names");
  if (!schema_.empty() && !sql_name(schema_)) bad("schema must be an SQL name");
  if (!path_.empty() && (path_.rfind("/api/v1/", 0) != 0 || path_.find('{') != std::string::npos || parent_))
    bad("path must be a collection under /api/v1/ (and not of a nested resource)");
  select_list_ = show_tenant_id_ ? "id, tenant_id" : "id";
  for (const auto& f : fields_) {
    if (!sql_name(f.name) || !sql_name(f.column())) bad("field '" + f.name + "' must be an SQL name");
    if (!f.rendered() && (f.is_sortable || f.filter_match != Match::kNone || !f.unique_on.empty() ||
                          f.is_searchable || !f.refs_table.empty() || f.is_read_only))
      bad("write-only or hidden field '" + f.name +
          "' cannot be sorted, filtered, searched, unique or a link");
    if (!f.rendered()) continue;
    if (f.is_sortable && f.is_nullable && !f.is_required && f.default_value.is_null())
      bad("sortable field '" + f.name + "' must not be nullable (keyset pages need a value)");
    if (f.type == Type::kText && f.max_len == 0) bad("text field '" + f.name + "' needs a maximum length");
    if (f.type == Type::kEnum && f.values.empty()) bad("enum field '" + f.name + "' needs values");
    if (!f.is_column) {
      if (f.is_sortable || f.filter_match != Match::kNone || f.is_searchable || !f.unique_on.empty())
        bad("field '" + f.name + "' has no column to sort, filter, search or compare");
      continue;
    }
    select_list_ += ", " + f.column();
  }
  if (parent_) {
    if (!sql_name(parent_column_)) bad("parent column must be an SQL name");
    select_list_ += ", " + parent_column_;
  }
  select_list_ += ", created_at, updated_at";
  if (!key_field_.empty()) {
    const Field* k = find(key_field_);
    if (!k || k->type != Type::kText || !k->is_required)
      bad("key field '" + key_field_ + "' must be a required text field");
  }
  for (const auto& d : derived_)
    if (!sql_name(d.column)) bad("derived column '" + d.column + "' must be an SQL name");
  if (!owner_column_.empty() && !sql_name(owner_column_)) bad("owner column must be an SQL name");
  if (platform_) {
    // No tenant: nothing may be scoped to one, and only the operator writes.
    if (access_ != http::Access::kSuperadmin) bad("a platform resource is written by SUPERADMIN access only");
    if (!owner_column_.empty() || parent_ || !side_tables_.empty())
      bad("a platform resource has no owner, parent or side tables");
    for (const auto& f : fields_)
      if (!f.refs_table.empty())
        bad("field '" + f.name + "' of a platform resource cannot link (refs) to tenant rows");
  } else if (hooks_.after_commit) {
    bad("the after_commit hook is for platform resources only (for now): tenant resources have committed");
  }
  {
    const std::string s =
        default_sort_.empty() || default_sort_[0] != '-' ? default_sort_ : default_sort_.substr(1);
    if (!sortable(s)) bad("default sort '" + default_sort_ + "' is not sortable");
  }
  for (const auto& f : fields_)
    if (f.merges && (f.type != Type::kObject || !f.properties.empty()))
      bad("merge_patch() field '" + f.name + "' must be a free-form object");
  if (!soft_delete_.empty()) {
    const Field* f = find(soft_delete_);
    if (!f || f->type != Type::kDateTime || !f->is_read_only)
      bad("soft-delete field '" + soft_delete_ + "' must be a read-only datetime field");
  }
}

}  // namespace cdx::kit
