// The kit's HTTP side: the five CRUD routes of a resource and writes whose answer commits with them.
#include <fmt/format.h>

#include <cstdlib>

#include "common/validate.hpp"
#include "db/async.hpp"
#include "kit/kit.hpp"

namespace cdx::kit {

using http::Context;
using http::Method;
using nlohmann::json;

namespace {

// The row a route names: the last path parameter (after the parent's, for a nested resource); 404 at once
// for what can be neither an id nor the resource's key.
std::string item_id(const Context& ctx, const Resource& r) {
  std::string id(ctx.req.param(r.parent_resource() ? 1 : 0));
  if (!valid_uuid(id) && r.key_field().empty()) not_found(r, id);
  return id;
}

}  // namespace

std::vector<std::string> list_params(const Resource& r) {
  std::vector<std::string> out;
  if (!r.search_column().empty() ||
      std::any_of(r.fields().begin(), r.fields().end(), [](const Field& f) { return f.is_searchable; }))
    out.push_back("q");
  out.push_back("sort");
  for (const auto& f : r.fields())
    if (f.filter_match != Match::kNone) out.push_back(f.name);
  for (const auto& cf : r.custom_filters()) out.push_back(cf.name);
  return out;
}

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A nested resource's rows live under the parent the path names (404 when it does not exist).
void nest(const Kit& kit, db::Tx& tx, Caller& c, const Resource& r, const Context& ctx) {
  if (r.parent_resource()) kit.resolve_parent(tx, c, r, std::string(ctx.req.param(0)));
}

// Fault injection for the crash tests (tests/api): CDX_TEST_CRASH_AFTER_COMMIT="POST /api/v1/crm/companies"
// ends the process the moment such a write has committed, before its answer is written.
void crash_if_asked(const std::string& route_key) {
  static const std::string asked = [] {
    const char* v = std::getenv("CDX_TEST_CRASH_AFTER_COMMIT");
    return std::string(v ? v : "");
  }();
  if (!asked.empty() && asked == route_key) std::_Exit(137);
}

}  // namespace

Task<void> Kit::write_answer(Context& ctx, std::string route_key, std::function<void(db::Tx&)> fn,
                             db::WriteHold* hold) const {
  const db::TenantScope& scope = *ctx.tenant;
  const std::string_view header = ctx.req.header(Idempotency::kHeader);
  // The write is awaited on the database's writer: no worker waits through the commit.
  auto write = [&](auto body) -> Task<void> {
    if (hold)
      co_await db::write_async(*db_, *hold, scope, body);
    else
      co_await db::write_async(*db_, workers_, scope, body);
  };
  if (header.empty()) {
    co_await write([&](db::Tx& tx) { fn(tx); });
    crash_if_asked(route_key);
    co_return;
  }
  if (auto why = Idempotency::key_problem(header)) throw Error::validation({{"Idempotency-Key", *why}});
  const std::string key(header);
  std::string hash;
  std::optional<StoredAnswer> replay;
  co_await workers_.run([&] {
    // Hashed on a worker: a large body must not hold the I/O thread.
    hash = Idempotency::request_hash("POST " + std::string(ctx.req.target), ctx.req.body);
    replay = idempotency_.lookup(scope, route_key, key, hash);
  });
  if (!replay) {
    bool claimed = false, twin = false;
    try {
      co_await write([&](db::Tx& tx) {
        idempotency_.claim(tx, scope, route_key, key, hash);
        claimed = true;
        fn(tx);
        if (ctx.res.status >= 200 && ctx.res.status < 300)
          idempotency_.store(tx, scope, route_key, key,
                             {ctx.res.status, std::string(ctx.res.content_type), ctx.res.body});
        else
          idempotency_.release(tx, scope, route_key, key);  // nothing was made: a retry runs again
      });
    } catch (const db::UniqueViolation&) {
      if (claimed) throw;  // the change itself conflicted
      twin = true;         // a twin committed the key first (we waited on it)
    }
    if (twin) {
      co_await workers_.run([&] { replay = idempotency_.lookup(scope, route_key, key, hash); });
      if (!replay)
        throw Error(Code::kConflict, "Another request with this Idempotency-Key failed; retry it.");
    } else {
      crash_if_asked(route_key);
    }
  }
  if (replay) {
    ctx.res.status = replay->status;
    ctx.res.content_type = Idempotency::stable_content_type(replay->content_type);
    ctx.res.body = std::move(replay->body);
    ctx.res.header("Idempotent-Replayed", "true");
  }
}

void Kit::mount(http::Router& router) const {
  for (const auto& r : resources_) {
    mount_one(router, *r);
    if (r->csv_routes()) mount_csv(router, *r);
  }
}

