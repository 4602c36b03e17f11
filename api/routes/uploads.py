"""/v1/uploads: a place to put an input archive, by presigned PUT or directly."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from api.deps import State, Tenant, absolute
from api.errors import ApiError
from api.schemas import Upload, UploadRequest, errors
from api.streaming import LimitedBody
from shared import keys
from shared.jobs import new_id

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])


@router.post(
    "", status_code=201, response_model=Upload, summary="Create an upload", responses=errors(400, 401, 413, 422, 503)
)
def create_upload(body: UploadRequest, request: Request, state: State, tenant: Tenant) -> Upload:
    """Returns an ``upload://`` URI for a job's input and a URL to PUT the archive's bytes to: a
    presigned S3 URL on S3 storage, the API's own signed URL on local storage."""
    if body.size is not None and body.size > state.settings.max_upload_bytes:
        raise ApiError(
            413, "too_large", f"size {body.size} is over the upload limit of {state.settings.max_upload_bytes} bytes"
        )
    upload_id = new_id("u_")
    key = keys.upload(tenant, upload_id, body.filename)
    _note_unused(state, tenant, upload_id)
    ttl = state.settings.presign_ttl_s
    return Upload(
        id=upload_id,
        uri=f"upload://{upload_id}",
        put_url=absolute(request, state.storage.presign_put(key, ttl)),
        expires_in=ttl,
    )


@router.put(
    "/{upload_id}/{filename}",
    status_code=201,
    response_model=Upload,
    summary="Upload directly",
    responses=errors(401, 404, 413, 422, 503),
)
async def put_direct(upload_id: str, filename: str, request: Request, state: State, tenant: Tenant) -> Upload:
    """Stream a small archive straight through the API (up to FOVEA_MAX_DIRECT_UPLOAD_BYTES); larger ones
    go to the presigned ``put_url``. ``upload_id`` is any id you choose (letters, digits, '_' and '-')."""
    if not upload_id.replace("_", "").replace("-", "").isalnum():
        raise ApiError(
            422,
            "validation_error",
            "upload_id: letters, digits, '_' and '-' only",
            [{"field": "upload_id", "message": "letters, digits, '_' and '-' only"}],
        )
    key = keys.upload(tenant, upload_id, filename)
    _note_unused(state, tenant, upload_id)
    await LimitedBody(request, state.settings.max_direct_upload_bytes).store(state.storage, key)
    return Upload(id=upload_id, uri=f"upload://{upload_id}", put_url="", expires_in=0)


def _note_unused(state: State, tenant: str, upload_id: str) -> None:
    """Until a job uses it, an upload is swept once FOVEA_UPLOAD_TTL_S has passed (a failed try, say)."""
    state.storage.put_json(keys.unused_upload(upload_id), {"tenant": tenant, "created": time.time()})
