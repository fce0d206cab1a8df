// The webhook sender: a database thread that claims due deliveries and records attempts, and an io_context
// thread that posts them (client.hpp). At most Options::max_in_flight attempts at once, per_endpoint to one
// endpoint and per_tenant to one tenant: a claim takes only what has a free slot, so a dead or hanging
// endpoint holds only its own slots and never another tenant's deliveries, and every claimed delivery starts
// at once. Idle, it sleeps until the next due delivery (at most a second); it also prunes the delivery log
// once a minute.
//   Sender sender(hooks);  sender.start();  …  sender.wake();  …  sender.stop();
#pragma once
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/task.hpp"
#include "webhooks/client.hpp"
#include "webhooks/webhooks.hpp"

namespace cdx::webhooks {

class Sender {
 public:
  explicit Sender(Webhooks& hooks);
  ~Sender();
  void start();
  void stop();
  void wake();
  // An endpoint changed (url, secret, enabled): its cached signing data is read again.
  void forget(const std::string& endpoint_id);
  // How many times the database loop has run (tests: an idle sender sleeps, it does not poll).
  size_t steps() const { return steps_.load(std::memory_order_relaxed); }

 private:
  struct Ready {
    Claimed delivery;
    Url url;
    std::vector<std::string> keys;
  };
  struct Done {
    Claimed delivery;
    SendResult result;
    std::string attempted_at;
  };
  struct Cached {
    Webhooks::Signing signing;
    std::chrono::steady_clock::time_point loaded;
  };

  void db_loop();
  // Claims what is due and fits; answers how long to sleep: until the next due delivery, at most a second.
  std::chrono::milliseconds claim();
  void prune();
  void flush();
  void launch();  // starts waiting deliveries that are within their bounds (mu_ held)
  Task<void> deliver(Ready r);
  std::optional<Webhooks::Signing> signing_of(const Claimed& c);
  void endpoint_outcome(const Claimed& c, const SendResult& r, bool final_410);

  Webhooks& hooks_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  Client client_;
  std::thread io_thread_, db_thread_;
  std::mt19937_64 rng_{std::random_device{}()};

  std::atomic<size_t> steps_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false, woken_ = false;
  std::vector<Done> done_;
  std::map<std::string, std::deque<Ready>> waiting_;        // by endpoint: claimed, over its bound for now
  std::map<std::string, int> endpoint_load_, tenant_load_;  // in flight + waiting
  std::map<std::string, int> endpoint_flying_, tenant_flying_;
  int flying_ = 0, held_ = 0;  // in flight; in flight + waiting
  std::map<std::string, Cached> cache_;
};

}  // namespace cdx::webhooks
