"""Local-directory storage: the embedded default. Writes are atomic (temp file then rename)."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

from shared import signing
from shared.errors import NotFound, Retryable
from shared.storage.base import ObjectInfo, Storage

FILES_ROUTE = "/v1/files"
UPLOAD_ROUTE = "/v1/upload-content"


class LocalStorage(Storage):
    def __init__(self, root: str | Path, *, secret: bytes, public_url: str = "") -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._secret = secret
        self._public_url = public_url.rstrip("/")

    def path(self, key: str) -> Path:
        # A lexical check (no resolve(): it costs syscalls on every write); the store never holds links.
        parts = key.replace("\\", "/").split("/")
        if key.startswith("/") or ".." in parts or "\x00" in key:
            raise NotFound(f"key outside the store: {key}")
        return self.root.joinpath(*[p for p in parts if p not in ("", ".")])

    def _write(self, key: str, writer) -> int:  # type: ignore[no-untyped-def]
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results are meant to be read (reports, downloads)
        try:
            with os.fdopen(fd, "wb") as out:
                count = writer(out)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return count

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._write(key, lambda out: out.write(data))

    def put_stream(self, key: str, stream: IO[bytes], content_type: str = "application/octet-stream") -> int:
        def copy(out: IO[bytes]) -> int:
            total = 0
            while chunk := stream.read(1 << 20):
                out.write(chunk)
                total += len(chunk)
            return total

        return self._write(key, copy)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound(key) from exc

    def open(self, key: str, start: int = 0, length: int | None = None) -> IO[bytes]:
        try:
            handle = self.path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound(key) from exc
        if start == 0 and length is None:
            return handle
        handle.seek(start)
        return cast(IO[bytes], _Window(handle, length)) if length is not None else handle

    def size(self, key: str) -> int | None:
        path = self.path(key)
        return path.stat().st_size if path.is_file() else None

    def list(self, prefix: str, start_after: str = "", limit: int | None = None) -> Iterator[ObjectInfo]:
        base = self.path(prefix.rsplit("/", 1)[0]) if "/" in prefix else self.root
        if not base.is_dir():
            return
        keys = []
        root = str(self.root)
        for dirpath, _dirs, files in os.walk(base):
            # Keys by string operations, not a Path per file: a folder of 10k job records is listed in
            # milliseconds (each page of the jobs list walks it).
            folder = os.path.relpath(dirpath, root).replace(os.sep, "/")
            head = "" if folder == "." else folder + "/"
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                key = head + name
                if key.startswith(prefix) and key > start_after:
                    keys.append(key)
        keys.sort()
        for count, key in enumerate(keys):
            if limit is not None and count >= limit:
                return
            yield ObjectInfo(key, os.stat(os.path.join(root, key)).st_size)  # a key the walk found: no checks needed

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def presign_get(self, key: str, expires_s: int) -> str:
        return self._public_url + signing.signed_path(self._secret, "GET", FILES_ROUTE, key, expires_s)

    def presign_put(self, key: str, expires_s: int) -> str:
        return self._public_url + signing.signed_path(self._secret, "PUT", UPLOAD_ROUTE, key, expires_s)

    def verify(self, method: str, key: str, expires: int, sig: str) -> bool:
        return signing.verify(self._secret, method, key, expires, sig)

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise Retryable(f"storage directory not writable: {self.root}")


class _Window(io.RawIOBase):
    """At most ``length`` bytes of an open file, from where it stands (a range read of local storage)."""

    def __init__(self, handle: IO[bytes], length: int) -> None:
        self._handle, self._left = handle, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)[: self._left]
        count = self._handle.readinto(view)  # type: ignore[attr-defined]
        self._left -= count
        return int(count)

    def close(self) -> None:
        self._handle.close()
        super().close()
