#include "common/mailer.hpp"

#include <curl/curl.h>

#include <cstring>
#include <stdexcept>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"

namespace cdx {

namespace {

// Header values come from users (names, subjects): strip CR/LF so they cannot add headers.
std::string header_safe(std::string s) {
  for (auto& c : s)
    if (c == '\r' || c == '\n') c = ' ';
  return s;
}

class LogMailer final : public Mailer {
 public:
  void send(const Mail& m) override {
    log::warn("no SMTP server configured (CDX_SMTP_URL): mail written to the log instead",
              {{"to", m.to}, {"subject", m.subject}, {"text", m.text}});
  }
};

class SmtpMailer final : public Mailer {
 public:
  SmtpMailer(std::string url, std::string from) : url_(std::move(url)), from_(std::move(from)) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
  }

  void send(const Mail& m) override {
    std::string message = "Date: " + format_rfc3339(Clock::now()) + "\r\nTo: <" + header_safe(m.to) +
                          ">\r\nFrom: <" + header_safe(from_) + ">\r\nMessage-ID: <" + new_uuid_v7() + "@cdx>\r\n" +
                          "Subject: " + header_safe(m.subject) +
                          "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
    // SMTP dot-stuffing is done by libcurl; normalise line ends to CRLF.
    for (size_t i = 0; i < m.text.size(); ++i) {
      if (m.text[i] == '\n' && (i == 0 || m.text[i - 1] != '\r')) message += '\r';
      message += m.text[i];
    }
    message += "\r\n";

    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) throw std::runtime_error("curl_easy_init failed");
    struct Reader {
      const std::string* data;
      size_t pos = 0;
    } reader{&message};
    curl_slist* rcpt = curl_slist_append(nullptr, ("<" + header_safe(m.to) + ">").c_str());
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> rcpt_guard(rcpt, curl_slist_free_all);
    curl_easy_setopt(curl.get(), CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_MAIL_FROM, ("<" + header_safe(from_) + ">").c_str());
    curl_easy_setopt(curl.get(), CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(curl.get(), CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
    curl_easy_setopt(curl.get(), CURLOPT_READDATA, &reader);
    curl_easy_setopt(curl.get(), CURLOPT_READFUNCTION, +[](char* buf, size_t size, size_t n, void* ud) -> size_t {
      auto* r = static_cast<Reader*>(ud);
      const size_t len = std::min(size * n, r->data->size() - r->pos);
      std::memcpy(buf, r->data->data() + r->pos, len);
      r->pos += len;
      return len;
    });
    const CURLcode rc = curl_easy_perform(curl.get());
    if (rc != CURLE_OK) throw std::runtime_error(std::string("SMTP delivery failed: ") + curl_easy_strerror(rc));
  }

 private:
  std::string url_;
  std::string from_;
};

}  // namespace

std::unique_ptr<Mailer> make_mailer(const std::string& smtp_url, const std::string& from) {
  if (smtp_url.empty()) return std::make_unique<LogMailer>();
  return std::make_unique<SmtpMailer>(smtp_url, from);
}

}  // namespace cdx
