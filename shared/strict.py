"""A base for request models: ``true`` and ``false`` are never taken for numbers.

Pydantic's lax mode reads ``true`` as 1 for an ``int`` or ``float`` field; its strict mode would also refuse
a JSON list for a tuple. So one step here instead: before validation, a boolean where the field's type
wants a number is handed on as its JSON spelling ("true"), which the field then refuses (a 422 naming it).
Text fields refuse booleans on their own; nested request models check their own fields.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, model_validator


def _spell(value: bool) -> str:
    return "true" if value else "false"


def _fix(value: Any, annotation: Any) -> Any:
    """``value`` with every boolean that ``annotation`` would take for a number spelled out."""
    origin = typing.get_origin(annotation)
    if annotation is Any or annotation is bool or annotation is str:
        return value
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return value
    if origin is Annotated:
        return _fix(value, typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        members = typing.get_args(annotation)
        if isinstance(value, bool):
            takes = any(m in (bool, str, Any) for m in members)
            return value if takes else _spell(value)
        kinds = [m for m in members if _shape(m) == _shape_of(value)]
        return _fix(value, kinds[0]) if len(kinds) == 1 else value
    if origin is Literal:
        return _spell(value) if isinstance(value, bool) else value
    if origin in (list, tuple) and isinstance(value, list):
        args: list[Any] = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if origin is tuple and len(args) == len(value):
            return [_fix(v, a) for v, a in zip(value, args, strict=True)]
        return [_fix(v, args[0]) for v in value] if args else value
    if origin is dict and isinstance(value, dict):
        pair = typing.get_args(annotation)
        return {k: _fix(v, pair[1]) for k, v in value.items()} if len(pair) == 2 else value
    if annotation in (int, float):
        return _spell(value) if isinstance(value, bool) else value
    return value


def _shape(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _shape(typing.get_args(annotation)[0])
    if origin in (list, tuple):
        return "list"
    if origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return "dict"
    return "scalar"


def _shape_of(value: Any) -> str:
    return "list" if isinstance(value, list) else "dict" if isinstance(value, dict) else "scalar"


class RequestModel(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, field in cls.model_fields.items():
            key = field.alias if field.alias is not None and field.alias in out else name
            if key in out:
                out[key] = _fix(out[key], field.annotation)
        return out
