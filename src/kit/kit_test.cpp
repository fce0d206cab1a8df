// The kit on a throwaway SQLite database, with the worked example of docs/kit.md: a `books` resource.
#include "kit/kit.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <set>

#include "common/ids.hpp"
#include "db/testing.hpp"

namespace cdx::kit {
namespace {

using nlohmann::json;

// docs/kit.md, "A resource in twenty lines".
Resource book_resource() {
  Resource r("shelf", "book", "books");
  r.field(text("title", 200).required().searchable().sortable())
      .field(text("isbn", 17).min(10).unique().filter().check([](json& v, Problems& p) {
        std::string digits;
        for (char c : v.get<std::string>())
          if (c != '-') digits += c;
        if (digits.size() != 10 && digits.size() != 13) return p.fail("must hold 10 or 13 digits");
        v = digits;
      }))
      .field(integer("pages", 1, 100000).filter())
      .field(choice("format", {"hardcover", "paperback", "ebook"}).not_null().defaults("paperback").filter())
      .field(boolean("lent").not_null().defaults(false))
      .field(id("shelf_id").refs("shelf_db.shelves"))
      .field(text_list("labels", 5, 20).defaults(json::array()))
      .field(object("extra", 256).defaults(json::object()))
      .hooks({.validate = [](Change& c) {
        if (c.value("lent") && c.row["lent"].get<bool>() && c.row["format"] == "ebook")
          c.errors.push_back({"lent", "an ebook cannot be lent"});
      }});
  return r;
}

class KitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    init_crypto();
    dir_ = std::filesystem::temp_directory_path() / ("cdx-kit-" + random_token(10));
    factory_ = db::make_sqlite_factory(dir_.string());
    db_ = factory_->open("shelf_db");
    db_->migrate(
        {{1, "books",
          "CREATE TABLE shelf_db.shelves (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL);"
          "CREATE TABLE shelf_db.books (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, title TEXT NOT NULL, "
          "isbn TEXT, pages BIGINT, format TEXT NOT NULL, lent INTEGER NOT NULL, shelf_id TEXT, "
          "labels TEXT NOT NULL, extra TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
          "UNIQUE (tenant_id, isbn));"},
         db::Outbox::migration(2, "shelf_db"),
         Idempotency::migration(3, "shelf_db")});
    idempotency_ = std::make_unique<Idempotency>(db_);
    kit_ = std::make_unique<Kit>(db_, outbox_, workers_, *idempotency_);
    books_ = &kit_->add(book_resource());
  }
  void TearDown() override {
    kit_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Field names of the 422 a body gets.
  std::vector<std::string> refused(std::string_view body, Mode mode = Mode::kCreate) {
    try {
      read_body(*books_, body, mode);
    } catch (const Error& e) {
      std::vector<std::string> out;
      for (const auto& f : e.field_errors()) out.push_back(f.field);
      if (out.empty()) out.push_back("<" + std::string(info(e.code()).code) + ">");
      return out;
    }
    return {};
  }
  json create(const db::TenantScope& scope, std::string_view body) {
    const json patch = read_body(*books_, body, Mode::kCreate);
    const Caller c{scope, {"user", "u1"}, std::nullopt};
    return db_->write(scope, [&](db::Tx& tx) { return kit_->create(tx, c, *books_, patch); });
  }
  json update(const db::TenantScope& scope, const std::string& id, std::string_view body) {
    const json patch = read_body(*books_, body, Mode::kUpdate);
    const Caller c{scope, {"user", "u1"}, std::nullopt};
    return db_->write(scope, [&](db::Tx& tx) { return kit_->update(tx, c, *books_, id, patch); });
  }
  json list(const db::TenantScope& scope, ListQuery q) {
    const Caller c{scope, {"user", "u1"}, std::nullopt};
    return db_->read(scope, [&](db::Tx& tx) { return kit_->list(tx, c, *books_, q); });
  }
  std::vector<db::OutboxEvent> events(const db::TenantScope& scope) {
    return db_->read(scope,
                     [&](db::Tx& tx) { return outbox_.list(tx, scope, std::nullopt, 100, std::nullopt); });
  }

  std::filesystem::path dir_;
  std::unique_ptr<db::ConnectionFactory> factory_;
  std::shared_ptr<db::Database> db_;
  db::Outbox outbox_{"shelf_db"};
  WorkerPool workers_{1};
  std::unique_ptr<Idempotency> idempotency_;
  std::unique_ptr<Kit> kit_;
  const Resource* books_ = nullptr;
  db::TenantScope a_ = db::testing::TestScopes::mint("tenant-a");
  db::TenantScope b_ = db::testing::TestScopes::mint("tenant-b");
};

TEST_F(KitTest, ReaderChecksEveryFieldAndNamesEachBadOne) {
  EXPECT_EQ(refused(R"({"title":"Dune"})"), std::vector<std::string>{});
  EXPECT_EQ(refused(R"({})"), std::vector<std::string>{"title"});
  EXPECT_EQ(refused(R"({"title":"  "})"), std::vector<std::string>{"title"});
  EXPECT_EQ(refused(R"({"title":"A","pages":0,"format":"scroll","isbn":"12","nope":1,"id":"x"})"),
            (std::vector<std::string>{"id", "nope", "isbn", "pages", "format"}));
  EXPECT_EQ(refused(R"({"title":"A","labels":["a","b","c","d","e","f"]})"),
            std::vector<std::string>{"labels"});
  EXPECT_EQ(refused(R"({"title":"A","extra":{"x":")" + std::string(300, 'y') + R"("}})"),
            std::vector<std::string>{"extra"});
  EXPECT_EQ(refused("{\"title\":\"A\\u0000B\"}"), std::vector<std::string>{"title"});
  EXPECT_EQ(refused("{\"title\":\"\xC3\x28\"}"), std::vector<std::string>{"<invalid_request>"});
  EXPECT_EQ(refused("{nope"), std::vector<std::string>{"<invalid_request>"});
  EXPECT_EQ(refused("[1]"), std::vector<std::string>{"body"});
}

TEST_F(KitTest, PatchTellsAbsentFromNullFromValue) {
  const json patch = read_body(*books_, R"({"pages":null,"isbn":"978-0-441-17271-9"})", Mode::kUpdate);
  EXPECT_FALSE(patch.contains("title"));
  EXPECT_TRUE(patch.at("pages").is_null());
  EXPECT_EQ(patch.at("isbn"), "9780441172719");
  EXPECT_EQ(refused(R"({"title":null})", Mode::kUpdate), std::vector<std::string>{"title"});
  EXPECT_EQ(refused(R"({"format":null})", Mode::kUpdate), std::vector<std::string>{"format"});  // not_null()
  EXPECT_EQ(read_body(*books_, R"({"labels":null})", Mode::kUpdate).at("labels"), json::array())
      << "null clears to the default";
}

TEST_F(KitTest, CreateUpdateAndEventsWithTheChangedFields) {
  json b = create(a_, R"({"title":"Dune","pages":412,"labels":["sf"," SF ","classic"]})");
  EXPECT_EQ(b["format"], "paperback");
  EXPECT_EQ(b["labels"], json({"sf", "classic"}));
  EXPECT_EQ(b["extra"], json::object());
  json u = update(a_, b["id"], R"({"pages":413,"title":"Dune"})");
  EXPECT_EQ(u["pages"], 413);
  EXPECT_EQ(update(a_, b["id"], R"({"pages":413})")["updated_at"], u["updated_at"]) << "no change, no write";
  auto ev = events(a_);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].type, "shelf.book.updated");
  EXPECT_EQ(ev[0].payload["changed"], json({"pages"}));
  EXPECT_EQ(ev[1].type, "shelf.book.created");
  EXPECT_EQ(ev[1].payload["book"]["title"], "Dune");
  EXPECT_EQ(ev[1].payload["actor"], json({{"type", "user"}, {"id", "u1"}}));
}

