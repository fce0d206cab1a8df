#include "auth/oauth_service.hpp"
#include "common/validate.hpp"

#include <gtest/gtest.h>

#include <random>

#include "common/ids.hpp"

namespace cdx::auth {
namespace {

class OAuthRules : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { init_crypto(); }
};

// ---- PKCE (RFC 7636)
// ----------------------------------------------------------------------------------------

TEST_F(OAuthRules, PkceS256MatchesTheRfcExample) {
  // RFC 7636 Appendix B.
  const std::string verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  EXPECT_EQ(pkce_s256(verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  EXPECT_TRUE(pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
  EXPECT_FALSE(pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
  EXPECT_FALSE(pkce_matches(verifier + "x", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
  // `plain` would compare the verifier itself: never accepted.
  EXPECT_FALSE(pkce_matches(verifier, verifier));
}

TEST_F(OAuthRules, PkceVerifierAndChallengeShapes) {
  EXPECT_FALSE(valid_code_verifier(std::string(42, 'a')));
  EXPECT_TRUE(valid_code_verifier(std::string(43, 'a')));
  EXPECT_TRUE(valid_code_verifier(std::string(128, '~')));
  EXPECT_FALSE(valid_code_verifier(std::string(129, 'a')));
  EXPECT_FALSE(valid_code_verifier(std::string(42, 'a') + "+"));
  EXPECT_FALSE(valid_code_verifier(std::string(42, 'a') + "="));
  EXPECT_TRUE(valid_code_verifier("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"));
  EXPECT_TRUE(valid_code_challenge(std::string(43, '-')));
  EXPECT_FALSE(valid_code_challenge(std::string(44, 'a')));
  EXPECT_FALSE(valid_code_challenge(std::string(42, 'a') + "="));
  EXPECT_FALSE(pkce_matches("short", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
}

// ---- form parsing
// ---------------------------------------------------------------------------------------------

TEST_F(OAuthRules, FormDecodesPlusAndPercentEscapes) {
  auto f = Form::parse(
      "grant_type=authorization_code&scope=openid+email%20crm%3Aread&redirect_uri=https%3A%2F%2Fa.b%2Fcb");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->get("grant_type"), "authorization_code");
  EXPECT_EQ(f->get("scope"), "openid email crm:read");
  EXPECT_EQ(f->get("redirect_uri"), "https://a.b/cb");
  EXPECT_EQ(f->get("absent"), std::nullopt);
}

TEST_F(OAuthRules, FormTreatsEmptyValuesAsAbsent) {
  auto f = Form::parse("a=&b&&=x&c=1");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->get("a"), std::nullopt);
  EXPECT_EQ(f->get("b"), std::nullopt);
  EXPECT_EQ(f->get("c"), "1");
  EXPECT_TRUE(Form::parse(""));
}

TEST_F(OAuthRules, FormRefusesRepeatedAndMalformedParameters) {
  std::string why;
  EXPECT_FALSE(Form::parse("a=1&a=2", &why));
  EXPECT_NE(why.find("repeated"), std::string::npos);
  EXPECT_FALSE(Form::parse("a=1&%61=2"));  // the same name, escaped
  EXPECT_FALSE(Form::parse("a=%zz"));
  EXPECT_FALSE(Form::parse("a=%4"));
  EXPECT_FALSE(Form::parse("a=%"));
  EXPECT_FALSE(Form::parse("a=%00"));  // control character
  EXPECT_FALSE(Form::parse("a=line%0Abreak"));
  EXPECT_FALSE(Form::parse("a=%ff%fe"));     // not UTF-8
  EXPECT_FALSE(Form::parse("a=%C0%AF"));     // overlong
  EXPECT_FALSE(Form::parse("a=%ED%A0%80"));  // surrogate
  EXPECT_TRUE(Form::parse("a=%E2%82%AC"));   // €
  std::string many;
  for (int i = 0; i < 65; ++i) many += "p" + std::to_string(i) + "=1&";
  EXPECT_FALSE(Form::parse(many));
}

TEST_F(OAuthRules, FormDecodeIsStrict) {
  EXPECT_EQ(form_decode("%41%42+c"), "AB c");
  EXPECT_EQ(form_decode("plain"), "plain");
  EXPECT_EQ(form_decode("%"), std::nullopt);
  EXPECT_EQ(form_decode("%4"), std::nullopt);
  EXPECT_EQ(form_decode("x%G1"), std::nullopt);
}

TEST_F(OAuthRules, Utf8TextValidation) {
  EXPECT_TRUE(valid_utf8_text("héllo wörld 😀"));
  EXPECT_FALSE(valid_utf8_text(std::string("a\x7f")));
  EXPECT_FALSE(valid_utf8_text(std::string("a\tb")));
  EXPECT_FALSE(valid_utf8_text(std::string("\xc3")));
  EXPECT_FALSE(valid_utf8_text(std::string("\xf4\x90\x80\x80")));  // past U+10FFFF
  EXPECT_FALSE(valid_utf8_text(std::string("\xc2\x85")));          // C1 control
}

// ---- client authentication
// ------------------------------------------------------------------------------------

TEST_F(OAuthRules, BasicCredentialsFollowRfc6749) {
  // RFC 6749 §2.3.1 example.
  auto c = parse_basic_credentials("Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->first, "s6BhdRkqt3");
  EXPECT_EQ(c->second, "gX1fBat3bV");
  // Both halves are form-urlencoded before encoding: "a:b" → "a%3Ab".
  c = parse_basic_credentials("basic YSUzQWI6cCt3JTI1");  // "a%3Ab:p+w%25"
  ASSERT_TRUE(c);
  EXPECT_EQ(c->first, "a:b");
  EXPECT_EQ(c->second, "p w%");
  EXPECT_FALSE(parse_basic_credentials("Basic bm9jb2xvbg=="));  // "nocolon"
  EXPECT_FALSE(parse_basic_credentials("Basic !!!"));
  EXPECT_FALSE(parse_basic_credentials("Basic "));
  EXPECT_FALSE(parse_basic_credentials("Bearer czZCaGRSa3F0MzpnWDFmQmF0M2JW"));
  auto empty_secret = parse_basic_credentials("Basic aWQ6");  // "id:"
  ASSERT_TRUE(empty_secret);
  EXPECT_EQ(empty_secret->first, "id");
  EXPECT_EQ(empty_secret->second, "");
}

// ---- redirect URIs and origins
// ----------------------------------------------------------------------------------

TEST_F(OAuthRules, RedirectUrisAreHttpsOrLoopbackHttp) {
  for (const char* ok : {"https://app.example.com/callback", "https://app.example.com:8443/cb?x=1",
                         "http://localhost:3000/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb",
                         "HTTPS://App.Example.com/cb", "https://app.example.com"})
    EXPECT_EQ(redirect_uri_problem(ok), std::nullopt) << ok;
  for (const char* bad :
       {"", "/relative/cb", "app.example.com/cb", "http://app.example.com/cb", "http://localhost.evil.com/cb",
        "https://app.example.com/cb#frag", "https://*.example.com/cb", "https://user:pw@app.example.com/cb",
        "https://app.example.com:0/cb", "https://app.example.com:99999/cb", "https://app.example.com:/cb",
        "ftp://app.example.com/cb", "javascript:alert(1)", "https:///cb", "https://app example.com/cb",
        "https://app.example.com/c\"b", "https://[::1/cb", "https://exa_mple.com/cb"})
    EXPECT_NE(redirect_uri_problem(bad), std::nullopt) << bad;
  EXPECT_NE(redirect_uri_problem("https://a.example.com/" + std::string(2000, 'x')), std::nullopt);
}

TEST_F(OAuthRules, OriginsHaveNoPath) {
  EXPECT_EQ(origin_problem("https://app.example.com"), std::nullopt);
  EXPECT_EQ(origin_problem("http://localhost:5173"), std::nullopt);
  EXPECT_NE(origin_problem("https://app.example.com/"), std::nullopt);
  EXPECT_NE(origin_problem("https://app.example.com/path"), std::nullopt);
  EXPECT_NE(origin_problem("http://app.example.com"), std::nullopt);
  EXPECT_NE(origin_problem("null"), std::nullopt);
}

// ---- scopes and redirects
// ----------------------------------------------------------------------------------------

TEST_F(OAuthRules, ScopesSplitOnSpacesWithoutDuplicates) {
  auto s = split_scope("openid  email openid crm:read");
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, (std::vector<std::string>{"openid", "email", "crm:read"}));
  EXPECT_EQ(join_scope(*s), "openid email crm:read");
  EXPECT_TRUE(split_scope("")->empty());
  EXPECT_FALSE(split_scope("open\"id"));
  EXPECT_FALSE(split_scope("a\\b"));
  EXPECT_FALSE(split_scope("caf\xc3\xa9"));
}

TEST_F(OAuthRules, AddQueryKeepsTheExistingQueryAndEncodes) {
  EXPECT_EQ(add_query("https://a.b/cb", {{"code", "x y"}, {"state", "s&t=1"}}),
            "https://a.b/cb?code=x%20y&state=s%26t%3D1");
  EXPECT_EQ(add_query("https://a.b/cb?app=1", {{"code", "c"}}), "https://a.b/cb?app=1&code=c");
  EXPECT_EQ(add_query("https://a.b/cb?", {{"code", "c"}}), "https://a.b/cb?code=c");
}

// ---- the login form's CSRF token
// ---------------------------------------------------------------------------------

TEST_F(OAuthRules, CsrfTokenIsBoundToKeyNonceRequestAndTime) {
  const std::string key = "k3y-with-enough-entropy-for-a-test";
  const std::string binding = "client_id=abc\nredirect_uri=https://a.b/cb\n";
  const std::string token = make_csrf_token(key, "nonce1", binding, 1000);
  EXPECT_TRUE(check_csrf_token(key, token, "nonce1", binding, 999));
  EXPECT_FALSE(check_csrf_token(key, token, "nonce1", binding, 1000));                   // expired
  EXPECT_FALSE(check_csrf_token(key, token, "nonce2", binding, 999));                    // another browser
  EXPECT_FALSE(check_csrf_token(key, token, "nonce1", binding + "scope=admin\n", 999));  // another request
  EXPECT_FALSE(check_csrf_token("other key", token, "nonce1", binding, 999));
  EXPECT_FALSE(check_csrf_token(key, token, "", binding, 999));
  // Moving the expiry forward breaks the MAC.
  EXPECT_FALSE(check_csrf_token(key, "2000" + token.substr(token.find('.')), "nonce1", binding, 999));
  for (const char* junk : {"", ".", "abc", "1000.", ".mac", "-5.x", "99999999999999999999999.x"})
    EXPECT_FALSE(check_csrf_token(key, junk, "nonce1", binding, 999)) << junk;
}

TEST_F(OAuthRules, HtmlEscapesEverythingThatMatters) {
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  LoginPage page;
  page.tenant_name = "<script>";
  page.client_name = "\"App\"";
  page.hidden = {{"state", "\"><img src=x>"}};
  const std::string html = render_login_page(page);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
}

// Not a fuzzer, but the same promise on a budget: random bytes never crash a parser.
TEST_F(OAuthRules, ParsersSurviveRandomInput) {
  std::mt19937 rng(20261125);
  const std::string alphabet = "aZ09=&%+:;./?#@[]!\"' \t\r\n\x7f\x80\xc3\xa9\xff-_~*";
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 64, '\0');
    for (auto& c : s)
      c = (rng() % 4 == 0) ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    (void)Form::parse(s);
    (void)form_decode(s);
    (void)valid_utf8_text(s);
    (void)parse_basic_credentials("Basic " + s);
    (void)split_scope(s);
    (void)redirect_uri_problem(s);
    (void)redirect_uri_problem("https://" + s);
    (void)origin_problem("http://" + s);
    (void)check_csrf_token("key", s, "nonce", "binding", 0);
    (void)pkce_matches(s, s);
    (void)html_escape(s);
  }
}

}  // namespace
}  // namespace cdx::auth
