// cdx — the platform binary: serve | up | migrate | admin create-superadmin | admin rotate-keys | admin
// retire-keys | admin rotate-kek | admin rebuild-aggregates | version.
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>
#include <system_error>

#include "app/modules.hpp"
#include "app/platform.hpp"
#include "app/supervisor.hpp"
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
    cdx::Config config = cdx::load_config(given, config_file);
    if (!config.module.empty() && cdx::app::service_port_offset(config.module) < 0) {
      std::string names;
      for (const auto& n : cdx::app::service_names()) names += (names.empty() ? "" : ", ") + n;
      throw cdx::ConfigError("setting 'module': '" + config.module + "' is not one of " + names);
    }
    return config;
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
  auto* up = app.add_subcommand(
      "up", "Run the constellation: every module and the gateway as supervised processes (ports from --port-base)");
  add_setting_flags(*up, given, config_file);
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
  // Signing keys: rotate adds a new active key (old ones keep verifying), then retires keys that stopped
  // signing long enough ago that no token they signed is still valid.
  int64_t retire_after = -1;
  const std::string retire_help =
      "retire keys that stopped signing at least SECONDS ago (default: the access-token lifetime + 60)";
  auto* rotate_keys = admin->add_subcommand(
      "rotate-keys", "Add a new active token signing key; older keys keep verifying until they are retired");
  add_setting_flags(*rotate_keys, given, config_file);
  rotate_keys->add_option("--retire-after", retire_after, retire_help)->check(CLI::NonNegativeNumber);
  auto* retire_keys = admin->add_subcommand("retire-keys", "Retire signing keys that no valid token can still name");
  add_setting_flags(*retire_keys, given, config_file);
  retire_keys->add_option("--retire-after", retire_after, retire_help)->check(CLI::NonNegativeNumber);
  // The key encryption key: kek is the new one, kek_previous the one being replaced.
  auto* rotate_kek = admin->add_subcommand(
      "rotate-kek",
      "Re-seal the stored secrets under the key encryption key kek (what kek_previous sealed, and "
      "plain text of earlier versions)");
  add_setting_flags(*rotate_kek, given, config_file);
  auto* rebuild_aggregates = admin->add_subcommand(
      "rebuild-aggregates",
      "Recount every tenant's overview (GET /api/v1/tenants/{id}/overview) from the modules' own rows; exact "
      "when no write is in flight");
  add_setting_flags(*rebuild_aggregates, given, config_file);
  app.add_subcommand("version", "Print the version");

  CLI11_PARSE(app, argc, argv);

  if (app.got_subcommand("version")) {
    std::cout << "cdx " << CDX_VERSION << "\n";
    return 0;
  }

  // Only `serve` waits for signals; the other commands keep the default (Ctrl-C stops them).
  if (!serve->parsed() && !up->parsed()) pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  cdx::init_crypto();
  cdx::Config config = load(given, config_file);
  try {
    cdx::log::init(config.log_level, serve->parsed() && config.access_log, config.access_log_file);
  } catch (const std::system_error& e) {
    std::cerr << "cdx: " << e.what() << "\n";
    return 2;
  }
  // Only `serve` runs one service of a constellation; every other command works on all the databases.
  if (!serve->parsed()) config.module.clear();

  try {
    if (serve->parsed()) {
      cdx::app::Platform platform(config);
      platform.migrate();
      platform.start();
      return platform.serve();
    }
    if (up->parsed()) return cdx::app::run_constellation(config, given, config_file);
    if (migrate->parsed()) {
      cdx::app::Platform platform(config);
      platform.migrate();
      cdx::log::info("migrations applied");
      return 0;
    }
    if (rotate_keys->parsed() || retire_keys->parsed()) {
      cdx::app::Platform platform(config);
      platform.migrate();
      const auto done = platform.rotate_keys(rotate_keys->parsed(), retire_after >= 0
                                                                         ? std::optional<int64_t>(retire_after)
                                                                         : std::nullopt);
      if (!done.new_kid.empty())
        std::cout << "new signing key " << done.new_kid << " is active; older keys keep verifying their tokens\n";
      for (const auto& kid : done.retired) std::cout << "retired signing key " << kid << "\n";
      if (done.retired.empty()) std::cout << "no signing key to retire yet\n";
      std::cout << "a running server picks the change up within 5 seconds\n";
      return 0;
    }
    if (rotate_kek->parsed()) {
      cdx::app::Platform platform(config);
      platform.migrate();
      const auto [sealed, id] = platform.rotate_kek();
      if (sealed == 0)
        std::cout << "every stored secret is sealed with key encryption key " << id << " already\n";
      else
        std::cout << "sealed " << sealed << " stored secrets with key encryption key " << id << "\n";
      std::cout << "every stored secret is sealed with " << id
                << " now: start the servers with this key alone (drop kek_previous)\n";
      return 0;
    }
    if (rebuild_aggregates->parsed()) {
      cdx::app::Platform platform(config);
      platform.migrate();
      const auto [tenants, seq] = platform.rebuild_aggregates();
      std::cout << "rebuilt the overview of " << tenants << " tenant(s); the aggregates subscriber goes on "
                << "after event " << seq << "\n";
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
  } catch (const cdx::ConfigError& e) {
    // A missing or wrong key encryption key, found when the stored keys are opened.
    std::cerr << "cdx: configuration error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    cdx::log::error("fatal", {{"error", e.what()}});
    return 1;
  }
  return 0;
}
