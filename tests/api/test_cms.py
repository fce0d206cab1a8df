"""CMS: content types and their checks, entries validated under their type, versions and restore, publishing
(now and scheduled), locales, preview tokens, and the delivery API a client app reads with a publishable key
(filters, sorts, sparse fields, populate, q, cursors, ETag/304); who may call what; tenant isolation."""
import os
import sqlite3
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

import signal

from conftest import SUPERADMIN, Api, Server, assert_problem, create_user, make_tenant, user_session, wait_for

CMS = "/api/v1/cms"
TYPES = CMS + "/content-types"
LOCALES = CMS + "/locales"
KEYS = "/api/v1/auth/api-keys"
NO_SUCH_ID = "01930000-0000-7000-8000-00000000beef"


def ok(resp, status=200):
    assert resp.status_code == status, resp.text
    return resp.json() if status not in (204, 304) else None


def fields(resp, status=422):
    return {e["field"]: e["message"] for e in assert_problem(resp, status)["errors"]}


def entries(key):
    return f"{TYPES}/{key}/entries"


def published(key):
    return f"{CMS}/published/{key}"


AUTHOR = {"key": "author", "name": "Author", "fields": [
    {"key": "name", "type": "text", "required": True, "max": 100},
    {"key": "bio", "type": "rich_text"}]}


def article_type(**extra):
    t = {"key": "article", "name": "Article", "fields": [
        {"key": "title", "type": "text", "required": True, "max": 200},
        {"key": "slug", "type": "text", "required": True, "unique": True, "pattern": "^[a-z0-9-]+$"},
        {"key": "body", "type": "rich_text"},
        {"key": "views", "type": "integer", "min": 0, "default": 0},
        {"key": "rating", "type": "number", "min": 0, "max": 5},
        {"key": "featured", "type": "boolean"},
        {"key": "day", "type": "date"},
        {"key": "category", "type": "enum", "values": ["news", "guide", "release"], "default": "news"},
        {"key": "author", "type": "reference", "references": "author"},
        {"key": "related", "type": "reference", "references": "article", "multiple": True, "max": 5},
        {"key": "tags", "type": "text_list", "max": 10},
        {"key": "meta", "type": "json"}]}
    t.update(extra)
    return t


@pytest.fixture
def blog(tenant):
    """A tenant with author and article types, and its admin client."""
    api = tenant["admin_api"]
    ok(api.post(TYPES, json=AUTHOR), 201)
    ok(api.post(TYPES, json=article_type()), 201)
    return tenant


def new_entry(api, key, data, status=201):
    return ok(api.post(entries(key), json={"data": data}), status)


def article(api, **data):
    data.setdefault("title", "Post " + uuid.uuid4().hex[:6])
    data.setdefault("slug", "post-" + uuid.uuid4().hex[:8])
    return new_entry(api, "article", data)


def publish(api, key, entry):
    return ok(api.post(f"{entries(key)}/{entry['id']}/publish"))


def publishable(tenant):
    key = ok(tenant["admin_api"].post(KEYS, json={"name": "web", "type": "publishable"}), 201)["key"]
    assert key.startswith("cdx_pk_")
    return Api(tenant["admin_api"].base, {"X-API-Key": key})


# ---- content types ----------------------------------------------------------------------------------------


def test_a_content_type_is_created_read_by_key_and_listed(blog):
    api = blog["admin_api"]
    t = ok(api.get(f"{TYPES}/article"))
    assert t["key"] == "article" and [f["key"] for f in t["fields"]][:3] == ["title", "slug", "body"]
    assert t["fields"][1]["unique"] is True
    assert ok(api.get(f"{TYPES}/{t['id']}"))["key"] == "article"
    assert [x["key"] for x in ok(api.get(TYPES))["data"]] == ["article", "author"]


@pytest.mark.parametrize("bad_field, where", [
    ({"key": "n", "type": "integer", "min": 5, "max": 1}, "fields[0].min"),
    ({"key": "n", "type": "colour"}, "fields[0].type"),
    ({"key": "n", "type": "reference", "references": "nothing_here"}, "fields[0].references"),
    ({"key": "n", "type": "reference"}, "fields[0].references"),
    ({"key": "n", "type": "enum"}, "fields[0].values"),
    ({"key": "n", "type": "text", "pattern": "(unclosed"}, "fields[0].pattern"),
    ({"key": "n", "type": "integer", "max": 3, "default": 9}, "fields[0].default"),
    ({"key": "n", "type": "boolean", "unique": True}, "fields[0].unique"),
    ({"key": "N-1", "type": "text"}, "fields[0].key"),
    ({"key": "n", "type": "text", "min": -1}, "fields[0].min"),
])
def test_a_type_that_contradicts_itself_is_422_naming_the_rule(tenant, bad_field, where):
    r = tenant["admin_api"].post(TYPES, json={"key": "thing", "name": "Thing", "fields": [bad_field]})
    assert where in fields(r), r.text


def test_duplicate_field_keys_and_type_keys_are_refused(tenant):
    api = tenant["admin_api"]
    r = api.post(TYPES, json={"key": "thing", "name": "T", "fields": [{"key": "a", "type": "text"},
                                                                      {"key": "a", "type": "integer"}]})
    assert "fields[1].key" in fields(r)
    ok(api.post(TYPES, json={"key": "thing", "name": "T"}), 201)
    assert_problem(api.post(TYPES, json={"key": "thing", "name": "Other"}), 409)


# ---- entries ----------------------------------------------------------------------------------------------


