// CSV import and export routes of the resources declared csv(), and the bulk import behind them.
#include <fmt/format.h>
#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <cstring>
#include <exception>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "kit/bulk.hpp"
#include "kit/kit.hpp"

namespace cdx::kit {

using http::Context;
using http::Method;
using nlohmann::json;

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A field's stored text, as the kit's statements bind it (numbers cast back by insert_rows).
std::optional<std::string> cell_of(const Field& f, const json& v) {
  if (v.is_null()) return std::nullopt;
  switch (f.type) {
    case Type::kInteger:
      return std::to_string(v.get<int64_t>());
    case Type::kBoolean:
      return v.get<bool>() ? "1" : "0";
    case Type::kObject:
    case Type::kTextList:
    case Type::kObjectList:
      return dump(v);
    default:
      return v.get<std::string>();
  }
}

std::optional<std::string> cell_of(const db::Param& p) {
  switch (p.kind()) {
    case db::Param::Kind::kNull:
      return std::nullopt;
    case db::Param::Kind::kInt:
      return std::to_string(p.as_int());
    case db::Param::Kind::kText:
      break;
  }
  return std::string(p.as_text());
}

// One data row on its way in: its problems so far, and once the rules passed, its row, cells and event.
struct Candidate {
  int64_t line = 0;
  std::vector<FieldError> errors;
  bool ok = false;
  json row;
  std::vector<std::optional<std::string>> cells;    // in column order
  std::vector<std::optional<std::string>> uniques;  // per unique field: the compared value
  std::string payload;                              // its *.created event
};

// Runs fn(i) for every i < n; a large import's rows are split over two threads (the rules and the event
// payloads are most of an import's CPU time, and need nothing shared).
template <class Fn>
void for_each_row(size_t n, Fn fn) {
  const size_t half = n >= 4096 && std::thread::hardware_concurrency() > 1 ? n / 2 : n;
  std::exception_ptr error;
  std::thread other;
  if (half < n)
    other = std::thread([&] {
      try {
        for (size_t i = half; i < n; ++i) fn(i);
      } catch (...) {
        error = std::current_exception();
      }
    });
  try {
    for (size_t i = 0; i < half; ++i) fn(i);
  } catch (...) {
    if (other.joinable()) other.join();
    throw;
  }
  if (other.joinable()) other.join();
  if (error) std::rethrow_exception(error);
}

[[noreturn]] void fail_import(ImportReport report) {
  report.created = 0;
  report.ids.clear();
  throw ImportFailed(std::move(report));
}

bool is_csv(std::string_view content_type) {
  std::string_view m = content_type.substr(0, content_type.find(';'));
  while (!m.empty() && m.back() == ' ') m.remove_suffix(1);
  return boost::beast::iequals(m, "text/csv");
}

// An all-or-nothing import with bad rows: 422 with the first field errors and the whole report (which
// lists every bad row; `errors` repeats only the first ones, so the answer does not hold them twice).
void answer_failed(Context& ctx, const ImportReport& report) {
  constexpr size_t kListed = 100;
  std::vector<FieldError> flat;
  for (const auto& row : report.errors)
    for (const auto& e : row.errors)
      if (flat.size() < kListed) flat.push_back({fmt::format("row {}: {}", row.row, e.field), e.message});
  json body = json::parse(render_problem(Error::validation(std::move(flat)), ctx.request_id));
  body["detail"] = fmt::format(
      "{} of {} rows are invalid; nothing was imported (add ?partial=true to import the "
      "valid rows).",
      report.errors.size(), report.rows);
  body["report"] = to_json(report);
  ctx.res.status = 422;
  ctx.res.content_type = "application/problem+json";
  ctx.res.body = dump(body);
}

// The keys the tenant's rows use in each free-form object field ("custom"): the export's extra columns.
std::map<std::string, std::set<std::string>> free_keys(db::Tx& tx, const Caller& c, const Resource& r) {
  std::map<std::string, std::set<std::string>> out;
  const bool pg = tx.backend() == db::Backend::kPostgres;
  for (const Field& f : r.fields()) {
    if (!f.is_column || f.type != Type::kObject || !f.properties.empty()) continue;
    const std::string col = "t." + f.column();
    Sql sql(
        "SELECT DISTINCT k.key FROM " + r.table() + " AS t, " +
        (pg ? "jsonb_object_keys(CASE WHEN jsonb_typeof(CAST(" + col + " AS jsonb)) = 'object' THEN CAST(" +
                  col + " AS jsonb) ELSE '{}' END) AS k (key)"
            : "json_each(CASE WHEN json_type(" + col + ") = 'object' THEN " + col + " ELSE '{}' END) AS k") +
        " WHERE t.tenant_id = ");
    sql += sql.bind(c.scope.tenant_id());
    if (c.owner) sql += " AND t." + r.owner_column() + " = " + sql.bind_text(*c.owner);
    for (const auto& row : tx.query(sql.text(), sql.params()).rows) out[f.name].insert(row.text(0));
  }
  return out;
}

}  // namespace