void Kit::mount_one(http::Router& router, const Resource& r) const {
  if (r.is_platform()) return mount_platform(router, r);
  const std::string base = r.path();
  const std::string& tag = r.module();
  const std::string& noun = r.kind();
  const Resource* res = &r;

  const std::string created_schema = r.revealed().empty() ? r.schema_name() : r.schema_name() + "Created";
  if (r.mounts(Op::kCreate))
    router.add(Method::kPost, base,
               [this, res, route_key = "POST " + base](Context& ctx) -> Task<void> {
                 json patch = read_body(*res, ctx.req.body, Mode::kCreate);
                 Caller c = caller_of(ctx, *res);
                 json once = json::object();
                 if (res->hooks().prepare)
                   co_await workers_.run([&] { prepare(*res, c, patch, once, true); });
                 bool wrote = false;
                 co_await write_answer(ctx, route_key, [&](db::Tx& tx) {
                   nest(*this, tx, c, *res, ctx);
                   ctx.res.json(201, dump(create(tx, c, *res, patch)));  // kept for a replay: without `once`
                   wrote = true;
                 });
                 // Values shown once join the answer after it was stored for Idempotency-Key replays.
                 if (wrote && !once.empty()) {
                   json out = json::parse(ctx.res.body);
                   out.update(once);
                   ctx.res.json(201, dump(out));
                   ctx.res.header("Cache-Control", "no-store");
                 }
                 if (res->hooks().committed) res->hooks().committed(ctx);
               },
               {.access = r.access(),
                .scope = r.write_scope(),
                .summary = r.create_summary().empty() ? "Create a " + noun : r.create_summary(),
                .tag = tag,
                .request_schema = r.schema_name() + "Create",
                .response_schema = created_schema,
                .success_status = 201});

  if (r.mounts(Op::kList))
    router.add(Method::kGet, base,
               [this, res](Context& ctx) -> Task<void> {
                 ListQuery q = read_list(*res, ctx);
                 Caller c = caller_of(ctx, *res);
                 auto read = [&] {
                   return db_->read(c.scope, [&](db::Tx& tx) {
                     nest(*this, tx, c, *res, ctx);
                     return list(tx, c, *res, q);
                   });
                 };
                 json rows = co_await workers_.run(read);
                 if (rows.empty() && res->hooks().seed && !q.after && !q.q && q.filters.empty() &&
                     q.custom.empty()) {
                   // A tenant's first look: the rows it starts with (the seed checks again under the write
                   // lock).
                   co_await db::write_async(*db_, workers_, c.scope,
                                            [&](db::Tx& tx) { res->hooks().seed(tx, c.scope); });
                   rows = co_await workers_.run(read);
                 }
                 // Rendered on the worker too: a page of 200 rows is not the I/O thread's work.
                 std::string page =
                     co_await workers_.run([&] { return render_list(*res, std::move(rows), q); });
                 ctx.res.json(200, std::move(page));
               },
               {.access = r.read_access(),
                .scope = r.read_scope(),
                .summary = r.list_summary().empty() ? "List " + r.plural() + " (newest first; sort, filters)"
                                                    : r.list_summary(),
                .tag = tag,
                .response_schema = r.schema_name(),
                .list = true,
                .query_params = list_params(r)});

  if (r.mounts(Op::kGet))
    router.add(Method::kGet, base + "/{" + r.item_param() + "}",
               [this, res](Context& ctx) -> Task<void> {
                 const std::string id = item_id(ctx, *res);
                 Caller c = caller_of(ctx, *res);
                 auto row = co_await workers_.run([&] {
                   return db_->read(c.scope, [&](db::Tx& tx) {
                     nest(*this, tx, c, *res, ctx);
                     return find(tx, c, *res, id);
                   });
                 });
                 if (!row) not_found(*res, id);
                 ctx.res.json(200, dump(*row));
               },
               {.access = r.item_access(),
                .scope = r.read_scope(),
                .summary = "Get a " + noun,
                .tag = tag,
                .response_schema = r.schema_name()});

  if (r.mounts(Op::kUpdate))
    router.add(Method::kPatch, base + "/{" + r.item_param() + "}",
               [this, res](Context& ctx) -> Task<void> {
                 const std::string id = item_id(ctx, *res);
                 json patch = read_body(*res, ctx.req.body, Mode::kUpdate);
                 Caller c = caller_of(ctx, *res);
                 if (res->hooks().prepare) {
                   json once = json::object();
                   co_await workers_.run([&] { prepare(*res, c, patch, once, false); });
                 }
                 auto row = co_await db::write_async(*db_, workers_, c.scope, [&](db::Tx& tx) {
                   nest(*this, tx, c, *res, ctx);
                   return update(tx, c, *res, id, patch);
                 });
                 ctx.res.json(200, dump(row));
                 if (res->hooks().committed) res->hooks().committed(ctx);
               },
               {.access = r.item_access(),
                .scope = r.write_scope(),
                .summary = "Update a " + noun + " (absent fields stay; null clears an optional field)",
                .tag = tag,
                .request_schema = r.schema_name() + "Update",
                .response_schema = r.schema_name()});

  if (r.mounts(Op::kDelete))
    router.add(Method::kDelete, base + "/{" + r.item_param() + "}",
               [this, res](Context& ctx) -> Task<void> {
                 const std::string id = item_id(ctx, *res);
                 Caller c = caller_of(ctx, *res);
                 for (const auto& name : res->delete_params())
                   if (auto v = query_text(ctx, name)) c.params[name] = *v;
                 co_await db::write_async(*db_, workers_, c.scope, [&](db::Tx& tx) {
                   nest(*this, tx, c, *res, ctx);
                   remove(tx, c, *res, id);
                 });
                 ctx.res.no_content();
                 if (res->hooks().committed) res->hooks().committed(ctx);
               },
               {.access = r.access(),
                .scope = r.write_scope(),
                .summary = r.delete_summary().empty() ? "Delete a " + noun : r.delete_summary(),
                .tag = tag,
                .success_status = 204,
                .query_params = r.delete_params()});
}

