"""Attribute vectors beside images: numbers that describe each image, for multimodal autoencoders.

Two layouts, both JSON: ``NAME.json`` beside ``NAME.png`` (any image extension) holding a list of numbers
(or ``{"attributes": [...]}``), and an ``attributes.json`` mapping image paths, relative to its own
folder, to lists of numbers. A reader is fed the JSON members of an input (``claims`` / ``read``), told
which images there are (``finish``), then asked for each image's vector (``truth``).

``strict`` readers (training, which must know its data) raise ``InvalidInput`` naming the file for a
malformed description or one of an image that is not there. Lenient readers (applying a model, where
the planner cannot yet know whether the model uses attributes) keep the reason instead, and the image
that needed the vector fails alone with it; JSON that is not in either layout is ignored.
"""

from __future__ import annotations

import json
import math
import posixpath
from typing import Any

from shared.errors import InvalidInput

MAPPING_FILE = "attributes.json"


def _stem(name: str) -> str:
    root, _ext = posixpath.splitext(name)
    return root


def _vector(value: Any) -> list[float]:
    if isinstance(value, dict) and "attributes" in value:
        value = value["attributes"]
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list of numbers")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise ValueError("every attribute must be a finite number")
    return [float(v) for v in value]


class AttributeSidecars:
    def __init__(self, _spec: object = None, *, strict: bool = False) -> None:
        self.strict = strict
        self._by_stem: dict[str, list[float]] = {}  # from NAME.json: matches NAME.png, NAME.jpg, ...
        self._by_name: dict[str, list[float]] = {}  # from attributes.json: exact image paths
        self._errors: dict[str, str] = {}  # lenient: stem or name -> why its vector is unusable
        self._sources: dict[str, str] = {}  # stem or name -> the file that described it

    def claims(self, name: str) -> bool:
        return name.lower().endswith(".json")

    def read(self, name: str, data: bytes) -> None:
        try:
            parsed = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._fail(_stem(name), name, f"not valid JSON ({exc})")
            return
        if posixpath.basename(name) == MAPPING_FILE:
            if not isinstance(parsed, dict):
                self._fail(_stem(name), name, "attributes.json must map image names to lists of numbers")
                return
            folder = posixpath.dirname(name)
            for image, value in parsed.items():
                path = posixpath.join(folder, str(image)) if folder else str(image)
                self._store(self._by_name, path, name, value)
            return
        if isinstance(parsed, list) or (isinstance(parsed, dict) and "attributes" in parsed):
            self._store(self._by_stem, _stem(name), name, parsed)
        elif self.strict:
            raise InvalidInput(f'{name}: expected a list of numbers (or {{"attributes": [...]}})')

    def _store(self, table: dict[str, list[float]], key: str, source: str, value: Any) -> None:
        try:
            table[key] = _vector(value)
            self._sources[key] = source
        except ValueError as exc:
            self._fail(key, source, str(exc))

    def _fail(self, key: str, source: str, reason: str) -> None:
        if self.strict:
            raise InvalidInput(f"{source}: {reason}")
        self._errors[key] = f"attributes in {source}: {reason}"

    def finish(self, item_names: set[str]) -> None:
        if not self.strict:
            return
        stems = {_stem(name) for name in item_names}
        orphans = sorted(
            [self._sources[s] for s in self._by_stem if s not in stems]
            + [f"{self._sources[n]} ({n})" for n in self._by_name if n not in item_names]
        )
        if orphans:
            raise InvalidInput(f"attributes describe images that are not in the input: {', '.join(orphans[:5])}")
        sizes = {len(v) for v in [*self._by_stem.values(), *self._by_name.values()]}
        if len(sizes) > 1:
            raise InvalidInput(f"attribute vectors differ in length ({sorted(sizes)}): every image needs as many")

    def truth(self, item_name: str) -> dict[str, Any] | None:
        for table, key in ((self._by_name, item_name), (self._by_stem, _stem(item_name))):
            if key in table:
                return {"attributes": table[key]}
        for key in (item_name, _stem(item_name)):
            if key in self._errors:
                return {"attributes_error": self._errors[key]}
        return None
