"""HMAC-signed URLs for the API's own file and upload routes (the local-storage twin of S3 presigning)."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode


def signature(secret: bytes, method: str, key: str, expires: int) -> str:
    message = f"{method.upper()}\n{key}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def signed_path(secret: bytes, method: str, route: str, key: str, expires_s: int) -> str:
    """A path-and-query like ``/v1/files/KEY?expires=...&signature=...``."""
    expires = int(time.time()) + expires_s
    query = urlencode({"expires": expires, "signature": signature(secret, method, key, expires)})
    return f"{route}/{quote(key)}?{query}"


def verify(secret: bytes, method: str, key: str, expires: int, sig: str) -> bool:
    if expires < time.time():
        return False
    # As bytes: compare_digest refuses non-ASCII text, and a signature is whatever the caller sent.
    return hmac.compare_digest(signature(secret, method, key, expires).encode(), sig.encode(errors="replace"))
