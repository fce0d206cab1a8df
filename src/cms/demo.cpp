// `cdx serve --demo`: a small blog in the demo tenant — authors, and articles referencing them, published.
#include "cms/module.hpp"

namespace cdx::cms {

using nlohmann::json;

namespace {

// The articles' cover: a 96x54 gradient, a real PNG.
const std::string_view kCover(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x60\x00\x00\x00\x36"
    "\x08\x02\x00\x00\x00\xb7\x2d\x0b\x85\x00\x00\x00\x65\x49\x44\x41\x54\x78\xda\xed\xd0\x39\x11\x00"
    "\x20\x10\x04\xc1\xe5\x11\x83\x08\xc4\x9e\x54\x14\x40\x42\xda\x53\xa3\xa0\xdb\xda\xd5\x13\xdf\x9e"
    "\x19\xd1\x23\x40\x80\x00\x01\x02\x04\x08\x10\x20\x40\x02\x04\x08\x10\x20\x40\x80\x00\x01\x12\x20"
    "\x40\x80\x00\x01\x02\x04\x08\x90\x00\x01\x02\x04\x08\x10\x20\x40\x80\x00\x09\x10\x20\x40\x80\x00"
    "\x01\x02\x04\x48\x80\x00\x01\x02\x04\x08\x10\x20\x40\x02\x04\xe8\xb7\x03\x68\x16\x03\x37\x23\x9b"
    "\xc2\x04\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
    158);

}  // namespace

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
    // The cover goes through the upload's own steps: typed by its bytes, stored under its hash.
    const media::Kind kind = media::inspect(kCover, "cover.png");
    const json cover = kit_.create(tx, c, media_,
                                   {{"filename", "cover.png"}, {"mime_type", kind.mime},
                                    {"size", static_cast<int64_t>(kCover.size())}, {"width", *kind.width},
                                    {"height", *kind.height}, {"hash", files_.store(scope.tenant_id(), kCover)},
                                    {"alt", "A gradient"}, {"folder", "blog"}});
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
             {"cover", cover["id"]},
             {"tags", json::array({"demo", category})}}}});
      service_.publish(tx, articles, row["id"].get<std::string>());
    }
  });
}

}  // namespace cdx::cms
