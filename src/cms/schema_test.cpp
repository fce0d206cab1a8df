#include "cms/schema.hpp"

#include <gtest/gtest.h>

namespace cdx::cms {
namespace {

using nlohmann::json;

std::set<std::string> named(const std::vector<FieldError>& errors) {
  std::set<std::string> out;
  for (const auto& e : errors) out.insert(e.field);
  return out;
}

json article() {
  return {{"id", "t1"},
          {"key", "article"},
          {"updated_at", "x"},
          {"fields",
           {{{"key", "title"}, {"type", "text"}, {"required", true}, {"max", 10}},
            {{"key", "slug"}, {"type", "text"}, {"pattern", "^[a-z-]+$"}},
            {{"key", "views"}, {"type", "integer"}, {"min", 0}, {"default", 0}},
            {{"key", "rating"}, {"type", "number"}, {"max", 5}},
            {{"key", "kind"}, {"type", "enum"}, {"values", {"a", "b"}}},
            {{"key", "body"}, {"type", "rich_text"}, {"localized", true}},
            {{"key", "tags"}, {"type", "text_list"}, {"min", 1}},
            {{"key", "refs"}, {"type", "reference"}, {"references", "article"}, {"multiple", true}, {"max", 2}}}}};
}

TEST(CmsSchema, DataIsCheckedNormalisedAndDefaulted) {
  auto t = compile(article());
  std::vector<FieldError> errors;
  json out = check_data(*t, {{"title", "  Hi  "}, {"body", {{"en", "*x*"}}}}, {"en", "fr"}, "en", errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(out["title"], "Hi");
  EXPECT_EQ(out["views"], 0);
  EXPECT_EQ(out["body"]["en"], "*x*");
}

TEST(CmsSchema, EveryBadFieldIsNamed) {
  auto t = compile(article());
  std::vector<FieldError> errors;
  check_data(*t,
             {{"title", "far too long a title"},
              {"slug", "Not-Ok"},
              {"views", -1},
              {"rating", 7.5},
              {"kind", "c"},
              {"body", {{"de", "x"}}},
              {"tags", json::array()},
              {"refs", {"01930000-0000-7000-8000-000000000001", "01930000-0000-7000-8000-000000000002",
                        "01930000-0000-7000-8000-000000000003"}},
              {"nope", 1}},
             {"en", "fr"}, "en", errors);
  EXPECT_EQ(named(errors), (std::set<std::string>{"data.title", "data.slug", "data.views", "data.rating",
                                                  "data.kind", "data.body.de", "data.tags", "data.refs",
                                                  "data.nope"}));
}

TEST(CmsSchema, RequiredLocalizedFieldsNeedTheDefaultLocale) {
  json row = article();
  row["fields"][0]["localized"] = true;
  auto t = compile(row);
  std::vector<FieldError> errors;
  check_data(*t, {{"title", {{"fr", "Salut"}}}}, {"en", "fr"}, "en", errors);
  EXPECT_EQ(named(errors), std::set<std::string>{"data.title.en"});
  errors.clear();
  check_data(*t, {{"title", "plain"}}, {"en", "fr"}, "en", errors);
  EXPECT_EQ(named(errors), std::set<std::string>{"data.title"});
}

TEST(CmsSchema, ReadsResolveALocaleWithFallback) {
  auto t = compile(article());
  json data = {{"title", "T"}, {"body", {{"en", "hello"}, {"fr", "bonjour"}}}};
  EXPECT_EQ(resolve_locale(*t, data, "fr", "en")["body"], "bonjour");
  EXPECT_EQ(resolve_locale(*t, data, "de", "en")["body"], "hello");
  json sparse = resolve_locale(*t, data, "en", "en", {"title"});
  EXPECT_EQ(sparse, json({{"title", "T"}}));
}

TEST(CmsSchema, FieldListsThatContradictThemselvesAreNamed) {
  std::vector<FieldError> errors;
  check_fields(json::array({{{"key", "a"}, {"type", "integer"}, {"min", 3}, {"max", 1}},
                            {{"key", "a"}, {"type", "text"}},
                            {{"key", "c"}, {"type", "enum"}},
                            {{"key", "d"}, {"type", "text"}, {"pattern", "(("}},
                            {{"key", "e"}, {"type", "boolean"}, {"unique", true}},
                            {{"key", "f"}, {"type", "integer"}, {"max", 3}, {"default", 9}},
                            {{"key", "g"}, {"type", "reference"}},
                            {{"key", "h"}, {"type", "media"}, {"default", "x"}},
                            {{"key", "i"}, {"type", "text"}, {"multiple", true}}}),
               errors);
  EXPECT_EQ(named(errors),
            (std::set<std::string>{"fields[0].min", "fields[1].key", "fields[2].values", "fields[3].pattern",
                                   "fields[4].unique", "fields[5].default", "fields[6].references",
                                   "fields[7].default", "fields[8].multiple"}));
}

TEST(CmsSchema, MarkdownRendersWithoutRawHtmlOrScriptLinks) {
  const std::string html =
      markdown_html("# T\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) <b onclick=x>b</b>");
  EXPECT_NE(html.find("<h1>T</h1>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("javascript:"), std::string::npos);
  EXPECT_EQ(html.find("onclick"), std::string::npos);
}

TEST(CmsSchema, LinksAndSearchTextCoverEveryLocale) {
  auto t = compile(article());
  json data = {{"title", "Big NEWS"}, {"body", {{"en", "Hello"}, {"fr", "Bonjour"}}},
               {"refs", {"01930000-0000-7000-8000-000000000001"}}};
  EXPECT_EQ(search_text(*t, data), "big news hello bonjour");
  auto l = links(*t, data);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].first->key, "refs");
  EXPECT_EQ(l[0].second.size(), 1u);
}

TEST(CmsSchema, SearchWordsAreLettersAndDigitsOfAnyScript) {
  EXPECT_EQ(search_words("The QUICK, brown-fox: e-mail dogs@example.com"),
            "the quick brown fox e mail dogs example com");
  EXPECT_EQ(search_words("Straße café — «quoted» 1998… ¿qué? 東京、大阪"), "straße café quoted 1998 qué 東京 大阪");
  EXPECT_EQ(search_words(" \t,,, "), "");
  // Case of the common scripts folded here (PostgreSQL under the C locale folds only ASCII).
  EXPECT_EQ(search_words("ÉCOLE Straße ŁÓDŹ Ωμέγα ΆΈ ДОМ Ёж"), "école straße łódź ωμέγα άέ дом ёж");
  // An ill-formed sequence separates: no ASCII byte after a lead byte joins a word, no quote gets through.
  EXPECT_EQ(search_words("ab\xC3\"cd"), "ab cd");
  EXPECT_EQ(search_words("ab\xE2\x80"), "ab");
  EXPECT_EQ(search_words("x\xF0\x9F\x98"), "x");
  EXPECT_EQ(search_words("\xC0\xAFq\xFFr"), "q r");
  EXPECT_EQ(query_words("qui BRO"), (std::vector<std::string>{"qui", "bro"}));
  EXPECT_TRUE(query_words("— … ,,, *").empty());
  std::string many;
  for (int i = 0; i < 40; ++i) many += "w" + std::to_string(i) + " ";
  EXPECT_EQ(query_words(many).size(), 16u);
}

TEST(CmsSchema, SearchTextIsCutAtACharacterBoundary) {
  auto t = compile(article());
  std::string title(99999, 'a');
  json data = {{"title", title + "éé"}};  // the cut falls inside the first é
  const std::string s = search_text(*t, data);
  EXPECT_EQ(s.size(), 99999u);
}

}  // namespace
}  // namespace cdx::cms
