// CSV import and export routes of the resources declared csv(), and the bulk import behind them.
//
// An import streams: the body's rows go through the rules, the links and the unique checks a batch at a time,
// so its memory is a batch plus what the report keeps (ids, bad rows) and 16 bytes per unique value, not an
// object per row. Where the database has one writer (SQLite), one transaction for 100 000 rows would stop
// every other tenant's writes for seconds, so the import holds only its own tenant's writes (what it checked
// stays true), stages the checked rows in short transactions, commits its answer (the decision: from then
// on it is finished even across a crash), and writes the rows in short transactions too; other tenants'
// writes go between them. Elsewhere (PostgreSQL) it is one transaction.
#include <fmt/format.h>
#include <malloc.h>
#include <sodium.h>
#include <boost/beast/core/string.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "db/async.hpp"
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

// What an import writes for a resource: its columns in order (id, the rendered fields with a column, the
// derived ones, the timestamps), and the fields it checks against the tenant.
struct ImportLayout {
  std::vector<std::string> columns = {"id"}, numeric;
  std::vector<const Field*> uniques, links;

  explicit ImportLayout(const Resource& r) {
    if (r.parent_resource() || (!r.hooks().after_import && (r.hooks().validate || r.hooks().after_write)))
      throw std::logic_error("resource " + r.plural() + " cannot be imported in bulk");
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
  }
};

// The value a unique field is compared on: its own cell, or the derived column it names.
std::optional<std::string> unique_value(const Resource& r, const Field& f, const json& row) {
  for (const Derived& d : r.derived())
    if (d.column == f.unique_on) {
      std::string keep;
      return cell_of(d.value(row, keep));
    }
  return cell_of(f, row[f.name]);
}

// Rows ready for their statements: cells and events as the JSON arrays insert_json_rows takes (a batch or a
// staged chunk: fewer than kBatchRows), and the rows themselves for the after_import hook.
struct Prepared {
  std::vector<json> rows;
  std::string cells, events;
};

// `by`: the events' actor as JSON text.
Prepared prepare(const Resource& r, const std::string& by, std::vector<json> rows) {
  // In id order: an import's rows share created_at, so the primary key and the list indexes (…, created_at,
  // id) grow at one end instead of taking inserts all over their pages.
  std::sort(rows.begin(), rows.end(), [](const json& a, const json& b) {
    return a["id"].get_ref<const std::string&>() < b["id"].get_ref<const std::string&>();
  });
  JsonRows cells, events;
  const std::string type = r.event("created");
  std::string payload;
  for (const json& row : rows) {
    const std::string& now = row["created_at"].get_ref<const std::string&>();
    cells.row();
    cells.cell(row["id"].get_ref<const std::string&>());
    for (const Field& f : r.fields())
      if (f.is_column && f.rendered()) cells.cell(cell_of(f, row[f.name]));
    for (const Derived& d : r.derived()) {
      std::string keep;
      cells.cell(cell_of(d.value(row, keep)));
    }
    cells.cell(now);
    cells.cell(now);
    // The *.created event as Kit::create writes it.
    payload.assign("{\"actor\":").append(by).append(",\"").append(r.kind()).append("\":").append(dump(row)) +=
        '}';
    events.row();
    events.cell(new_uuid_v7());
    events.cell(type);
    events.cell(payload);
    events.cell(now);
  }
  return {std::move(rows), cells.take(), events.take()};
}

// Inside a write transaction: the rows, their events and what after_import adds.
void store(db::Tx& tx, const db::TenantScope& scope, const Resource& r, const ImportLayout& layout,
           const db::Outbox& outbox, const Prepared& p) {
  if (p.rows.empty()) return;
  insert_json_rows(tx, scope, r.table(), layout.columns, p.cells, layout.numeric);
  insert_json_rows(tx, scope, outbox.schema() + ".outbox", {"id", "type", "payload", "created_at"}, p.events);
  outbox.mark_written(tx);  // the commit wakes the relay, as Outbox::append's does
  if (r.hooks().after_import) {
    std::vector<const json*> stored;
    stored.reserve(p.rows.size());
    for (const json& row : p.rows) stored.push_back(&row);
    r.hooks().after_import(tx, scope, stored);
  }
}

