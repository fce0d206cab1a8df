// The CMS's SQL beyond the kit's rows: locales, versions, unique values, the published copies the delivery
// API reads (filters and sorts over their JSON data, per database), the schedule and preview tokens.
// Blocking, inside the caller's transaction.
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "cms/schema.hpp"
#include "db/database.hpp"

namespace cdx::cms {

struct Locales {
  std::vector<std::string> codes;  // sorted
  std::string default_code;
};

struct UniqueValue {
  std::string field, locale, value;  // locale: "" when the field is not localized
};

// One condition of a delivery read: filter[field][op]=value.
struct Filter {
  const FieldDef* field = nullptr;  // nullptr: a system field (id)
  std::string op;                   // eq ne gt gte lt lte in contains
  std::vector<nlohmann::json> values;
};

struct SortKey {
  const FieldDef* field = nullptr;  // nullptr: published_at or updated_at (system)
  std::string system;               // "published_at" / "updated_at" when field is null
  bool descending = false;
};

struct DeliveryQuery {
  std::string locale, default_locale;
  std::vector<Filter> filters;
  std::vector<SortKey> sort;
  std::vector<std::string> words;                       // q=: every word, each as a prefix (query_words)
  std::optional<std::vector<nlohmann::json>> after;     // the last row's sort values, then its id
  int limit = 25;
};

// A published copy as the delivery API reads it.
struct Published {
  std::string entry_id, type_id, published_at, updated_at;
  int64_t version = 0;
  nlohmann::json data, html;
  std::vector<std::pair<std::string, nlohmann::json>> sort_keys;  // ContentType::sort_keys(data), on publish
  std::vector<nlohmann::json> sort_values;  // the row's values of the query's sort keys (for its cursor)
};

struct DueAction {
  std::string tenant_id, entry_id, action;
  int64_t due_at = 0;
};

class Store {
 public:
  Locales locales(db::Tx& tx, const db::TenantScope& scope);
  // Writes "en" as the default locale when the tenant has none (its first locale is then en's sibling).
  void ensure_default_locale(db::Tx& tx, const db::TenantScope& scope, const std::string& now);
  void clear_default_locale(db::Tx& tx, const db::TenantScope& scope, const std::string& except_id);

  void add_version(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id, int64_t version,
                   const nlohmann::json& data, const nlohmann::json& actor, const std::string& at);
  // Newest first; after: a version number from the previous page.
  std::vector<nlohmann::json> versions(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id,
                                       int limit, std::optional<int64_t> before);
  std::optional<nlohmann::json> version(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id,
                                        int64_t n);

  // The entry's unique values replace its old ones; the id of another entry holding one of them, if any.
  std::optional<std::pair<UniqueValue, std::string>> taken(db::Tx& tx, const db::TenantScope& scope,
                                                            const std::string& type_id,
                                                            const std::string& entry_id,
                                                            const std::vector<UniqueValue>& values);
  void set_unique(db::Tx& tx, const db::TenantScope& scope, const std::string& type_id,
                  const std::string& entry_id, const std::vector<UniqueValue>& values);

  // Which of ids are entries of the type (references) or media objects of the tenant.
  std::vector<std::string> existing_entries(db::Tx& tx, const db::TenantScope& scope,
                                            const std::string& type_id, const std::vector<std::string>& ids);
  std::vector<std::string> existing_media(db::Tx& tx, const db::TenantScope& scope,
                                          const std::vector<std::string>& ids);
  // The content type id for a key (references), if the tenant has it.
  std::optional<std::string> type_id_of(db::Tx& tx, const db::TenantScope& scope, const std::string& key);
  // Every type's key and fields (references between types).
  std::vector<std::pair<std::string, nlohmann::json>> type_fields(db::Tx& tx, const db::TenantScope& scope);

  int64_t count_entries(db::Tx& tx, const db::TenantScope& scope, const std::string& type_id);
  // The type's entries on the delivery API (published, or published with later changes).
  int64_t count_published_entries(db::Tx& tx, const db::TenantScope& scope, const std::string& type_id);
  // The tenant overview's recount (Module::aggregate_counts): published entries and media.
  nlohmann::json aggregate_counts(db::Tx& tx, const db::TenantScope& scope);
  // A page of the type's entries' data in id order, for checking them against a changed type.
  std::vector<std::pair<std::string, nlohmann::json>> entry_data(db::Tx& tx, const db::TenantScope& scope,
                                                                 const std::string& type_id,
                                                                 const std::string& after_id, int limit);
  // Entries (of any type) whose data names one of the media ids.
  int64_t count_media_users(db::Tx& tx, const db::TenantScope& scope, const std::string& media_id);

  void publish(db::Tx& tx, const db::TenantScope& scope, const Published& p, const std::string& search);
  void unpublish(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id);
  // The type's published copies get their sort keys again (the type's sortable fields changed).
  void refill_sort_keys(db::Tx& tx, const db::TenantScope& scope, const ContentType& type);
  // The entry row's publishing state (the kit's read-only fields), beside its published copy.
  void mark_published(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id, int64_t version,
                      const std::string& published_at, const std::string& now);
  void mark_unpublished(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id,
                        const std::string& now);
  // Everything kept beside an entry (versions, unique values, published copy, schedule, preview tokens).
  void delete_entry_side(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id);
  // The same for every entry of a type (a type deleted with its entries).
  void delete_type_side(db::Tx& tx, const db::TenantScope& scope, const std::string& type_id);

  void schedule(db::Tx& tx, const db::TenantScope& scope, const std::string& entry_id, const std::string& action,
                std::optional<int64_t> due_at);
  // Platform transaction: what is due at `now`, oldest first.
  std::vector<DueAction> due(db::Tx& tx, int64_t now, int limit);
  // Takes a due action for this transaction: false when another process took it first.
  bool claim(db::Tx& tx, const DueAction& a);

  void add_preview_token(db::Tx& tx, const db::TenantScope& scope, const std::string& token_hash,
                         const std::string& entry_id, int64_t expires_at);
  bool preview_allowed(db::Tx& tx, const db::TenantScope& scope, const std::string& token_hash,
                       const std::string& entry_id, int64_t now);

  // The delivery API's page: limit + 1 rows in the query's order.
  std::vector<Published> published_page(db::Tx& tx, const db::TenantScope& scope, const std::string& type_id,
                                        const DeliveryQuery& q);
  std::optional<Published> published_one(db::Tx& tx, const db::TenantScope& scope, const std::string& type_id,
                                         const std::string& entry_id);
  // Published copies by id, of any type (populate: one statement per level).
  std::vector<Published> published_many(db::Tx& tx, const db::TenantScope& scope,
                                        const std::vector<std::string>& ids);
  // The hashes the tenant's media rows hold (the files to keep).
  std::vector<std::string> media_hashes(db::Tx& tx, const db::TenantScope& scope);
  std::vector<nlohmann::json> media_many(db::Tx& tx, const db::TenantScope& scope,
                                         const std::vector<std::string>& ids);
};

}  // namespace cdx::cms