json to_json(const ImportReport& r) {
  json errors = json::array();
  for (const auto& e : r.errors) {
    json fields = json::array();
    for (const auto& f : e.errors) fields.push_back({{"field", f.field}, {"message", f.message}});
    errors.push_back({{"row", e.row}, {"errors", std::move(fields)}});
  }
  return {{"rows", r.rows},
          {"created", r.created},
          {"failed", static_cast<int64_t>(r.errors.size())},
          {"ids", r.ids},
          {"errors", std::move(errors)}};
}

ImportReport Kit::store_import(db::Tx& tx, const Caller& c, const Resource& r,
                               const std::vector<ImportRow>& rows, bool partial) const {
  if (r.parent_resource() || (!r.hooks().after_import && (r.hooks().validate || r.hooks().after_write)))
    throw std::logic_error("resource " + r.plural() + " cannot be imported in bulk");
  std::vector<std::string> columns = {"id"}, numeric;
  std::vector<const Field*> uniques, links;
  for (const Field& f : r.fields()) {
    if (!f.is_column || !f.rendered()) continue;
    columns.push_back(f.column());
    if (f.type == Type::kInteger || f.type == Type::kBoolean) numeric.push_back(f.column());
    if (!f.unique_on.empty()) uniques.push_back(&f);
    if (!f.refs_table.empty()) links.push_back(&f);
  }
  for (const Derived& d : r.derived()) columns.push_back(d.column);
  columns.push_back("created_at");
  columns.push_back("updated_at");

  // The rules and the payloads first: no database needed.
  const std::string now = format_rfc3339(Clock::now());
  const std::string by = c.actor.to_json().dump();
  std::vector<Candidate> cands(rows.size());
  for_each_row(rows.size(), [&](size_t i) {
    Candidate& cand = cands[i];
    cand.line = rows[i].row;
    cand.errors = rows[i].errors;
    if (!cand.errors.empty()) return;
    json patch = read_fields(r, rows[i].fields, Mode::kCreate, cand.errors);
    if (!cand.errors.empty()) return;
    // One pass over the fields: each value's cell, then the value moved into the row.
    json& row = cand.row;
    cand.cells.reserve(columns.size());
    std::string id = new_uuid_v7();
    cand.cells.emplace_back(id);
    row["id"] = std::move(id);
    for (const Field& f : r.fields()) {
      if (!f.rendered()) continue;  // write-only and hidden values are no import's
      auto it = patch.find(f.name);
      json v = it != patch.end() ? std::move(*it) : f.default_value;
      if (f.is_column) cand.cells.push_back(cell_of(f, v));
      row[f.name] = std::move(v);
    }
    row["created_at"] = now;
    row["updated_at"] = now;
    for (const Derived& d : r.derived()) {
      std::string keep;
      cand.cells.push_back(cell_of(d.value(row, keep)));
    }
    cand.cells.emplace_back(now);
    cand.cells.emplace_back(now);
    for (const Field* f : uniques) {
      const size_t at = std::find(columns.begin(), columns.end(), f->unique_on) - columns.begin();
      cand.uniques.push_back(at < columns.size() ? cand.cells[at] : cell_of(*f, row[f->name]));
    }
    // The *.created event as Kit::create writes it, without a second JSON tree per row.
    const std::string body = dump(row);
    cand.payload.reserve(by.size() + r.kind().size() + body.size() + 16);
    cand.payload.append("{\"actor\":").append(by).append(",\"").append(r.kind()).append("\":").append(body) +=
        '}';
    cand.ok = true;
  });

  // Links and unique values against the tenant's rows (a statement per thousand values) and earlier rows.
  std::vector<std::unordered_set<std::string>> linked, taken;
  for (const Field* f : links) {
    std::vector<std::string> ids;
    for (const auto& cand : cands)
      if (cand.ok && cand.row[f->name].is_string()) ids.push_back(cand.row[f->name].get<std::string>());
    linked.push_back(present(tx, c.scope, f->refs_table, "id", ids));
  }
  for (size_t u = 0; u < uniques.size(); ++u) {
    std::vector<std::string> values;
    for (const auto& cand : cands)
      if (cand.ok && cand.uniques[u]) values.push_back(*cand.uniques[u]);
    taken.push_back(present(tx, c.scope, r.table(), uniques[u]->unique_on, values));
  }
  ImportReport report;
  report.rows = static_cast<int64_t>(cands.size());
  std::vector<Candidate*> good;
  for (auto& cand : cands) {
    if (cand.ok) {
      for (size_t l = 0; l < links.size(); ++l) {
        const json& v = cand.row[links[l]->name];
        if (v.is_string() && !linked[l].contains(v.get<std::string>()))
          cand.errors.push_back({links[l]->name, "does not exist in this tenant"});
      }
      for (size_t u = 0; u < uniques.size() && cand.errors.empty(); ++u)
        if (cand.uniques[u] && !taken[u].insert(*cand.uniques[u]).second)  // stored, or an earlier row's
          cand.errors.push_back(
              {uniques[u]->name, "another " + r.kind() + " of this tenant has this " + uniques[u]->name});
      if (cand.errors.empty()) {
        good.push_back(&cand);
        report.ids.push_back(cand.row["id"].get<std::string>());
        continue;
      }
    }
    report.errors.push_back({cand.line, std::move(cand.errors)});
  }
  if (!report.errors.empty() && !partial) fail_import(std::move(report));
  report.created = static_cast<int64_t>(good.size());

  // In id order: an import's rows share created_at, so the primary key and the list indexes (…, created_at,
  // id) grow at one end instead of taking inserts all over their pages.
  std::vector<Candidate*> by_id = good;
  std::sort(by_id.begin(), by_id.end(),
            [](const Candidate* a, const Candidate* b) { return a->cells[0] < b->cells[0]; });
  insert_rows(
      tx, c.scope, r.table(), columns, by_id.size(),
      [&](size_t i, JsonRows& out) {
        for (const auto& cell : by_id[i]->cells) out.cell(cell);
      },
      numeric);
  const std::string type = r.event("created");
  insert_rows(tx, c.scope, outbox_.schema() + ".outbox", {"id", "type", "payload", "created_at"}, good.size(),
              [&](size_t i, JsonRows& out) {
                out.cell(new_uuid_v7());
                out.cell(type);
                out.cell(good[i]->payload);
                out.cell(now);
              });
  if (r.hooks().after_import) {
    std::vector<const json*> stored;
    stored.reserve(by_id.size());
    for (const Candidate* cand : by_id) stored.push_back(&cand->row);
    r.hooks().after_import(tx, c.scope, stored);
  }
  return report;
}

