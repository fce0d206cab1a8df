#!/usr/bin/python3
"""CMS benchmark, against nginx on the same machine in the same run (both logs off, cdx --threads 1):

- a published entry by id with a publishable key, and the same with If-None-Match (304), against nginx
  `return 200`; a cached image transform against nginx serving the same file from disk (wrk -t1 -c64);
- an entry with 60 references populated (answer cache off: every read goes to the database), p50/p99;
- the first request of a transform of a 2-megapixel JPEG at w=400 (a new width each time), p50/p99.

Usage: bench/cms_bench.py [--duration 5] [--rounds 3]
"""
import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time

import requests
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import call, rotated, setup_tenant, start_cdx, start_nginx, stop_procs, table_head, wrk  # noqa: E402


def setup(base):
    """A tenant with an article type, a published article, 60 published authors referenced by one entry, and
    a 2-megapixel JPEG; answers what the scenarios need."""
    _, t = setup_tenant(base, password="bench-pass-1", plan={"modules": ["auth", "crm", "cms"]})
    h = {"X-API-Key": t["api_key"]}
    call("POST", base + "/api/v1/cms/content-types", {"key": "author", "name": "Author", "fields": [
        {"key": "name", "type": "text", "required": True}]}, h)
    call("POST", base + "/api/v1/cms/content-types", {"key": "article", "name": "Article", "fields": [
        {"key": "title", "type": "text", "required": True}, {"key": "body", "type": "rich_text"},
        {"key": "views", "type": "integer"},
        {"key": "authors", "type": "reference", "references": "author", "multiple": True, "max": 100}]}, h)
    authors = []
    for i in range(60):
        a = call("POST", base + "/api/v1/cms/content-types/author/entries", {"data": {"name": f"Author {i}"}}, h)
        call("POST", base + f"/api/v1/cms/content-types/author/entries/{a['id']}/publish", {}, h)
        authors.append(a["id"])
    post = call("POST", base + "/api/v1/cms/content-types/article/entries",
                {"data": {"title": "Hello", "body": "# Hello\n\nA short post.", "views": 3}}, h)
    call("POST", base + f"/api/v1/cms/content-types/article/entries/{post['id']}/publish", {}, h)
    many = call("POST", base + "/api/v1/cms/content-types/article/entries",
                {"data": {"title": "Many", "authors": authors}}, h)
    call("POST", base + f"/api/v1/cms/content-types/article/entries/{many['id']}/publish", {}, h)
    pk = call("POST", base + "/api/v1/auth/api-keys", {"name": "web", "type": "publishable"}, h)["key"]
    buf = io.BytesIO()
    Image.effect_noise((1600, 1250), 64).convert("RGB").save(buf, format="JPEG", quality=90)
    jpeg = buf.getvalue()
    media = requests.post(base + "/api/v1/cms/media", headers=h, files={"file": ("photo.jpg", jpeg)}).json()
    return {"pk": pk, "post": post["id"], "many": many["id"], "media_url": base + media["url"], "jpeg": jpeg}


def timed(fn, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    out.sort()
    return statistics.median(out), out[int(len(out) * 0.99) - 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"cms_bench: {tool} is missing (run scripts/setup)")
    tmp = tempfile.mkdtemp(prefix="cdx-cms-bench-")
    procs = []
    try:
        nginx = start_nginx(tmp, "nginx", "off", procs)
        base = start_cdx(tmp, "cdx", ["--access-log", "false"], procs)
        s = setup(base)
        pk = ("X-API-Key: " + s["pk"],)
        by_id = f"{base}/api/v1/cms/published/article/{s['post']}"
        etag = requests.get(by_id, headers={"X-API-Key": s["pk"]}).headers["ETag"]
        thumb = s["media_url"] + "?w=400"
        thumb_bytes = requests.get(thumb).content
        img_dir = os.path.join(tmp, "nginx", "img")
        os.makedirs(img_dir)
        with open(os.path.join(img_dir, "thumb.jpg"), "wb") as f:
            f.write(thumb_bytes)
        for d in (tmp, os.path.join(tmp, "nginx"), img_dir):  # nginx's worker runs as another user
            os.chmod(d, 0o755)
        os.chmod(os.path.join(img_dir, "thumb.jpg"), 0o644)
        scenarios = [
            ("nginx return 200", nginx, ()),
            ("cdx published entry by id (publishable key)", by_id, pk),
            ("cdx published entry by id, If-None-Match → 304", by_id, pk + ("If-None-Match: " + etag,)),
            ("nginx static file (the 400 px thumbnail)", nginx + "img/thumb.jpg", ()),
            ("cdx cached transform ?w=400 (public URL)", thumb, ()),
        ]
        results = {name: [] for name, _, _ in scenarios}
        for _, url, headers in scenarios:
            wrk(url, 1, headers)
        for r in range(args.rounds):
            for name, url, headers in rotated(scenarios, r):
                results[name].append(wrk(url, args.duration, headers))
        print(f"wrk -t1 -c64 -d{args.duration}s, {args.rounds} interleaved rounds, medians; cdx serve --threads 1, "
              "logs off\n")
        table_head("scenario", "req/s", "p99 ms", "× reference")
        for name, _, _ in scenarios:
            ref = "nginx static file (the 400 px thumbnail)" if "file" in name or "transform" in name else "nginx return 200"
            rps = statistics.median(x[0] for x in results[name])
            ref_rps = statistics.median(x[0] for x in results[ref])
            p99 = statistics.median(x[1] for x in results[name])
            print(f"| {name} | {rps:,.0f} | {p99:.2f} | {rps / ref_rps:.2f} |")

        # Latency of work the answer cache does not hide: every request's query is new (fields= with a growing
        # run of commas, which the reader skips), so each one reads the database and populates.
        print()
        table_head("uncached work", "p50 ms", "p99 ms")
        session = requests.Session()
        n = [0]

        def populated():
            n[0] += 1
            r = session.get(f"{base}/api/v1/cms/published/article/{s['many']}",
                            params={"populate": "authors", "fields": "title,authors" + "," * n[0]},
                            headers={"X-API-Key": s["pk"]})
            assert r.status_code == 200 and len(r.json()["data"]["authors"]) == 60, r.text[:200]
        p50, p99 = timed(populated, 300)
        print(f"| entry with 60 references, populate=authors | {p50:.2f} | {p99:.2f} |")
        width = [400]

        def first_transform():
            width[0] += 1
            r = session.get(s["media_url"], params={"w": width[0]})
            assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
        p50, p99 = timed(first_transform, 30)
        print(f"| first transform of a 2-megapixel JPEG at w≈400 | {p50:.2f} | {p99:.2f} |")
    finally:
        stop_procs(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