// An import's rows go through the rules this many at a time (the memory of a batch is what an import holds
// beyond its body and report), and are staged and written at most kChunkBytes of them at a time (the length
// of the write transactions other tenants' writes wait behind).
constexpr size_t kImportBatch = 200;
constexpr size_t kChunkBytes = 64 * 1024;
constexpr size_t kChunkRows = 250;
constexpr size_t kStageBytes = 256 * 1024;

// Staged rows, collected across batches into chunks of at most kChunkRows rows and about kChunkBytes: an
// array per row of the id, the rendered fields' values in declaration order and created_at.
class Chunker {
 public:
  explicit Chunker(const Resource& r) : r_(r) {}
  // Adds the rows; answers the chunks they completed.
  std::vector<std::string> add(std::vector<json>& rows) {
    std::vector<std::string> done;
    for (json& row : rows) {
      json a = json::array();
      a.push_back(std::move(row["id"]));
      for (const Field& f : r_.fields())
        if (f.rendered()) a.push_back(std::move(row[f.name]));
      a.push_back(std::move(row["created_at"]));
      text_ += text_.empty() ? '[' : ',';
      text_ += dump(a);
      if (++rows_ == kChunkRows || text_.size() >= kChunkBytes) done.push_back(take());
    }
    rows.clear();
    return done;
  }
  // The last chunk, however small (empty when there is none).
  std::string take() {
    if (text_.empty()) return {};
    std::string out = std::move(text_ += ']');
    text_.clear();
    rows_ = 0;
    return out;
  }

 private:
  const Resource& r_;
  std::string text_;
  size_t rows_ = 0;
};

std::vector<json> staged_rows(const Resource& r, const std::string& text) {
  std::vector<json> rows;
  for (json& a : json::parse(text)) {
    json row = json::object();
    size_t i = 0;
    row["id"] = std::move(a.at(i++));
    for (const Field& f : r.fields())
      if (f.rendered()) row[f.name] = std::move(a.at(i++));
    row["created_at"] = a.at(i);
    row["updated_at"] = std::move(a.at(i));
    rows.push_back(std::move(row));
  }
  return rows;
}

// Runs fn(i) for every i < n; a batch's rows are split over two threads (the rules and the rows' JSON are
// most of an import's CPU time, and need nothing shared).
template <class Fn>
void for_each_row(size_t n, Fn fn) {
  const size_t half = n >= 256 && std::thread::hardware_concurrency() > 1 ? n / 2 : n;
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

// The unique values an import has taken, as 128-bit fingerprints (BLAKE2b): 16 bytes a value whatever its
// length, in an open-addressing table at most 80 % full. Two different values share a fingerprint with a
// probability of about n² / 2¹²⁹ (1e-29 for 100 000 values).
class Fingerprints {
 public:
  void reserve(size_t n) {
    while (slots_.size() * 4 < n * 5) grow();
  }
  bool insert(std::string_view value) {  // false when it was there already
    std::array<uint64_t, 2> h{};
    crypto_generichash(reinterpret_cast<unsigned char*>(h.data()), sizeof h,
                       reinterpret_cast<const unsigned char*>(value.data()), value.size(), nullptr, 0);
    if (h[0] == 0 && h[1] == 0) h[1] = 1;  // all zeros marks a free slot
    if (5 * (used_ + 1) > 4 * slots_.size()) grow();
    for (size_t i = h[0] & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i] == h) return false;
      if (slots_[i][0] == 0 && slots_[i][1] == 0) {
        slots_[i] = h;
        ++used_;
        return true;
      }
    }
  }

 private:
  void grow() {
    std::vector<std::array<uint64_t, 2>> old(std::max<size_t>(64, slots_.size() * 2));
    old.swap(slots_);
    for (const auto& h : old) {
      if (h[0] == 0 && h[1] == 0) continue;
      size_t i = h[0] & (slots_.size() - 1);
      while (slots_[i][0] != 0 || slots_[i][1] != 0) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = h;
    }
  }
  std::vector<std::array<uint64_t, 2>> slots_;
  size_t used_ = 0;
};

