"""A caption set in memory: images with their captions and the split of each, read from an archive's
members (images and caption files in any format ``captions`` reads) or generated (``captioned_shapes``).

Images are resized to the encoder's input size as they are read, so memory holds that size only. A
caption file that is malformed, or names an image the input lacks, fails the whole read (``InvalidInput``
naming the file and line); an image that cannot be decoded is skipped with its captions, and counted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from shared.errors import InvalidInput, ItemError
from worker.inputs.archive import Member
from worker.inputs.captioned_shapes import make_scenes
from worker.inputs.captions import CaptionFiles, is_image
from worker.inputs.decode import decode_image

SPLITS = ("train", "val", "test")


@dataclass
class CaptionSet:
    names: list[str]
    images: list[np.ndarray]  # RGB uint8, (S, S, 3) at the encoder's input size
    sizes: list[tuple[int, int]]  # each image's original (width, height)
    captions: list[list[str]]  # raw caption texts per image
    splits: list[str]  # train / val / test per image
    objects: list[list[dict[str, Any]]] | None = None  # captioned_shapes: each image's objects and boxes
    skipped: int = 0  # images that could not be decoded (their captions left out)
    uncaptioned: int = 0  # images no caption file describes
    named_split: bool = False
    files: list[str] = field(default_factory=list)

    def indices(self, split: str) -> list[int]:
        return [i for i, s in enumerate(self.splits) if s == split]


def _resized(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[:2] == (size, size):
        return image
    interpolation = cv2.INTER_AREA if max(image.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def generated_set(counts: dict[str, int], image_size: int, input_size: int, seed: int) -> CaptionSet:
    """``captioned_shapes`` scenes: ``counts`` per split, each split from its own stream of the seed."""
    objects: list[list[dict[str, Any]]] = []
    out = CaptionSet([], [], [], [], [], objects=objects, named_split=True)
    for split in SPLITS:
        for number, scene in enumerate(make_scenes(counts[split], image_size, seed, split)):
            out.names.append(f"{split}/{number:06d}.png")
            out.images.append(_resized(scene.image, input_size))
            out.sizes.append((image_size, image_size))
            out.captions.append([scene.caption])
            out.splits.append(split)
            objects.append(scene.objects)
    return out


def read_set(
    members: Iterable[Member],
    *,
    input_size: int,
    max_items: int,
    max_pixels: int,
    max_bytes: int,
    split: str,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> CaptionSet:
    files = CaptionFiles()
    images: dict[str, tuple[np.ndarray, tuple[int, int]]] = {}
    seen: set[str] = set()  # every image member, readable or not: captions may name a broken one
    broken = 0
    for member in members:
        if files.claims(member.name):
            if member.data is None:
                raise InvalidInput(f"{member.name}: {member.error}")
            files.read(member.name, member.data)
            continue
        seen.add(member.name)
        if member.data is None:
            broken += 1
            continue
        if len(images) >= max_items:
            raise InvalidInput(f"the input holds more than max_items={max_items} images")
        try:
            decoded = decode_image(member.data, max_pixels=max_pixels, max_bytes=max_bytes)
        except ItemError:
            broken += 1
            continue
        images[member.name] = (_resized(decoded, input_size), (decoded.shape[1], decoded.shape[0]))
    if not files.files:
        raise InvalidInput("the input has no caption file (a COCO JSON, Flickr8k.token.txt, or KEY.txt / KEY.json)")
    files.finish(seen)
    out = CaptionSet([], [], [], [], [], files=list(files.files))
    for name in sorted(images):
        captions = files.captions.get(name)
        if not captions:
            out.uncaptioned += int(is_image(name))
            continue
        out.names.append(name)
        out.images.append(images[name][0])
        out.sizes.append(images[name][1])
        out.captions.append([c.text for c in captions])
        out.splits.append(files.splits.get(name, ""))
    out.skipped = broken
    if not out.names:
        raise InvalidInput("no readable image of the input has a caption")
    _assign_splits(out, split, val_fraction, test_fraction, seed)
    return out


def _assign_splits(data: CaptionSet, split: str, val_fraction: float, test_fraction: float, seed: int) -> None:
    named = any(data.splits) and split != "random"
    if split == "named" and not named:
        raise InvalidInput("split 'named': the caption files name no train / val / test split")
    if named:
        data.splits = [s or "train" for s in data.splits]  # images a split list leaves out train
        data.named_split = True
        for needed in ("val", "test"):
            if needed not in data.splits:
                raise InvalidInput(f"the split the data names has no {needed} images (use split 'random')")
        return
    count = len(data.names)
    n_val, n_test = max(1, round(count * val_fraction)), max(1, round(count * test_fraction))
    if count - n_val - n_test < 1:
        raise InvalidInput(f"{count} captioned images are too few to split into train, val and test")
    order = np.random.default_rng(seed).permutation(count)
    data.splits = ["train"] * count
    for i in order[:n_val]:
        data.splits[int(i)] = "val"
    for i in order[n_val : n_val + n_test]:
        data.splits[int(i)] = "test"
