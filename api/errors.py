"""Every error is JSON: {"error": {"code", "message", "fields"?}}. Unavailable dependencies are 503
with Retry-After, never 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import Conflict, InvalidInput, NotFound, Retryable, StoreRefused, TooLarge
from shared.validation import field_errors

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


def error_body(code: str, message: str, fields: list[dict[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": "5"} if exc.status == 503 else None
        return JSONResponse(error_body(exc.code, exc.message, exc.fields), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = field_errors(exc.errors())
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse(error_body("validation_error", message, fields), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method the path answers, not only the first route's
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return JSONResponse(error_body("http_error", str(exc.detail)), exc.status_code, headers=headers)

    @app.exception_handler(Retryable)
    async def _unavailable(_: Request, exc: Retryable) -> JSONResponse:
        # The details (endpoints, keys) go to the log; callers learn what is down and when to retry.
        log.warning("dependency unavailable: %s", exc)
        return JSONResponse(error_body("unavailable", _what_is_down(exc)), 503, headers={"Retry-After": "5"})

    @app.exception_handler(StoreRefused)
    async def _refused(_: Request, exc: StoreRefused) -> JSONResponse:
        log.error("the store refused a request: %s", exc)
        return JSONResponse(error_body("unavailable", "the object store refused the request"), 503)

    @app.exception_handler(NotFound)
    async def _missing(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(error_body("not_found", "not found"), 404)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse(error_body("conflict", str(exc)), 409)

    @app.exception_handler(TooLarge)
    async def _too_large(_: Request, exc: TooLarge) -> JSONResponse:
        return JSONResponse(error_body("too_large", str(exc)), 413)

    @app.exception_handler(InvalidInput)
    async def _invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return JSONResponse(error_body("validation_error", str(exc)), 422)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Connection-level failures of a dependency surface here as library errors: still a 503.
        if _is_connection_error(exc):
            log.warning("dependency unavailable: %s", exc)
            message = "a service the API depends on is unavailable; retry shortly"
            return JSONResponse(error_body("unavailable", message), 503, headers={"Retry-After": "5"})
        log.exception("unhandled error")
        return JSONResponse(error_body("internal", "internal error"), 500)


def _is_connection_error(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e is not None}
    return bool(names & {"ConnectionError", "EndpointConnectionError", "OperationalError", "TimeoutError"})


def _what_is_down(exc: Retryable) -> str:
    text = str(exc).lower()
    for name in ("broker", "coordinator", "store"):
        if name in text:
            return f"the {name} is unavailable; retry shortly"
    return "a service the API depends on is unavailable; retry shortly"


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this path (the app's routes, as ``create_app`` listed them)."""
    methods: set[str] = set()
    for pattern, allowed in getattr(request.app.state, "route_methods", []):
        if pattern.match(request.url.path):
            methods |= allowed
    return sorted(methods)