// The rows of an import a batch at a time: from a CSV body (checked whole first: syntax and row count, so a
// malformed file or one of too many rows costs a parse and nothing else) or from ImportRows.
class RowSource {
 public:
  virtual ~RowSource() = default;
  // Appends up to n rows to out; false when none was left.
  virtual bool next(size_t n, std::vector<ImportRow>& out) = 0;
  virtual size_t rows() const = 0;  // in all
};

class CsvSource final : public RowSource {
 public:
  CsvSource(std::string_view body, const Resource& r) : reader_(body) {
    CsvReader pass = reader_;  // checked once, read twice
    size_t records = 0;
    while (pass.next(rec_))
      if (++records > kMaxImportRows + 1)  // the header and the rows allowed
        throw Error::validation(
            {{"body", fmt::format("holds more than {} rows; import at most {} per request", kMaxImportRows,
                                  kMaxImportRows)}});
    if (!reader_.next(rec_))
      throw Error::validation({{"body", "must start with a header row naming the columns"}});
    columns_.emplace(rec_, r);
    rows_ = records - 1;
  }
  size_t rows() const override { return rows_; }
  bool next(size_t n, std::vector<ImportRow>& out) override {
    size_t got = 0;
    while (got < n && reader_.next(rec_)) {
      out.push_back(columns_->row(rec_, ++row_));
      ++got;
    }
    return got > 0;
  }

 private:
  CsvReader reader_;
  CsvRecord rec_;
  std::optional<ImportColumns> columns_;
  int64_t row_ = 1;  // the header's
  size_t rows_ = 0;
};

class ListSource final : public RowSource {
 public:
  explicit ListSource(const std::vector<ImportRow>& rows) : rows_(rows) {}
  size_t rows() const override { return rows_.size(); }
  bool next(size_t n, std::vector<ImportRow>& out) override {
    const size_t end = std::min(rows_.size(), at_ + n);
    for (; at_ < end; ++at_) out.push_back(rows_[at_]);
    return !out.empty();
  }

 private:
  const std::vector<ImportRow>& rows_;
  size_t at_ = 0;
};

// One import's rules and checks, a batch at a time, and its report.
class ImportRun {
 public:
  ImportRun(const Resource& r, const Caller& c, bool partial, size_t rows)
      : r_(r),
        c_(c),
        layout_(r),
        partial_(partial),
        now_(format_rfc3339(Clock::now())),
        taken_(layout_.uniques.size()) {
    report_.ids.reserve(rows);
    for (auto& t : taken_) t.reserve(rows);
  }

  const ImportLayout& layout() const { return layout_; }
  const ImportReport& report() const { return report_; }
  ImportReport& report() { return report_; }
  // All or nothing, and a row is bad: nothing will be stored (the rest is read for the report).
  bool doomed() const { return !partial_ && !report_.errors.empty(); }

  // The next batch's rules (no database); false when no row was left.
  bool rules(RowSource& source) {
    rows_.clear();
    if (!source.next(kImportBatch, rows_)) return false;
    batch_.assign(rows_.size(), Candidate{});
    for_each_row(rows_.size(), [&](size_t i) {
      Candidate& cand = batch_[i];
      cand.line = rows_[i].row;
      cand.errors = std::move(rows_[i].errors);
      if (!cand.errors.empty()) return;
      json patch = read_fields(r_, rows_[i].fields, Mode::kCreate, cand.errors);
      rows_[i].fields = json();
      if (!cand.errors.empty()) return;
      json& row = cand.row;
      row["id"] = new_uuid_v7();
      for (const Field& f : r_.fields()) {
        if (!f.rendered()) continue;  // write-only and hidden values are no import's
        auto it = patch.find(f.name);
        row[f.name] = it != patch.end() ? std::move(*it) : f.default_value;
      }
      row["created_at"] = now_;
      row["updated_at"] = now_;
      for (const Field* f : layout_.uniques) cand.uniques.push_back(unique_value(r_, *f, row));
      cand.ok = true;
    });
    rows_.clear();
    return true;
  }

