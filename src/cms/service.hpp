// CMS rules the kit's declarations cannot say, between the routes and the store: a content type's field
// list and what changing it would break, an entry's data under its type, versions, publishing (now or at a
// time, once across replicas), preview tokens, and the delivery API's reads (filters, sorts, locales,
// populated references). Blocking: call from a worker.
//   kit.add(entry_resource(types).hooks(service.entry_hooks()));
//   json row = db.write(scope, [&](db::Tx& tx) { return service.publish(tx, caller, "article", id); });
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cms/delivery_cache.hpp"
#include "cms/schema.hpp"
#include "cms/store.hpp"
#include "common/tenant_scope.hpp"
#include "db/outbox.hpp"
#include "kit/kit.hpp"

namespace cdx::cms {

// A delivery read as the request gave it (the route's query string), checked against the type in the
// worker: filter[field][op]=v, sort=a,-b, fields=, populate=, q=, locale=, limit=, cursor=.
struct DeliveryParams {
  std::vector<std::pair<std::string, std::string>> query;
};

class Service {
 public:
  Service(std::shared_ptr<db::Database> db, Store& store, const db::Outbox& outbox, const ScopeMinter& minter,
          size_t cache_entries)
      : db_(std::move(db)), store_(store), outbox_(outbox), minter_(minter), cache_(cache_entries, 5000) {}
  void attach(const kit::Kit& kit, const kit::Resource& locales, const kit::Resource& types,
              const kit::Resource& entries, const kit::Resource& media) {
    kit_ = &kit, locales_ = &locales, types_ = &types, entries_ = &entries, media_ = &media;
  }

  kit::Hooks locale_hooks();
  kit::Hooks type_hooks();
  kit::Hooks entry_hooks();
  kit::Hooks media_hooks();

  // Management (caller.parent: the content type's id, resolved from the path).
  nlohmann::json publish(db::Tx& tx, const kit::Caller& c, const std::string& entry_id);
  nlohmann::json unpublish(db::Tx& tx, const kit::Caller& c, const std::string& entry_id);
  nlohmann::json versions(db::Tx& tx, const kit::Caller& c, const std::string& entry_id, int limit,
                          std::optional<int64_t> before);
  nlohmann::json version(db::Tx& tx, const kit::Caller& c, const std::string& entry_id, int64_t n);
  nlohmann::json restore(db::Tx& tx, const kit::Caller& c, const std::string& entry_id, int64_t n);
  nlohmann::json preview_token(db::Tx& tx, const kit::Caller& c, const std::string& entry_id, int64_t ttl);

  // Delivery: the body of the answer. preview: a preview token, which shows that entry's draft.
  std::string published_list(const db::TenantScope& scope, const std::string& type_key, const DeliveryParams& p);
  std::string published_one(const db::TenantScope& scope, const std::string& type_key, const std::string& id,
                            const DeliveryParams& p, const std::optional<std::string>& preview);

  // The tenant's content API as an OpenAPI 3.1 document (openapi.cpp): each type's routes and schemas.
  std::string openapi(const db::TenantScope& scope);

  // Delivery answers in memory; changed(tenant) once a change of the tenant's CMS data committed.
  DeliveryCache& cache() { return cache_; }

  // Carries out what is due on the schedule (publish_at, unpublish_at). Blocking; from the module's tick.
  int run_schedule();

 private:
  std::shared_ptr<const ContentType> type_of(const nlohmann::json& type_row);
  std::shared_ptr<const ContentType> type_by_id(db::Tx& tx, const db::TenantScope& scope, const std::string& id);
  std::shared_ptr<const ContentType> type_by_key(db::Tx& tx, const db::TenantScope& scope,
                                                 const std::string& key);
  nlohmann::json entry(db::Tx& tx, const kit::Caller& c, const std::string& entry_id);
  nlohmann::json publish_row(db::Tx& tx, const kit::Caller& c, const nlohmann::json& row);
  nlohmann::json unpublish_row(db::Tx& tx, const kit::Caller& c, const nlohmann::json& row);
  void check_entry(kit::Change& c);
  void after_entry_write(kit::Change& c);
  void check_type(kit::Change& c);
  // What the new field list would break among the type's entries: 409 naming each field and how many.
  void check_type_change(kit::Change& c, const ContentType& next);
  void before_type_delete(kit::Change& c);
  std::vector<UniqueValue> unique_values(const ContentType& t, const nlohmann::json& data);
  // Replaces reference and media ids with what they name, one statement per level.
  void populate(db::Tx& tx, const db::TenantScope& scope, std::vector<nlohmann::json*> items,
                const std::vector<std::shared_ptr<const ContentType>>& types, const nlohmann::json& spec,
                const Locales& loc, const std::string& locale, int depth);
  nlohmann::json render_published(const ContentType& t, const Published& p, const std::string& locale,
                                  const std::string& default_locale, const std::vector<std::string>& fields);

  std::shared_ptr<db::Database> db_;
  Store& store_;
  const db::Outbox& outbox_;
  const ScopeMinter& minter_;
  const kit::Kit* kit_ = nullptr;
  const kit::Resource* locales_ = nullptr;
  const kit::Resource* types_ = nullptr;
  const kit::Resource* entries_ = nullptr;
  const kit::Resource* media_ = nullptr;
  DeliveryCache cache_;
  std::mutex types_mutex_;
  std::unordered_map<std::string, std::shared_ptr<const ContentType>> compiled_;  // by type id
};

}  // namespace cdx::cms
