"""Pictures of a whole job, made when it ends: a contact sheet of rendered images, plus whatever the
pipelines wrote at the job level (a first-layer filter grid)."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from PIL import Image

from shared import keys
from shared.storage import Storage
from worker.render import images as pictures

CONTACT_SHEET = "contact_sheet.png"
_SHEET_TILES = 1024
_TILE = 128


def _label(item: dict[str, Any]) -> str:
    target = item.get("target") or {}
    if "label" in target:
        return str(target["label"])[:24]
    return item["name"][:24]


def contact_sheet(storage: Storage, items: list[dict[str, Any]]) -> np.ndarray | None:
    """Every rendered image (up to 1024), 128 px, captioned with its target."""
    tiles = []
    for item in items:
        key = item.get("outputs", {}).get("image") if item["status"] == "ok" else None
        if key is None:
            continue
        image = Image.open(io.BytesIO(storage.get_bytes(key))).convert("RGB").resize((_TILE, _TILE))
        tiles.append(pictures.caption(np.asarray(image), _label(item)))
        if len(tiles) >= _SHEET_TILES:
            break
    if not tiles:
        return None
    return pictures.grid(tiles, columns=min(16, math.ceil(math.sqrt(len(tiles)))), gap=4)


def write_job_pictures(
    storage: Storage, tenant: str, job_id: str, kind: str, items: list[dict[str, Any]]
) -> dict[str, str]:
    """Name -> key of each job-level picture (written again identically if finalising runs twice)."""
    if kind == "feature_visualization":
        sheet = contact_sheet(storage, items)
        if sheet is not None:
            storage.put_bytes(keys.job_output(tenant, job_id, CONTACT_SHEET), pictures.encode_png(sheet), "image/png")
    prefix = keys.job_outputs_prefix(tenant, job_id)
    return {info.key[len(prefix) :]: info.key for info in storage.list(prefix)}