TEST_F(KitTest, RulesAcrossRowsAndFields) {
  create(a_, R"({"title":"A","isbn":"0-441-17271-7"})");
  try {
    create(a_, R"({"title":"B","isbn":"0441172717"})");
    FAIL() << "a taken isbn must conflict";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::kConflict);
  }
  EXPECT_NO_THROW(create(b_, R"({"title":"B","isbn":"0441172717"})")) << "unique per tenant";
  try {
    create(a_,
           R"({"title":"C","format":"ebook","lent":true,"shelf_id":"01930000-0000-7000-8000-000000000001"})");
    FAIL() << "hook and link must refuse";
  } catch (const Error& e) {
    ASSERT_EQ(e.field_errors().size(), 2u);
    EXPECT_EQ(e.field_errors()[0].field, "shelf_id");
    EXPECT_EQ(e.field_errors()[1].field, "lent");
  }
  EXPECT_TRUE(events(a_).size() == 1) << "a refused change writes no event";
}

TEST_F(KitTest, ListsPageWithOneCursorFormatAndStayInTheirTenant) {
  for (int i = 0; i < 5; ++i) create(a_, fmt::format(R"({{"title":"Book {}","pages":{}}})", i, 100 + i % 2));
  create(b_, R"({"title":"Book of B"})");
  ListQuery q;
  q.limit = 2;
  q.sort = "title";
  q.descending = false;
  std::vector<std::string> titles;
  for (int page = 0; page < 5; ++page) {
    json rows = list(a_, q);
    const json doc = json::parse(kit_->render_list(*books_, rows, q));
    for (const auto& r : doc["data"]) titles.push_back(r["title"]);
    if (doc["next_cursor"].is_null()) break;
    std::string decoded;
    ASSERT_TRUE(base64url_decode(doc["next_cursor"].get<std::string>(), decoded));
    ASSERT_EQ(decoded.rfind("c1:title|", 0), 0u) << decoded;
    const auto last = doc["data"].back();
    q.after.emplace(last["title"], last["id"]);
  }
  EXPECT_EQ(titles, (std::vector<std::string>{"Book 0", "Book 1", "Book 2", "Book 3", "Book 4"}));
  ListQuery f;
  f.filters.emplace_back(books_->find("pages"), "101");
  EXPECT_EQ(list(a_, f).size(), 2u);
  ListQuery s;
  s.q = "%book 3%";
  EXPECT_EQ(list(a_, s).size(), 1u);
  db_->write(a_, [&](db::Tx& tx) { kit_->purge_tenant(tx, a_); });
  EXPECT_EQ(list(a_, ListQuery{}).size(), 0u);
  EXPECT_EQ(list(b_, ListQuery{}).size(), 1u) << "the purge keeps other tenants' rows";
}

