// cdx — the platform binary: serve | migrate | admin create-superadmin | version.
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>

#include "app/platform.hpp"
#include "common/config.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"

namespace {

// Registers every setting as a flag on a subcommand; only flags actually given land in `given`.
void add_setting_flags(CLI::App& cmd, std::map<std::string, std::string>& given, std::string& config_file) {
  cmd.add_option("--config", config_file, "TOML configuration file")->envname("CDX_CONFIG");
  for (const auto& s : cdx::settings()) {
    std::string flag = "--" + s.key;
    for (auto& c : flag) c = c == '_' ? '-' : c;
    if (s.key == "demo") {
      cmd.add_flag_callback(flag, [&given] { given["demo"] = "true"; }, s.help + " (env " + s.env + ")");
      continue;
    }
    cmd.add_option_function<std::string>(
        flag, [&given, key = s.key](const std::string& v) { given[key] = v; }, s.help + " (env " + s.env + ")");
  }
}

cdx::Config load(const std::map<std::string, std::string>& given, const std::string& config_file) {
  try {
    return cdx::load_config(given, config_file);
  } catch (const cdx::ConfigError& e) {
    std::cerr << "cdx: configuration error: " << e.what() << "\n";
    std::exit(2);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Block termination signals before any thread exists, so only the serve loop's waiter receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"CDX Metatron — multi-tenant backend platform"};
  app.require_subcommand(1);
  std::map<std::string, std::string> given;
  std::string config_file;

  auto* serve = app.add_subcommand("serve", "Migrate and serve the platform over HTTP");
  add_setting_flags(*serve, given, config_file);
  auto* migrate = app.add_subcommand("migrate", "Apply database migrations and exit");
  add_setting_flags(*migrate, given, config_file);
  auto* admin = app.add_subcommand("admin", "Administration commands");
  admin->require_subcommand(1);
  auto* create_sa = admin->add_subcommand("create-superadmin", "Create a SUPERADMIN account");
  add_setting_flags(*create_sa, given, config_file);
  std::string username, password;
  bool password_stdin = false;
  create_sa->add_option("--username", username, "login name")->required();
  create_sa->add_option("--password", password, "password (prefer --password-stdin)")->envname("CDX_SUPERADMIN_PASSWORD");
  create_sa->add_flag("--password-stdin", password_stdin, "read the password from standard input");
  app.add_subcommand("version", "Print the version");

  CLI11_PARSE(app, argc, argv);

  if (app.got_subcommand("version")) {
    std::cout << "cdx " << CDX_VERSION << "\n";
    return 0;
  }

  // Only `serve` waits for signals; the other commands keep the default (Ctrl-C stops them).
  if (!serve->parsed()) pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  cdx::init_crypto();
  const cdx::Config config = load(given, config_file);
  cdx::log::init(config.log_level, serve->parsed() && config.access_log);

  try {
    if (serve->parsed()) {
      cdx::app::Platform platform(config);
      platform.migrate();
      platform.start();
      return platform.serve();
    }
    if (migrate->parsed()) {
      cdx::app::Platform platform(config);
      platform.migrate();
      cdx::log::info("migrations applied");
      return 0;
    }
    if (create_sa->parsed()) {
      if (password_stdin) std::getline(std::cin, password);
      if (password.size() < 6) {
        std::cerr << "cdx: the password must be at least 6 characters\n";
        return 2;
      }
      cdx::app::Platform platform(config);
      platform.migrate();
      if (!platform.create_superadmin(username, password)) {
        std::cerr << "cdx: a superadmin named '" << username << "' already exists\n";
        return 1;
      }
      std::cout << "superadmin '" << username << "' created\n";
      return 0;
    }
  } catch (const std::exception& e) {
    cdx::log::error("fatal", {{"error", e.what()}});
    return 1;
  }
  return 0;
}
