#include "common/key_encryption.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include "common/ids.hpp"

namespace cdx {
namespace {

std::string raw_key(char fill) { return std::string(KeyEncryption::kKeyBytes, fill); }

TEST(KeyEncryption, SealsAndOpensUnderTheRowsName) {
  init_crypto();
  const KeyEncryption kek(raw_key('a'));
  const Sealed s = kek.seal("-----BEGIN PRIVATE KEY-----", "signing_key:k1");
  EXPECT_EQ(s.kek_id, kek.id());
  EXPECT_EQ(s.text.find("PRIVATE"), std::string::npos);
  EXPECT_EQ(kek.open(s, "signing_key:k1"), "-----BEGIN PRIVATE KEY-----");
  // A fresh nonce each time: the same secret never seals to the same text.
  EXPECT_NE(kek.seal("x", "n").text, kek.seal("x", "n").text);
  // Moved to another row, it does not open.
  EXPECT_THROW(kek.open(s, "signing_key:k2"), KekError);
}

TEST(KeyEncryption, NamesTheKeyItNeeds) {
  init_crypto();
  const KeyEncryption a(raw_key('a')), b(raw_key('b'));
  EXPECT_EQ(a.id().size(), 16u);
  EXPECT_NE(a.id(), b.id());
  const Sealed s = a.seal("secret", "n");
  try {
    b.open(s, "n");
    FAIL() << "opened with the wrong key";
  } catch (const KekError& e) {
    EXPECT_NE(std::string(e.what()).find(a.id()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(b.id()), std::string::npos) << e.what();
  }
  // The previous key opens what it sealed; new seals use the current one.
  const KeyEncryption both(raw_key('b'), raw_key('a'));
  EXPECT_EQ(both.open(s, "n"), "secret");
  EXPECT_EQ(both.seal("secret", "n").kek_id, b.id());
  ASSERT_NE(both.previous_id(), nullptr);
  EXPECT_EQ(*both.previous_id(), a.id());
}

TEST(KeyEncryption, AlteredTextDoesNotOpen) {
  init_crypto();
  const KeyEncryption kek(raw_key('a'));
  Sealed s = kek.seal("secret", "n");
  s.text[10] = s.text[10] == 'A' ? 'B' : 'A';
  EXPECT_THROW(kek.open(s, "n"), KekError);
  EXPECT_THROW(kek.open({kek.id(), "!!"}, "n"), KekError);
  EXPECT_THROW(kek.open({kek.id(), ""}, "n"), KekError);
}

TEST(KeyEncryption, DecodesBase64AndHexOf32Bytes) {
  const std::string key = raw_key('\x07');
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  char b64[64];
  sodium_bin2base64(b64, sizeof b64, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  EXPECT_EQ(decode_kek(hex), key);
  EXPECT_EQ(decode_kek(std::string("  ") + b64 + "\n"), key);
  EXPECT_EQ(decode_kek(base64url_encode(key)), key);
  EXPECT_FALSE(decode_kek("short"));
  EXPECT_FALSE(decode_kek(std::string(hex) + "00"));
  EXPECT_FALSE(decode_kek(base64url_encode(std::string(31, 'x'))));
  EXPECT_FALSE(decode_kek(""));
  EXPECT_FALSE(decode_kek(std::string(44, '\xff')));
}

}  // namespace
}  // namespace cdx
