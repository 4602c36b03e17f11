"""Validation errors as people read them: one ``field: message`` per problem, the field a dotted path of
the spec (``model.job``, ``target.channel``), the same at the API (a 422) and in the CLI."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shared.kinds import KINDS

_WHERE = ("body", "query", "path", "header")


def field_path(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc if p not in _WHERE]
    # Discriminated unions add the tag and validator names to the location; users think in fields.
    parts = [p for p in parts if not p.startswith(("function-", "tagged-union")) and p not in KINDS]
    return ".".join(parts) or "body"


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Pydantic's error list as ``[{"field", "message"}]``."""
    out = []
    for error in errors:
        field = field_path(error.get("loc", ()))
        if error.get("type") in {"union_tag_invalid", "union_tag_not_found"}:
            field = (field + ".kind") if field != "body" else "kind"
        out.append({"field": field, "message": str(error.get("msg", "invalid")).removeprefix("Value error, ")})
    return out
