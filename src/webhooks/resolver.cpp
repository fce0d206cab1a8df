#include "webhooks/resolver.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace cdx::webhooks {

namespace ip = boost::asio::ip;
using Clock = std::chrono::steady_clock;

// Shared with the pool's threads, which are detached: a thread blocked in getaddrinfo when the resolver
// goes away finds it stopped when the lookup returns, and ends.
struct Resolver::State {
  Options options;
  std::mutex mu;
  std::condition_variable cv;
  bool stopped = false;
  std::deque<std::string> queue;  // names to look up
  std::map<std::string, std::vector<std::function<void(const Answer&)>>>
      waiting;  // by name: queued or looking
  struct Cached {
    Answer answer;
    Clock::time_point until;
  };
  std::map<std::string, Cached> cache;

  void run() {
    std::unique_lock lock(mu);
    while (true) {
      cv.wait(lock, [&] { return stopped || !queue.empty(); });
      if (stopped) return;
      const std::string host = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      Answer a;
      try {
        a = options.lookup(host);
      } catch (const std::exception& e) {
        a.error = e.what();
      }
      lock.lock();
      if (stopped) return;
      const auto now = Clock::now();
      if (cache.size() > 10'000) std::erase_if(cache, [&](const auto& kv) { return kv.second.until <= now; });
      cache[host] = {a, now + (a.error.empty() ? options.found_ttl : options.missing_ttl)};
      auto callers = std::move(waiting[host]);
      waiting.erase(host);
      // Under the lock: once stop() has taken it, no callback runs (they post to an io_context that may be
      // going away); callbacks only post.
      for (auto& done : callers) done(a);
    }
  }
};

Resolver::Resolver(Options options) : state_(std::make_shared<State>()) {
  if (!options.lookup) options.lookup = system_lookup;
  state_->options = std::move(options);
  for (int i = 0; i < std::max(1, state_->options.threads); ++i)
    std::thread([s = state_] { s->run(); }).detach();
}

Resolver::~Resolver() {
  std::lock_guard lock(state_->mu);
  state_->stopped = true;
  state_->waiting.clear();
  state_->cv.notify_all();
}

void Resolver::resolve(const std::string& host, std::function<void(const Answer&)> done) {
  std::unique_lock lock(state_->mu);
  if (state_->stopped) return;
  if (auto it = state_->cache.find(host); it != state_->cache.end() && it->second.until > Clock::now()) {
    const Answer a = it->second.answer;
    lock.unlock();
    done(a);
    return;
  }
  auto& callers = state_->waiting[host];
  callers.push_back(std::move(done));
  if (callers.size() == 1) {  // no lookup of this name queued or in flight: one now
    state_->queue.push_back(host);
    state_->cv.notify_one();
  }
}

Resolver::Answer system_lookup(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  Resolver::Answer a;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (rc != 0) {
    a.error = rc == EAI_SYSTEM ? std::string("system error") : std::string(gai_strerror(rc));
    return a;
  }
  for (addrinfo* p = list; p; p = p->ai_next) {
    if (p->ai_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(p->ai_addr);
      a.addresses.emplace_back(ip::address_v4(ntohl(in->sin_addr.s_addr)));
    } else if (p->ai_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(p->ai_addr);
      ip::address_v6::bytes_type b;
      std::copy(std::begin(in6->sin6_addr.s6_addr), std::end(in6->sin6_addr.s6_addr), b.begin());
      a.addresses.emplace_back(ip::address_v6(b, in6->sin6_scope_id));
    }
  }
  ::freeaddrinfo(list);
  if (a.addresses.empty()) a.error = "no address";
  return a;
}

}  // namespace cdx::webhooks
