// The live feed's hub (GET /api/v1/events/stream): events from the log and service status changes fanned
// out to every connected client. Each message is serialised once into an SSE frame shared by every client
// it goes to; each client has a bounded queue (messages and bytes) and is dropped, rather than buffered
// without bound, when it cannot keep up.
//   auto client = hub.subscribe({.filter = f, .wake = [&] { post_to_my_thread(); }});
//   hub.publish(batch);  …  client->take(frames);   // on the client's own thread
#pragma once
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "core/event_feed.hpp"

namespace cdx::core {

// One SSE message as written to the wire, shared by every client it goes to.
struct StreamFrame {
  int64_t seq = 0;  // the event's seq in the log; 0 for a message that is not in it (service.*)
  std::string text;
};
using Frame = std::shared_ptr<const StreamFrame>;

struct StreamLimits {
  size_t max_messages = 4096;  // waiting in one client's queue
  size_t max_bytes = 4 << 20;  // the frames a client's queue holds (shared with other clients)
};

// The live feed's settings (common/config: sse_heartbeat_ms, sse_queue_messages, sse_queue_bytes).
struct StreamSettings {
  StreamLimits limits;
  std::chrono::milliseconds heartbeat{15'000};
};
StreamSettings stream_settings(const Config& config);

class EventStreamHub {
 public:
  // One connected client: the queue its connection drains.
  class Client {
   public:
    // Appends the waiting frames to out and empties the queue. Answers false once the client was dropped
    // (its queue overflowed); drop_reason() says why.
    bool take(std::vector<Frame>& out);
    std::string drop_reason() const;

   private:
    friend class EventStreamHub;
    // Under mu_: queues f if the filter takes it; false when this overflows the queue.
    bool offer(const Frame& f, size_t max_messages, size_t max_bytes);

    EventFilter filter_;
    bool service_events_ = false;
    std::function<void()> wake_;
    mutable std::mutex mu_;
    std::deque<Frame> queue_;
    size_t bytes_ = 0;
    bool dropped_ = false;
    bool closed_ = false;  // unsubscribed: wake_ is never called again
    std::string reason_;
  };

  struct Subscription {
    EventFilter filter;
    bool service_events = false;  // service.* messages (the SUPERADMIN's)
    // Called on the publishing thread when frames arrive on an empty queue, or when the client is dropped.
    // Must not block: post to the client's own thread. Never called after unsubscribe() returns.
    std::function<void()> wake;
  };

  explicit EventStreamHub(StreamLimits limits = {}) : limits_(limits) {}

  std::shared_ptr<Client> subscribe(Subscription s);
  void unsubscribe(const std::shared_ptr<Client>& c);

  // Events of the log, in seq order (the EventFeed's live subscriber).
  void publish(const std::vector<LoggedEvent>& batch);
  // A message outside the log (service.down, service.up, service.status): no id line, so it does not move
  // a client's Last-Event-ID; for clients subscribed with service_events only.
  void publish_service(std::string_view type, const nlohmann::json& data);

  // The frame of one event: "id: <seq>\nevent: <type>\ndata: <GET /api/v1/events JSON>\n\n".
  static std::string frame_text(const LoggedEvent& e);
  static std::string frame_text(std::string_view type, const nlohmann::json& data, int64_t seq = 0);

  // For /metrics (cdx_sse_clients, cdx_sse_dropped_total).
  size_t clients() const;
  uint64_t dropped_total() const { return dropped_total_.load(std::memory_order_relaxed); }

 private:
  using Clients = std::vector<std::shared_ptr<Client>>;
  std::shared_ptr<const Clients> snapshot() const;
  // Offers frames (each with the event it came from, or nullptr for a service message of service_type) to
  // every client; an event's frame is serialised when a first client takes it.
  void fan_out(std::vector<std::pair<const LoggedEvent*, Frame>>& frames,
               std::optional<std::string_view> service_type);

  StreamLimits limits_;
  mutable std::mutex mu_;  // guards clients_ (copy on write: publishing never holds it long)
  std::shared_ptr<const Clients> clients_ = std::make_shared<Clients>();
  std::atomic<uint64_t> dropped_total_{0};
};

}  // namespace cdx::core
