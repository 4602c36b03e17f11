"""Labelled images from an archive in the ImageFolder layout: ``CLASS/any/path.png``, one folder per
class (torchvision's convention). Unreadable members are skipped and reported, never fatal."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from shared.errors import InvalidInput, ItemError
from worker.inputs.archive import Member
from worker.inputs.decode import decode_image
from worker.inputs.shapes import LabelledImages


def labelled_from_members(
    members: Iterable[Member], *, size: int, max_items: int, max_pixels: int, max_bytes: int
) -> tuple[LabelledImages, list[dict[str, str]]]:
    """Decode and resize every image (to size x size); classes are the sorted top-level folder names."""
    images: list[np.ndarray] = []
    folders: list[str] = []
    skipped: list[dict[str, str]] = []
    for member in members:
        parts = member.name.split("/")
        if len(parts) < 2:
            skipped.append({"name": member.name, "error": "not inside a class folder"})
            continue
        if member.error is not None or member.data is None:
            skipped.append({"name": member.name, "error": member.error or "unreadable"})
            continue
        try:
            image = decode_image(member.data, max_pixels=max_pixels, max_bytes=max_bytes)
        except ItemError as exc:
            skipped.append({"name": member.name, "error": str(exc)})
            continue
        if len(images) >= max_items:
            raise InvalidInput(f"the archive holds more than max_items={max_items} images")
        images.append(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA))
        folders.append(parts[0])
    classes = tuple(sorted(set(folders)))
    if len(classes) < 2:
        raise InvalidInput(f"an ImageFolder archive needs at least two class folders, found {list(classes)}")
    index = {name: i for i, name in enumerate(classes)}
    labels = np.array([index[f] for f in folders], dtype=np.int64)
    return LabelledImages(np.stack(images), labels, classes), skipped


def split(data: LabelledImages, test_fraction: float, seed: int) -> tuple[LabelledImages, LabelledImages]:
    """A seeded, stratified-by-chance split into train and test."""
    order = np.random.default_rng(seed).permutation(len(data.labels))
    cut = max(1, int(round(len(order) * test_fraction)))
    test, train = order[:cut], order[cut:]

    def pick(rows: np.ndarray) -> LabelledImages:
        boxes = data.boxes[rows] if data.boxes is not None else None
        return LabelledImages(data.images[rows], data.labels[rows], data.classes, boxes)

    return pick(train), pick(test)