  // The batch's links and unique values against the tenant's rows (tx) and the file's earlier rows. The good
  // rows move to `good` in file order; the bad ones go to the report.
  void check(db::Tx& tx, std::vector<json>& good) {
    std::vector<std::unordered_set<std::string>> linked, stored;
    for (const Field* f : layout_.links) {
      std::vector<std::string> ids;
      for (const auto& cand : batch_)
        if (cand.ok && cand.row[f->name].is_string()) ids.push_back(cand.row[f->name].get<std::string>());
      linked.push_back(present(tx, c_.scope, f->refs_table, "id", ids));
    }
    for (size_t u = 0; u < layout_.uniques.size(); ++u) {
      std::vector<std::string> values;
      for (const auto& cand : batch_)
        if (cand.ok && cand.uniques[u]) values.push_back(*cand.uniques[u]);
      stored.push_back(present(tx, c_.scope, r_.table(), layout_.uniques[u]->unique_on, values));
    }
    report_.rows += static_cast<int64_t>(batch_.size());
    for (auto& cand : batch_) {
      if (cand.ok) {
        for (size_t l = 0; l < layout_.links.size(); ++l) {
          const json& v = cand.row[layout_.links[l]->name];
          if (v.is_string() && !linked[l].contains(v.get<std::string>()))
            cand.errors.push_back({layout_.links[l]->name, "does not exist in this tenant"});
        }
        // Stored already, or an earlier row's; as before, a value is taken once its row passed the links.
        for (size_t u = 0; u < layout_.uniques.size() && cand.errors.empty(); ++u)
          if (cand.uniques[u] &&
              (stored[u].contains(*cand.uniques[u]) || !taken_[u].insert(*cand.uniques[u])))
            cand.errors.push_back(
                {layout_.uniques[u]->name,
                 "another " + r_.kind() + " of this tenant has this " + layout_.uniques[u]->name});
        if (cand.errors.empty()) {
          report_.ids.push_back(cand.row["id"].get_ref<const std::string&>());
          good.push_back(std::move(cand.row));
          continue;
        }
      }
      report_.errors.push_back({cand.line, std::move(cand.errors)});
    }
    batch_.clear();
    report_.created = doomed() ? 0 : static_cast<int64_t>(report_.ids.size());
  }

  [[noreturn]] void fail() {
    ImportReport out = std::move(report_);
    out.created = 0;
    out.ids.clear();
    throw ImportFailed(std::move(out));
  }

 private:
  struct Candidate {
    int64_t line = 0;
    std::vector<FieldError> errors;
    bool ok = false;
    json row;
    std::vector<std::optional<std::string>> uniques;  // per unique field: the compared value
  };
  const Resource& r_;
  const Caller& c_;
  const ImportLayout layout_;
  const bool partial_;
  const std::string now_;
  std::vector<ImportRow> rows_;
  std::vector<Candidate> batch_;
  std::vector<Fingerprints> taken_;  // per unique field
  ImportReport report_;
};

bool is_csv(std::string_view content_type) {
  std::string_view m = content_type.substr(0, content_type.find(';'));
  while (!m.empty() && m.back() == ' ') m.remove_suffix(1);
  return boost::beast::iequals(m, "text/csv");
}

// The report as JSON text, written around the ids' text in place: 100 000 ids as a JSON tree, or a second
// copy of their text, would be several times the memory. Takes the report's ids.
std::string render(ImportReport& r) {
  std::string head = fmt::format("{{\"rows\":{},\"created\":{},\"failed\":{},\"errors\":[", r.rows, r.created,
                                 r.errors.size());
  for (size_t i = 0; i < r.errors.size(); ++i) {
    if (i) head += ',';
    head += fmt::format("{{\"row\":{},\"errors\":[", r.errors[i].row);
    for (size_t j = 0; j < r.errors[i].errors.size(); ++j) {
      if (j) head += ',';
      head += "{\"field\":";
      append_json_string(head, r.errors[i].errors[j].field);
      head += ",\"message\":";
      append_json_string(head, r.errors[i].errors[j].message);
      head += '}';
    }
    head += "]}";
  }
  head += "],\"ids\":[";
  std::string out = r.ids.take_json();
  out.insert(0, head);  // within the room IdList::reserve left, unless the errors are long
  out += "]}";
  return out;
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
  std::string text = dump(body);
  text.pop_back();
  ImportReport copy = report;  // its ids are empty: nothing was imported
  text += ",\"report\":" + render(copy) + "}";
  ctx.res.status = 422;
  ctx.res.content_type = "application/problem+json";
  ctx.res.body = std::move(text);
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

// Every batch in the transaction tx: the rules, the checks against what tx sees, and the rows written as
// they pass. Throws ImportFailed for an all-or-nothing import with a bad row (the caller rolls back).
ImportReport import_in(db::Tx& tx, const Caller& c, const Resource& r, RowSource& source, bool partial,
                       const db::Outbox& outbox) {
  ImportRun run(r, c, partial, source.rows());
  const std::string by = c.actor.to_json().dump();
  std::vector<json> good;
  while (run.rules(source)) {
    run.check(tx, good);
    if (!run.doomed()) store(tx, c.scope, r, run.layout(), outbox, prepare(r, by, std::move(good)));
    good.clear();
  }
  if (run.doomed()) run.fail();
  return std::move(run.report());
}

}  // namespace