TEST_F(KitTest, SchemasCarryTheLimitsTheReaderEnforces) {
  json s = json::object();
  kit_->add_schemas(s);
  EXPECT_EQ(s["BookCreate"]["required"], json({"title"}));
  EXPECT_EQ(s["BookCreate"]["additionalProperties"], false);
  EXPECT_EQ(s["BookCreate"]["properties"]["title"]["maxLength"], 200);
  EXPECT_EQ(s["BookCreate"]["properties"]["isbn"]["minLength"], 10);
  EXPECT_EQ(s["BookCreate"]["properties"]["pages"]["maximum"], 100000);
  EXPECT_EQ(s["BookUpdate"]["properties"]["labels"]["maxItems"], 5);
  EXPECT_EQ(s["Book"]["properties"]["format"]["enum"], json({"hardcover", "paperback", "ebook"}));
  EXPECT_FALSE(s["Book"]["properties"].contains("tenant_id"));
}

// Rows a CLIENT may see only when they are its own: declared with an owner column, never checked by hand.
TEST_F(KitTest, OwnedRowsAreTheirOwnersOnly) {
  db_->migrate({{4, "notes",
                 "CREATE TABLE shelf_db.notes (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, user_id TEXT, "
                 "text TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"}});
  Resource notes_decl("shelf", "note", "notes");
  notes_decl.field(text("text", 100).required()).owner("user_id").access(http::Access::kTenantMember);
  const Resource& notes = kit_->add(std::move(notes_decl));
  const Caller ann{a_, {"user", "ann"}, std::string("ann")}, bob{a_, {"user", "bob"}, std::string("bob")};
  const Caller admin{a_, {"user", "admin"}, std::nullopt};
  auto make = [&](const Caller& c, const char* body) {
    const json patch = read_body(notes, body, Mode::kCreate);
    return db_->write(a_, [&](db::Tx& tx) { return kit_->create(tx, c, notes, patch); });
  };
  const std::string mine = make(ann, R"({"text":"Ann's"})")["id"];
  make(bob, R"({"text":"Bob's"})");
  auto listed = [&](const Caller& c) {
    return db_->read(a_, [&](db::Tx& tx) { return kit_->list(tx, c, notes, ListQuery{}); }).size();
  };
  EXPECT_EQ(listed(ann), 1u);
  EXPECT_EQ(listed(bob), 1u);
  EXPECT_EQ(listed(admin), 2u) << "an ADMIN (no owner) sees the tenant's rows";
  EXPECT_FALSE(db_->read(a_, [&](db::Tx& tx) { return kit_->find(tx, bob, notes, mine); }))
      << "404 for another owner";
  EXPECT_THROW(db_->write(a_,
                          [&](db::Tx& tx) {
                            kit_->update(tx, bob, notes, mine, {{"text", "mine now"}});
                          }),
               Error);
  EXPECT_THROW(db_->write(a_, [&](db::Tx& tx) { kit_->remove(tx, bob, notes, mine); }), Error);
  EXPECT_EQ(db_->read(a_, [&](db::Tx& tx) { return kit_->find(tx, ann, notes, mine); })->at("text"), "Ann's");
}

// Rows nested under another resource's rows (entries of a content type, stages of a pipeline), and a
// resource addressed by its key as well as its id.
TEST_F(KitTest, NestedRowsLiveUnderTheirParentWhichTheKeyNames) {
  db_->migrate(
      {{5, "racks and slots",
        "CREATE TABLE shelf_db.racks (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, code TEXT NOT NULL, "
        "created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (tenant_id, code));"
        "CREATE TABLE shelf_db.slots (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, rack_id TEXT NOT NULL, "
        "label TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"}});
  Resource racks_decl("shelf", "rack", "racks");
  racks_decl.field(text("code", 20).required().unique()).key("code").item_param("code");
  const Resource& racks = kit_->add(std::move(racks_decl));
  Resource slots_decl("shelf", "slot", "slots");
  slots_decl.field(text("label", 20).required().searchable()).parent(racks, "rack_id");
  const Resource& slots = kit_->add(std::move(slots_decl));
  EXPECT_EQ(slots.path(), "/api/v1/shelf/racks/{code}/slots");

  Caller c{a_, {"user", "u1"}, std::nullopt, std::nullopt};
  const json rack = db_->write(a_, [&](db::Tx& tx) {
    return kit_->create(tx, c, racks, {{"code", "east"}});
  });
  const json other = db_->write(a_, [&](db::Tx& tx) {
    return kit_->create(tx, c, racks, {{"code", "west"}});
  });
  // The key names the rack as well as its id; what is neither is not found.
  EXPECT_EQ(db_->read(a_, [&](db::Tx& tx) { return kit_->find(tx, c, racks, "east"); })->at("id"),
            rack["id"]);
  EXPECT_FALSE(db_->read(a_, [&](db::Tx& tx) { return kit_->find(tx, c, racks, "north"); }));
  EXPECT_THROW(db_->read(a_, [&](db::Tx& tx) { kit_->resolve_parent(tx, c, slots, "north"); }), Error);

  auto add_slot = [&](const std::string& rack_key, const char* label) {
    Caller in = c;
    return db_->write(a_, [&](db::Tx& tx) {
      kit_->resolve_parent(tx, in, slots, rack_key);
      return kit_->create(tx, in, slots, {{"label", label}});
    });
  };
  const json s1 = add_slot("east", "A1");
  add_slot(rack["id"], "A2");
  add_slot("west", "B1");
  EXPECT_EQ(s1["rack_id"], rack["id"]);
  auto labels = [&](const std::string& rack_key) {
    Caller in = c;
    std::vector<std::string> out;
    for (const auto& row : db_->read(a_, [&](db::Tx& tx) {
           kit_->resolve_parent(tx, in, slots, rack_key);
           return kit_->list(tx, in, slots, ListQuery{});
         }))
      out.push_back(row["label"]);
    return out;
  };
  EXPECT_EQ(labels("east"), (std::vector<std::string>{"A2", "A1"}));
  EXPECT_EQ(labels("west"), (std::vector<std::string>{"B1"}));
  // A slot is not found under another rack.
  Caller west = c;
  db_->read(a_, [&](db::Tx& tx) { kit_->resolve_parent(tx, west, slots, "west"); });
  EXPECT_FALSE(db_->read(a_, [&](db::Tx& tx) { return kit_->find(tx, west, slots, s1["id"]); }));
  // Deleting a rack (by its key) deletes its slots, and only its own.
  db_->write(a_, [&](db::Tx& tx) { kit_->remove(tx, c, racks, "east"); });
  EXPECT_THROW(labels("east"), Error);
  EXPECT_EQ(labels("west"), (std::vector<std::string>{"B1"}));
  json s = json::object();
  kit_->add_schemas(s);
  EXPECT_EQ(s["Slot"]["properties"]["rack_id"]["format"], "uuid");
  (void)other;
}

// A parent made with its children in one body (an object list kept by hooks), the children embedded in
// every answer in one statement, in their declared order; and a CSV import under the create rules.
TEST_F(KitTest, ObjectListsDecorateDefaultSortAndImport) {
  db_->migrate(
      {{6, "decks and cards",
        "CREATE TABLE shelf_db.decks (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, "
        "size INTEGER, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (tenant_id, name));"
        "CREATE TABLE shelf_db.cards (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, deck_id TEXT NOT NULL, "
        "face TEXT NOT NULL, rank INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"}});
  const Resource* cards_ptr = nullptr;
  Resource decks_decl("shelf", "deck", "decks");
  decks_decl.field(text("name", 20).required().unique().sortable())
      .field(integer("size", 0, 100))
      .field(object_list("cards", {text("face", 5).required(), integer("rank", 0, 13).required()}, 3)
                 .create_only()
                 .no_column()
                 .renders_as("Card"))
      .default_sort("name")
      .csv()
      .hooks({.after_write =
                  [&](Change& ch) {
                    if (ch.before) return;
                    Caller in{ch.scope, ch.actor, std::nullopt, ch.row["id"].get<std::string>()};
                    for (const json& card : ch.row["cards"]) kit_->create(ch.tx, in, *cards_ptr, card);
                  },
              .decorate = [&](db::Tx& tx, const db::TenantScope& scope,
                              json& rows) { kit_->embed(tx, scope, *cards_ptr, rows, "cards"); },
              .after_import = [](db::Tx&, const db::TenantScope&, const std::vector<const json*>&) {}});
  const Resource& decks = kit_->add(std::move(decks_decl));
  Resource cards_decl("shelf", "card", "cards");
  cards_decl.parent(decks, "deck_id")
      .field(text("face", 5).required())
      .field(integer("rank", 0, 13).required().sortable());
  cards_decl.default_sort("rank");
  cards_ptr = &kit_->add(std::move(cards_decl));

  // Every bad member is named with its item; PATCH may not give the list.
  std::vector<std::string> bad;
  try {
    read_body(decks, R"({"name":"x","cards":[{"face":"A"},{"face":"K","rank":99,"suit":"s"},7]})",
              Mode::kCreate);
  } catch (const Error& e) {
    for (const auto& f : e.field_errors()) bad.push_back(f.field);
  }
  EXPECT_EQ(bad, (std::vector<std::string>{"cards[0].rank", "cards[1].suit", "cards[1].rank", "cards[2]"}));
  EXPECT_THROW(read_body(decks, R"({"cards":[]})", Mode::kUpdate), Error);

  Caller c{a_, {"user", "u1"}, std::nullopt, std::nullopt};
  const json made = db_->write(a_, [&](db::Tx& tx) {
    return kit_->create(
        tx, c, decks,
        read_body(decks, R"({"name":"b","cards":[{"face":"K","rank":13},{"face":"A","rank":1}]})",
                  Mode::kCreate));
  });
  ASSERT_EQ(made["cards"].size(), 2u);
  EXPECT_EQ(made["cards"][0]["face"], "A");  // by rank, the cards' default order
  db_->write(a_, [&](db::Tx& tx) { return kit_->create(tx, c, decks, {{"name", "a"}}); });
  const json page = db_->read(a_, [&](db::Tx& tx) {
    ListQuery q;
    q.sort = "name";
    q.descending = false;
    return kit_->list(tx, c, decks, q);
  });
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0]["name"], "a");
  EXPECT_EQ(page[0]["cards"], json::array());
  EXPECT_EQ(page[1]["cards"], made["cards"]);

  // Import: integers stored as integers; a name taken in the tenant or earlier in the file is refused.
  const auto rows = import_rows(parse_csv("name,size\nc,7\nb,1\nd,x\nc,2\n"), decks);
  EXPECT_THROW(db_->write(a_, [&](db::Tx& tx) { return kit_->store_import(tx, c, decks, rows, false); }),
               ImportFailed);
  const ImportReport report =
      db_->write(a_, [&](db::Tx& tx) { return kit_->store_import(tx, c, decks, rows, true); });
  EXPECT_EQ(report.created, 1);
  ASSERT_EQ(report.errors.size(), 3u);
  EXPECT_EQ(report.errors[0].errors[0].field, "name");
  EXPECT_EQ(report.errors[1].errors[0].field, "size");
  auto found = db_->read(a_, [&](db::Tx& tx) { return kit_->find(tx, c, decks, report.ids[0]); });
  ASSERT_TRUE(found);
  EXPECT_EQ((*found)["size"], 7);
}

