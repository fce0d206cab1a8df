// The middleware chain: the per-request steps between the server's own (request id, limits) and the
// handler, in one declared order, the same in both topologies. A new cross-cutting rule is a new step.
//   Chain chain;
//   chain.add(credential).add(tenant).add(plan_gate).add(access);   // steps outlive the chain
//   if (auto rest = chain.start(ctx, route)) co_await std::move(*rest);  // the server, before a handler
#pragma once
#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)
#include "common/task.hpp"

#include <optional>
#include <string_view>
#include <vector>

#include "http/router.hpp"

namespace cdx::http {

class Chain;

// The rest of the chain after a step, then the route's handler.
class Next {
 public:
  Next(const Chain& chain, size_t index, const Route& route) : chain_(chain), index_(index), route_(route) {}
  // Runs what can run without waiting; answers what is left to await, if anything:
  //   if (auto rest = next.start(ctx)) co_await std::move(*rest);
  std::optional<Task<void>> start(Context& ctx) const;

 private:
  const Chain& chain_;
  size_t index_;
  const Route& route_;
};

class Step {
 public:
  virtual ~Step() = default;
  virtual std::string_view name() const = 0;
  // Does its part now and answers true (the chain goes on inline, with no coroutine frame), or answers
  // false when it must wait for this request (a cache miss: a lookup on a worker); the chain then awaits
  // run(), which does its part and continues with next.start(ctx). Throwing cdx::Error stops the request.
  virtual bool check(Context& ctx, const Route& route) const = 0;
  // Only steps whose check() can answer false override it.
  virtual Task<void> run(Context& ctx, const Route& route, Next next) const;
};

class Chain {
 public:
  Chain& add(const Step& step) {
    steps_.push_back(&step);
    return *this;
  }
  // The steps, then the handler; what is left to await, if anything (see Next::start).
  std::optional<Task<void>> start(Context& ctx, const Route& route) const { return Next(*this, 0, route).start(ctx); }
  std::vector<std::string_view> names() const;

 private:
  friend class Next;
  std::vector<const Step*> steps_;
};

// What earlier steps found, for later ones (the credential's limits, the tenant's state): typed by the
// steps that share them; reset with the request.
enum class StepSlot : size_t { kCredential = 0, kTenant = 1 };
template <class T>
std::shared_ptr<const T> slot(const Context& ctx, StepSlot s) {
  return std::static_pointer_cast<const T>(ctx.step_state[static_cast<size_t>(s)]);
}
template <class T>
const T* slot_ptr(const Context& ctx, StepSlot s) {
  return static_cast<const T*>(ctx.step_state[static_cast<size_t>(s)].get());
}
template <class T>
void set_slot(Context& ctx, StepSlot s, std::shared_ptr<const T> v) {
  ctx.step_state[static_cast<size_t>(s)] = std::move(v);
}

}  // namespace cdx::http