json to_json(const ImportReport& r) {
  ImportReport copy = r;
  return json::parse(render(copy));
}

ImportReport Kit::store_import(db::Tx& tx, const Caller& c, const Resource& r,
                               const std::vector<ImportRow>& rows, bool partial) const {
  ListSource source(rows);
  return import_in(tx, c, r, source, partial, outbox_);
}

Task<void> Kit::import_csv(Context& ctx, const Caller& c, const Resource& r, bool partial,
                           const std::string& route_key) const {
  // The whole body's syntax and size first, on a worker (a parse of 32 MiB is no I/O thread's work).
  std::unique_ptr<CsvSource> source =
      co_await workers_.run([&] { return std::make_unique<CsvSource>(ctx.req.body, r); });

  std::unique_ptr<db::WriteHold> hold = db_->hold_writes(c.scope);
  if (!hold) {
    // Writers do not exclude each other here: one transaction checks and writes every batch, with the
    // Idempotency-Key's answer.
    try {
      co_await write_answer(ctx, route_key, [&](db::Tx& tx) {
        ImportReport report = import_in(tx, c, r, *source, partial, outbox_);
        ctx.res.json(200, render(report));
      });
    } catch (const ImportFailed& e) {
      answer_failed(ctx, e.report);  // nothing was written: the transaction rolled back
    }
    co_return;
  }

  // One writer: the tenant's other writes wait from here (the first write below commits after those queued
  // before); what the checks read stays true until the rows are in.
  co_await db::write_async(*db_, *hold, c.scope, [](db::Tx&) {});
  ImportRun run(r, c, partial, source->rows());
  const std::string by = c.actor.to_json().dump();
  const std::string import_id = new_uuid_v7();
  int64_t staged = 0;  // chunks handed to staging writes
  std::optional<db::PendingWrite> staging;
  std::vector<std::string> in_flight;  // the chunks that write stores
  bool decided = false;
  std::exception_ptr failure;
  try {
    // Staging writes gather chunks (kStageBytes a write) and commit while the next batches go through the
    // rules.
    Chunker chunker(r);
    std::vector<std::string> made;  // chunks not handed to a write yet
    size_t made_bytes = 0;
    for (bool more = true; more;) {
      std::vector<std::string> texts;
      more = co_await workers_.run([&] {
        if (!run.rules(*source)) {
          if (!run.doomed()) texts.push_back(chunker.take());
          return false;
        }
        std::vector<json> good;
        db_->read(c.scope, [&](db::Tx& tx) { run.check(tx, good); });
        if (!run.doomed()) texts = chunker.add(good);
        if (run.report().rows % 4000 == 0) malloc_trim(0);
        return true;
      });
      for (std::string& t : texts)
        if (!t.empty()) made_bytes += t.size(), made.push_back(std::move(t));
      if (made.empty() || (more && made_bytes < kStageBytes)) continue;
      if (staging) {
        co_await staging->wait();
        staging.reset();
      }
      in_flight = std::move(made);
      made.clear();
      made_bytes = 0;
      const int64_t first = staged;
      staged += static_cast<int64_t>(in_flight.size());
      staging.emplace(*db_, *hold, c.scope, [this, &c, &r, &by, &import_id, &in_flight, first](db::Tx& tx) {
        for (size_t i = 0; i < in_flight.size(); ++i)
          staging_.add(tx, c.scope, import_id, r.plural(), by, first + static_cast<int64_t>(i), in_flight[i]);
      });
    }
    if (staging) {
      co_await staging->wait();
      staging.reset();
    }
    if (run.doomed()) {
      if (staged > 0)
        co_await db::write_async(*db_, *hold, c.scope,
                                 [&](db::Tx& tx) { staging_.drop(tx, c.scope, import_id); });
      answer_failed(ctx, run.report());
      co_return;
    }
    // The decision: the answer (and the Idempotency-Key's) commits with the import marked decided. From here
    // on the import is finished, by this request or by the next start after a crash.
    co_await write_answer(
        ctx, route_key,
        [&](db::Tx& tx) {
          if (staged > 0) staging_.decide(tx, c.scope, import_id);
          ctx.res.json(200, render(run.report()));  // the last use of the ids
          decided = true;
        },
        hold.get());
  } catch (...) {
    failure = std::current_exception();
  }
  if (staging) {  // a staging write still refers to this frame
    try {
      co_await staging->wait();
    } catch (...) {
    }
  }
  if (!decided) {
    // A failure, or a twin with the same Idempotency-Key answered first (its answer is replayed): nothing of
    // this one is kept.
    if (staged > 0)
      co_await db::write_async(*db_, *hold, c.scope,
                               [&](db::Tx& tx) { staging_.drop(tx, c.scope, import_id); });
    if (failure) std::rethrow_exception(failure);
    co_return;
  }
  // The rows, a chunk per transaction (its rows, their events, after_import): each chunk is read back and
  // made ready on a worker while the two before it are written (one in the writer, the next queued behind it,
  // so the writer never waits for the import); other tenants' writes go between the chunks.
  std::deque<db::PendingWrite> writing;
  std::array<Prepared, 3> ready;  // a slot per write in flight, and the chunk being made ready
  try {
    for (int64_t seq = 0; seq < staged; ++seq) {
      Prepared& p = ready[seq % 3];  // its last user, write seq - 3, has finished (below)
      p = co_await workers_.run([&] {
        const std::string text =
            db_->read(c.scope, [&](db::Tx& tx) { return staging_.chunk(tx, c.scope, import_id, seq); });
        Prepared out = prepare(r, by, staged_rows(r, text));
        if (seq % 16 == 15) malloc_trim(0);
        return out;
      });
      while (writing.size() >= 2) {
        co_await writing.front().wait();
        writing.pop_front();
      }
      const bool last = seq + 1 == staged;
      writing.emplace_back(*db_, *hold, c.scope,
                           [this, &c, &r, &run, &p, &import_id, seq, last](db::Tx& tx) {
                             store(tx, c.scope, r, run.layout(), outbox_, p);
                             if (last)
                               staging_.drop(tx, c.scope, import_id);
                             else
                               staging_.drop_chunk(tx, c.scope, import_id, seq);
                           });
    }
  } catch (...) {
    failure = std::current_exception();
  }
  // The writes in flight refer to this frame: they finish before anything here goes.
  while (!writing.empty()) {
    try {
      co_await writing.front().wait();
    } catch (...) {
      if (!failure) failure = std::current_exception();
    }
    writing.pop_front();
  }
  if (failure) {
    // Decided: what is left stays staged and the next start writes it (Module::finish_interrupted).
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      log::error("a decided CSV import could not write all its rows; the next start finishes it",
                 {{"tenant_id", c.scope.tenant_id()}, {"import_id", import_id}, {"error", e.what()}});
    }
    std::rethrow_exception(failure);
  }
}

