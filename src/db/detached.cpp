#include "db/database.hpp"

namespace cdx::db {

namespace {

class Detached final : public Database {
 public:
  explicit Detached(std::string schema) : schema_(std::move(schema)) {}
  Backend backend() const override { return Backend::kSqlite; }
  const std::string& schema() const override { return schema_; }
  void migrate(const std::vector<Migration>&) override { fail(); }
  void ping() override { fail(); }
  PoolStats stats() const override { return {}; }

 protected:
  void transaction(const TenantScope*, bool, const std::function<void(Tx&)>&) override { fail(); }

 private:
  [[noreturn]] void fail() const { throw Unavailable("the " + schema_ + " database is not held by this process"); }
  std::string schema_;
};

}  // namespace

std::shared_ptr<Database> make_detached_database(std::string schema) {
  return std::make_shared<Detached>(std::move(schema));
}

}  // namespace cdx::db
