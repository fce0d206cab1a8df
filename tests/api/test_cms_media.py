"""CMS media: multipart uploads typed by their bytes (not by their name), image sizes, files stored once,
plan and server size limits (413), decompression bombs refused, public file URLs with transforms (bounded,
cached), media used by entries cannot be deleted (409), and isolation."""
import io
import struct
import zlib

import pytest
import requests
from PIL import Image

from conftest import Api, assert_problem, set_tenant_settings

CMS = "/api/v1/cms"
MEDIA = CMS + "/media"
TYPES = CMS + "/content-types"


def ok(resp, status=200):
    assert resp.status_code == status, resp.text
    return resp.json() if status not in (204, 304) else None


def fields(resp, status=422):
    return {e["field"]: e["message"] for e in assert_problem(resp, status)["errors"]}


def image_bytes(fmt="PNG", size=(64, 48), color=(200, 30, 30)):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def upload(api, name, data, status=201, **form):
    r = api.post(MEDIA, files={"file": (name, data, "application/octet-stream")}, data=form)
    return ok(r, status) if status < 400 else r


def png_bomb(width, height):
    """A valid PNG header declaring width x height, with a tiny compressed body (a zip bomb's shape)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_an_upload_is_typed_by_its_bytes_and_sized(tenant):
    api = tenant["admin_api"]
    m = upload(api, "cat.png", image_bytes(), alt="A cat", folder="pets")
    assert m["mime_type"] == "image/png" and (m["width"], m["height"]) == (64, 48)
    assert m["alt"] == "A cat" and m["folder"] == "pets" and len(m["hash"]) == 64
    assert m["url"] == f"/api/v1/cms/files/{tenant['id']}/{m['id']}"
    j = upload(api, "photo.jpeg", image_bytes("JPEG"))
    assert j["mime_type"] == "image/jpeg"
    blob = upload(api, "notes.bin", b"just some text\n")
    assert blob["mime_type"] == "text/plain" and blob["width"] is None
    listed = ok(api.get(MEDIA, params={"folder": "pets"}))["data"]
    assert [x["id"] for x in listed] == [m["id"]]
    renamed = ok(api.patch(f"{MEDIA}/{m['id']}", json={"alt": "A red cat"}))
    assert renamed["alt"] == "A red cat"
    assert "mime_type" in fields(api.patch(f"{MEDIA}/{m['id']}", json={"mime_type": "image/gif"}))


def test_bytes_that_are_not_what_the_name_says_are_422(tenant):
    api = tenant["admin_api"]
    assert "file" in fields(upload(api, "evil.png", b"<html><script>alert(1)</script></html>", status=422))
    assert "file" in fields(upload(api, "photo.jpg", image_bytes("PNG"), status=422))
    assert "file" in fields(upload(api, "empty.png", b"", status=422))


def test_bad_multipart_bodies_are_clear_4xx(tenant):
    api = tenant["admin_api"]
    assert_problem(api.post(MEDIA, json={"file": "x"}), 415)
    r = api.post(MEDIA, data=b"--nope", headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert_problem(r, 400)
    r = api.post(MEDIA, files={"other": ("a.txt", b"x")})
    assert "file" in fields(r)


def test_the_same_bytes_are_stored_once(tenant, server):
    api = tenant["admin_api"]
    data = image_bytes(color=(1, 2, 3))
    a, b = upload(api, "a.png", data), upload(api, "b.png", data)
    assert a["id"] != b["id"] and a["hash"] == b["hash"]
    stored = list((server.data_dir / "media" / tenant["id"]).glob(a["hash"])) if hasattr(server, "data_dir") else None
    if stored is not None:
        assert len(stored) == 1


def test_decompression_bombs_are_refused_before_decoding(tenant):
    api = tenant["admin_api"]
    r = upload(api, "bomb.png", png_bomb(100000, 100000), status=422)
    assert "megapixels" in fields(r)["file"]


def test_size_limits_per_plan_are_413(tenant, sa):
    api = tenant["admin_api"]
    key = "tiny-" + tenant["id"][-6:]
    ok(sa.post("/api/v1/plans", json={"key": key, "name": "Tiny", "max_upload_mb": 1,
                                      "modules": ["auth", "crm", "cms"]}), 201)
    ok(sa.patch(f"/api/v1/tenants/{tenant['id']}", json={"plan": key}))
    big = b"\x00" * (1024 * 1024 + 10)
    r = api.post(MEDIA, files={"file": ("big.bin", big)})
    assert_problem(r, 413)
    upload(api, "small.bin", b"\x00" * 1000)


def test_files_are_public_by_url_and_transformed_on_the_fly(tenant, anon):
    api = tenant["admin_api"]
    m = upload(api, "wide.jpg", image_bytes("JPEG", size=(800, 400)))
    r = anon.get(m["url"])
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
    assert "immutable" in r.headers["Cache-Control"] and r.headers["X-Content-Type-Options"] == "nosniff"
    assert anon.with_headers(If_None_Match=r.headers["ETag"]).get(m["url"]).status_code == 304
    small = anon.get(m["url"], params={"w": 200, "format": "webp"})
    assert small.status_code == 200 and small.headers["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(small.content)).size == (200, 100)
    cover = anon.get(m["url"], params={"w": 100, "h": 100, "fit": "cover", "format": "png"})
    assert Image.open(io.BytesIO(cover.content)).size == (100, 100)
    again = anon.get(m["url"], params={"w": 100, "h": 100, "fit": "cover", "format": "png"})
    assert again.content == cover.content and again.headers["ETag"] == cover.headers["ETag"]
    for q, where in [({"w": 100000, "h": 100000}, "w"), ({"w": 0}, "w"), ({"fit": "cover", "w": 10}, "fit"),
                     ({"format": "bmp"}, "format"), ({"x": "1"}, "x")]:
        assert where in fields(anon.get(m["url"], params=q)), q
    text = upload(api, "notes.txt", b"plain words\n")
    assert "w" in fields(anon.get(text["url"], params={"w": 10}))
    plain = anon.get(text["url"])
    assert plain.headers["Content-Disposition"] == "attachment"
    assert_problem(anon.get(f"/api/v1/cms/files/{tenant['id']}/01930000-0000-7000-8000-00000000beef"), 404)
    assert_problem(anon.get("/api/v1/cms/files/not-a-tenant/x"), 404)


def test_media_used_by_an_entry_cannot_be_deleted(tenant):
    api = tenant["admin_api"]
    m = upload(api, "cover.png", image_bytes())
    ok(api.post(TYPES, json={"key": "post", "name": "Post", "fields": [
        {"key": "title", "type": "text", "required": True},
        {"key": "cover", "type": "media"},
        {"key": "gallery", "type": "media", "multiple": True}]}), 201)
    assert "data.cover" in fields(api.post(f"{TYPES}/post/entries", json={"data": {
        "title": "t", "cover": "01930000-0000-7000-8000-00000000beef"}}))
    e = ok(api.post(f"{TYPES}/post/entries", json={"data": {"title": "t", "cover": m["id"]}}), 201)
    assert_problem(api.delete(f"{MEDIA}/{m['id']}"), 409)
    ok(api.post(f"{TYPES}/post/entries/{e['id']}/publish"))
    key = ok(api.post("/api/v1/auth/api-keys", json={"name": "web", "type": "publishable"}), 201)["key"]
    got = ok(Api(api.base, {"X-API-Key": key}).get(f"{CMS}/published/post/{e['id']}", params={"populate": "cover"}))
    assert got["data"]["cover"]["mime_type"] == "image/png" and got["data"]["cover"]["url"] == m["url"]
    ok(api.delete(f"{TYPES}/post/entries/{e['id']}"), 204)
    ok(api.delete(f"{MEDIA}/{m['id']}"), 204)
    assert_problem(api.get(f"{MEDIA}/{m['id']}"), 404)


def test_another_tenant_cannot_see_media_rows(tenant, other_tenant):
    m = upload(tenant["admin_api"], "mine.png", image_bytes())
    theirs = other_tenant["admin_api"]
    assert_problem(theirs.get(f"{MEDIA}/{m['id']}"), 404)
    assert_problem(theirs.delete(f"{MEDIA}/{m['id']}"), 404)
    assert m["id"] not in {x["id"] for x in ok(theirs.get(MEDIA))["data"]}
    # A file URL names its tenant: another tenant's id in it finds nothing.
    assert_problem(theirs.get(f"/api/v1/cms/files/{other_tenant['id']}/{m['id']}"), 404)
