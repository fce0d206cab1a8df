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


@pytest.mark.parametrize("page", ["auth.md"])
def test_doc_examples_run(server, page):
    blocks = shell_blocks(page)
    assert len(blocks) >= 5, f"{page} has too few examples"
    script = "set -euo pipefail\n" + "\n".join(blocks)
    env = dict(os.environ, CDX=server.url, CDX_SUPERADMIN_USER=SUPERADMIN[0], CDX_SUPERADMIN_PASSWORD=SUPERADMIN[1])
    r = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"examples of {page} failed:\nSTDOUT:\n{r.stdout[-3000:]}\nSTDERR:\n{r.stderr[-3000:]}"
    # The examples print what they claim: the me answer, the key list, the audit actions.
    assert '"role": "ADMIN"' in r.stdout
    assert '"api_key.created"' in r.stdout
    assert "204" in r.stdout
