// `cdx up`: the constellation topology. Migrates and seeds once in this process, then runs each service
// as a child process (`cdx serve --module NAME --port P`): core, auth, crm and the gateway in front.
// A child that dies is restarted with exponential backoff; SIGTERM or SIGINT stops them all gracefully.
//   return app::run_constellation(config, forwarded_flags, config_file);
#pragma once
#include <map>
#include <string>

#include "common/config.hpp"

namespace cdx::app {

// `flags`: the settings given on the command line, passed on to every child (minus the ones `up` decides).
// `config_file` (may be empty) is handed on to every child with the flags, so each reads the same settings.
int run_constellation(Config config, const std::map<std::string, std::string>& flags, const std::string& config_file);

}  // namespace cdx::app
