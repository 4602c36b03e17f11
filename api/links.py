"""The URLs a results page gives for a job's files: presigned by the store for whole objects, and for an
output inside a pack, the API's own range route, signed once per pack and page (a page of a thousand
items has thousands of outputs but a handful of packs, and signing each one cost more than the page's
reads)."""

from __future__ import annotations

import time
from urllib.parse import quote

from fastapi import Request

from api.state import AppState
from shared import keys, signing
from shared.packs import parse_ref

PACKED_ROUTE = "/v1/packed"
PACKED_METHOD = "PACKED"
"""The signing method of pack URLs: a signature for the packed route is never valid for another route."""


class JobLinks:
    def __init__(self, request: Request, state: AppState, tenant: str, job_id: str) -> None:
        self.state, self.tenant, self.job_id = state, tenant, job_id
        self.base = str(request.base_url).rstrip("/")
        self.ttl = state.settings.presign_ttl_s
        self.expires = int(time.time()) + self.ttl
        self._packs: dict[str, str] = {}

    def file(self, path: str) -> str:
        """A file of the job, by its path as manifests and summaries name it (a packed output's reference,
        or a path relative to the job's folder)."""
        ref = parse_ref(path)
        if ref is None:
            return self.whole(path)
        signed = self._packs.get(ref.pack)
        if signed is None:
            key = keys.in_job(self.tenant, self.job_id, ref.pack)
            signature = signing.signature(self.state.settings.secret(), PACKED_METHOD, key, self.expires)
            signed = f"{self.base}{PACKED_ROUTE}/{quote(key)}?expires={self.expires}&signature={signature}"
            self._packs[ref.pack] = signed
        return f"{signed}&offset={ref.offset}&size={ref.size}&name={quote(ref.member)}"

    def whole(self, path: str) -> str:
        """A whole object of the job (a pack too), presigned by the store (or the API's file route)."""
        url = self.state.storage.presign_get(keys.in_job(self.tenant, self.job_id, path), self.ttl)
        return self.base + url if url.startswith("/") else url