void Kit::mount_csv(http::Router& router, const Resource& r) const {
  const Resource* res = &r;
  const std::string filename = r.plural() + ".csv";
  router.add(Method::kGet, r.path() + "/export",
             [this, res, filename](Context& ctx) -> Task<void> {
               ListQuery q =
                   read_list(*res, ctx);  // the list's filters and q; the whole selection, oldest first
               q.limit = 1000;
               q.sort = "created_at";
               q.descending = false;
               q.after.reset();
               Caller c = caller_of(ctx, *res);
               // The free-form objects' keys first (their columns), from the database, then the rows a page
               // at a time: memory stays one page whatever the export's size, and the header goes out at
               // once.
               const auto keys = co_await workers_.run(
                   [&] { return db_->read(c.scope, [&](db::Tx& tx) { return free_keys(tx, c, *res); }); });
               const CsvLayout layout(*res, keys);
               ctx.res.set(200, "text/csv; charset=utf-8", "");
               ctx.res.header("Content-Disposition", fmt::format("attachment; filename=\"{}\"", filename));
               http::AnswerStream* out = ctx.answer_stream;
               std::string whole;  // without a stream (a HEAD, or a caller that wants the body whole)
               if (out) {
                 co_await out->begin(std::nullopt);
                 co_await out->write(layout.header());
               } else {
                 whole = layout.header();
               }
               for (bool more = true; more;) {
                 std::string piece = co_await workers_.run([&] {
                   json page = db_->read(c.scope, [&](db::Tx& tx) { return list(tx, c, *res, q); });
                   more = page.size() > static_cast<size_t>(q.limit);
                   if (more) {
                     page.erase(page.size() - 1);
                     q.after.emplace(page.back().at("created_at").get<std::string>(),
                                     page.back().at("id").get<std::string>());
                   }
                   return layout.rows(page);
                 });
                 if (out)
                   co_await out->write(piece);
                 else
                   whole += piece;
               }
               if (out)
                 co_await out->finish();
               else
                 ctx.res.body = std::move(whole);
             },
             {.access = r.access(),
              .scope = r.read_scope(),
              .summary = "Export " + r.plural() + " as CSV (text/csv, streamed; the list's filters apply)",
              .tag = r.module(),
              .query_params = list_params(r),
              .stream_answer = true});

  router.add(
      Method::kPost, r.path() + "/import",
      [this, res, route_key = "POST " + r.path() + "/import"](Context& ctx) -> Task<void> {
        if (!is_csv(ctx.req.header("content-type")))
          throw Error(Code::kUnsupportedMediaType, "The request body must be CSV (Content-Type: text/csv).");
        bool partial = false;
        if (auto v = query_text(ctx, "partial", 8)) {
          if (*v != "true" && *v != "false") throw Error::validation({{"partial", "must be true or false"}});
          partial = *v == "true";
        }
        const Caller c = caller_of(ctx, *res);
        // Parsing up to kImportBodyLimit bytes is work too: on a worker, never on the I/O thread; the rows
        // are written, and the report stored for an Idempotency-Key, in one transaction.
        const std::vector<ImportRow> rows =
            co_await workers_.run([&] { return import_rows(parse_csv(ctx.req.body), *res); });
        try {
          co_await write_answer(ctx, route_key, [&](db::Tx& tx) {
            ctx.res.json(200, to_json(store_import(tx, c, *res, rows, partial)).dump());
          });
        } catch (const ImportFailed& e) {
          answer_failed(ctx, e.report);  // nothing was written: the transaction rolled back
        }
      },
      {.access = r.access(),
       .scope = r.write_scope(),
       .summary = "Import " + r.plural() +
                  " from a CSV body (text/csv, header row; 100 000 rows, 32 MiB); all or nothing unless "
                  "?partial=true",
       .tag = r.module(),
       .response_schema = "ImportReport",
       .query_params = {"partial"},
       .body_limit = kImportBodyLimit});
}

}  // namespace cdx::kit
