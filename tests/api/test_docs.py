"""The shell examples in docs/*.md run, top to bottom, against a fresh server (so the docs stay true)."""
import os
import re
import subprocess

import pytest

from conftest import SUPERADMIN

DOCS = os.path.join(os.path.dirname(__file__), "../../docs")


def shell_blocks(name):
    with open(os.path.join(DOCS, name)) as f:
        return re.findall(r"```sh\n(.*?)```", f.read(), re.S)


# What each page's examples must print: proof that they did what the page claims.
EXPECTED_OUTPUT = {
    # the me answer, the key list, the audit actions
    "auth.md": ['"role": "ADMIN"', '"api_key.created"', "204"],
    # a deal's stage move in its history, the stage deletion refused, the replayed create, the events
    "crm.md": ['"name": "Sales"', '"to_stage_id"', "409", "Idempotent-Replayed: true", '"crm.deal.stage_changed"',
               "204"],
    # the refused entry, versions, a populated author, 304 on a held ETag, a preview, a locale, a media file
    "cms.md": ["422", '[{"version":2,"current":true},{"version":1,"current":false}]', '"author":"Ada Lovelace"', "304",
               '"preview":true', "Bonjour", "hello media"],
}


@pytest.mark.parametrize("page", ["auth.md", "crm.md", "cms.md"])
def test_doc_examples_run(server, page):
    blocks = shell_blocks(page)
    assert len(blocks) >= 5, f"{page} has too few examples"
    script = "set -euo pipefail\n" + "\n".join(blocks)
    env = dict(os.environ, CDX=server.url, CDX_SUPERADMIN_USER=SUPERADMIN[0], CDX_SUPERADMIN_PASSWORD=SUPERADMIN[1])
    r = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"examples of {page} failed:\nSTDOUT:\n{r.stdout[-3000:]}\nSTDERR:\n{r.stderr[-3000:]}"
    for expected in EXPECTED_OUTPUT[page]:
        assert expected in r.stdout, f"{page}: {expected!r} not in the examples' output:\n{r.stdout[-3000:]}"