// An import a stop interrupted: a decided one is finished from its staged rows (rows and events), an
// undecided one is dropped; neither leaves anything staged.
TEST_F(KitTest, InterruptedImportsAreFinishedWhenDecidedAndDroppedOtherwise) {
  db_->migrate(
      {{6, "notes",
        "CREATE TABLE shelf_db.notes (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, title TEXT NOT NULL, "
        "n INTEGER, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (tenant_id, title));"},
       ImportStaging::migration(7, "shelf_db")});
  Resource decl("shelf", "note", "notes");
  decl.field(text("title", 20).required().unique()).field(integer("n", 0, 100)).csv();
  const Resource& notes = kit_->add(std::move(decl));
  const ImportStaging staging("shelf_db");
  const std::string actor = R"({"id":"u1","type":"user"})", now = "2026-01-01T00:00:00Z";
  auto staged = [&](const std::string& title) {  // id, the rendered fields in order, created_at
    return json::array({new_uuid_v7(), title, 7, now});
  };
  db_->write(a_, [&](db::Tx& tx) {
    staging.add(tx, a_, "imp-1", "notes", actor, 0, json::array({staged("one"), staged("two")}).dump());
    staging.add(tx, a_, "imp-1", "notes", actor, 1, json::array({staged("three")}).dump());
    staging.decide(tx, a_, "imp-1");
    staging.add(tx, a_, "imp-2", "notes", actor, 0, json::array({staged("never")}).dump());
  });
  EXPECT_EQ(kit_->interrupted_imports(), std::vector<std::string>{"tenant-a"});
  kit_->finish_imports(a_);
  const Caller c{a_, {"user", "u1"}, std::nullopt};
  ListQuery q;
  q.sort = "created_at";
  const json rows = db_->read(a_, [&](db::Tx& tx) { return kit_->list(tx, c, notes, q); });
  std::set<std::string> titles;
  for (const auto& row : rows) titles.insert(row["title"].get<std::string>());
  EXPECT_EQ(titles, (std::set<std::string>{"one", "two", "three"}));
  EXPECT_EQ(rows[0]["n"], 7);
  int created = 0;
  for (const auto& e : events(a_)) created += e.type == "shelf.note.created";
  EXPECT_EQ(created, 3);
  EXPECT_TRUE(kit_->interrupted_imports().empty());
  EXPECT_TRUE(db_->read(a_, [&](db::Tx& tx) { return staging.pending(tx, a_); }).empty());
}

