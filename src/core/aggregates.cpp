#include "core/aggregates.hpp"

#include "common/clock.hpp"
#include "core/event_feed.hpp"

namespace cdx::core {

using nlohmann::json;

namespace aggregates {

namespace {

std::string text_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool published(const std::string& status) { return status == "published" || status == "changed"; }

// Events that add one to a counter when created and take it back when deleted (a revoked API key's event
// is auth.api_key.deleted).
const std::map<std::string, std::pair<const char*, int>>& counted() {
  static const std::map<std::string, std::pair<const char*, int>> k = {
      {"auth.user.created", {kUsers, 1}},
      {"auth.user.deleted", {kUsers, -1}},
      {"auth.api_key.created", {kApiKeys, 1}},
      {"auth.api_key.deleted", {kApiKeys, -1}},
      {"crm.contact.created", {kContacts, 1}},
      {"crm.contact.deleted", {kContacts, -1}},
      {"crm.company.created", {kCompanies, 1}},
      {"crm.company.deleted", {kCompanies, -1}},
      {"cms.media.created", {kMedia, 1}},
      {"cms.media.deleted", {kMedia, -1}},
      {"cms.entry.unpublished", {kPublishedEntries, -1}},
  };
  return k;
}

}  // namespace

std::string hour_of(const std::string& rfc3339) { return rfc3339.substr(0, 13); }

std::optional<DealState> deal_state_of(const json& deal) {
  if (!deal.is_object()) return std::nullopt;
  DealState d;
  d.id = text_of(deal, "id");
  d.status = text_of(deal, "status");
  if (d.id.empty() || d.status.empty()) return std::nullopt;
  if (auto it = deal.find("amount"); it != deal.end() && it->is_number_integer())
    d.amount = it->get<int64_t>();
  d.currency = text_of(deal, "currency");
  d.closed_at = text_of(deal, "closed_at");
  return d;
}

void add_deal(const DealState& d, int sign, Deltas& out) {
  const bool valued = d.amount && !d.currency.empty();
  if (d.status == "open") {
    out[kOpenDeals] += sign;
    if (valued) out["deals.open_value:" + d.currency] += sign * *d.amount;
  } else if (d.status == "won" && d.closed_at.size() >= 7) {
    const std::string month = d.closed_at.substr(0, 7);
    out["deals.won:" + month] += sign;
    if (valued) out["deals.won_value:" + month + ":" + d.currency] += sign * *d.amount;
  }
}

Effect effect_of(const std::string& type, const json& data) {
  Effect e;
  if (type == "tenant.deleted") {
    e.tenant_deleted = true;
    return e;
  }
  if (auto it = counted().find(type); it != counted().end()) {
    e.add[it->second.first] += it->second.second;
    return e;
  }
  if (!data.is_object()) return e;
  if (type == "crm.deal.deleted") {
    if (auto id = text_of(data, "id"); !id.empty()) e.deal_removed = id;
  } else if (type.starts_with("crm.deal.")) {
    // created, updated, won, lost, reopened, stage_changed: each carries the deal's row as it is now.
    if (auto it = data.find("deal"); it != data.end()) e.deal = deal_state_of(*it);
  } else if (type == "cms.entry.published") {
    // Publishing an entry with unpublished changes publishes it again: counted once.
    if (!published(text_of(data, "from_status"))) e.add[kPublishedEntries] += 1;
  } else if (type == "cms.entry.deleted") {
    if (published(text_of(data, "status"))) e.add[kPublishedEntries] -= 1;
  } else if (type == "cms.content_type.deleted") {
    // ?cascade=true deleted its entries with it, without an event each.
    if (auto it = data.find("published_entries"); it != data.end() && it->is_number_integer())
      e.add[kPublishedEntries] -= it->get<int64_t>();
  }
  return e;
}

}  // namespace aggregates

namespace {

constexpr std::chrono::hours kHoursKept{48};

std::string now_text() { return format_rfc3339(Clock::now()); }

}  // namespace

void Aggregates::apply(db::Tx& tx, const std::vector<LoggedEvent>& batch) {
  using aggregates::Deltas;
  std::set<std::string> named;
  for (const auto& e : batch)
    if (!e.tenant_id.empty()) named.insert(e.tenant_id);
  // A deleted tenant's late events (relayed after tenant.deleted) count nowhere.
  std::set<std::string> live = AggregateStore::existing_tenants(tx, named);

  struct Tenant {
    Deltas add;
    std::map<std::string, int64_t> hours;
  };
  std::map<std::string, Tenant> tenants;
  std::map<std::string, int64_t> platform_hours;  // every event of the log, whatever its tenant
  // Deals read or changed in this batch: their current state (nullopt: gone), and which to write back.
  std::map<std::pair<std::string, std::string>, std::optional<DealState>> deals;
  std::set<std::pair<std::string, std::string>> dirty;
  auto deal_now = [&](const std::string& tenant_id, const std::string& id) -> std::optional<DealState>& {
    auto key = std::make_pair(tenant_id, id);
    auto it = deals.find(key);
    if (it == deals.end()) it = deals.emplace(key, AggregateStore::deal(tx, tenant_id, id)).first;
    return it->second;
  };

  for (const auto& e : batch) {
    platform_hours[aggregates::hour_of(e.created_at)] += 1;
    if (e.tenant_id.empty()) continue;
    aggregates::Effect f = aggregates::effect_of(e.type, e.data);
    if (f.tenant_deleted) {
      AggregateStore::delete_tenant(tx, e.tenant_id);
      tenants.erase(e.tenant_id);
      live.erase(e.tenant_id);
      std::erase_if(deals, [&](const auto& d) { return d.first.first == e.tenant_id; });
      std::erase_if(dirty, [&](const auto& d) { return d.first == e.tenant_id; });
      continue;
    }
    if (!live.contains(e.tenant_id)) continue;
    Tenant& t = tenants[e.tenant_id];
    t.hours[aggregates::hour_of(e.created_at)] += 1;
    for (const auto& [name, delta] : f.add) t.add[name] += delta;
    const std::string deal_id = f.deal ? f.deal->id : f.deal_removed.value_or("");
    if (deal_id.empty()) continue;
    std::optional<DealState>& now = deal_now(e.tenant_id, deal_id);
    if (now) aggregates::add_deal(*now, -1, t.add);
    now = f.deal;  // nullopt when removed
    if (now) aggregates::add_deal(*now, 1, t.add);
    dirty.emplace(e.tenant_id, deal_id);
  }

  for (const auto& key : dirty) {
    const auto& state = deals.at(key);
    if (state)
      AggregateStore::put_deal(tx, key.first, *state);
    else
      AggregateStore::delete_deal(tx, key.first, key.second);
  }
  const std::string now = now_text();
  const std::string oldest = aggregates::hour_of(format_rfc3339(Clock::now() - kHoursKept));
  for (const auto& [tenant_id, t] : tenants) {
    AggregateStore::add_counters(tx, tenant_id, t.add, now);
    AggregateStore::add_hours(tx, tenant_id, t.hours);
    AggregateStore::prune_hours(tx, tenant_id, oldest);
  }
  AggregateStore::add_hours(tx, AggregateStore::kPlatform, platform_hours);
  AggregateStore::prune_hours(tx, AggregateStore::kPlatform, oldest);
}

json Aggregates::platform_overview() {
  const auto at = Clock::now();
  const std::string today = format_rfc3339(at).substr(0, 10);
  const std::string since_hour = aggregates::hour_of(format_rfc3339(at - std::chrono::hours(23)));
  const std::string window_from = format_rfc3339(at - std::chrono::hours(24 * 29)).substr(0, 10);
  const AggregateStore::Platform p = store_.read_platform(since_hour, today, window_from);
  int64_t total = 0, events = 0;
  json by_status = json::object(), hours = json::array();
  for (const auto& [status, n] : p.tenants) {
    by_status[status] = n;
    total += n;
  }
  for (const auto& [hour, n] : p.hours) {
    hours.push_back({{"hour", hour + ":00:00Z"}, {"events", n}});
    events += n;
  }
  return {{"tenants",
           {{"total", total},
            {"active", by_status.value("active", int64_t{0})},
            {"suspended", by_status.value("suspended", int64_t{0})}}},
          {"api_calls", {{"today", p.calls_today}, {"last_30_days", p.calls_window}}},
          {"events_24h", events},
          {"events_by_hour", std::move(hours)}};
}

json Aggregates::overview(const std::string& tenant_id) {
  const auto at = Clock::now();
  const std::string now = format_rfc3339(at);
  const std::string month = now.substr(0, 7), today = now.substr(0, 10);
  // The current hour and the 23 before it.
  const std::string since_hour = aggregates::hour_of(format_rfc3339(at - std::chrono::hours(23)));
  const std::string window_from = format_rfc3339(at - std::chrono::hours(24 * 29)).substr(0, 10);
  const AggregateStore::Counters c = store_.read(tenant_id, since_hour, today, window_from);
  auto value = [&](const std::string& name) {
    auto it = c.values.find(name);
    return it == c.values.end() ? int64_t{0} : it->second;
  };
  // Money per currency, from the counters named prefix + currency; zero sums left out.
  auto money = [&](const std::string& prefix) {
    json out = json::object();
    for (auto it = c.values.lower_bound(prefix); it != c.values.end() && it->first.starts_with(prefix); ++it)
      if (it->second != 0) out[it->first.substr(prefix.size())] = it->second;
    return out;
  };
  return {{"tenant_id", tenant_id},
          {"users", value(aggregates::kUsers)},
          {"api_keys", value(aggregates::kApiKeys)},
          {"contacts", value(aggregates::kContacts)},
          {"companies", value(aggregates::kCompanies)},
          {"deals",
           {{"open", value(aggregates::kOpenDeals)},
            {"open_value", money("deals.open_value:")},
            {"won_this_month", value("deals.won:" + month)},
            {"won_value_this_month", money("deals.won_value:" + month + ":")}}},
          {"entries", {{"published", value(aggregates::kPublishedEntries)}}},
          {"media", value(aggregates::kMedia)},
          // The billing module is not built yet: zeros until its events are counted.
          {"billing", {{"active_subscriptions", 0}, {"mrr", json::object()}, {"open_invoices", 0}}},
          {"events_24h", c.events},
          {"api_calls", {{"today", c.calls_today}, {"last_30_days", c.calls_window}}},
          {"updated_at", c.updated_at.empty() ? json(nullptr) : json(c.updated_at)}};
}

int64_t Aggregates::rebuild(const std::map<std::string, std::vector<json>>& reports) {
  std::map<std::string, std::map<std::string, int64_t>> counters;
  std::map<std::string, std::vector<DealState>> deals;
  for (const auto& [tenant_id, list] : reports) {
    aggregates::Deltas& values = counters[tenant_id];
    for (const json& report : list) {
      if (!report.is_object()) continue;
      for (const auto& [name, v] : report.items()) {
        if (v.is_number_integer()) {
          values[name] += v.get<int64_t>();
        } else if (name == "deals" && v.is_array()) {
          for (const json& row : v)
            if (auto d = aggregates::deal_state_of(row)) {
              aggregates::add_deal(*d, 1, values);
              deals[tenant_id].push_back(std::move(*d));
            }
        }
      }
    }
    std::erase_if(values, [](const auto& kv) { return kv.second == 0; });
  }
  return store_.replace_all(counters, deals, aggregates::hour_of(format_rfc3339(Clock::now() - kHoursKept)),
                            kSubscriber, now_text());
}

}  // namespace cdx::core
