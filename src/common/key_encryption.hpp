// Secrets at rest: a key encryption key (KEK) given to the server seals the secrets it keeps in a database
// (token signing keys, the OAuth login form's key) with XChaCha20-Poly1305, the row's name as associated data
// so a sealed value cannot be moved to another row. Each sealed value names its KEK by id, so a new KEK can
// re-seal what an old one sealed (kek_previous), and a wrong KEK is named instead of failing obscurely.
//   const KeyEncryption keks = KeyEncryption::load(config);  // kek / kek_file (+ _previous); --demo makes
//   one Sealed s = keks.seal(pem, "signing_key/" + kid);           // {kek_id, text}: store both std::string
//   pem = keks.open(s, "signing_key/" + kid);      // KekError when it cannot
#pragma once
#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "common/config.hpp"

namespace cdx {

// A value sealed under one KEK: its id and base64 of nonce (24 bytes) followed by the ciphertext and tag.
struct Sealed {
  std::string kek_id;
  std::string text;
};

// A sealed value that no configured KEK opens (another KEK sealed it, or it was altered): configuration,
// so the start stops (exit code 2) with what() naming the KEK it needs.
class KekError : public ConfigError {
 public:
  using ConfigError::ConfigError;
};

class KeyEncryption {
 public:
  static constexpr size_t kKeyBytes = 32;

  // The KEK of the settings kek or kek_file, and kek_previous or kek_previous_file when given. Without one,
  // --demo uses (or first generates, with a loud warning) <data_dir>/kek; otherwise it throws ConfigError
  // saying how to give one.
  static KeyEncryption load(const Config& config);
  // From raw keys of kKeyBytes (tests, tools).
  KeyEncryption(std::string_view current, std::optional<std::string_view> previous = std::nullopt);
  ~KeyEncryption();
  KeyEncryption(const KeyEncryption&) = delete;
  KeyEncryption& operator=(const KeyEncryption&) = delete;
  KeyEncryption(KeyEncryption&&) noexcept;
  KeyEncryption& operator=(KeyEncryption&&) = delete;

  const std::string& id() const { return current_.id; }  // 16 hex digits, safe to log
  const std::string* previous_id() const { return previous_ ? &previous_->id : nullptr; }

  Sealed seal(std::string_view secret, std::string_view name) const;
  // Opens with the KEK the value names (current or previous). Throws KekError.
  std::string open(const Sealed& sealed, std::string_view name) const;
  // "<id>" or "<id> (kek_previous <id>)", for messages.
  std::string describe() const;

 private:
  struct Key {
    std::array<unsigned char, kKeyBytes> bytes{};
    std::string id;
  };
  static Key make_key(std::string_view raw);
  const Key* find(const std::string& kek_id) const;

  Key current_;
  std::optional<Key> previous_;
};

// Decodes a KEK as given in a setting or file: base64 (standard or URL-safe, padded or not) of 32 bytes, or
// 64 hex digits, surrounding whitespace ignored. nullopt when it is neither.
std::optional<std::string> decode_kek(std::string_view text);
// Where --demo keeps the key it generates: <data_dir>/kek.
std::string demo_kek_path(const Config& config);

}  // namespace cdx