def test_entries_are_checked_under_their_type_naming_every_bad_field(blog):
    api = blog["admin_api"]
    r = api.post(entries("article"), json={"data": {"views": "many", "rating": 9, "featured": "yes",
                                                     "day": "2026-02-30", "category": "gossip",
                                                     "slug": "Not A Slug", "nope": 1, "tags": "x"}})
    bad = fields(r)
    for f in ["data.title", "data.views", "data.rating", "data.featured", "data.day", "data.category",
              "data.slug", "data.nope", "data.tags"]:
        assert f in bad, (f, bad)
    assert bad["data.title"] == "is required"
    assert "integer" in bad["data.views"]


def test_an_entry_gets_defaults_and_versions_on_every_change(blog):
    api = blog["admin_api"]
    e = article(api, title="First")
    assert e["status"] == "draft" and e["version"] == 1 and e["data"]["views"] == 0
    assert e["data"]["category"] == "news" and e["created_by"]["type"] == "user"
    e2 = ok(api.patch(f"{entries('article')}/{e['id']}", json={"data": {"title": "Second", "views": 3}}))
    assert e2["version"] == 2 and e2["data"]["title"] == "Second" and e2["data"]["slug"] == e["data"]["slug"]
    same = ok(api.patch(f"{entries('article')}/{e['id']}", json={"data": {"title": "Second"}}))
    assert same["version"] == 2, "a save that changes nothing makes no version"
    versions = ok(api.get(f"{entries('article')}/{e['id']}/versions"))["data"]
    assert [v["version"] for v in versions] == [2, 1] and versions[0]["current"] is True
    v1 = ok(api.get(f"{entries('article')}/{e['id']}/versions/1"))
    assert v1["data"]["title"] == "First" and v1["created_by"]["type"] == "user"
    assert_problem(api.get(f"{entries('article')}/{e['id']}/versions/9"), 404)
    restored = ok(api.post(f"{entries('article')}/{e['id']}/versions/1/restore"))
    assert restored["version"] == 3 and restored["data"]["title"] == "First" and restored["data"]["views"] == 0


def test_references_must_name_entries_of_the_right_type(blog):
    api = blog["admin_api"]
    other = article(api)
    assert "data.author" in fields(api.post(entries("article"), json={"data": {
        "title": "x", "slug": "x1", "author": NO_SUCH_ID}}))
    assert "data.author" in fields(api.post(entries("article"), json={"data": {
        "title": "x", "slug": "x2", "author": other["id"]}})), "an article is not an author"
    ada = new_entry(api, "author", {"name": "Ada"})
    e = article(api, author=ada["id"], related=[other["id"]])
    assert e["data"]["author"] == ada["id"]


def test_unique_values_are_409_and_freed_by_deleting(blog):
    api = blog["admin_api"]
    e = article(api, slug="only-one")
    assert_problem(api.post(entries("article"), json={"data": {"title": "t", "slug": "only-one"}}), 409)
    ok(api.delete(f"{entries('article')}/{e['id']}"), 204)
    article(api, slug="only-one")


def test_rich_text_renders_sanitized_html(blog):
    api = blog["admin_api"]
    md = "# Hi\n\n<script>alert(1)</script>\n\n[click](javascript:alert(1)) <img src=x onerror=alert(1)>"
    e = article(api, body=md)
    assert e["data"]["body"] == md
    html = e["html"]["body"]
    assert "<h1>Hi</h1>" in html
    assert "<script" not in html and "javascript:" not in html and "onerror" not in html


def test_bad_bytes_and_oversized_bodies_are_clear_4xx(blog):
    api = blog["admin_api"]
    assert "data.title" in fields(api.post(entries("article"), json={"data": {"title": "a\u0000b", "slug": "z"}}))
    big = "x" * (10 * 1024 * 1024)
    r = api.post(entries("article"), json={"data": {"title": "t", "slug": "big", "body": big}})
    assert r.status_code == 413, r.status_code
    assert_problem(api.get(f"{entries('article')}/{NO_SUCH_ID}"), 404)
    assert_problem(api.get(f"{TYPES}/nope/entries"), 404)


# ---- publishing and delivery ------------------------------------------------------------------------------


def test_publish_freezes_a_version_and_later_edits_stay_drafts(blog):
    api, pk = blog["admin_api"], publishable(blog)
    e = article(api, title="v1")
    assert_problem(pk.get(f"{published('article')}/{e['id']}"), 404)
    p = publish(api, "article", e)
    assert p["status"] == "published" and p["published_version"] == 1 and p["published_at"]
    assert ok(pk.get(f"{published('article')}/{e['id']}"))["data"]["title"] == "v1"
    edited = ok(api.patch(f"{entries('article')}/{e['id']}", json={"data": {"title": "v2"}}))
    assert edited["status"] == "changed"
    assert ok(pk.get(f"{published('article')}/{e['id']}"))["data"]["title"] == "v1"
    assert publish(api, "article", e)["published_version"] == 2
    assert ok(pk.get(f"{published('article')}/{e['id']}"))["data"]["title"] == "v2"
    gone = ok(api.post(f"{entries('article')}/{e['id']}/unpublish"))
    assert gone["status"] == "draft" and gone["published_version"] is None
    assert_problem(pk.get(f"{published('article')}/{e['id']}"), 404)
    assert all(x["id"] != e["id"] for x in ok(pk.get(published("article")))["data"])


