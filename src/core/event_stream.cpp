#include "core/event_stream.hpp"

#include <fmt/format.h>

namespace cdx::core {

StreamSettings stream_settings(const Config& config) {
  StreamSettings s;
  s.heartbeat = std::chrono::milliseconds(config.sse_heartbeat_ms);
  s.limits.max_messages = static_cast<size_t>(config.sse_queue_messages);
  s.limits.max_bytes = static_cast<size_t>(config.sse_queue_bytes);
  return s;
}

bool EventStreamHub::Client::take(std::vector<Frame>& out) {
  std::lock_guard lock(mu_);
  if (dropped_) return false;
  for (auto& f : queue_) out.push_back(std::move(f));
  queue_.clear();
  bytes_ = 0;
  return true;
}

std::string EventStreamHub::Client::drop_reason() const {
  std::lock_guard lock(mu_);
  return reason_;
}

bool EventStreamHub::Client::offer(const Frame& f, size_t max_messages, size_t max_bytes) {
  if (queue_.size() + 1 > max_messages || bytes_ + f->text.size() > max_bytes) return false;
  bytes_ += f->text.size();
  queue_.push_back(f);
  return true;
}

std::shared_ptr<EventStreamHub::Client> EventStreamHub::subscribe(Subscription s) {
  auto c = std::make_shared<Client>();
  c->filter_ = std::move(s.filter);
  c->service_events_ = s.service_events;
  c->wake_ = std::move(s.wake);
  std::lock_guard lock(mu_);
  auto next = std::make_shared<Clients>(*clients_);
  next->push_back(c);
  clients_ = std::move(next);
  return c;
}

void EventStreamHub::unsubscribe(const std::shared_ptr<Client>& c) {
  if (!c) return;
  {
    std::lock_guard lock(mu_);
    auto next = std::make_shared<Clients>();
    next->reserve(clients_->size());
    for (const auto& x : *clients_)
      if (x != c) next->push_back(x);
    clients_ = std::move(next);
  }
  // A publish that took its snapshot before the line above may still offer to c: after this, it finds the
  // client closed and neither queues nor wakes.
  std::lock_guard lock(c->mu_);
  c->closed_ = true;
  c->queue_.clear();
  c->bytes_ = 0;
}

size_t EventStreamHub::clients() const { return snapshot()->size(); }

std::shared_ptr<const EventStreamHub::Clients> EventStreamHub::snapshot() const {
  std::lock_guard lock(mu_);
  return clients_;
}

std::string EventStreamHub::frame_text(const LoggedEvent& e) { return frame_text(e.type, to_json(e), e.seq); }

std::string EventStreamHub::frame_text(std::string_view type, const nlohmann::json& data, int64_t seq) {
  // dump() escapes newlines inside strings: the data is one line, as SSE requires.
  const std::string json = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (seq > 0) return fmt::format("id: {}\nevent: {}\ndata: {}\n\n", seq, type, json);
  return fmt::format("event: {}\ndata: {}\n\n", type, json);
}

void EventStreamHub::publish(const std::vector<LoggedEvent>& batch) {
  if (batch.empty()) return;
  std::vector<std::pair<const LoggedEvent*, Frame>> frames;
  frames.reserve(batch.size());
  for (const auto& e : batch) frames.emplace_back(&e, nullptr);  // serialised when a client first wants it
  fan_out(frames, std::nullopt);
}

void EventStreamHub::publish_service(std::string_view type, const nlohmann::json& data) {
  auto f = std::make_shared<StreamFrame>();
  f->text = frame_text(type, data);
  std::vector<std::pair<const LoggedEvent*, Frame>> frames{{nullptr, std::move(f)}};
  fan_out(frames, type);
}

void EventStreamHub::fan_out(std::vector<std::pair<const LoggedEvent*, Frame>>& frames,
                             std::optional<std::string_view> service_type) {
  const bool service = service_type.has_value();
  const auto clients = snapshot();
  if (clients->empty()) return;
  for (const auto& c : *clients) {
    if (service && !c->service_events_) continue;
    std::lock_guard lock(c->mu_);
    if (c->closed_ || c->dropped_) continue;
    const bool was_empty = c->queue_.empty();
    size_t added = 0;
    for (auto& [event, frame] : frames) {
      if (service ? !c->filter_.matches_type(*service_type) : !c->filter_.matches(*event)) continue;
      if (!frame) {
        auto f = std::make_shared<StreamFrame>();
        f->seq = event->seq;
        f->text = frame_text(*event);
        frame = std::move(f);
      }
      if (!c->offer(frame, limits_.max_messages, limits_.max_bytes)) {
        // The client cannot keep up: its queue goes, and its connection ends with a last message.
        c->dropped_ = true;
        c->reason_ = fmt::format(
            "The client did not keep up: {} messages ({} bytes) were waiting to be sent "
            "(limits {} messages, {} bytes).",
            c->queue_.size(), c->bytes_, limits_.max_messages, limits_.max_bytes);
        c->queue_.clear();
        c->bytes_ = 0;
        dropped_total_.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      ++added;
    }
    // Under the client's lock: unsubscribe() waits for it, so a wake never reaches a client that is gone.
    if (c->wake_ && (c->dropped_ || (was_empty && added > 0))) c->wake_();
  }
}

}  // namespace cdx::core
