"""The key layout: every key the service writes lies under one of its own areas, which user URIs may
not reach (a new top-level prefix that is not declared there would be readable as another tenant's input)."""

from __future__ import annotations

import inspect

import pytest

from shared import keys
from shared.errors import NotFound
from shared.uris import parse_s3_uri, reaches_service


def _sample_arguments(function: object) -> dict[str, object]:
    values: dict[str, object] = {}
    for name, parameter in inspect.signature(function).parameters.items():  # type: ignore[arg-type]
        annotation = str(parameter.annotation)
        values[name] = 3 if "int" in annotation else f"x{len(values)}"
    return values


def _key_functions() -> list[tuple[str, object]]:
    skip = {"safe_component", "identifier", "relative_to_job"}
    return [
        (name, function)
        for name, function in inspect.getmembers(keys, inspect.isfunction)
        if function.__module__ == keys.__name__ and not name.startswith("_") and name not in skip
    ]


@pytest.mark.parametrize("name,function", _key_functions(), ids=[name for name, _ in _key_functions()])
def test_every_key_lies_in_a_service_area(name: str, function: object) -> None:
    key = function(**_sample_arguments(function))  # type: ignore[operator]
    assert isinstance(key, str), name
    assert key.startswith(keys.SERVICE_ROOTS), key
    assert reaches_service(parse_s3_uri(f"s3://bucket/{key}"), ("bucket", ""))


def test_ids_are_used_verbatim_or_name_nothing() -> None:
    for alias in ("j_x\x00", "j_x.", ".j_x", "J_X/..", "j_x%00"):
        with pytest.raises(NotFound):
            keys.identifier(alias)
    assert keys.identifier("j_x") == "j_x"