def test_the_tenants_content_api_is_described_with_each_types_schema(blog, anon):
    import jsonschema

    api, pk = blog["admin_api"], publishable(blog)
    ada = new_entry(api, "author", {"name": "Ada", "bio": "Countess *of* code"})
    publish(api, "author", ada)
    e = article(api, title="Typed", views=3, rating=4.5, featured=True, day="2026-02-03", category="guide",
                author=ada["id"], tags=["a", "b"], meta={"any": [1, 2]}, body="**bold**")
    publish(api, "article", e)
    doc = ok(pk.get(CMS + "/openapi.json"))
    assert doc["openapi"] == "3.1.0"
    assert {"/api/v1/cms/published/article", "/api/v1/cms/published/article/{id}",
            "/api/v1/cms/published/author", "/api/v1/cms/content-types/article/entries"} <= set(doc["paths"])
    s = doc["components"]["schemas"]
    data = s["ArticleData"]
    assert sorted(data["required"]) == ["slug", "title"]  # views and category have defaults
    assert data["properties"]["views"] == {"type": "integer", "minimum": 0, "default": 0, "title": "views"}
    assert data["properties"]["category"]["enum"] == ["news", "guide", "release"]
    assert data["properties"]["related"]["maxItems"] == 5
    assert data["properties"]["slug"]["pattern"] == "^[a-z0-9-]+$"
    assert "required" not in s["ArticleDataUpdate"]
    names = [p["name"] for p in doc["paths"]["/api/v1/cms/published/article"]["get"]["parameters"]]
    assert "filter[views]" in names and "q" in names

    # What the delivery API answers is what the document says, populated or not, and bad data is not.
    def check(entry, schema="ArticlePublished"):
        jsonschema.validate(entry, {"$ref": f"#/components/schemas/{schema}", "components": doc["components"]},
                            cls=jsonschema.Draft202012Validator)

    check(ok(pk.get(f"{published('article')}/{e['id']}")))
    check(ok(pk.get(f"{published('article')}/{e['id']}", params={"populate": "author"})))
    for x in ok(pk.get(published("author")))["data"]:
        check(x, "AuthorPublished")
    wrong = ok(pk.get(f"{published('article')}/{e['id']}"))
    wrong["data"]["views"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        check(wrong)
    # The write schema takes what the API takes, and refuses what it refuses.
    write = {"$ref": "#/components/schemas/ArticleData", "components": doc["components"]}
    jsonschema.validate({"title": "t", "slug": "s-1", "views": 2}, write, cls=jsonschema.Draft202012Validator)
    for bad in ({"slug": "s"}, {"title": "t", "slug": "S S"}, {"title": "t", "slug": "s", "views": -1},
                {"title": "t", "slug": "s", "nope": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, write, cls=jsonschema.Draft202012Validator)
        assert_problem(api.post(entries("article"), json={"data": bad}), 422)
    assert_problem(anon.get(CMS + "/openapi.json"), 401)


def test_the_content_api_schema_holds_for_localized_fields_updates_and_populated_lists(blog):
    import jsonschema

    api, pk = blog["admin_api"], publishable(blog)
    ok(api.post(LOCALES, json={"code": "fr", "name": "Français"}), 201)
    ok(api.post(TYPES, json={"key": "post_1", "name": "Post one", "fields": [
        {"key": "title", "type": "text", "localized": True, "required": True},
        {"key": "lead", "type": "text", "localized": True, "default": "Read on"},
        {"key": "authors", "type": "reference", "references": "author", "multiple": True, "min": 2}]}), 201)
    ok(api.post(TYPES, json={"key": "post1", "name": "Post 1", "fields": [{"key": "x", "type": "text"}]}), 201)
    a, b = (new_entry(api, "author", {"name": n}) for n in ("A", "B"))
    for x in (a, b):
        publish(api, "author", x)
    p = new_entry(api, "post_1", {"title": {"en": "Hi", "fr": "Salut"}, "authors": [a["id"], b["id"]]})
    publish(api, "post_1", p)
    ok(api.post(f"{entries('author')}/{b['id']}/unpublish"))  # populate now finds one of the two
    doc = ok(pk.get(CMS + "/openapi.json"))
    s = doc["components"]["schemas"]
    assert {"Post1Data", "Post1_2Data"} <= set(s)  # keys alike in PascalCase get distinct names
    ops = [op["operationId"] for path in doc["paths"].values() for op in path.values()]
    assert len(ops) == len(set(ops))
    schema = lambda name: {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    v = lambda value, name: jsonschema.validate(value, schema(name), cls=jsonschema.Draft202012Validator)
    mine = next(n for n in ("Post1", "Post1_2") if "authors" in s[n + "Data"]["properties"])
    for locale in ("en", "fr"):
        for populate in ({}, {"populate": "authors"}):
            got = ok(pk.get(f"{published('post_1')}/{p['id']}", params={"locale": locale, **populate}))
            v(got, mine + "Published")
    assert len(ok(pk.get(f"{published('post_1')}/{p['id']}", params={"populate": "authors"}))["data"]["authors"]) == 1
    # What create and update take: localized values per locale (the default goes to the default locale), and
    # null clears a field on update.
    v({"title": {"en": "x"}, "authors": [a["id"], b["id"]]}, mine + "Data")
    assert "default" not in s[mine + "Data"]["properties"]["lead"]
    created = new_entry(api, "post_1", {"title": {"en": "x"}, "authors": [a["id"], b["id"]]})
    assert created["data"]["lead"] == {"en": "Read on"}
    v({"lead": None, "authors": None}, mine + "DataUpdate")
    url = f"{entries('post_1')}/{created['id']}"
    assert ok(api.patch(url, json={"data": {"lead": {"en": "Mine"}}}))["data"]["lead"] == {"en": "Mine"}
    cleared = ok(api.patch(url, json={"data": {"lead": None, "authors": None}}))["data"]
    assert cleared["lead"] == {"en": "Read on"} and cleared.get("authors") is None  # back to the default; gone
    assert all("default" not in x for x in s[mine + "DataUpdate"]["properties"].values())
    with pytest.raises(jsonschema.ValidationError):
        v({"title": "not per locale", "authors": [a["id"], b["id"]]}, mine + "Data")
    assert_problem(api.post(entries("post_1"), json={"data": {"title": "not per locale", "authors": [a["id"], b["id"]]}}),
                   422)


def test_changes_and_publishing_write_events(blog, anon):
    api, pk = blog["admin_api"], publishable(blog)
    e = article(api, title="evented")
    publish(api, "article", e)
    ok(api.patch(f"{entries('article')}/{e['id']}", json={"data": {"title": "evented 2"}}))
    publish(api, "article", e)
    ok(api.post(f"{entries('article')}/{e['id']}/unpublish"))
    mine = [x for x in ok(api.get(CMS + "/events", params={"type": "cms.entry.", "limit": 100}))["data"]
            if x["data"]["entry"]["id"] == e["id"]]
    # Newest first, each change once, with the version published and who did it.
    assert [x["type"] for x in mine] == ["cms.entry.unpublished", "cms.entry.published", "cms.entry.updated",
                                         "cms.entry.published", "cms.entry.created"]
    assert [x["data"]["entry"]["version"] for x in mine if x["type"] == "cms.entry.published"] == [2, 1]
    assert mine[1]["data"]["entry"]["data"]["title"] == "evented 2" and mine[1]["data"]["actor"]["type"] == "user"
    assert all(x["tenant_id"] == blog["id"] for x in mine)
    # The type filter takes an exact name, and pages go back in time.
    only = ok(api.get(CMS + "/events", params={"type": "cms.entry.unpublished"}))["data"]
    assert only and {x["type"] for x in only} == {"cms.entry.unpublished"}
    first = ok(api.get(CMS + "/events", params={"limit": 2}))
    second = ok(api.get(CMS + "/events", params={"limit": 2, "cursor": first["next_cursor"]}))
    assert not {x["id"] for x in first["data"]} & {x["id"] for x in second["data"]}
    assert_problem(api.get(CMS + "/events", params={"cursor": "bm90IG91cnM"}), 422)
    # The event log is the tenant's management data: not for a publishable key or a CLIENT.
    assert_problem(pk.get(CMS + "/events"), 403)
    assert_problem(anon.get(CMS + "/events"), 401)


def test_delivery_filters_sorts_fields_and_pages(blog):
    api, pk = blog["admin_api"], publishable(blog)
    made = []
    for i in range(7):
        e = article(api, title=f"Item {i}", views=i * 10, rating=i % 3, category=["news", "guide"][i % 2],
                    tags=["even" if i % 2 == 0 else "odd"], featured=i == 3, day=f"2026-01-0{i + 1}",
                    slug=f"item-{i}")
        publish(api, "article", e)
        made.append(e)
    article(api, title="Draft only", views=1000)  # never published: never listed
    get = lambda **q: ok(pk.get(published("article"), params=q))["data"]
    assert [x["data"]["views"] for x in get(sort="-views")] == [60, 50, 40, 30, 20, 10, 0]
    assert [x["data"]["views"] for x in get(**{"filter[views][gte]": "30", "sort": "views"})] == [30, 40, 50, 60]
    assert {x["data"]["category"] for x in get(**{"filter[category]": "guide"})} == {"guide"}
    assert len(get(**{"filter[category][in]": "guide,news"})) == 7
    assert [x["data"]["title"] for x in get(**{"filter[featured]": "true"})] == ["Item 3"]
    assert len(get(**{"filter[tags][contains]": "odd"})) == 3
    assert [x["data"]["title"] for x in get(**{"filter[title][contains]": "item 5"})] == ["Item 5"]
    assert [x["data"]["day"] for x in get(**{"filter[day][lt]": "2026-01-03", "sort": "day"})] == [
        "2026-01-01", "2026-01-02"]
    assert len(get(q="item 2")) == 1
    two = get(**{"sort": "rating,-views"})
    assert [(x["data"]["rating"], x["data"]["views"]) for x in two][:3] == [(0, 60), (0, 30), (0, 0)]
    sparse = get(fields="title,views", sort="views")[0]
    assert set(sparse["data"]) == {"title", "views"}
    # Cursor pages: every published entry once, in order, under a two-key sort.
    seen, cursor = [], None
    while True:
        q = {"limit": 3, "sort": "category,-views"}
        if cursor:
            q["cursor"] = cursor
        page = ok(pk.get(published("article"), params=q))
        seen += [x["id"] for x in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(e["id"] for e in made) and len(seen) == 7
    # A new number field ahead of views moves views' sort key to another column: the order holds.
    t = ok(api.get(f"{TYPES}/article"))
    ok(api.patch(f"{TYPES}/article", json={"fields": [{"key": "rank", "type": "integer"}] + t["fields"]}))
    assert [x["data"]["views"] for x in get(sort="-views")] == [60, 50, 40, 30, 20, 10, 0]
    assert [x["data"]["title"] for x in get(sort="title")][:2] == ["Item 0", "Item 1"]


def test_q_searches_the_words_of_published_text(blog):
    api, pk = blog["admin_api"], publishable(blog)
    texts = {"fox": ("The quick brown fox", "Jumps over **the lazy** dog."),
             "cafe": ("Straße café", "Ein kleines Café an der straße, seit 1998."),
             "dogs": ("Lazy dogs", "Sleep all day; e-mail: dogs@example.com"),
             "draft": ("Quick draft", "never published")}
    ids = {}
    for slug, (title, body) in texts.items():
        e = article(api, title=title, body=body, slug=slug)
        ids[slug] = e["id"]
        if slug != "draft":
            publish(api, "article", e)
    search = lambda q, **more: {x["data"]["slug"] for x in ok(pk.get(published("article"), params={"q": q, **more}))["data"]}
    assert search("quick") == {"fox"}                      # drafts are never found
    assert search("qui BRO") == {"fox"}                    # every word, each as a prefix, any case
    assert search("lazy") == {"fox", "dogs"}               # title or rich text (Markdown as written)
    assert search("lazy dog") == {"fox", "dogs"}
    assert search("lazy sleep") == {"dogs"}
    assert search("fox sleep") == set()
    assert search("lazy — sleep…") == {"dogs"} and search("«quick»") == {"fox"}  # punctuation of any script
    assert search("straße") == {"cafe"} and search("café 1998") == {"cafe"}
    assert search("STRASSE") == set() and search("CAFÉ") == {"cafe"} and search("Ein KLEINES") == {"cafe"}
    assert search("e-mail") == {"dogs"} and search("dogs@example.com") == {"dogs"}  # punctuation separates
    assert search("lazy", sort="-title", limit=1) == {"fox"}
    assert search("lazy", **{"filter[slug]": "dogs"}) == {"dogs"}
    # Cursor pages through the matches.
    first = ok(pk.get(published("article"), params={"q": "lazy", "limit": 1, "sort": "title"}))
    rest = ok(pk.get(published("article"), params={"q": "lazy", "limit": 1, "sort": "title",
                                                   "cursor": first["next_cursor"]}))
    assert [first["data"][0]["data"]["slug"], rest["data"][0]["data"]["slug"]] == ["dogs", "fox"]
    assert rest["next_cursor"] is None
    # A new version is searched by its words, an unpublished entry not at all.
    ok(api.patch(f"{entries('article')}/{ids['fox']}", json={"data": {"title": "The slow red fox"}}))
    assert search("quick") == {"fox"}  # the published version until it is published again
    publish(api, "article", {"id": ids["fox"]})
    assert search("quick") == set() and search("slow red") == {"fox"}
    ok(api.post(f"{entries('article')}/{ids['dogs']}/unpublish"))
    assert search("lazy") == {"fox"}
    # A query without a word to look for is an error, not everything.
    for bad in (",,,", "  - ", "*", "— …"):
        assert "q" in fields(pk.get(published("article"), params={"q": bad}))
    assert "q" in fields(pk.get(published("article"), params={"q": "x" * 201}))
    assert search(" ".join(["lazy"] * 40)) == {"fox"}  # many words: the first sixteen


@pytest.mark.parametrize("query, where", [
    ({"filter[nope]": "1"}, "filter[nope]"),
    ({"filter[views][gte]": "lots"}, "filter[views][gte]"),
    ({"filter[views][contains]": "1"}, "filter[views][contains]"),
    ({"filter[category]": "gossip"}, "filter[category]"),
    ({"sort": "body"}, "sort"),
    ({"sort": "nope"}, "sort"),
    ({"fields": "title,nope"}, "fields"),
    ({"populate": "title"}, "populate"),
    ({"populate": "author.nope"}, "populate"),
    ({"locale": "xx"}, "locale"),
    ({"cursor": "garbage"}, "cursor"),
    ({"limit": "0"}, "limit"),
    ({"filters[views]": "1"}, "filters[views]"),
])
def test_bad_delivery_queries_are_422_naming_the_parameter(blog, query, where):
    pk = publishable(blog)
    assert where in fields(pk.get(published("article"), params=query))


def test_populate_resolves_references_and_lists_one_level_at_a_time(blog):
    api, pk = blog["admin_api"], publishable(blog)
    ada = new_entry(api, "author", {"name": "Ada", "bio": "*hi*"})
    publish(api, "author", ada)
    hidden = new_entry(api, "author", {"name": "Draft author"})
    a1 = article(api, title="A1", author=ada["id"])
    publish(api, "article", a1)
    a2 = article(api, title="A2", author=hidden["id"], related=[a1["id"]])
    publish(api, "article", a2)
    got = ok(pk.get(f"{published('article')}/{a2['id']}", params={"populate": "author,related,related.author"}))
    assert got["data"]["author"] is None, "an unpublished author is not shown"
    rel = got["data"]["related"]
    assert [r["data"]["title"] for r in rel] == ["A1"]
    assert rel[0]["data"]["author"]["data"]["name"] == "Ada"
    assert rel[0]["data"]["author"]["html"]["bio"] == "<p><em>hi</em></p>\n"
    plain = ok(pk.get(f"{published('article')}/{a2['id']}"))
    assert plain["data"]["related"] == [a1["id"]]
    star = ok(pk.get(published("article"), params={"populate": "*", "filter[title]": "A1"}))["data"][0]
    assert star["data"]["author"]["id"] == ada["id"]


def test_etag_and_if_none_match(blog):
    api, pk = blog["admin_api"], publishable(blog)
    e = article(api)
    publish(api, "article", e)
    r = pk.get(f"{published('article')}/{e['id']}")
    assert r.status_code == 200 and r.headers["ETag"].startswith('"') and "no-cache" in r.headers["Cache-Control"]
    again = pk.with_headers(If_None_Match=r.headers["ETag"]).get(f"{published('article')}/{e['id']}")
    assert again.status_code == 304 and again.content == b""
    lst = pk.get(published("article"))
    assert pk.with_headers(If_None_Match=lst.headers["ETag"]).get(published("article")).status_code == 304
    ok(api.patch(f"{entries('article')}/{e['id']}", json={"data": {"title": "changed"}}))
    publish(api, "article", e)
    assert pk.with_headers(If_None_Match=r.headers["ETag"]).get(f"{published('article')}/{e['id']}").status_code == 200


def test_preview_tokens_show_one_draft_for_a_short_time(blog):
    api, pk = blog["admin_api"], publishable(blog)
    e = article(api, title="secret draft")
    other = article(api)
    tok = ok(api.post(f"{entries('article')}/{e['id']}/preview-token", json={"ttl_seconds": 60}), 201)
    assert tok["token"].startswith("cdx_pv_")
    got = ok(pk.get(f"{published('article')}/{e['id']}", params={"preview": tok["token"]}))
    assert got["data"]["title"] == "secret draft" and got["preview"] is True
    r = pk.get(f"{published('article')}/{other['id']}", params={"preview": tok["token"]})
    assert_problem(r, 403)
    assert_problem(pk.get(f"{published('article')}/{e['id']}", params={"preview": "cdx_pv_forged"}), 403)
    assert "ttl_seconds" in fields(api.post(f"{entries('article')}/{e['id']}/preview-token",
                                            json={"ttl_seconds": 10 ** 7}))


def test_scheduled_publishing_happens_within_seconds(blog):
    api, pk = blog["admin_api"], publishable(blog)
    soon = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    e = ok(api.post(entries("article"), json={"data": {"title": "timed", "slug": "timed"}, "publish_at": soon}),
           201)
    assert e["status"] == "draft" and e["publish_at"]
    wait_for(lambda: pk.get(f"{published('article')}/{e['id']}").status_code == 200, timeout=6)
    row = ok(api.get(f"{entries('article')}/{e['id']}"))
    assert row["status"] == "published" and row["publish_at"] is None
    end = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    ok(api.patch(f"{entries('article')}/{e['id']}", json={"unpublish_at": end}))
    wait_for(lambda: pk.get(f"{published('article')}/{e['id']}").status_code == 404, timeout=6)
    assert "unpublish_at" in fields(api.post(entries("article"), json={
        "data": {"title": "t", "slug": "t2"}, "publish_at": "2030-01-02T00:00:00Z",
        "unpublish_at": "2030-01-01T00:00:00Z"}))


def tenant_on(server):
    """A new tenant on a server of the test's own, made by its SUPERADMIN."""
    token = ok(Api(server.url).post("/api/v1/auth/superadmin/login",
                                    json={"username": SUPERADMIN[0], "password": SUPERADMIN[1]}))["access_token"]
    return make_tenant(Api(server.url, {"Authorization": "Bearer " + token}))


def forget_the_search_index(storage):
    """Takes cms_db back to before migration 4 (the full-text index), as a database of an earlier version is."""
    if "CDX_DATABASE_URL" in storage:
        subprocess.run(["psql", storage["CDX_DATABASE_URL"], "-q", "-v", "ON_ERROR_STOP=1", "-c",
                        "DROP TRIGGER published_words_sync ON cms_db.published; "
                        "DROP FUNCTION cms_db.published_words_sync(); DROP TABLE cms_db.published_words; "
                        "DELETE FROM cms_db.schema_migrations WHERE version = 4"], check=True, capture_output=True)
        return
    db = sqlite3.connect(os.path.join(storage["CDX_DATA_DIR"], "cms_db.sqlite"))
    db.executescript("DROP TRIGGER published_search_insert; DROP TRIGGER published_search_delete; "
                     "DROP TRIGGER published_search_update; DROP TABLE published_search; "
                     "DROP INDEX published_search_id; ALTER TABLE published DROP COLUMN search_id; "
                     "DELETE FROM schema_migrations WHERE version = 4;")
    db.close()


def test_entries_published_before_the_search_index_are_found_after_the_upgrade():
    s = Server().start()
    try:
        t = tenant_on(s)
        api = Api(s.url, {"X-API-Key": t["api_key"]})
        ok(api.post(TYPES, json={"key": "note", "name": "Note", "fields": [{"key": "text", "type": "text"}]}), 201)
        old = new_entry(api, "note", {"text": "Written in the old days, e-mail me"})
        publish(api, "note", old)
        s.stop()
        forget_the_search_index(s.storage)
        s2 = Server(storage=s.storage).start()
        try:
            api2 = Api(s2.url, {"X-API-Key": t["api_key"]})
            pk = publishable({"admin_api": api2})
            found = lambda q: [x["id"] for x in ok(pk.get(published("note"), params={"q": q}))["data"]]
            assert found("old days") == [old["id"]] and found("mail") == [old["id"]]
            new = new_entry(api2, "note", {"text": "Days of new"})
            publish(api2, "note", new)
            assert sorted(found("days")) == sorted([old["id"], new["id"]])
        finally:
            s2.cleanup()
    finally:
        s.cleanup()


def test_two_replicas_on_one_database_publish_each_scheduled_entry_once():
    """Two servers on the same storage both run the schedule: each due entry is published by one of them,
    once (one version, one event)."""
    a = Server().start()
    b = None
    try:
        t = tenant_on(a)
        b = Server(storage=a.storage).start()
        api_a, api_b = (Api(s.url, {"X-API-Key": t["api_key"]}) for s in (a, b))
        ok(api_a.post(TYPES, json={"key": "note", "name": "Note", "fields": [{"key": "text", "type": "text"}]}), 201)
        due = (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
        made = [ok((api_a, api_b)[i % 2].post(entries("note"), json={"data": {"text": f"n{i}"}, "publish_at": due}),
                   201)["id"] for i in range(24)]
        wait_for(lambda: all(x["status"] == "published" for x in
                             ok(api_b.get(entries("note"), params={"limit": 100}))["data"]), timeout=10)
        time.sleep(1.5)  # both replicas poll again: nothing is done twice
        rows = {x["id"]: x for x in ok(api_a.get(entries("note"), params={"limit": 100}))["data"]}
        assert set(rows) == set(made)
        assert all(r["published_version"] == 1 and r["publish_at"] is None for r in rows.values())
        events = ok(api_b.get(CMS + "/events", params={"type": "cms.entry.published", "limit": 100}))["data"]
        assert sorted(e["data"]["entry"]["id"] for e in events) == sorted(made)
    finally:
        if b:
            b.cleanup()
        a.cleanup()


def test_a_publication_due_while_the_server_was_down_happens_once_after_the_restart():
    s = Server().start()
    try:
        t = tenant_on(s)
        api = Api(s.url, {"X-API-Key": t["api_key"]})
        ok(api.post(TYPES, json={"key": "note", "name": "Note", "fields": [{"key": "text", "type": "text"}]}), 201)
        due = (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
        e = ok(api.post(entries("note"), json={"data": {"text": "later"}, "publish_at": due}), 201)
        s.stop(sig=signal.SIGKILL)
        time.sleep(2.5)  # due while nothing runs
        s2 = Server(storage=s.storage).start()
        try:
            api2 = Api(s2.url, {"X-API-Key": t["api_key"]})
            wait_for(lambda: ok(api2.get(f"{entries('note')}/{e['id']}"))["status"] == "published", timeout=6)
            row = ok(api2.get(f"{entries('note')}/{e['id']}"))
            assert row["published_version"] == 1 and row["publish_at"] is None
            first = row["updated_at"]
            time.sleep(1.5)  # carried out once: nothing touches it again
            assert ok(api2.get(f"{entries('note')}/{e['id']}"))["updated_at"] == first
        finally:
            s2.cleanup()
    finally:
        s.cleanup()


# ---- type changes -----------------------------------------------------------------------------------------


def test_a_type_change_that_entries_would_violate_is_409_naming_field_and_count(blog):
    api = blog["admin_api"]
    for i in range(3):
        article(api, category="guide" if i else "release")
    t = ok(api.get(f"{TYPES}/article"))
    need = t["fields"] + [{"key": "subtitle", "type": "text", "required": True}]
    body = assert_problem(api.patch(f"{TYPES}/article", json={"fields": need}), 409)
    assert body["errors"][0]["field"] == "fields.subtitle" and body["errors"][0]["message"].startswith("3 entries")
    with_default = t["fields"] + [{"key": "subtitle", "type": "text", "required": True, "default": "none"}]
    ok(api.patch(f"{TYPES}/article", json={"fields": with_default}))
    narrowed = [dict(f, values=["news", "guide"]) if f["key"] == "category" else f for f in with_default]
    body = assert_problem(api.patch(f"{TYPES}/article", json={"fields": narrowed}), 409)
    assert body["errors"][0]["field"] == "fields.category" and body["errors"][0]["message"].startswith("1 entry")
    dropped = [f for f in with_default if f["key"] != "tags"]
    ok(api.patch(f"{TYPES}/article", json={"fields": dropped}))
    e = ok(api.get(entries("article")))["data"][0]
    assert "tags" not in e["data"]


def test_deleting_a_type_with_entries_needs_cascade(blog):
    api = blog["admin_api"]
    e = article(api)
    publish(api, "article", e)
    assert_problem(api.delete(f"{TYPES}/author"), 409)  # article references it
    assert_problem(api.delete(f"{TYPES}/article"), 409)
    ok(api.delete(f"{TYPES}/article", params={"cascade": "true"}), 204)
    assert_problem(api.get(f"{TYPES}/article"), 404)
    ok(api.post(TYPES, json=article_type()), 201)
    assert ok(api.get(entries("article")))["data"] == []
    assert ok(publishable(blog).get(published("article")))["data"] == []


# ---- locales ----------------------------------------------------------------------------------------------


def test_localized_fields_read_in_a_locale_with_fallback(tenant):
    api = tenant["admin_api"]
    assert [l["code"] for l in ok(api.get(LOCALES))["data"]] == ["en"]
    ok(api.post(LOCALES, json={"code": "fr", "name": "Français"}), 201)
    de = ok(api.post(LOCALES, json={"code": "de"}), 201)
    assert "code" in fields(api.post(LOCALES, json={"code": "not a locale"}))
    ok(api.post(TYPES, json={"key": "page", "name": "Page", "fields": [
        {"key": "title", "type": "text", "required": True, "localized": True},
        {"key": "order", "type": "integer"}]}), 201)
    assert "data.title.en" in fields(api.post(entries("page"), json={"data": {"title": {"fr": "Bonjour"}}}))
    assert "data.title.xx" in fields(api.post(entries("page"), json={"data": {"title": {"en": "Hi", "xx": "?"}}}))
    assert "data.title" in fields(api.post(entries("page"), json={"data": {"title": "plain"}}))
    e = new_entry(api, "page", {"title": {"en": "Hello", "fr": "Bonjour"}, "order": 1})
    publish(api, "page", e)
    pk = publishable(tenant)
    assert ok(pk.get(f"{published('page')}/{e['id']}"))["data"]["title"] == "Hello"
    assert ok(pk.get(f"{published('page')}/{e['id']}", params={"locale": "fr"}))["data"]["title"] == "Bonjour"
    assert ok(pk.get(f"{published('page')}/{e['id']}", params={"locale": "de"}))["data"]["title"] == "Hello"
    ok(api.patch(f"{LOCALES}/de", json={"is_default": True}))
    codes = {l["code"]: l["is_default"] for l in ok(api.get(LOCALES))["data"]}
    assert codes == {"de": True, "en": False, "fr": False}
    assert_problem(api.delete(f"{LOCALES}/{de['id']}"), 409)


def test_an_entry_keeps_a_deleted_locales_values_until_its_next_save_which_drops_them(tenant):
    api = tenant["admin_api"]
    ok(api.post(TYPES, json={"key": "note", "name": "Note", "fields": [
        {"key": "title", "type": "text", "required": True, "localized": True},
        {"key": "order", "type": "integer"}]}), 201)
    ok(api.post(LOCALES, json={"code": "it", "name": "Italiano"}), 201)
    e = new_entry(api, "note", {"title": {"en": "Hello", "it": "Ciao"}, "order": 1})
    ok(api.delete(f"{LOCALES}/it"), 204)
    url = f"{entries('note')}/{e['id']}"
    assert ok(api.get(url))["data"]["title"] == {"en": "Hello", "it": "Ciao"}  # kept until the next save
    # A save that does not name the deleted locale goes through and drops its value.
    saved = ok(api.patch(url, json={"data": {"order": 2}}))
    assert saved["data"] == {"title": {"en": "Hello"}, "order": 2}
    assert ok(api.get(url))["data"]["title"] == {"en": "Hello"}
    # A write that names it is refused by name.
    assert "data.title.it" in fields(api.patch(url, json={"data": {"title": {"it": "Ciao"}}}))
    # Version 1 (with its "it" value) restores without it; a locale added since is emptied by the restore.
    ok(api.post(LOCALES, json={"code": "es", "name": "Español"}), 201)
    ok(api.patch(url, json={"data": {"title": {"es": "Hola"}}}))
    restored = ok(api.post(f"{url}/versions/1/restore"))
    assert restored["data"] == {"title": {"en": "Hello"}, "order": 1}
    # A type change is not blocked by such values either.
    e2 = new_entry(api, "note", {"title": {"en": "Two"}})
    ok(api.post(LOCALES, json={"code": "it", "name": "Italiano"}), 201)
    ok(api.patch(f"{entries('note')}/{e2['id']}", json={"data": {"title": {"it": "Due"}}}))
    ok(api.delete(f"{LOCALES}/it"), 204)
    changed = ok(api.patch(f"{TYPES}/note", json={"fields": [
        {"key": "title", "type": "text", "required": True, "localized": True, "max": 50}]}))
    assert changed["fields"][0]["max"] == 50 and len(changed["fields"]) == 1
    # A version holding a field the type no longer has restores without it.
    restored = ok(api.post(f"{url}/versions/1/restore"))
    assert restored["data"] == {"title": {"en": "Hello"}}


# ---- access and isolation ---------------------------------------------------------------------------------


def test_who_may_call_what(blog, anon):
    api, pk = blog["admin_api"], publishable(blog)
    e = article(api)
    publish(api, "article", e)
    assert_problem(pk.get(TYPES), 403)
    assert_problem(pk.get(entries("article")), 403)
    assert_problem(pk.post(entries("article"), json={"data": {"title": "x", "slug": "x"}}), 403)
    _, client = user_session(anon, blog, create_user(api))
    assert_problem(client.get(entries("article")), 403)
    assert ok(client.get(f"{published('article')}/{e['id']}"))["id"] == e["id"]
    assert_problem(anon.get(published("article")), 401)
    key_api = blog["key_api"]
    assert ok(key_api.get(f"{TYPES}/article"))["key"] == "article"


def test_another_tenant_sees_nothing(blog, other_tenant):
    api = blog["admin_api"]
    e = article(api)
    publish(api, "article", e)
    theirs = other_tenant["admin_api"]
    assert_problem(theirs.get(f"{TYPES}/article"), 404)
    assert_problem(theirs.get(f"{entries('article')}/{e['id']}"), 404)
    assert_problem(publishable(other_tenant).get(f"{published('article')}/{e['id']}"), 404)
    ok(theirs.post(TYPES, json=AUTHOR), 201)
    ok(theirs.post(TYPES, json=article_type()), 201)
    assert_problem(theirs.get(f"{entries('article')}/{e['id']}"), 404)
    assert ok(publishable(other_tenant).get(published("article")))["data"] == []
    # The same unique slug is free in another tenant.
    article(theirs, slug=e["data"]["slug"])


def test_demo_blog_is_readable_with_a_publishable_key(demo_server):
    base = demo_server.url
    anon = Api(base)
    tok = anon.post("/api/v1/auth/login", json={"email": "john.doe@demo.com", "password": "demo123",
                                                "tenant": "demo"}).json()["access_token"]
    admin = Api(base, {"Authorization": "Bearer " + tok})
    pk = ok(admin.post(KEYS, json={"name": "blog", "type": "publishable"}), 201)["key"]
    posts = ok(Api(base, {"X-API-Key": pk}).get(published("article"), params={"populate": "author,cover"}))["data"]
    assert len(posts) >= 3 and all(p["data"]["author"]["data"]["name"] == "Ada Lovelace" for p in posts)
    cover = posts[0]["data"]["cover"]
    assert (cover["mime_type"], cover["width"], cover["height"]) == ("image/png", 96, 54)
    image = anon.get(cover["url"], params={"w": 48})
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
