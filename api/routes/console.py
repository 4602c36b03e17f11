"""The web console: static pages (HTML, CSS, a little JavaScript; package data of ``api``, no build step,
no CDN) that are a client of the public API, like the CLI. The page asks for the caller's API key once
and keeps it in the browser; every figure and picture it shows comes from the ``/v1`` routes with that
key, so it sees exactly what the key sees.

Every console response carries a strict Content-Security-Policy: scripts and styles only from this
origin (no inline script, no eval), pictures from this origin and the object store that presigns the
result URLs, requests to the same (an upload PUTs to the store), no frames, no plugins, no forms posted
elsewhere. The page renders user-supplied text (file names, captions, class names) with ``textContent``
only, never as HTML.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse, Response

from api.deps import State
from api.errors import ApiError
from shared.settings import Settings

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
_FILES = {  # the page, its style sheet and its script's modules: every such file in the package's static folder
    entry.name: _TYPES[suffix]
    for entry in resources.files("api").joinpath("static").iterdir()
    if (suffix := "." + entry.name.rpartition(".")[2]) in _TYPES
}


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def content_security_policy(settings: Settings) -> str:
    """The policy of every console response: this origin, plus where presigned result URLs point."""
    sources = ["'self'"]
    if settings.storage_url.startswith("s3://"):
        sources.append(_origin(settings.s3_endpoint_url) or "https://*.amazonaws.com")
    if (public := _origin(settings.public_url)) is not None:
        sources.append(public)
    allowed = " ".join(dict.fromkeys(sources))
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"img-src {allowed} data: blob:; connect-src {allowed}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"
    )


def _headers(state: State) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(state.settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-cache",
    }


Headers = Annotated[dict[str, str], Depends(_headers)]


@router.get("")
def console_root() -> RedirectResponse:
    return RedirectResponse("/console/")


@router.get("/")
def console_page(headers: Headers) -> Response:
    """The page itself (it routes between its views by the URL's fragment: #/jobs, #/submit, #/job/ID)."""
    return console_file("index.html", headers)


@router.get("/{name}")
def console_file(name: str, headers: Headers) -> Response:
    """One of the console's files (the page, its style sheet, its script's modules)."""
    if name not in _FILES:
        raise ApiError(404, "not_found", "no such console file")
    data = resources.files("api").joinpath("static", name).read_bytes()
    return Response(data, media_type=_FILES[name], headers=headers)