// An import writes its *.created events with one insert a batch, not through Outbox::append: its commit must
// still wake the relay (the database's commit hook), or the events wait for the relay's fallback look.
TEST_F(KitTest, AnImportsCommitWakesTheRelay) {
  db_->migrate(
      {{6, "notes",
        "CREATE TABLE shelf_db.notes (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, title TEXT NOT NULL, "
        "n INTEGER, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (tenant_id, title));"}});
  Resource decl("shelf", "note", "notes");
  decl.field(text("title", 20).required().unique()).field(integer("n", 0, 100)).csv();
  const Resource& notes = kit_->add(std::move(decl));
  int wakes = 0;
  db_->set_commit_hook([&] { ++wakes; });
  const Caller c{a_, {"user", "u1"}, std::nullopt};
  const auto rows = import_rows(parse_csv("title,n\none,1\ntwo,2\nthree,3\n"), notes);
  const ImportReport report =
      db_->write(a_, [&](db::Tx& tx) { return kit_->store_import(tx, c, notes, rows, false); });
  EXPECT_EQ(report.created, 3);
  EXPECT_EQ(wakes, 1);
  int created = 0;
  for (const auto& e : events(a_)) created += e.type == "shelf.note.created";
  EXPECT_EQ(created, 3);
}

// Platform rows (core's tenants and plans): no tenant_id, the platform transactions, no events.
TEST_F(KitTest, PlatformRowsHaveNoTenantAndWriteNoEvents) {
  db_->migrate(
      {{6, "genres",
        "CREATE TABLE shelf_db.genres (id TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE, name TEXT NOT NULL, "
        "secret TEXT, extra TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"}});
  Resource decl("shelf", "genre", "genres");
  decl.platform()
      .no_events()
      .access(http::Access::kSuperadmin)
      .read_access(http::Access::kAuthenticated)
      .key("code")
      .field(text("code", 20).required().immutable().unique().sortable())
      .field(text("name", 50).required())
      .field(text("secret", 50).verbatim())
      .field(object("extra", 64).defaults(json::object()).merge_patch())
      .default_sort("code")
      .routes({Op::kList, Op::kGet, Op::kUpdate});
  const Resource& genres = kit_->add(std::move(decl));
  EXPECT_EQ(genres.read_access(), http::Access::kAuthenticated);
  EXPECT_TRUE(genres.mounts(Op::kUpdate));
  EXPECT_FALSE(genres.mounts(Op::kCreate));

  const Caller c{db::TenantScope::none(), {"superadmin", "s1"}, std::nullopt};
  auto create = [&](std::string_view body) {
    const json patch = read_body(genres, body, Mode::kCreate);
    return db_->write_platform([&](db::Tx& tx) { return kit_->create(tx, c, genres, patch); });
  };
  const json sf = create(R"({"code":"sf","name":"Science fiction","secret":"  two spaces  "})");
  create(R"({"code":"crime","name":"Crime","extra":{"a":1}})");
  EXPECT_EQ(sf["secret"], "  two spaces  ");  // verbatim: not trimmed
  EXPECT_EQ(sf["extra"], json::object());
  // Unique across the platform (no tenant), answered 409.
  try {
    create(R"({"code":"sf","name":"Again"})");
    ADD_FAILURE() << "a taken code must conflict";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::kConflict);
  }
  // Every row is listed, in the declared default order; found by key; no event was written.
  ListQuery q;
  q.sort = "code", q.descending = false;
  const json rows = db_->read_platform([&](db::Tx& tx) { return kit_->list(tx, c, genres, q); });
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["code"], "crime");
  EXPECT_EQ(db_->read_platform([&](db::Tx& tx) { return kit_->find(tx, c, genres, "sf"); })->at("id"),
            sf["id"]);
  EXPECT_EQ(db_->read_platform([&](db::Tx& tx) {
    return tx.query("SELECT COUNT(*) FROM shelf_db.outbox").rows.at(0).integer(0);
  }),
            0);
  // A tenant query handed the scope of no tenant matches nothing.
  EXPECT_EQ(db::TenantScope::none().tenant_id(), "");

  // PATCH: an immutable field cannot be changed; a merge_patch object is merged (null removes a key), and
  // null resets it to its default.
  auto refused_update = [&](std::string_view body) {
    try {
      read_body(genres, body, Mode::kUpdate);
    } catch (const Error& e) {
      return e.field_errors().at(0).field;
    }
    return std::string();
  };
  EXPECT_EQ(refused_update(R"({"code":"scifi"})"), "code");
  auto update = [&](const std::string& id, std::string_view body) {
    const json patch = read_body(genres, body, Mode::kUpdate);
    return db_->write_platform([&](db::Tx& tx) { return kit_->update(tx, c, genres, id, patch); });
  };
  EXPECT_EQ(update("crime", R"({"extra":{"b":2}})")["extra"], (json{{"a", 1}, {"b", 2}}));
  EXPECT_EQ(update("crime", R"({"extra":{"a":null}})")["extra"], (json{{"b", 2}}));
  EXPECT_THROW(update("crime", R"({"extra":{"big":")" + std::string(80, 'x') + R"("}})"), Error);
  EXPECT_EQ(update("crime", R"({"extra":null})")["extra"], json::object());
  db_->write_platform([&](db::Tx& tx) { kit_->remove(tx, c, genres, "crime"); });
  EXPECT_FALSE(db_->read_platform([&](db::Tx& tx) { return kit_->find(tx, c, genres, "crime"); }));

  // The schemas: the immutable field is not in the update schema.
  json s = json::object();
  kit_->add_schemas(s);
  EXPECT_TRUE(s["GenreCreate"]["properties"].contains("code"));
  EXPECT_FALSE(s["GenreUpdate"]["properties"].contains("code"));
}

