// The live feed's load client (bench/sse_bench.py drives it): opens N streams of GET /api/v1/events/stream,
// counts the messages each receives and, for events whose contact first_name is "L<ns>" (CLOCK_REALTIME of
// the request that made it), the latency from that request to the message's arrival.
//   sse_client --port 3000 --token T --clients 1000 --seconds 10 [--query type=crm.*] [--dump arrivals.txt]
// Prints one JSON line at the end: connected, messages, seconds, msgs_per_s, latency p50/p99/max (ms),
// dropped.
#include <utility>  // before Asio (GCC 12 + Boost 1.74)

#include <boost/asio.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct Stats {
  std::atomic<uint64_t> messages{0};
  std::atomic<int> connected{0};
  std::atomic<int> dropped{0};
  std::atomic<int> closed{0};
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(asio::io_context& io, Stats& stats, std::string request, bool sample)
      : sock_(io), stats_(stats), request_(std::move(request)), sample_(sample) {}

  void start(const tcp::endpoint& ep) {
    sock_.async_connect(ep, [self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return self->fail();
      asio::async_write(self->sock_, asio::buffer(self->request_),
                        [self](boost::system::error_code ec, size_t) {
                          if (ec) return self->fail();
                          self->read();
                        });
    });
  }

  std::vector<double> latencies_ms;
  std::vector<std::pair<int64_t, int64_t>> arrivals;  // (stamp, arrival) when dumping
  bool dump_ = false;

 private:
  void fail() { stats_.closed.fetch_add(1); }

  void read() {
    sock_.async_read_some(asio::buffer(buf_),
                          [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                            if (ec) return self->fail();
                            self->scan(n);
                            self->read();
                          });
  }

  // Counts "\nevent: " in what came (with the tail of the previous read, so a pattern split across reads
  // is seen once), and the latency markers.
  void scan(size_t n) {
    std::string_view fresh(buf_.data(), n);
    if (!head_done_) {
      head_ += fresh;
      const size_t end = head_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      head_done_ = true;
      if (head_.compare(0, 12, "HTTP/1.1 200") != 0) {
        std::fprintf(stderr, "stream refused: %.*s\n", static_cast<int>(std::min<size_t>(head_.size(), 300)),
                     head_.c_str());
        return fail();
      }
      stats_.connected.fetch_add(1);
      work_ = head_.substr(end + 4);
      head_.clear();
    } else {
      work_.append(fresh);
    }
    const size_t skip = carry_;  // bytes of work_ seen by the previous scan
    uint64_t count = 0;
    for (size_t at = 0; (at = work_.find("\nevent: ", at)) != std::string::npos; at += 8) {
      if (at + 8 > skip) {
        ++count;
        if (work_.compare(at + 8, 7, "dropped") == 0) stats_.dropped.fetch_add(1);
      }
    }
    if (sample_) {
      const int64_t now = now_ns();
      static constexpr std::string_view kMark = "\"first_name\":\"L";
      for (size_t at = 0; (at = work_.find(kMark, at)) != std::string::npos; at += kMark.size()) {
        const size_t digits = at + kMark.size();
        const size_t end = work_.find('"', digits);
        if (end == std::string::npos) break;  // not all here yet: seen again with the next read
        if (end <= skip) continue;
        const int64_t t = std::strtoll(work_.c_str() + digits, nullptr, 10);
        if (t > 0) latencies_ms.push_back(static_cast<double>(now - t) / 1e6);
        if (t > 0 && dump_) arrivals.emplace_back(t, now);
      }
    }
    stats_.messages.fetch_add(count, std::memory_order_relaxed);
    // Keep a tail long enough for a split pattern (a marker and its 19 digits).
    constexpr size_t kTail = 64;
    if (work_.size() > kTail) work_.erase(0, work_.size() - kTail);
    carry_ = work_.size();
  }

  tcp::socket sock_;
  Stats& stats_;
  std::string request_;
  bool sample_;
  std::array<char, 65536> buf_;
  bool head_done_ = false;
  std::string head_, work_;
  size_t carry_ = 0;
};

double percentile(std::vector<double>& xs, double p) {
  if (xs.empty()) return 0;
  std::sort(xs.begin(), xs.end());
  return xs[std::min(xs.size() - 1, static_cast<size_t>(p / 100 * (xs.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  int port = 3000, clients = 1000, seconds = 10, threads = 1, samplers = 20;
  std::string token, query, dump, host = "127.0.0.1";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--port")
      port = std::stoi(v);
    else if (k == "--clients")
      clients = std::stoi(v);
    else if (k == "--seconds")
      seconds = std::stoi(v);
    else if (k == "--threads")
      threads = std::stoi(v);
    else if (k == "--token")
      token = v;
    else if (k == "--query")
      query = v;
    else if (k == "--samplers")
      samplers = std::stoi(v);
    else if (k == "--dump")
      dump = v;
  }
  const std::string request = "GET /api/v1/events/stream" + (query.empty() ? "" : "?" + query) +
                              " HTTP/1.1\r\nHost: " + host +
                              "\r\nAccept: text/event-stream\r\nAuthorization: Bearer " + token + "\r\n\r\n";
  asio::io_context io;
  Stats stats;
  std::vector<std::shared_ptr<Client>> all;
  const tcp::endpoint ep(asio::ip::make_address(host), static_cast<unsigned short>(port));
  for (int i = 0; i < clients; ++i) {
    all.push_back(std::make_shared<Client>(io, stats, request, i < samplers));
    all.back()->dump_ = i == 0 && !dump.empty();
    all.back()->start(ep);
  }
  auto guard = asio::make_work_guard(io);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  // Wait for the streams to open, then measure for `seconds`.
  const auto open_by = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (stats.connected.load() + stats.closed.load() < clients && std::chrono::steady_clock::now() < open_by)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::cout << "{\"ready\": " << stats.connected.load() << "}"
            << std::endl;  // the driver starts its load now
  const uint64_t m0 = stats.messages.load();
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const uint64_t m1 = stats.messages.load();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  io.stop();
  for (auto& t : pool) t.join();
  if (!dump.empty()) {  // the first stream's (stamp, arrival) pairs, for the driver's own bounds
    if (FILE* f = std::fopen(dump.c_str(), "w")) {
      for (const auto& [t, at] : all[0]->arrivals)
        std::fprintf(f, "%lld %lld\n", static_cast<long long>(t), static_cast<long long>(at));
      std::fclose(f);
    }
  }
  std::vector<double> lat;
  for (auto& c : all) lat.insert(lat.end(), c->latencies_ms.begin(), c->latencies_ms.end());
  const size_t samples = lat.size();
  const double p50 = percentile(lat, 50), p99 = percentile(lat, 99), mx = lat.empty() ? 0 : lat.back();
  std::printf(
      "{\"connected\": %d, \"messages\": %llu, \"seconds\": %.2f, \"msgs_per_s\": %.0f, \"latency_samples\": "
      "%zu, "
      "\"latency_p50_ms\": %.2f, \"latency_p99_ms\": %.2f, \"latency_max_ms\": %.2f, \"dropped\": %d, "
      "\"closed\": %d}\n",
      stats.connected.load(), static_cast<unsigned long long>(m1 - m0), took, (m1 - m0) / took, samples, p50,
      p99, mx, stats.dropped.load(), stats.closed.load());
  return 0;
}
