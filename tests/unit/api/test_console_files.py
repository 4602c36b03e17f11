"""The console's files: served by the API with a strict Content-Security-Policy, no inline script or
style, nothing from another origin, and no way for the script to turn data into HTML."""

from __future__ import annotations

import re
from importlib import resources

from fastapi.testclient import TestClient

from api.app import create_app
from api.routes.console import content_security_policy
from shared.settings import Settings

_STATIC = resources.files("api").joinpath("static")


def test_every_console_file_carries_the_policy(local_settings: Settings) -> None:
    with TestClient(create_app(local_settings), base_url="http://127.0.0.1:8000") as client:
        root = client.get("/console", follow_redirects=False)
        assert root.status_code in (302, 307) and root.headers["location"] == "/console/"
        for path, media in (
            ("/console/", "text/html"),
            ("/console/console.js", "text/javascript"),
            ("/console/console.css", "text/css"),
        ):
            response = client.get(path)
            assert response.status_code == 200 and response.headers["content-type"].startswith(media)
            policy = response.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "default-src 'none'" in policy
            assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "frame-ancestors 'none'" in policy
            assert response.headers["x-content-type-options"] == "nosniff"
        assert client.get("/console/../app.py").status_code == 404
        assert client.get("/console/secret.txt").status_code == 404
        assert "/console" not in client.get("/openapi.json").json()["paths"]  # not an API route


def test_the_policy_names_the_object_store_that_signs_result_urls() -> None:
    s3 = Settings(storage_url="s3://bucket/fovea", s3_endpoint_url="http://10.0.0.5:8333/", signing_secret="s")
    assert "img-src 'self' http://10.0.0.5:8333 data: blob:" in content_security_policy(s3)
    aws = Settings(storage_url="s3://bucket", signing_secret="s")
    assert "https://*.amazonaws.com" in content_security_policy(aws)
    local = Settings(signing_secret="s", public_url="https://fovea.example.org/api")
    assert "connect-src 'self' https://fovea.example.org;" in content_security_policy(local)


def test_the_page_has_no_inline_code_and_the_script_never_writes_html() -> None:
    page = _STATIC.joinpath("index.html").read_text()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="/console/' in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+=", page) and "style=" not in page  # no inline handlers or styles
    assert "http://" not in page and "https://" not in page  # no CDN: the service runs offline
    script = _STATIC.joinpath("console.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert 'setAttribute("style"' not in script
