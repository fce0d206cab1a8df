#include "common/access_log.hpp"

#include <array>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

namespace cdx::log {

namespace {

std::atomic<FileSink*> g_sighup_sink{nullptr};

void on_sighup(int) {
  // Async-signal-safe: a lock-free atomic load and a relaxed store, nothing else.
  if (FileSink* sink = g_sighup_sink.load(std::memory_order_relaxed)) sink->reopen();
}

int open_append(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

// Bytes that JSON text needs escaped here: quotes, backslashes, control characters and, to keep lines ASCII,
// everything outside it.
constexpr std::array<bool, 256> kEscaped = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = c < 0x20 || c >= 0x7f || c == '"' || c == '\\';
  return t;
}();

// JSON string contents, six bytes at most per input byte. Runs that need no escape (nearly every path) are
// copied whole.
char* escape(char* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const char* p = s.data();
  const char* const end = p + s.size();
  while (p < end) {
    const char* run = p;
    while (p < end && !kEscaped[static_cast<unsigned char>(*p)]) ++p;
    std::memcpy(out, run, static_cast<size_t>(p - run));
    out += p - run;
    if (p == end) break;
    const auto c = static_cast<unsigned char>(*p++);
    if (c == '"' || c == '\\') {
      *out++ = '\\';
      *out++ = static_cast<char>(c);
    } else {
      std::memcpy(out, "\\u00", 4);
      out[4] = kHex[c >> 4];
      out[5] = kHex[c & 15];
      out += 6;
    }
  }
  return out;
}

char* put(char* out, std::string_view s) {
  std::memcpy(out, s.data(), s.size());
  return out + s.size();
}

char* put_int(char* out, int64_t n) { return std::to_chars(out, out + 20, n).ptr; }

// Fixed text of a line: keys, quotes, braces and the newline.
constexpr size_t kLineOverhead = 256;

}  // namespace

std::unique_ptr<FileSink> FileSink::standard_output() { return std::unique_ptr<FileSink>(new FileSink(1, {})); }

std::unique_ptr<FileSink> FileSink::open(const std::string& path) {
  const int fd = open_append(path);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open access log " + path);
  return std::unique_ptr<FileSink>(new FileSink(fd, path));
}

FileSink::~FileSink() {
  FileSink* self = this;
  g_sighup_sink.compare_exchange_strong(self, nullptr);
  if (!path_.empty()) ::close(fd_);
}

void FileSink::install_reopen_on_sighup() {
  g_sighup_sink.store(this);
  struct sigaction sa {};
  sa.sa_handler = on_sighup;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGHUP, &sa, nullptr);
}

void FileSink::write(std::string_view block) {
  std::lock_guard lock(mutex_);
  if (reopen_.load(std::memory_order_relaxed) && reopen_.exchange(false) && !path_.empty()) {
    // The old file stays in use when the new one cannot be opened (a missing directory, say).
    if (const int fd = open_append(path_); fd >= 0) {
      ::close(fd_);
      fd_ = fd;
    }
  }
  const char* p = block.data();
  size_t left = block.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      failed_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

char* format_ts(char* out, const timespec& t) {
  thread_local time_t cached_second = -1;
  thread_local char cached[64];  // "2026-11-25T01:41:28" (room for any year snprintf could write)
  if (t.tv_sec != cached_second) {
    std::tm tm{};
    gmtime_r(&t.tv_sec, &tm);
    std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_second = t.tv_sec;
  }
  std::memcpy(out, cached, 19);
  const long ms = t.tv_nsec / 1'000'000;
  out[19] = '.';
  out[20] = static_cast<char>('0' + ms / 100);
  out[21] = static_cast<char>('0' + ms / 10 % 10);
  out[22] = static_cast<char>('0' + ms % 10);
  out[23] = 'Z';
  return out + 24;
}

size_t max_access_line(const AccessLine& l) {
  return kLineOverhead + l.method.size() +
         6 * (l.path.size() + l.request_id.size() + l.remote.size() + l.principal.size() + l.tenant_id.size() +
              l.trace_id.size());
}

char* format_access_line(char* out, const AccessLine& l) {
  out = put(out, R"({"ts":")");
  out = format_ts(out, l.time);
  out = put(out, R"(","type":"access","method":")");
  out = put(out, l.method);
  out = put(out, R"(","path":")");
  out = escape(out, l.path);
  out = put(out, R"(","status":)");
  out = put_int(out, l.status);
  // Milliseconds with three decimals, from whole microseconds: no floating point.
  const int64_t us = l.duration_ns > 0 ? l.duration_ns / 1000 : 0;
  out = put(out, R"(,"duration_ms":)");
  out = put_int(out, us / 1000);
  out[0] = '.';
  out[1] = static_cast<char>('0' + us % 1000 / 100);
  out[2] = static_cast<char>('0' + us % 100 / 10);
  out[3] = static_cast<char>('0' + us % 10);
  out += 4;
  out = put(out, R"(,"request_id":")");
  out = escape(out, l.request_id);
  out = put(out, R"(","remote":")");
  out = escape(out, l.remote);
  if (!l.principal.empty()) {
    out = put(out, R"(","principal":")");
    out = escape(out, l.principal);
  }
  if (!l.tenant_id.empty()) {
    out = put(out, R"(","tenant_id":")");
    out = escape(out, l.tenant_id);
  }
  if (!l.trace_id.empty()) {
    out = put(out, R"(","trace_id":")");
    out = escape(out, l.trace_id);
  }
  return put(out, "\"}\n");
}

AccessBuffer::AccessBuffer(AccessSink& sink, size_t capacity) : sink_(sink), capacity_(capacity), data_(capacity) {}

AccessBuffer::~AccessBuffer() { flush(); }

char* AccessBuffer::reserve(size_t n) {
  if (size_ + n > data_.size()) {
    flush();
    if (n > data_.size()) data_.resize(n);
  }
  return data_.data() + size_;
}

void AccessBuffer::append(const AccessLine& line) { commit(format_access_line(reserve(max_access_line(line)), line)); }

void AccessBuffer::flush() {
  if (size_ > 0) {
    sink_.write(std::string_view(data_.data(), size_));
    size_ = 0;
  }
  if (data_.size() > capacity_) {  // back to the usual size after a line that needed more
    data_.resize(capacity_);
    data_.shrink_to_fit();
  }
}

}  // namespace cdx::log
