#include "common/key_encryption.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/log.hpp"

namespace cdx {

namespace {

constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == KeyEncryption::kKeyBytes);

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string to_base64(const unsigned char* data, size_t n) {
  std::string out(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, n, sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool from_base64(std::string_view in, int variant, std::string& out) {
  out.assign(in.size() * 3 / 4 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), in.data(), in.size(),
                        nullptr, &len, &end, variant) != 0 ||
      end != in.data() + in.size())
    return false;
  out.resize(len);
  return true;
}

// The text of a key file, or ConfigError naming the setting.
std::string read_key_file(const std::string& setting, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("setting '" + setting + "': cannot read " + path + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
    log::warn("the key encryption key file can be read by other users; chmod 600 it",
              {{"setting", setting}, {"path", path}});
  return text.str();
}

std::string decoded_or_fail(const std::string& setting, std::string_view text) {
  auto raw = decode_kek(text);
  if (!raw)
    throw ConfigError("setting '" + setting +
                      "': expected 32 bytes as base64 (openssl rand -base64 32) or as 64 hex digits");
  return std::move(*raw);
}

// The raw key of a setting pair (value or file); nullopt when neither is set.
std::optional<std::string> key_of(const std::string& value, const std::string& file,
                                  const std::string& value_key, const std::string& file_key) {
  if (!value.empty()) return decoded_or_fail(value_key, value);
  if (!file.empty()) return decoded_or_fail(file_key, read_key_file(file_key, file));
  return std::nullopt;
}

// --demo: the key kept in the data directory, generated the first time.
std::string demo_key(const Config& config) {
  const std::string path = demo_kek_path(config);
  std::error_code ec;
  if (std::filesystem::exists(path, ec))
    return decoded_or_fail("kek_file (the demo key " + path + ")", read_key_file("kek_file", path));
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  unsigned char raw[KeyEncryption::kKeyBytes];
  randombytes_buf(raw, sizeof raw);
  const std::string text = to_base64(raw, sizeof raw) + "\n";
  sodium_memzero(raw, sizeof raw);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::fsync(fd) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    throw ConfigError("--demo cannot write its key encryption key to " + path + ": " + why);
  }
  ::close(fd);
  log::warn(
      "DEMO MODE: generated a key encryption key at " + path +
          "; the token signing keys are sealed with it. Anyone who can read the data directory can read "
          "them. Never run --demo in production: give the server its own key (CDX_KEK_FILE or CDX_KEK).",
      {{"path", path}});
  return *decode_kek(text);
}

}  // namespace

std::optional<std::string> decode_kek(std::string_view text) {
  text = trimmed(text);
  std::string out;
  if (text.size() == 2 * KeyEncryption::kKeyBytes) {
    out.assign(KeyEncryption::kKeyBytes, '\0');
    size_t len = 0;
    const char* end = nullptr;
    if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(),
                       nullptr, &len, &end) == 0 &&
        end == text.data() + text.size() && len == KeyEncryption::kKeyBytes)
      return out;
  }
  // libsodium reads 0xff as a digit (a signed char compare): only the base64 alphabets get through.
  for (char c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '-' && c != '_' &&
        c != '=')
      return std::nullopt;
  for (int variant : {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                      sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING})
    if (from_base64(text, variant, out) && out.size() == KeyEncryption::kKeyBytes) return out;
  return std::nullopt;
}

std::string demo_kek_path(const Config& config) {
  return std::filesystem::absolute(std::filesystem::path(config.data_dir) / "kek")
      .lexically_normal()
      .string();
}

KeyEncryption KeyEncryption::load(const Config& config) {
  std::optional<std::string> current = key_of(config.kek, config.kek_file, "kek", "kek_file");
  std::optional<std::string> previous =
      key_of(config.kek_previous, config.kek_previous_file, "kek_previous", "kek_previous_file");
  if (!current) {
    if (previous) throw ConfigError("setting 'kek_previous' needs 'kek' too (the key to re-seal under)");
    if (config.demo) {
      current = demo_key(config);
    } else {
      std::string hint;
      std::error_code ec;
      if (std::filesystem::exists(demo_kek_path(config), ec))
        hint = " (a --demo run left its key at " + demo_kek_path(config) +
               ": CDX_KEK_FILE=" + demo_kek_path(config) + " keeps using it)";
      throw ConfigError(
          "no key encryption key: the token signing keys are stored sealed with one. Set CDX_KEK_FILE to a "
          "file "
          "holding 32 random bytes as base64 (openssl rand -base64 32 > kek; chmod 600 kek), or CDX_KEK to "
          "that "
          "text; --demo generates one" +
          hint);
    }
  }
  KeyEncryption out(*current, previous ? std::optional<std::string_view>(*previous) : std::nullopt);
  sodium_memzero(current->data(), current->size());
  if (previous) sodium_memzero(previous->data(), previous->size());
  return out;
}

