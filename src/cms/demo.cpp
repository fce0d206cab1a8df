// `cdx serve --demo`: a small blog in the demo tenant — authors, and articles referencing them, published.
#include "cms/module.hpp"

namespace cdx::cms {

using nlohmann::json;

void CmsModule::seed_demo(const db::TenantScope& scope) {
  db_->write(scope, [&](db::Tx& tx) {
    kit::Caller c{scope, kit::Actor{"system", "demo"}, std::nullopt};
    if (kit_.find(tx, c, types_, "article")) return;  // seeded once
    kit_.create(tx, c, types_,
                {{"key", "author"},
                 {"name", "Author"},
                 {"fields", json::array({{{"key", "name"}, {"type", "text"}, {"required", true}, {"max", 100}},
                                         {{"key", "bio"}, {"type", "rich_text"}}})}});
    kit_.create(tx, c, types_,
                {{"key", "article"},
                 {"name", "Article"},
                 {"description", "Blog posts"},
                 {"fields", json::array({{{"key", "title"}, {"type", "text"}, {"required", true}, {"max", 200}},
                                         {{"key", "slug"},
                                          {"type", "text"},
                                          {"required", true},
                                          {"unique", true},
                                          {"pattern", "^[a-z0-9-]+$"}},
                                         {{"key", "body"}, {"type", "rich_text"}},
                                         {{"key", "views"}, {"type", "integer"}, {"min", 0}, {"default", 0}},
                                         {{"key", "category"},
                                          {"type", "enum"},
                                          {"values", {"news", "guide", "release"}},
                                          {"default", "news"}},
                                         {{"key", "author"}, {"type", "reference"}, {"references", "author"}},
                                         {{"key", "cover"}, {"type", "media"}},
                                         {{"key", "tags"}, {"type", "text_list"}, {"max", 10}}})}});
    kit::Caller authors = c, articles = c;
    kit_.resolve_parent(tx, authors, entries_, "author");
    kit_.resolve_parent(tx, articles, entries_, "article");
    const json ada = kit_.create(tx, authors, entries_,
                                 {{"data", {{"name", "Ada Lovelace"}, {"bio", "Writes about *engines*."}}}});
    service_.publish(tx, authors, ada["id"].get<std::string>());
    const std::vector<std::tuple<std::string, std::string, std::string, int>> posts = {
        {"Hello, Metatron", "hello-metatron", "news", 120},
        {"Publishing with a publishable key", "publishable-keys", "guide", 45},
        {"Release 1.0", "release-1-0", "release", 300}};
    for (const auto& [title, slug, category, views] : posts) {
      const json row = kit_.create(
          tx, articles, entries_,
          {{"data",
            {{"title", title},
             {"slug", slug},
             {"body", "# " + title + "\n\nRead it with `GET /api/v1/cms/published/article`."},
             {"views", views},
             {"category", category},
             {"author", ada["id"]},
             {"tags", json::array({"demo", category})}}}});
      service_.publish(tx, articles, row["id"].get<std::string>());
    }
  });
}

}  // namespace cdx::cms
