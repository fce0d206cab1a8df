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
  int threads = 0, idle = 0;
  struct Queued {
    std::string host, group;
  };
  std::deque<Queued> queue;               // names to look up, oldest first
  std::map<std::string, int> group_busy;  // lookups in flight per group
  std::map<std::string, std::vector<std::function<void(const Answer&)>>>
      waiting;  // by name: queued or looking
  struct Cached {
    Answer answer;
    Clock::time_point until;
  };
  std::map<std::string, Cached> cache;

  // The oldest queued name whose group is under its bound (mu held).
  std::deque<Queued>::iterator next() {
    return std::find_if(queue.begin(), queue.end(),
                        [&](const Queued& q) { return group_busy[q.group] < options.per_group; });
  }

  void run() {
    std::unique_lock lock(mu);
    while (true) {
      ++idle;
      cv.wait(lock, [&] { return stopped || next() != queue.end(); });
      --idle;
      if (stopped) return;
      auto it = next();
      const Queued q = std::move(*it);
      queue.erase(it);
      ++group_busy[q.group];
      lock.unlock();
      Answer a;
      try {
        a = options.lookup(q.host);
      } catch (const std::exception& e) {
        a.error = e.what();
      }
      lock.lock();
      if (stopped) return;
      if (--group_busy[q.group] <= 0) group_busy.erase(q.group);
      const auto now = Clock::now();
      if (cache.size() > 10'000) std::erase_if(cache, [&](const auto& kv) { return kv.second.until <= now; });
      cache[q.host] = {a, now + (a.error.empty() ? options.found_ttl : options.missing_ttl)};
      auto callers = std::move(waiting[q.host]);
      waiting.erase(q.host);
      // Under the lock: once stop() has taken it, no callback runs (they post to an io_context that may be
      // going away); callbacks only post.
      for (auto& done : callers) done(a);
      cv.notify_all();  // the group has room again: one of its queued names may go
    }
  }
};

Resolver::Resolver(Options options) : state_(std::make_shared<State>()) {
  if (!options.lookup) options.lookup = system_lookup;
  options.max_threads = std::max(1, options.max_threads);
  options.per_group = std::max(1, options.per_group);
  state_->options = std::move(options);
}

Resolver::~Resolver() {
  std::lock_guard lock(state_->mu);
  state_->stopped = true;
  state_->waiting.clear();
  state_->cv.notify_all();
}

void Resolver::resolve(const std::string& host, const std::string& group,
                       std::function<void(const Answer&)> done) {
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
  if (callers.size() > 1) return;  // a lookup of this name is queued or in flight: its answer is ours
  state_->queue.push_back({host, group});
  // Every thread busy (some may hang in getaddrinfo): one more, up to the bound.
  if (state_->idle == 0 && state_->threads < state_->options.max_threads) {
    ++state_->threads;
    std::thread([s = state_] { s->run(); }).detach();
  }
  state_->cv.notify_all();
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
