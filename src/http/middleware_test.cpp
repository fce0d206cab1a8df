// The middleware chain: steps run in their declared order, the ones that never wait inline, a throwing
// step stops the request before the handler, and slots carry what a step found to later ones.
#include "http/middleware.hpp"

#include <utility>  // before Asio's coroutine headers (GCC 12 + Boost 1.74)

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include "common/error.hpp"

namespace cdx::http {
namespace {

class Recording final : public Step {
 public:
  Recording(std::string name, std::vector<std::string>& log, bool waits = false, bool fail = false)
      : name_(std::move(name)), log_(log), waits_(waits), fail_(fail) {}
  std::string_view name() const override { return name_; }
  bool check(Context& ctx, const Route&) const override {
    if (waits_) return false;
    log_.push_back(name_);
    if (fail_) throw Error(Code::kForbidden, name_ + " refused");
    return true;
  }
  Task<void> run(Context& ctx, const Route& route, Next next) const override {
    log_.push_back(name_ + " before");
    set_slot(ctx, StepSlot::kTenant, std::make_shared<const std::string>(name_));
    if (auto rest = next.start(ctx)) co_await std::move(*rest);
    log_.push_back(name_ + " after");
  }

 private:
  std::string name_;
  std::vector<std::string>& log_;
  bool waits_, fail_;
};

// Runs the chain for one request on an io_context; answers the error code, or nullopt when it passed.
std::optional<Code> run(const Chain& chain, const Route& route, Context& ctx) {
  boost::asio::io_context io;
  auto whole = [&]() -> Task<void> {
    if (auto rest = chain.start(ctx, route)) co_await std::move(*rest);
  };
  auto done = boost::asio::co_spawn(io, whole(), boost::asio::use_future);
  io.run();
  try {
    done.get();
  } catch (const Error& e) {
    return e.code();
  }
  return std::nullopt;
}

TEST(Chain, RunsItsStepsInOrderThenTheHandler) {
  std::vector<std::string> log;
  Recording a("credential", log, true), b("suspension", log), c("tenant", log, true), d("access", log);
  Chain chain;
  chain.add(a).add(b).add(c).add(d);
  EXPECT_EQ(chain.names(), (std::vector<std::string_view>{"credential", "suspension", "tenant", "access"}));
  Route route;
  route.sync_handler = [&](Context& ctx) {
    log.push_back("handler sees " + *slot<std::string>(ctx, StepSlot::kTenant));
  };
  Context ctx;
  EXPECT_FALSE(run(chain, route, ctx));
  EXPECT_EQ(log, (std::vector<std::string>{"credential before", "suspension", "tenant before", "access",
                                           "handler sees tenant", "tenant after", "credential after"}));
}

TEST(Chain, AStepThatRefusesStopsTheRequestBeforeTheHandler) {
  std::vector<std::string> log;
  Recording a("credential", log, true), plan("plan", log, false, true), b("access", log);
  Chain chain;
  chain.add(a).add(plan).add(b);
  bool handled = false;
  Route route;
  route.async_handler = [&](Context&) -> Task<void> {
    handled = true;
    co_return;
  };
  Context ctx;
  EXPECT_EQ(run(chain, route, ctx), Code::kForbidden);
  EXPECT_FALSE(handled);
  EXPECT_EQ(log, (std::vector<std::string>{"credential before", "plan"}));
}

TEST(Chain, SlotsAreResetWithTheRequest) {
  Context ctx;
  set_slot(ctx, StepSlot::kCredential, std::make_shared<const int>(7));
  EXPECT_EQ(*slot_ptr<int>(ctx, StepSlot::kCredential), 7);
  ctx.reset();
  EXPECT_EQ(slot_ptr<int>(ctx, StepSlot::kCredential), nullptr);
}

}  // namespace
}  // namespace cdx::http
