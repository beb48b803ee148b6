"""The Content-Security-Policy header on every kind of response a browser renders."""

from __future__ import annotations

import pytest

URLS = ["/", "/clusters/", "/accounts/login/", "/admin/", "/admin/login/", "/api/docs/", "/no-such-page/"]


@pytest.mark.parametrize("url", URLS)
def test_every_page_type_carries_the_policy(client, admin_user, url):
    client.force_login(admin_user)

    policy = client.get(url)["Content-Security-Policy"]

    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert "unsafe" not in policy


def test_htmx_runs_without_eval_or_script_tags(client, admin_user):
    client.force_login(admin_user)

    page = client.get("/").content.decode()

    assert '"allowEval": false' in page and '"allowScriptTags": false' in page


def test_no_template_carries_an_inline_script_or_style():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for path in root.glob("**/templates/**/*.html")
        if ".venv" not in path.parts
        and re.search(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", path.read_text())
    ]

    assert offenders == []
