#include "http/middleware.hpp"

#include <stdexcept>

namespace cdx::http {

Task<void> Step::run(Context&, const Route&, Next) const {
  throw std::logic_error("the step '" + std::string(name()) + "' asked to wait but cannot");
}

// Runs inline what need not wait: the steps that answer at once for this request, and a synchronous handler.
// Hands over to the first step that waits (its own coroutine, which continues the chain) or to an async
// handler; so a request whose steps all answer from memory costs no coroutine frame beyond its waiting ones.
std::optional<Task<void>> Next::start(Context& ctx) const {
  const auto& steps = chain_.steps_;
  size_t i = index_;
  for (; i < steps.size(); ++i)
    if (!steps[i]->check(ctx, route_)) return steps[i]->run(ctx, route_, Next(chain_, i + 1, route_));
  if (route_.sync_handler) {
    route_.sync_handler(ctx);
    return std::nullopt;
  }
  if (route_.fast_handler && route_.fast_handler(ctx)) return std::nullopt;
  return route_.async_handler(ctx);
}

std::vector<std::string_view> Chain::names() const {
  std::vector<std::string_view> out;
  for (const Step* s : steps_) out.push_back(s->name());
  return out;
}

}  // namespace cdx::http
