// The authorization endpoint's server-rendered pages: the sign-in form and the error page shown when the
// request cannot be sent back to the client. Self-contained HTML (no scripts, no external resources), every
// value escaped.
#include "auth/oauth_service.hpp"

namespace cdx::auth {

namespace {

constexpr std::string_view kStyle = R"css(
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
  font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f4f6;color:#111827}
main{width:100%;max-width:380px;background:#fff;border-radius:12px;padding:32px;
  box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.06)}
h1{font-size:20px;margin:0 0 4px}
p.sub{margin:0 0 24px;color:#6b7280}
label{display:block;font-weight:600;margin:16px 0 6px}
input[type=email],input[type=password]{width:100%;padding:10px 12px;border:1px solid #d1d5db;border-radius:8px;font:inherit}
input:focus{outline:2px solid #2563eb;outline-offset:1px}
button{margin-top:24px;width:100%;padding:11px;border:0;border-radius:8px;background:#2563eb;color:#fff;
  font:inherit;font-weight:600;cursor:pointer}
.error{margin:0 0 8px;padding:10px 12px;border-radius:8px;background:#fef2f2;color:#991b1b}
footer{margin-top:24px;font-size:12px;color:#9ca3af;text-align:center}
)css";

std::string page(std::string_view title, std::string_view body) {
  std::string out;
  out.reserve(2048 + body.size());
  out += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
         "<meta name=\"referrer\" content=\"no-referrer\"><title>";
  out += html_escape(title);
  out += "</title><style>";
  out += kStyle;
  out += "</style></head><body><main>";
  out += body;
  out += "<footer>CDX Metatron</footer></main></body></html>\n";
  return out;
}

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string render_login_page(const LoginPage& p) {
  std::string body;
  body += "<h1>Sign in to ";
  body += html_escape(p.tenant_name);
  body += "</h1><p class=\"sub\">to continue to <strong>";
  body += html_escape(p.client_name);
  body += "</strong></p>";
  if (!p.error.empty()) {
    body += "<p class=\"error\" role=\"alert\">";
    body += html_escape(p.error);
    body += "</p>";
  }
  body += "<form method=\"post\" action=\"/oauth/authorize\" autocomplete=\"on\">";
  for (const auto& [name, value] : p.hidden) {
    body += "<input type=\"hidden\" name=\"";
    body += html_escape(name);
    body += "\" value=\"";
    body += html_escape(value);
    body += "\">";
  }
  body += "<label for=\"email\">Email</label><input id=\"email\" name=\"email\" type=\"email\" required "
          "autocomplete=\"username\" maxlength=\"254\" autofocus value=\"";
  body += html_escape(p.email);
  body += "\"><label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" "
          "required autocomplete=\"current-password\" maxlength=\"256\">"
          "<button type=\"submit\">Sign in</button></form>";
  return page("Sign in to " + p.tenant_name, body);
}

std::string render_error_page(std::string_view title, std::string_view detail) {
  std::string body = "<h1>";
  body += html_escape(title);
  body += "</h1><p class=\"sub\">";
  body += html_escape(detail);
  body += "</p><p>Return to the application and try again. If it keeps happening, tell the application's "
          "developers: its sign-in request is misconfigured.</p>";
  return page(title, body);
}

}  // namespace cdx::auth