// writes (declared), so there is no tenant to keep an Idempotency-Key for.
void Kit::mount_platform(http::Router& router, const Resource& r) const {
  const std::string base = r.path();
  const std::string& tag = r.plural();  // a top-level collection: /api/v1/tenants, tag "tenants"
  const std::string& noun = r.kind();
  const Resource* res = &r;
  // after_commit, on a worker: it may call other services.
  auto committed = [this, res](Context& ctx, Op op, const json& row) -> Task<void> {
    if (res->hooks().after_commit) co_await workers_.run([&] { res->hooks().after_commit(ctx, op, row); });
  };

  if (r.mounts(Op::kCreate))
    router.add(Method::kPost, base,
               [this, res, committed](Context& ctx) -> Task<void> {
                 json patch = read_body(*res, ctx.req.body, Mode::kCreate);
                 const Caller c = caller_of(ctx, *res);
                 json row = co_await db::write_platform_async(
                     *db_, workers_, [&](db::Tx& tx) { return create(tx, c, *res, patch); });
                 co_await committed(ctx, Op::kCreate, row);
                 ctx.res.json(201, dump(row));
               },
               {.access = r.access(),
                .summary = r.create_summary().empty() ? "Create a " + noun : r.create_summary(),
                .tag = tag,
                .request_schema = r.schema_name() + "Create",
                .response_schema = r.schema_name(),
                .success_status = 201});

  if (r.mounts(Op::kList))
    router.add(Method::kGet, base,
               [this, res](Context& ctx) -> Task<void> {
                 ListQuery q = read_list(*res, ctx);
                 const Caller c = caller_of(ctx, *res);
                 std::string page = co_await workers_.run([&] {
                   json rows = db_->read_platform([&](db::Tx& tx) { return list(tx, c, *res, q); });
                   return render_list(*res, std::move(rows), q);
                 });
                 ctx.res.json(200, std::move(page));
               },
               {.access = r.read_access(),
                .summary = r.list_summary().empty() ? "List " + r.plural() : r.list_summary(),
                .tag = tag,
                .response_schema = r.schema_name(),
                .list = true,
                .query_params = list_params(r)});

  if (r.mounts(Op::kGet))
    router.add(Method::kGet, base + "/{id}",
               [this, res](Context& ctx) -> Task<void> {
                 const std::string id = item_id(ctx, *res);
                 const Caller c = caller_of(ctx, *res);
                 auto row = co_await workers_.run(
                     [&] { return db_->read_platform([&](db::Tx& tx) { return find(tx, c, *res, id); }); });
                 if (!row) not_found(*res, id);
                 ctx.res.json(200, dump(*row));
               },
               {.access = r.read_access(),
                .summary = "Get a " + noun + (r.key_field().empty() ? "" : " by id or " + r.key_field()),
                .tag = tag,
                .response_schema = r.schema_name()});

  if (r.mounts(Op::kUpdate))
    router.add(Method::kPatch, base + "/{id}",
               [this, res, committed](Context& ctx) -> Task<void> {
                 const std::string id = item_id(ctx, *res);
                 json patch = read_body(*res, ctx.req.body, Mode::kUpdate);
                 const Caller c = caller_of(ctx, *res);
                 json row = co_await db::write_platform_async(
                     *db_, workers_, [&](db::Tx& tx) { return update(tx, c, *res, id, patch); });
                 co_await committed(ctx, Op::kUpdate, row);
                 ctx.res.json(200, dump(row));
               },
               {.access = r.access(),
                .summary = "Update a " + noun + " (absent fields stay; null clears an optional field)",
                .tag = tag,
                .request_schema = r.schema_name() + "Update",
                .response_schema = r.schema_name()});

  if (r.mounts(Op::kDelete))
    router.add(Method::kDelete, base + "/{id}",
               [this, res, committed](Context& ctx) -> Task<void> {
                 const std::string id = item_id(ctx, *res);
                 const Caller c = caller_of(ctx, *res);
                 json row = co_await db::write_platform_async(*db_, workers_, [&](db::Tx& tx) {
                   auto before = find(tx, c, *res, id);
                   if (!before) not_found(*res, id);
                   remove(tx, c, *res, before->at("id").get<std::string>());
                   return *before;
                 });
                 co_await committed(ctx, Op::kDelete, row);
                 ctx.res.no_content();
               },
               {.access = r.access(),
                .summary = r.delete_summary().empty() ? "Delete a " + noun : r.delete_summary(),
                .tag = tag,
                .success_status = 204});
}

}  // namespace cdx::kit
