// Outgoing email: SMTP through libcurl when CDX_SMTP_URL is set, otherwise the log (with a warning).
// send() blocks on the network: call it from a worker, never an I/O thread.
//   auto mailer = make_mailer(config.smtp_url, config.smtp_from);
//   mailer->send({"ann@acme.com", "Reset your password", "Open https://…"});
#pragma once
#include <memory>
#include <string>

namespace cdx {

struct Mail {
  std::string to;
  std::string subject;
  std::string text;
};

class Mailer {
 public:
  virtual ~Mailer() = default;
  virtual void send(const Mail& mail) = 0;  // throws std::runtime_error when the server refuses it
};

// smtp_url: smtp://host:port or smtps://user:pass@host:port; empty → a mailer that logs.
std::unique_ptr<Mailer> make_mailer(const std::string& smtp_url, const std::string& from);

}  // namespace cdx
