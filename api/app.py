"""The FastAPI application (``uvicorn --factory api.app:create_app``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute

from api import metrics
from api.errors import install_error_handlers
from api.limits import BodyLimit
from api.routes import console, files, health, jobs, results, uploads
from api.state import AppState
from shared.settings import Settings, get_settings
from shared.storage.local import UPLOAD_ROUTE

DESCRIPTION = """
Fovea runs interpretability and visual-attention pipelines over image archives.

1. `POST /v1/uploads` then PUT your archive (tar, tar.gz or zip) to the returned `put_url`
   (or give an `s3://` input when the server uses S3 storage).
2. `POST /v1/jobs` with a spec, e.g. `{"kind": "saliency", "input": "upload://...", "method": "gradient",
   "model": {"preset": "squeezenet1_1-imagenet"}}`.
3. Poll `GET /v1/jobs/{id}`; `GET /v1/jobs/{id}/results?offset=&limit=&status=` pages through its items
   in index order (the input's order) with URLs of their outputs, filtered by status if asked. While it
   runs, items of unfinished shards are `pending`; once it has ended (`final`), the page also links the
   summary, the HTML report and the whole manifest. A page costs the same at any offset.
4. With `"packed_outputs": true`, outputs are stored one tar per shard; each output still has its own URL
   (`GET /v1/packed/...`, signed), and `packs` links the tars whole.

The web console (`/console/`) is a client of these routes: it shows what the key it is given sees.

Authenticate with `Authorization: Bearer KEY`. Errors are JSON `{"error": {"code", "message", "fields"}}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="Fovea", version="0.1.0", description=DESCRIPTION)
    app.state.fovea = AppState.from_settings(settings)
    install_error_handlers(app)
    for module in (jobs, results, uploads, files, health, console):
        app.include_router(module.router)
    # For the Allow header of a 405: every method each path answers, across routes.
    app.state.route_methods = [
        (route.path_regex, set(route.methods or ()))
        for module in (jobs, results, uploads, files, health, console)
        for route in module.router.routes
        if isinstance(route, APIRoute)
    ]

    # Uploads stream into the store under their own limits; everything else is a small JSON body.
    app.add_middleware(
        BodyLimit,  # type: ignore[arg-type]
        limit=settings.max_json_body_bytes,
        streamed=(f"{uploads.router.prefix}/", UPLOAD_ROUTE + "/"),
    )

    @app.middleware("http")
    async def _observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.REQUESTS.labels(request.method, path, str(response.status_code)).observe(time.perf_counter() - start)
        return response

    return app