std::vector<std::string> Kit::interrupted_imports() const {
  if (!has_csv()) return {};
  return db_->read_platform([&](db::Tx& tx) { return staging_.platform_tenants(tx); });
}

void Kit::finish_imports(const db::TenantScope& scope) const {
  const auto pending = db_->read(scope, [&](db::Tx& tx) { return staging_.pending(tx, scope); });
  for (const auto& p : pending) {
    if (!p.decided) {
      // Stopped before its answer committed: it never happened.
      db_->write(scope, [&](db::Tx& tx) { staging_.drop(tx, scope, p.id); });
      log::info("dropped the staged rows of a CSV import that a stop interrupted before it was decided",
                {{"tenant_id", scope.tenant_id()}, {"import_id", p.id}});
      continue;
    }
    try {
      const Resource& r = get(p.resource);
      const ImportLayout layout(r);
      for (int64_t seq : p.chunks) {
        const std::string text =
            db_->read(scope, [&](db::Tx& tx) { return staging_.chunk(tx, scope, p.id, seq); });
        const Prepared prepared = prepare(r, p.actor, staged_rows(r, text));
        db_->write(scope, [&](db::Tx& tx) {
          store(tx, scope, r, layout, outbox_, prepared);
          staging_.drop_chunk(tx, scope, p.id, seq);
        });
      }
      db_->write(scope, [&](db::Tx& tx) { staging_.drop(tx, scope, p.id); });
      log::warn("finished a CSV import that a stop interrupted after it was decided",
                {{"tenant_id", scope.tenant_id()},
                 {"import_id", p.id},
                 {"resource", p.resource},
                 {"chunks", p.chunks.size()}});
    } catch (const std::exception& e) {
      // The server still starts; what is left stays staged, and the next start tries again.
      log::error(
          "cannot finish a decided CSV import; its remaining rows stay in " + db_->schema() + ".bulk_chunks",
          {{"tenant_id", scope.tenant_id()}, {"import_id", p.id}, {"error", e.what()}});
    }
  }
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
               const BulkGate::Ticket ticket = BulkGate::enter(c.scope.tenant_id(), BulkGate::kExport);
               // The answer's head goes out at once; then the free-form objects' keys (their columns, which
               // take a pass over the tenant's rows), then the rows a page at a time: memory stays one page
               // whatever the export's size.
               ctx.res.set(200, "text/csv; charset=utf-8", "");
               ctx.res.header("Content-Disposition", fmt::format("attachment; filename=\"{}\"", filename));
               http::AnswerStream* out = ctx.answer_stream;
               if (out) co_await out->begin(std::nullopt);
               const auto keys = co_await workers_.run(
                   [&] { return db_->read(c.scope, [&](db::Tx& tx) { return free_keys(tx, c, *res); }); });
               const CsvLayout layout(*res, keys);
               std::string whole;  // without a stream (a HEAD, or a caller that wants the body whole)
               if (out)
                 co_await out->write(layout.header());
               else
                 whole = layout.header();
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
              .summary =
                  "Export " + r.plural() +
                  " as CSV (text/csv, streamed; the list's filters apply; 429 beyond a tenant's bulk bound)",
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
        // A retry of a finished import replays its answer at once (write_answer would, after all the work).
        if (const std::string_view key = ctx.req.header(Idempotency::kHeader);
            !key.empty() && !Idempotency::key_problem(key)) {
          auto replay = co_await workers_.run([&] {
            return idempotency_.lookup(
                c.scope, route_key, std::string(key),
                Idempotency::request_hash("POST " + std::string(ctx.req.target), ctx.req.body));
          });
          if (replay) {
            ctx.res.status = replay->status;
            ctx.res.content_type = Idempotency::stable_content_type(replay->content_type);
            ctx.res.body = std::move(replay->body);
            ctx.res.header("Idempotent-Replayed", "true");
            co_return;
          }
        }
        const BulkGate::Ticket ticket = BulkGate::enter(c.scope.tenant_id(), BulkGate::kImport);
        co_await import_csv(ctx, c, *res, partial, route_key);
      },
      {.access = r.access(),
       .scope = r.write_scope(),
       .summary = "Import " + r.plural() +
                  " from a CSV body (text/csv, header row; 100 000 rows, 32 MiB); all or nothing unless "
                  "?partial=true; one import of a tenant at a time (429)",
       .tag = r.module(),
       .response_schema = "ImportReport",
       .query_params = {"partial"},
       .body_limit = kImportBodyLimit});
}

}  // namespace cdx::kit
