// Name resolution for the webhook client on a small pool of its own threads (getaddrinfo blocks and cannot
// be cancelled), never on the io thread. Bounds: one lookup in flight per host name (callers asking for a
// name being looked up wait for that lookup) and at most per_group lookups in flight per group (a tenant),
// the pool growing on demand up to max_threads; so a tenant whose DNS hangs holds at most per_group threads
// and another tenant's names are still looked up at once. Answers are cached briefly (found: 30 s, not found:
// 5 s). The caller's own deadline bounds its wait (client.cpp).
//   Resolver r({.max_threads = 16, .per_group = 2});
//   r.resolve("hooks.example.com", tenant_id, [](const Resolver::Answer& a) { /* a.addresses or a.error */
//   });
#pragma once
#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cdx::webhooks {

class Resolver {
 public:
  struct Answer {
    std::vector<boost::asio::ip::address> addresses;
    std::string error;  // empty when found
  };
  // The blocking lookup (getaddrinfo by default; tests pass their own).
  using Lookup = std::function<Answer(const std::string& host)>;
  struct Options {
    int max_threads = 16;  // started as lookups need them; they stay for the next ones
    int per_group = 2;     // lookups in flight for one group (tenant) at once
    std::chrono::milliseconds found_ttl{30'000}, missing_ttl{5'000};
    Lookup lookup;
  };
  explicit Resolver(Options options);
  ~Resolver();  // stops: no callback runs after it returns; a lookup still blocked finishes on its own
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Calls done with the answer: at once from the cache, else on a pool thread once looked up (charged to
  // group, the tenant asking). done must not block (post the answer to its executor).
  void resolve(const std::string& host, const std::string& group, std::function<void(const Answer&)> done);

  struct State;

 private:
  std::shared_ptr<State> state_;
};

// getaddrinfo, every address of the name (TCP).
Resolver::Answer system_lookup(const std::string& host);

}  // namespace cdx::webhooks
