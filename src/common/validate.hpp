// Small shared validators for user input.
//   if (!valid_email(e)) in.fail("email", "must be a valid email address");
#pragma once
#include <string>
#include <string_view>

namespace cdx {

bool valid_email(std::string_view email);
std::string lowercase(std::string_view s);

}  // namespace cdx
