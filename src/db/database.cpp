#include "db/database.hpp"

#include <charconv>

namespace cdx::db {

const std::string& Row::text(size_t i) const {
  const auto& c = cols_.at(i);
  if (!c) throw std::runtime_error("column " + std::to_string(i) + " is NULL");
  return *c;
}

int64_t Row::integer(size_t i) const {
  const std::string& s = text(i);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size())
    throw std::runtime_error("column " + std::to_string(i) + " is not an integer");
  return v;
}

std::optional<int64_t> Row::opt_integer(size_t i) const {
  if (is_null(i)) return std::nullopt;
  return integer(i);
}

namespace {
thread_local bool outbox_written = false;
}

void note_outbox_write() { outbox_written = true; }

void Database::began_write() { outbox_written = false; }

void Database::committed() const {
  if (outbox_written && commit_hook_) commit_hook_();
  outbox_written = false;
}

void Database::submit(const TenantScope* scope, std::unique_ptr<WriteJob> job) {
  std::exception_ptr error;
  try {
    transaction(scope, true, [&](Tx& tx) { job->run(tx); });
  } catch (...) {
    error = std::current_exception();
  }
  job->finish(error);
}

std::unique_ptr<ConnectionFactory> make_connection_factory(const StorageConfig& config) {
  if (!config.database_url.empty()) return make_postgres_factory(config);
  return make_sqlite_factory(config.data_dir);
}

}  // namespace cdx::db
