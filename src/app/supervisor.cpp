#include "app/supervisor.hpp"

#include "app/modules.hpp"

#include <sodium.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>
#include <vector>

#include "app/platform.hpp"
#include "common/key_encryption.hpp"
#include "common/log.hpp"

namespace cdx::app {

namespace {

using SteadyClock = std::chrono::steady_clock;

struct Child {
  std::string name;
  int port = 0;
  std::vector<std::string> args;
  pid_t pid = -1;
  SteadyClock::time_point started{};
  SteadyClock::time_point restart_at{};
  std::chrono::milliseconds backoff{250};
};

std::string self_exe() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw std::runtime_error("cannot find the cdx executable (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

pid_t spawn(const std::string& exe, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec: a child dies with its supervisor, and starts with the
    // signal mask main() set for its own threads cleared.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

int run_constellation(Config config, const std::map<std::string, std::string>& flags,
                      const std::string& config_file) {
  if (config.internal_secret.empty()) {
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    config.internal_secret = hex;
  }
  // Children read the secret from the environment, never from their command line (visible in ps).
  ::setenv("CDX_INTERNAL_SECRET", config.internal_secret.c_str(), 1);
  const std::string public_url = config.public_url.empty()
                                     ? "http://" + config.host + ":" + std::to_string(config.port_base)
                                     : config.public_url;

  // Schema, bootstrap superadmin and demo data once, before any service starts.
  {
    Config once = config;
    once.module.clear();
    once.public_url = public_url;
    Platform platform(once);
    platform.migrate();
    platform.start();
  }
  // The key encryption key reaches the auth service through the environment too (never its command line),
  // and with --demo (which the services do not get) the key that start() found or generated.
  if (!config.kek.empty()) ::setenv("CDX_KEK", config.kek.c_str(), 1);
  if (!config.kek_previous.empty()) ::setenv("CDX_KEK_PREVIOUS", config.kek_previous.c_str(), 1);
  if (config.demo && config.kek.empty() && config.kek_file.empty())
    ::setenv("CDX_KEK_FILE", demo_kek_path(config).c_str(), 1);

  const std::string exe = self_exe();
  std::vector<Child> children;
  std::vector<std::string> names;
  for (const ModuleSpec& m : modules()) names.emplace_back(m.name);
  names.emplace_back("gateway");  // last: it proxies to the others
  for (const std::string& name : names) {
    Child c;
    c.name = name;
    c.port = config.port_base + service_port_offset(name);
    c.args = {"serve"};
    if (!config_file.empty()) {
      c.args.push_back("--config");
      c.args.push_back(std::filesystem::absolute(config_file).string());
    }
    for (const auto& [key, value] : flags) {
      if (key == "module" || key == "port" || key == "port_base" || key == "public_url" || key == "demo" ||
          key == "internal_secret" || key == "bootstrap_superadmin" || key == "kek" || key == "kek_previous")
        continue;
      std::string flag = "--" + key;
      std::replace(flag.begin(), flag.end(), '_', '-');
      c.args.push_back(flag);
      c.args.push_back(value);
    }
    for (const std::string& a : {std::string("--module"), std::string(name), std::string("--port"),
                                 std::to_string(c.port), std::string("--port-base"),
                                 std::to_string(config.port_base), std::string("--public-url"), public_url})
      c.args.push_back(a);
    children.push_back(std::move(c));
  }

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  for (auto& c : children) {
    c.pid = spawn(exe, c.args);
    c.started = SteadyClock::now();
    log::info("service started", {{"service", c.name}, {"pid", c.pid}, {"port", c.port}});
  }
  log::info("constellation up", {{"url", public_url}, {"services", children.size()}});

  bool stopping = false, services_signalled = false;
  SteadyClock::time_point stop_deadline{};
  for (;;) {
    timespec wait{0, 100'000'000};
    siginfo_t info;
    const int sig = ::sigtimedwait(&set, &info, &wait);
    if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
      // The gateway drains first, while the services behind it still answer its in-flight requests.
      stopping = true;
      stop_deadline = SteadyClock::now() + std::chrono::seconds(15);
      log::info("stopping the constellation", {{"signal", sig}});
      if (children.back().pid > 0) ::kill(children.back().pid, SIGTERM);
    }
    // Reap every child that exited.
    for (;;) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      for (auto& c : children) {
        if (c.pid != pid) continue;
        c.pid = -1;
        if (stopping) break;
        const auto lived = SteadyClock::now() - c.started;
        if (lived > std::chrono::seconds(30)) c.backoff = std::chrono::milliseconds(250);
        c.restart_at = SteadyClock::now() + c.backoff;
        log::error("service exited; restarting", {{"service", c.name},
                                                  {"status", WIFEXITED(status) ? WEXITSTATUS(status) : -1},
                                                  {"signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0},
                                                  {"restart_in_ms", c.backoff.count()}});
        c.backoff = std::min(c.backoff * 2, std::chrono::milliseconds(10'000));
      }
    }
    const auto now = SteadyClock::now();
    if (stopping) {
      const bool any =
          std::any_of(children.begin(), children.end(), [](const Child& c) { return c.pid > 0; });
      if (!any) break;
      if (children.back().pid <= 0 && !services_signalled) {
        services_signalled = true;
        for (auto& c : children)
          if (c.pid > 0) ::kill(c.pid, SIGTERM);
      }
      if (now >= stop_deadline) {
        for (auto& c : children)
          if (c.pid > 0) ::kill(c.pid, SIGKILL);
        stop_deadline = now + std::chrono::hours(1);
      }
      continue;
    }
    for (auto& c : children) {
      if (c.pid > 0 || now < c.restart_at) continue;
      c.pid = spawn(exe, c.args);
      c.started = now;
      log::info("service restarted", {{"service", c.name}, {"pid", c.pid}});
    }
  }
  log::info("constellation stopped");
  return 0;
}

}  // namespace cdx::app
