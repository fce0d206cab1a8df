// Passwords seen most often in public breach corpora; refused for new passwords (NIST SP 800-63B §5.1.1.2).
#include <string_view>
#include <unordered_set>

namespace cdx {

bool is_common_password(std::string_view lowered) {
  static const std::unordered_set<std::string_view> kCommon = {
      "123456", "password", "12345678", "qwerty", "123456789", "12345", "1234", "111111", "1234567", "dragon",
      "123123", "baseball", "abc123", "football", "monkey", "letmein", "shadow", "master", "666666", "qwertyuiop",
      "123321", "mustang", "1234567890", "michael", "654321", "superman", "1qaz2wsx", "7777777", "121212", "000000",
      "qazwsx", "123qwe", "killer", "trustno1", "jordan", "jennifer", "zxcvbnm", "asdfgh", "hunter", "buster",
      "soccer", "harley", "batman", "andrew", "tigger", "sunshine", "iloveyou", "2000", "charlie", "robert",
      "thomas", "hockey", "ranger", "daniel", "starwars", "klaster", "112233", "george", "computer", "michelle",
      "jessica", "pepper", "1111", "zxcvbn", "555555", "11111111", "131313", "freedom", "777777", "pass",
      "maggie", "159753", "aaaaaa", "ginger", "princess", "joshua", "cheese", "amanda", "summer", "love",
      "ashley", "nicole", "chelsea", "biteme", "matthew", "access", "yankees", "987654321", "dallas", "austin",
      "thunder", "taylor", "matrix", "mobilemail", "mom", "monitor", "monitoring", "montana", "moon", "moscow",
      "password1", "password12", "password123", "passw0rd", "p@ssw0rd", "p@ssword", "welcome", "welcome1",
      "admin", "admin123", "administrator", "root", "toor", "changeme", "changeme123", "secret", "secret123",
      "qwerty123", "qwerty1", "1q2w3e4r", "1q2w3e4r5t", "q1w2e3r4", "zaq12wsx", "abcd1234", "abcdef", "abcdefg",
      "abcdefgh", "iloveyou1", "princess1", "football1", "baseball1", "sunshine1", "letmein1", "monkey1",
      "dragon1", "master1", "shadow1", "superman1", "batman1", "trustno11", "qwertyui", "asdfghjk", "asdfghjkl",
      "zxcvbnm1", "11223344", "12341234", "12344321", "123654", "123456a", "a123456", "123456q", "1234qwer",
      "87654321", "88888888", "99999999", "00000000", "12121212", "66666666", "55555555", "44444444",
      "22222222", "33333333", "77777777", "test", "test123", "test1234", "testing", "guest", "user", "login",
      "default", "starwars1", "whatever", "hello", "hello123", "helloworld", "loveme", "lovely", "flower",
      "samsung", "google", "apple", "iphone", "internet", "service", "server", "database", "oracle", "mysql",
      "postgres", "letmein123", "welcome123", "football123", "computer1", "killer1", "pokemon", "naruto",
      "blink182", "liverpool", "arsenal", "chelsea1", "manchester", "barcelona", "madrid", "1qazxsw2",
      "qwer1234", "asdf1234", "zxcv1234", "asd123", "qwe123", "zxc123", "aa123456", "aaa111", "abc12345",
      "password!", "password1!", "qwerty!", "summer2024", "winter2024", "spring2024", "autumn2024",
      "summer2025", "winter2025", "spring2025", "autumn2025", "summer2026", "winter2026", "spring2026",
      "autumn2026", "company", "company1", "company123", "temp1234", "temporary", "letmein!", "iloveu",
  };
  return kCommon.count(lowered) > 0;
}

}  // namespace cdx