// Secrets: a write-only password hashed by the prepare step into a hidden column, a value shown once,
// tenant_id rendered, and revocation instead of deletion.
TEST_F(KitTest, WriteOnlyHiddenPreparedAndSoftDeletedRows) {
  db_->migrate(
      {{4, "members",
        "CREATE TABLE shelf_db.members (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, "
        "secret_hash TEXT NOT NULL, left_at TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"}});
  Resource r("shelf", "member", "members");
  r.segment("library-members")
      .field(text("name", 50).required())
      .field(text("password", 50).not_null().write_only())
      .field(text("secret_hash", 64).hidden())
      .field(datetime("left_at").read_only())
      .show_tenant_id()
      .soft_delete("left_at")
      .routes({Op::kCreate, Op::kList, Op::kUpdate, Op::kDelete})
      .reveals(text("ticket", 20))
      .hooks({.prepare = [](Prepare& p) {
        if (auto it = p.patch.find("password"); it != p.patch.end())
          p.patch["secret_hash"] = "h:" + it->get<std::string>();
        if (p.create) p.once["ticket"] = "T-1";
        p.caller.notes["prepared"] = true;
      }});
  const Resource& members = kit_->add(std::move(r));
  EXPECT_EQ(members.path(), "/api/v1/shelf/library-members");

  // Write-only values are taken verbatim (never trimmed); hidden fields are unknown to bodies.
  json patch = read_body(members, R"({"name":" Ann ","password":" pw "})", Mode::kCreate);
  EXPECT_EQ(patch["name"], "Ann");
  EXPECT_EQ(patch["password"], " pw ");
  EXPECT_THROW(read_body(members, R"({"name":"A","secret_hash":"x"})", Mode::kCreate), Error);
  Resource login("shelf", "login", "logins");
  login.ignore_unknown().field(text("user", 20).required());
  EXPECT_EQ(read_body(login, R"({"user":"u","remember":true})", Mode::kCreate), json({{"user", "u"}}));
  EXPECT_THROW(read_body(login, R"({"user":"u","id":"x"})", Mode::kCreate), Error);

  Caller c{a_, {"user", "u1"}, std::nullopt};
  json once = json::object();
  prepare(members, c, patch, once, true);
  EXPECT_EQ(once, json({{"ticket", "T-1"}}));
  EXPECT_EQ(c.notes["prepared"], true);
  json m = db_->write(a_, [&](db::Tx& tx) { return kit_->create(tx, c, members, patch); });
  EXPECT_EQ(m["tenant_id"], "tenant-a");
  EXPECT_FALSE(m.contains("password") || m.contains("secret_hash") || m.contains("ticket")) << m.dump();
  auto stored = [&] {
    return db_->read(a_, [&](db::Tx& tx) {
      return tx.query("SELECT secret_hash FROM shelf_db.members WHERE id = $1", {m["id"].get<std::string>()})
          .rows.at(0)
          .text(0);
    });
  };
  EXPECT_EQ(stored(), "h: pw ");

  // A new password reaches the hidden column; the event names the change, never the value.
  json p2 = read_body(members, R"({"password":"new"})", Mode::kUpdate);
  prepare(members, c, p2, once, false);
  json after = db_->write(a_, [&](db::Tx& tx) { return kit_->update(tx, c, members, m["id"], p2); });
  EXPECT_FALSE(after.contains("secret_hash"));
  EXPECT_EQ(stored(), "h:new");
  const auto evs = events(a_);
  ASSERT_GE(evs.size(), 2u);
  EXPECT_EQ(evs[0].type, "shelf.member.updated");
  EXPECT_EQ(evs[0].payload["changed"], json({"secret_hash"}));
  for (const auto& e : evs) EXPECT_EQ(e.payload.dump().find("h:"), std::string::npos) << e.payload.dump();

  // Soft delete: gone for the API, kept with its time.
  db_->write(a_, [&](db::Tx& tx) { kit_->remove(tx, c, members, m["id"]); });
  EXPECT_FALSE(db_->read(a_, [&](db::Tx& tx) { return kit_->find(tx, c, members, m["id"]); }));
  EXPECT_TRUE(db_->read(a_, [&](db::Tx& tx) { return kit_->list(tx, c, members, ListQuery{}); }).empty());
  EXPECT_THROW(db_->write(a_, [&](db::Tx& tx) { kit_->remove(tx, c, members, m["id"]); }), Error);
  EXPECT_FALSE(db_->read(a_, [&](db::Tx& tx) {
    return tx.query("SELECT left_at FROM shelf_db.members WHERE id = $1", {m["id"].get<std::string>()})
        .rows.at(0)
        .is_null(0);
  }));

  json s = json::object();
  add_schema(s, members);
  EXPECT_FALSE(s["Member"]["properties"].contains("password"));
  EXPECT_FALSE(s["Member"]["properties"].contains("secret_hash"));
  EXPECT_TRUE(s["MemberCreate"]["properties"]["password"]["writeOnly"].get<bool>());
  EXPECT_FALSE(s["MemberCreate"]["properties"].contains("secret_hash"));
  EXPECT_TRUE(s["MemberCreated"]["allOf"][1]["properties"].contains("ticket"));
  EXPECT_TRUE(s["Member"]["properties"].contains("tenant_id"));
}

