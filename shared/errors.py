"""A small error tree. ``Retryable`` is the one type a caller may retry; everything else is final."""

from __future__ import annotations


class FoveaError(Exception):
    """Base of every error the service raises on purpose."""

    code = "error"


class Retryable(FoveaError):
    """A dependency (broker, store, coordinator) is unavailable; the same call may succeed later."""

    code = "unavailable"


class NotFound(FoveaError):
    code = "not_found"


class StoreRefused(FoveaError):
    """The object store refused a request in a way that retrying cannot change (a 4xx other than not
    found or throttling: a malformed key, access denied, no such bucket)."""

    code = "store_refused"


class Conflict(FoveaError):
    code = "conflict"


class InvalidInput(FoveaError):
    """The request or an input item is wrong; retrying the same thing cannot help."""

    code = "invalid_input"


class TooLarge(InvalidInput):
    code = "too_large"


class ItemError(InvalidInput):
    """One input item cannot be processed; it becomes a failed entry in the manifest."""

    code = "item_error"
