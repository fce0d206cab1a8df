#include "http/middleware.hpp"

namespace cdx::http {

namespace {

Task<void> call_sync(const Route& route, Context& ctx) {
  route.sync_handler(ctx);
  co_return;
}

}  // namespace

Task<void> Step::run(Context& ctx, const Route& route, Next next) const {
  check(ctx, route);
  co_await next(ctx);
}

// Runs the steps that do not wait inline, then either hands over to the next one that may wait (its own
// coroutine, which continues the chain) or calls the handler.
Task<void> Next::operator()(Context& ctx) const {
  const auto& steps = chain_.steps_;
  size_t i = index_;
  for (; i < steps.size() && !steps[i]->waits(); ++i) steps[i]->check(ctx, route_);
  if (i < steps.size()) return steps[i]->run(ctx, route_, Next(chain_, i + 1, route_));
  if (route_.sync_handler) return call_sync(route_, ctx);
  return route_.async_handler(ctx);
}

std::vector<std::string_view> Chain::names() const {
  std::vector<std::string_view> out;
  for (const Step* s : steps_) out.push_back(s->name());
  return out;
}

}  // namespace cdx::http
