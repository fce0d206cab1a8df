#include "common/validate.hpp"

#include <algorithm>

namespace cdx {

bool valid_email(std::string_view e) {
  if (e.size() < 3 || e.size() > 254) return false;
  const size_t at = e.find('@');
  if (at == std::string_view::npos || at == 0 || at > 64 || e.find('@', at + 1) != std::string_view::npos)
    return false;
  std::string_view domain = e.substr(at + 1);
  if (domain.size() < 3 || domain.find('.') == std::string_view::npos || domain.front() == '.' ||
      domain.back() == '.' || domain.find("..") != std::string_view::npos)
    return false;
  return std::none_of(e.begin(), e.end(), [](char c) {
    return static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '(' || c == ')' || c == ',' || c == ':' ||
           c == ';' || c == '<' || c == '>' || c == '[' || c == ']' || c == '\\';
  });
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace cdx