KeyEncryption::Key KeyEncryption::make_key(std::string_view raw) {
  if (raw.size() != kKeyBytes) throw ConfigError("a key encryption key must be 32 bytes");
  Key k;
  std::memcpy(k.bytes.data(), raw.data(), kKeyBytes);
  // The id is a keyed hash's first 8 bytes: it names the key without telling anything about it.
  unsigned char digest[8];
  static constexpr unsigned char kLabel[] = "cdx key encryption key id";
  crypto_generichash(digest, sizeof digest, kLabel, sizeof kLabel - 1, k.bytes.data(), k.bytes.size());
  char hex[2 * sizeof digest + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  k.id = hex;
  return k;
}

KeyEncryption::KeyEncryption(std::string_view current, std::optional<std::string_view> previous)
    : current_(make_key(current)) {
  if (previous) previous_ = make_key(*previous);
  if (previous_ && previous_->id == current_.id) previous_.reset();  // the same key twice
}

KeyEncryption::~KeyEncryption() {
  sodium_memzero(current_.bytes.data(), current_.bytes.size());
  if (previous_) sodium_memzero(previous_->bytes.data(), previous_->bytes.size());
}

KeyEncryption::KeyEncryption(KeyEncryption&& other) noexcept
    : current_(other.current_), previous_(other.previous_) {
  sodium_memzero(other.current_.bytes.data(), other.current_.bytes.size());
  if (other.previous_) sodium_memzero(other.previous_->bytes.data(), other.previous_->bytes.size());
}

const KeyEncryption::Key* KeyEncryption::find(const std::string& kek_id) const {
  if (kek_id == current_.id) return &current_;
  if (previous_ && kek_id == previous_->id) return &*previous_;
  return nullptr;
}

std::string KeyEncryption::describe() const {
  return previous_ ? current_.id + " (kek_previous " + previous_->id + ")" : current_.id;
}

Sealed KeyEncryption::seal(std::string_view secret, std::string_view name) const {
  std::vector<unsigned char> out(kNonce + secret.size() + kTag);
  randombytes_buf(out.data(), kNonce);
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      out.data() + kNonce, &len, reinterpret_cast<const unsigned char*>(secret.data()), secret.size(),
      reinterpret_cast<const unsigned char*>(name.data()), name.size(), nullptr, out.data(),
      current_.bytes.data());
  return {current_.id, to_base64(out.data(), kNonce + static_cast<size_t>(len))};
}

std::string KeyEncryption::open(const Sealed& sealed, std::string_view name) const {
  const Key* key = find(sealed.kek_id);
  if (!key)
    throw KekError(
        "the stored secret '" + std::string(name) + "' is sealed with key encryption key " + sealed.kek_id +
        ", which is not the configured one (" + describe() +
        "). Start with the key it was sealed with; to move to a new key, give the new one as kek and the "
        "old one as kek_previous");
  std::string raw;
  if (!from_base64(sealed.text, sodium_base64_VARIANT_ORIGINAL, raw) || raw.size() < kNonce + kTag)
    throw KekError("the stored secret '" + std::string(name) +
                   "' is not a sealed value (the stored text is damaged)");
  std::string out(raw.size() - kNonce - kTag, '\0');
  unsigned long long len = 0;
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(out.data()), &len, nullptr, bytes + kNonce, raw.size() - kNonce,
          reinterpret_cast<const unsigned char*>(name.data()), name.size(), bytes, key->bytes.data()) != 0)
    throw KekError("the stored secret '" + std::string(name) + "' does not open with key encryption key " +
                   key->id + ": the stored value was altered or belongs to another row");
  out.resize(static_cast<size_t>(len));
  return out;
}

}  // namespace cdx
