"""A contact sheet of a job's rendered images: every ``image`` output (up to 1024), 128 px, captioned with
its target, made once the job ends (a job summary: fed one item at a time, at most 1024 small tiles held)."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from PIL import Image

from worker.pictures import images as pictures
from worker.pipelines.plugin import JobFiles

CONTACT_SHEET = "contact_sheet.png"
_SHEET_TILES = 1024
_TILE = 128


def _label(item: dict[str, Any]) -> str:
    target = item.get("target") or {}
    if "label" in target:
        return str(target["label"])[:24]
    return str(item["name"])[:24]


class ContactSheet:
    def __init__(self, _spec: object = None) -> None:
        self.keys: list[tuple[str, str]] = []

    def add(self, item: dict[str, Any]) -> None:
        key = item.get("outputs", {}).get("image") if item["status"] == "ok" else None
        if key is not None and len(self.keys) < _SHEET_TILES:
            self.keys.append((key, _label(item)))

    def finish(self, files: JobFiles) -> dict[str, Any]:
        tiles = []
        for key, label in self.keys:
            image = Image.open(io.BytesIO(files.read(key))).convert("RGB").resize((_TILE, _TILE))
            tiles.append(pictures.caption(np.asarray(image), label))
        if tiles:
            sheet = pictures.grid(tiles, columns=min(16, math.ceil(math.sqrt(len(tiles)))), gap=4)
            files.write_job(CONTACT_SHEET, pictures.encode_png(sheet), "image/png")
        return {}
