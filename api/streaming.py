"""Streaming a request body into the store with a byte limit (413 past it, nothing half-written)."""

from __future__ import annotations

import asyncio
import tempfile

from fastapi import Request

from api.errors import ApiError
from shared.storage import Storage


class LimitedBody:
    def __init__(self, request: Request, limit: int) -> None:
        self.request = request
        self.limit = limit

    async def store(self, storage: Storage, key: str) -> int:
        declared = self.request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            raise ApiError(413, "too_large", f"body of {declared} bytes is over the limit of {self.limit}")
        # Spool to disk first (bounded memory), then hand the whole file to the store in one write.
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            total = 0
            async for chunk in self.request.stream():
                total += len(chunk)
                if total > self.limit:
                    raise ApiError(413, "too_large", f"body is over the limit of {self.limit} bytes")
                spool.write(chunk)
            spool.seek(0)
            await asyncio.to_thread(storage.put_stream, key, spool)  # type: ignore[arg-type]
        return total
