// Test-only: a relay sink standing in for the event log. It records the batches it takes and each event's
// payload "n", and can be down for one call. Include from *_test.cpp / *_pgtest.cpp only.
//   db::testing::LogProbe log{.fail_call = 2};  relay.set_sink(log.sink());  relay.poll();
//   EXPECT_TRUE(log.saw_in_order(n));
#pragma once
#include <stdexcept>
#include <vector>

#include "db/outbox.hpp"

namespace cdx::db::testing {

struct LogProbe {
  int fail_call = 0;  // the call (counted from 1) that throws, as a log that is down would; 0: none
  int calls = 0;
  std::vector<size_t> batches;  // the sizes of the batches taken
  std::vector<int> seen;        // each taken event's payload "n", in the order taken

  OutboxRelay::Sink sink() {
    return [this](const std::vector<OutboxEvent>& events) {
      if (++calls == fail_call) throw std::runtime_error("event log down");
      batches.push_back(events.size());
      for (const auto& e : events) seen.push_back(nlohmann::json::parse(e.payload_text)["n"].get<int>());
    };
  }
  // Whether the events taken are 0, 1, …, n - 1: each once, in order.
  bool saw_in_order(int n) const {
    if (seen.size() != static_cast<size_t>(n)) return false;
    for (int i = 0; i < n; ++i)
      if (seen[i] != i) return false;
    return true;
  }
};

}  // namespace cdx::db::testing
