// The access log, written the way nginx writes its own: each I/O thread formats its lines straight into
// its own buffer (no allocation, lock or queue per line), and the buffer goes out with one write(2) of whole
// lines when the next line does not fit, on a timer, and at exit.
//   auto sink = log::FileSink::open("/var/log/cdx/access.log");   // or FileSink::standard_output()
//   log::AccessBuffer buffer(*sink);  buffer.append(line);  …  buffer.flush();
#pragma once
#include <atomic>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace cdx::log {

// Where blocks of whole lines go. write() may be called from any thread; two blocks never interleave.
class AccessSink {
 public:
  virtual ~AccessSink() = default;
  virtual void write(std::string_view block) = 0;
};

// A file opened O_APPEND (several processes may share it: each block is one append), or standard output.
// A file is reopened at the next write after reopen() — SIGHUP calls it once install_reopen_on_sighup()
// ran — so a rotated log is let go of.
class FileSink final : public AccessSink {
 public:
  static std::unique_ptr<FileSink> standard_output();
  static std::unique_ptr<FileSink> open(const std::string& path);  // throws std::system_error
  ~FileSink() override;

  void write(std::string_view block) override;
  void reopen() { reopen_.store(true, std::memory_order_relaxed); }
  // Blocks lost to write errors (a full disk, a closed pipe): counted, never retried.
  uint64_t failed_blocks() const { return failed_.load(std::memory_order_relaxed); }
  // SIGHUP (log rotation) reopens this sink instead of ending the process.
  void install_reopen_on_sighup();

 private:
  FileSink(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  std::mutex mutex_;  // one block at a time, written in full (a pipe may take a large block in parts)
  int fd_;
  std::string path_;  // empty: standard output, never reopened or closed
  std::atomic<bool> reopen_{false};
  std::atomic<uint64_t> failed_{0};
};

// One request's line. The views must outlive append(); none is escaped but the path.
struct AccessLine {
  std::string_view method, path, request_id, remote, principal, tenant_id, trace_id;
  int status = 0;
  int64_t duration_ns = 0;
  timespec time{};  // wall clock (CLOCK_REALTIME) of the answer
};

// A bound on the bytes format_access_line writes for `line`.
size_t max_access_line(const AccessLine& line);
// Writes `line` as one JSON object and a newline at `out` (room for max_access_line bytes); answers the end.
// {"ts":"2026-11-25T01:41:28.123Z","type":"access","method":"GET","path":"/health","status":200,
//  "duration_ms":0.042,"request_id":"…","remote":"127.0.0.1"[,"principal":…,"tenant_id":…,"trace_id":…]}
char* format_access_line(char* out, const AccessLine& line);
// RFC 3339 UTC with milliseconds, 24 characters ("2026-11-25T01:41:28.123Z"); the date and time of day
// are formatted once a second per thread.
char* format_ts(char* out, const timespec& t);

// One I/O thread's buffer. Not thread-safe: it belongs to the thread that appends to it.
class AccessBuffer {
 public:
  static constexpr size_t kCapacity = 64 * 1024;
  explicit AccessBuffer(AccessSink& sink, size_t capacity = kCapacity);
  ~AccessBuffer();  // flushes
  AccessBuffer(const AccessBuffer&) = delete;
  AccessBuffer& operator=(const AccessBuffer&) = delete;

  void append(const AccessLine& line);
  // Room for a line of at most n bytes: what the buffer holds is written first when it lacks the room
  // (a line longer than the capacity gets a buffer of its own). Finish the line with commit().
  char* reserve(size_t n);
  void commit(const char* line_end) { size_ = static_cast<size_t>(line_end - data_.data()); }
  void flush();
  size_t pending() const { return size_; }

 private:
  AccessSink& sink_;
  size_t capacity_;
  std::vector<char> data_;
  size_t size_ = 0;
};

}  // namespace cdx::log
