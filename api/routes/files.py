"""The API's own signed URLs, used when storage is a local directory (S3 serves presigned URLs itself)."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from api.deps import State
from api.errors import ApiError
from api.schemas import errors
from api.streaming import LimitedBody
from shared.errors import NotFound
from shared.storage.local import FILES_ROUTE, UPLOAD_ROUTE, LocalStorage

router = APIRouter(tags=["files"])


def _local(state: State) -> LocalStorage:
    if not isinstance(state.storage, LocalStorage):
        raise ApiError(404, "not_found", "signed file URLs are served by the object store")
    return state.storage


@router.get(
    FILES_ROUTE + "/{key:path}",
    summary="Download through a signed URL",
    response_class=FileResponse,
    responses=errors(
        403, 404, 422, also={200: {"content": {"application/octet-stream": {}}, "description": "The file"}}
    ),
)
def get_file(key: str, expires: int, signature: str, state: State) -> FileResponse:
    storage = _local(state)
    if not storage.verify("GET", key, expires, signature):
        raise ApiError(403, "forbidden", "signature invalid or expired")
    try:
        path = storage.path(key)
    except NotFound as exc:
        raise ApiError(404, "not_found", "not found") from exc
    if not path.is_file():
        raise ApiError(404, "not_found", "not found")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media)


@router.put(
    UPLOAD_ROUTE + "/{key:path}",
    status_code=201,
    summary="Upload through a signed URL",
    responses=errors(403, 404, 413, 422, 503),
)
async def put_file(key: str, expires: int, signature: str, request: Request, state: State) -> dict[str, int]:
    storage = _local(state)
    if not storage.verify("PUT", key, expires, signature):
        raise ApiError(403, "forbidden", "signature invalid or expired")
    size = await LimitedBody(request, state.settings.max_upload_bytes).store(storage, key)
    return {"bytes": size}
