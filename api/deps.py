"""Route dependencies as Annotated aliases: the app state and the caller's tenant."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, Request

from api.errors import ApiError
from api.state import AppState

LOCAL_TENANT = "local"


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.fovea
    return state


State = Annotated[AppState, Depends(get_state)]


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in {"localhost", "testclient"}


def get_tenant(request: Request, state: State) -> str:
    """Bearer API keys map to tenants. With no keys configured, loopback callers act as 'local'."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        tenant = state.tenants.get(token.strip())
        if tenant is None:
            raise ApiError(401, "unauthorized", "unknown API key")
        return tenant
    if not state.tenants and _is_loopback(request.client.host if request.client else None):
        return LOCAL_TENANT
    raise ApiError(401, "unauthorized", "missing API key (Authorization: Bearer KEY)")


Tenant = Annotated[str, Depends(get_tenant)]


def absolute(request: Request, url: str) -> str:
    """Signed URLs of the API's own routes are paths; make them absolute for the caller."""
    return str(request.base_url).rstrip("/") + url if url.startswith("/") else url
