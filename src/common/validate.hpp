// Small shared validators for user input.
//   if (!valid_email(e)) in.fail("email", "must be a valid email address");
#pragma once
#include <string>
#include <string_view>

namespace cdx {

bool valid_email(std::string_view email);
std::string lowercase(std::string_view s);
// True when text is valid UTF-8 without NUL or other control characters, C0 or C1 (tab, newline and CR
// allowed when allow_newlines): what every stored text must be, on both databases.
bool clean_text(std::string_view text, bool allow_newlines);
size_t utf8_length(std::string_view s);  // characters of valid UTF-8
std::string trim(std::string_view s);    // without leading and trailing blanks (space, tab, CR, LF)
bool valid_uuid(std::string_view id);    // the shape of our ids: a lower-case UUID
bool valid_date(std::string_view date);  // YYYY-MM-DD, a real calendar day

// A redirect URI (https, or http on the loopback host; no fragment, user info or wildcard) and a browser
// origin (the same, scheme://host[:port] only): nullopt when acceptable, else what is wrong.
std::optional<std::string> redirect_uri_problem(std::string_view uri);
std::optional<std::string> origin_problem(std::string_view origin);

}  // namespace cdx
