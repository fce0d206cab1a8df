#include "common/access_log.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>

#include <unistd.h>

namespace cdx::log {
namespace {

// Records every block it is given.
class RecordingSink final : public AccessSink {
 public:
  void write(std::string_view block) override { blocks.emplace_back(block); }
  std::string all() const {
    std::string out;
    for (const auto& b : blocks) out += b;
    return out;
  }
  std::vector<std::string> blocks;
};

AccessLine sample(std::string_view path = "/health", std::string_view request_id = "abc-1") {
  AccessLine l;
  l.method = "GET";
  l.path = path;
  l.status = 200;
  l.duration_ns = 1'234'567;
  l.request_id = request_id;
  l.remote = "127.0.0.1";
  l.time = {1795657288, 123'456'789};  // 2026-11-26T01:41:28.123Z
  return l;
}

std::string format(const AccessLine& l) {
  std::string out(max_access_line(l), '\0');
  out.resize(static_cast<size_t>(format_access_line(out.data(), l) - out.data()));
  return out;
}

std::string temp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("cdx-access-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto p = dir / name;
  std::filesystem::remove(p);
  return p.string();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(AccessLogFormat, TimestampIsRfc3339UtcWithMilliseconds) {
  char buf[32];
  char* end = format_ts(buf, {0, 5'999'999});
  EXPECT_EQ(std::string(buf, end), "1970-01-01T00:00:00.005Z");
  end = format_ts(buf, {1795657288, 123'456'789});
  EXPECT_EQ(std::string(buf, end), "2026-11-26T01:41:28.123Z");
  // The cached second is rebuilt when the second changes, and only the milliseconds when it does not.
  end = format_ts(buf, {1795657289, 999'999'999});
  EXPECT_EQ(std::string(buf, end), "2026-11-26T01:41:29.999Z");
  end = format_ts(buf, {1795657289, 1'000'000});
  EXPECT_EQ(std::string(buf, end), "2026-11-26T01:41:29.001Z");
}

TEST(AccessLogFormat, LineIsOneJsonObjectWithEveryField) {
  AccessLine l = sample();
  l.principal = "key_1";
  l.tenant_id = "t_1";
  l.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string line = format(l);
  ASSERT_EQ(line.back(), '\n');
  ASSERT_EQ(line.find('\n'), line.size() - 1);
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["ts"], "2026-11-26T01:41:28.123Z");
  EXPECT_EQ(j["type"], "access");
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["path"], "/health");
  EXPECT_EQ(j["status"], 200);
  EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 1.234);
  EXPECT_EQ(j["request_id"], "abc-1");
  EXPECT_EQ(j["remote"], "127.0.0.1");
  EXPECT_EQ(j["principal"], "key_1");
  EXPECT_EQ(j["tenant_id"], "t_1");
  EXPECT_EQ(j["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(line.rfind(R"({"ts":")", 0), 0u) << "ts leads the line";
}

TEST(AccessLogFormat, OptionalFieldsAreLeftOutAndDurationsKeepMicroseconds) {
  AccessLine l = sample();
  l.duration_ns = 42'000;  // 42 µs
  auto j = nlohmann::json::parse(format(l));
  EXPECT_FALSE(j.contains("principal"));
  EXPECT_FALSE(j.contains("tenant_id"));
  EXPECT_FALSE(j.contains("trace_id"));
  EXPECT_NE(format(l).find(R"("duration_ms":0.042,)"), std::string::npos) << format(l);
  l.duration_ns = 12'345'678'901;  // 12.3 s
  EXPECT_NE(format(l).find(R"("duration_ms":12345.678,)"), std::string::npos) << format(l);
}

TEST(AccessLogFormat, HostileTextIsEscapedAndTheBoundHolds) {
  const std::string path = std::string("/a\"b\\c\n\x01\x7f\xff") + std::string(500, '"');
  const AccessLine l = sample(path, "id\"\n");
  const std::string line = format(l);
  EXPECT_LE(line.size(), max_access_line(l));
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["path"].get<std::string>().substr(0, 7), "/a\"b\\c\n");
  EXPECT_EQ(j["request_id"], "id\"\n");
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one physical line";
}

TEST(AccessBuffer, WritesNothingUntilFullThenWholeLinesOnly) {
  RecordingSink sink;
  const size_t capacity = 4096;
  std::string expected;
  {
    AccessBuffer buffer(sink, capacity);
    const size_t one = format(sample()).size();
    const size_t fit = capacity / max_access_line(sample());
    for (size_t i = 0; i < fit; ++i) {
      buffer.append(sample());
      expected += format(sample());
    }
    EXPECT_TRUE(sink.blocks.empty()) << "lines stay in the buffer while there is room";
    EXPECT_EQ(buffer.pending(), fit * one);
    for (int i = 0; i < 200; ++i) {
      const std::string id = "req-" + std::to_string(i);
      buffer.append(sample("/api/v1/things", id));
      expected += format(sample("/api/v1/things", id));
    }
    ASSERT_GE(sink.blocks.size(), 2u);
    for (const auto& b : sink.blocks) {
      EXPECT_LE(b.size(), capacity);
      EXPECT_GT(b.size(), capacity / 2) << "blocks go out full, not line by line";
      EXPECT_EQ(b.back(), '\n') << "a block ends on a line boundary";
    }
  }  // the destructor writes what is left
  EXPECT_EQ(sink.all(), expected) << "every line, once, in order";
}

TEST(AccessBuffer, FlushWritesPendingLinesAndNothingWhenEmpty) {
  RecordingSink sink;
  AccessBuffer buffer(sink);
  buffer.flush();
  EXPECT_TRUE(sink.blocks.empty());
  buffer.append(sample());
  buffer.append(sample());
  buffer.flush();
  ASSERT_EQ(sink.blocks.size(), 1u);
  EXPECT_EQ(sink.blocks[0], format(sample()) + format(sample()));
  EXPECT_EQ(buffer.pending(), 0u);
}

TEST(AccessBuffer, ALineLongerThanTheBufferGoesOutAlone) {
  RecordingSink sink;
  AccessBuffer buffer(sink, 1024);
  buffer.append(sample());
  const std::string long_path = "/" + std::string(3000, 'x');
  buffer.append(sample(long_path));
  ASSERT_EQ(sink.blocks.size(), 1u) << "the short line went out first";
  EXPECT_EQ(sink.blocks[0], format(sample()));
  buffer.flush();
  ASSERT_EQ(sink.blocks.size(), 2u);
  EXPECT_EQ(sink.blocks[1], format(sample(long_path)));
  buffer.append(sample());
  buffer.flush();
  EXPECT_EQ(sink.blocks.back(), format(sample()));
}

TEST(FileSink, ThreadsAppendingToOneFileNeverInterleaveLines) {
  const std::string path = temp_path("threads.log");
  auto sink = FileSink::open(path);
  constexpr int kThreads = 4, kLines = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      AccessBuffer buffer(*sink, 8192);
      for (int i = 0; i < kLines; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        buffer.append(sample("/p", id));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::istringstream in(read_file(path));
  std::string line;
  std::vector<int> next(kThreads, 0);
  int count = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);  // throws on a torn line
    const std::string id = j["request_id"];
    const int t = std::stoi(id.substr(0, id.find('-')));
    EXPECT_EQ(std::stoi(id.substr(id.find('-') + 1)), next[t]++) << "a thread's lines stay in order";
    ++count;
  }
  EXPECT_EQ(count, kThreads * kLines);
  EXPECT_EQ(sink->failed_blocks(), 0u);
  std::filesystem::remove(path);
}

TEST(FileSink, AppendsToAnExistingFileAndReopensAfterRotation) {
  const std::string path = temp_path("rotate.log");
  {
    std::ofstream f(path);
    f << "earlier\n";
  }
  auto sink = FileSink::open(path);
  sink->write("one\n");
  std::filesystem::rename(path, path + ".1");
  sink->write("two\n");  // still the open (renamed) file
  sink->reopen();
  sink->write("three\n");
  EXPECT_EQ(read_file(path + ".1"), "earlier\none\ntwo\n");
  EXPECT_EQ(read_file(path), "three\n");
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".1");
}

TEST(FileSink, SighupAsksForTheReopen) {
  const std::string path = temp_path("hup.log");
  auto sink = FileSink::open(path);
  sink->install_reopen_on_sighup();
  std::filesystem::rename(path, path + ".1");
  ASSERT_EQ(std::raise(SIGHUP), 0);  // the process lives on
  sink->write("after\n");
  EXPECT_EQ(read_file(path), "after\n");
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".1");
}

TEST(FileSink, AFileThatCannotBeOpenedIsAnError) {
  EXPECT_THROW(FileSink::open("/nonexistent-dir-cdx/access.log"), std::system_error);
}

}  // namespace
}  // namespace cdx::log