TEST(KitDeclaration, RefusesWhatCannotWork) {
  Resource nullable_sort("shelf", "book", "books");
  nullable_sort.field(text("subtitle", 10).sortable());
  EXPECT_THROW(nullable_sort.seal(), std::logic_error);
  Resource bad_name("shelf", "book", "books; DROP");
  EXPECT_THROW(bad_name.seal(), std::logic_error);
  Resource bad_key("shelf", "book", "books");
  bad_key.field(text("title", 10)).key("title");  // a key must be required
  EXPECT_THROW(bad_key.seal(), std::logic_error);
  // A platform resource: written by SUPERADMIN only; its events belong to the tenant a field names, or none.
  Resource open_platform("shelf", "genre", "genres");
  open_platform.platform().no_events().access(http::Access::kTenantAdmin);
  EXPECT_THROW(open_platform.seal(), std::logic_error);
  Resource eventful("shelf", "genre", "genres");
  eventful.platform().access(http::Access::kSuperadmin).event_prefix("genre").event_tenant("id");
  EXPECT_NO_THROW(eventful.seal());
  EXPECT_EQ(eventful.event("created"), "genre.created");
  EXPECT_EQ(eventful.event_tenant(), "id");
  Resource ok("shelf", "genre", "genres");
  ok.platform().no_events().access(http::Access::kSuperadmin).read_access(http::Access::kAuthenticated);
  EXPECT_NO_THROW(ok.seal());
  // Rows outside <module>_db, served outside /api/v1/<module>/.
  Resource moved("core", "tenant", "tenants");
  moved.schema("cdx_db").path("/api/v1/tenants");
  EXPECT_EQ(moved.table(), "cdx_db.tenants");
  EXPECT_EQ(moved.path(), "/api/v1/tenants");
  Resource bad_path("core", "tenant", "tenants");
  bad_path.path("/tenants/{x}");
  EXPECT_THROW(bad_path.seal(), std::logic_error);
  Resource bad_sort("shelf", "genre", "genres");
  bad_sort.default_sort("-nothing");
  EXPECT_THROW(bad_sort.seal(), std::logic_error);
  Resource sorted_secret("shelf", "book", "books");
  sorted_secret.field(text("pin", 10).write_only().filter());  // a write-only value has no column to filter
  EXPECT_THROW(sorted_secret.seal(), std::logic_error);
  Resource bad_soft("shelf", "book", "books");
  bad_soft.field(text("gone", 10)).soft_delete("gone");  // must be a read-only datetime
  EXPECT_THROW(bad_soft.seal(), std::logic_error);
}

}  // namespace
}  // namespace cdx::kit
