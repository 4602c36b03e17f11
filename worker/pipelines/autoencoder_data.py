"""The data an autoencoder trains on: the real MNIST, or the images of an archive or object-store prefix
(labels are optional: an ImageFolder layout gives them, and the 2-D map is then coloured by class),
with attribute vectors for multimodal models. Images are held as uint8 (N, C, S, S) at the model's size.

``prepare_image`` is the one conversion from a decoded image to what the model sees, shared by training
and by ``autoencoder_apply``, so a model meets the same pixels in both. Broken members are skipped and
counted; an input with no usable image fails the job with the reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from shared.errors import InvalidInput, ItemError
from shared.specs.autoencoder import AutoencoderTrainSpec
from worker.inputs.attributes import AttributeSidecars
from worker.inputs.decode import decode_image
from worker.inputs.mnist import load_mnist
from worker.pipelines.training_base import TrainingContext

DATA_FIELDS = {
    "input", "input_size", "color", "seed", "train_items", "test_items", "test_fraction", "max_items", "attributes",
}  # fmt: skip
"""The spec fields that decide the data set (the key of the per-process cache)."""

UNLABELLED = -1


def prepare_image(rgb: np.ndarray, size: int, channels: int) -> np.ndarray:
    """A decoded RGB uint8 (H, W, 3) image -> (channels, size, size) uint8: grayscale by luminance
    (exact for gray images decoded to RGB), resized whole (area averaging down, bilinear up)."""
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None] if channels == 1 else rgb
    if image.shape[:2] != (size, size):
        shrinking = image.shape[0] * image.shape[1] > size * size
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        image = image.reshape(size, size, channels)
    return np.ascontiguousarray(image.transpose(2, 0, 1))


@dataclass
class Split:
    images: np.ndarray  # (N, C, S, S) uint8
    labels: np.ndarray | None  # (N,) int64, UNLABELLED where an image has no class
    attributes: np.ndarray | None = None  # (N, A) float32: one-hot classes or the raw numbers


@dataclass
class AutoencoderData:
    train: Split
    test: Split
    classes: tuple[str, ...] | None
    attribute_info: dict[str, Any] = field(default_factory=dict)
    skipped: int = 0
    skipped_examples: list[dict[str, str]] = field(default_factory=list)


def load_data(spec: AutoencoderTrainSpec, ctx: TrainingContext) -> AutoencoderData:
    data = _mnist(spec, ctx) if spec.input == "builtin:mnist" else _archive(spec, ctx)
    if spec.attributes == "class":
        _class_attributes(data)
    elif spec.attributes == "sidecar" and data.train.attributes is not None:
        mean = data.train.attributes.mean(axis=0)
        std = data.train.attributes.std(axis=0)
        data.attribute_info = {
            "source": "sidecar",
            "size": int(data.train.attributes.shape[1]),
            "mean": [float(v) for v in mean],
            "std": [float(v) if v > 0 else 1.0 for v in std],  # a constant attribute is left unscaled
        }
    return data


def _mnist(spec: AutoencoderTrainSpec, ctx: TrainingContext) -> AutoencoderData:
    try:
        assets, cache = ctx.asset("."), ctx.scratch("mnist")
        train_x, train_y = load_mnist(assets, cache, True)
        test_x, test_y = load_mnist(assets, cache, False)
    except FileNotFoundError as exc:
        raise InvalidInput(f"builtin:mnist needs MNIST in the assets folder: {exc}") from exc
    train_x, train_y = train_x[: spec.train_items], train_y[: spec.train_items]
    test_x, test_y = test_x[: spec.test_items], test_y[: spec.test_items]

    def shaped(digits: np.ndarray) -> np.ndarray:
        if spec.input_size == 28 and spec.channels == 1:
            return digits[:, None].copy()  # as torchvision reads them: no conversion at all
        rgb = np.repeat(digits[:, :, :, None], 3, axis=3)
        return np.stack([prepare_image(image, spec.input_size, spec.channels) for image in rgb])

    return AutoencoderData(
        Split(shaped(train_x), train_y.astype(np.int64)),
        Split(shaped(test_x), test_y.astype(np.int64)),
        tuple(str(d) for d in range(10)),
    )


def _archive(spec: AutoencoderTrainSpec, ctx: TrainingContext) -> AutoencoderData:
    limits = ctx.limits
    sidecars = AttributeSidecars(strict=True) if spec.attributes == "sidecar" else None
    images: list[np.ndarray] = []
    names: list[str] = []
    skipped: list[dict[str, str]] = []
    for member in ctx.members(spec.input):
        if sidecars is not None and member.data is not None and sidecars.claims(member.name):
            sidecars.read(member.name, member.data)
            continue
        if member.error is not None or member.data is None:
            skipped.append({"name": member.name, "error": member.error or "unreadable"})
            continue
        try:
            rgb = decode_image(member.data, max_pixels=limits.max_image_pixels, max_bytes=limits.max_item_bytes)
        except ItemError as exc:
            skipped.append({"name": member.name, "error": str(exc)})
            continue
        if len(images) >= spec.max_items:
            raise InvalidInput(f"the input holds more than max_items={spec.max_items} images")
        images.append(prepare_image(rgb, spec.input_size, spec.channels))
        names.append(member.name)
    if len(images) < 2:
        example = f" (e.g. {skipped[0]['name']}: {skipped[0]['error']})" if skipped else ""
        raise InvalidInput(
            f"the input holds {len(images)} decodable image(s) of {len(images) + len(skipped)} members{example}: "
            "an autoencoder needs at least two"
        )
    attributes = None
    if sidecars is not None:
        sidecars.finish(set(names))
        vectors = [sidecars.truth(name) for name in names]
        keep = [i for i, found in enumerate(vectors) if found is not None and "attributes" in found]
        if not keep:
            raise InvalidInput("attributes 'sidecar': no image has a NAME.json or attributes.json entry")
        kept = set(keep)
        skipped += [{"name": n, "error": "no attributes for this image"} for i, n in enumerate(names) if i not in kept]
        images, names = [images[i] for i in keep], [names[i] for i in keep]
        attributes = np.array([vectors[i]["attributes"] for i in keep], dtype=np.float32)  # type: ignore[index]
    labels, classes = _folder_labels(names)
    stacked = np.stack(images)
    order = np.random.default_rng(spec.seed).permutation(len(stacked))
    cut = min(max(1, round(len(order) * spec.test_fraction)), len(order) - 1)
    test, train = order[:cut], order[cut:]

    def pick(rows: np.ndarray) -> Split:
        return Split(
            stacked[rows],
            labels[rows] if labels is not None else None,
            attributes[rows] if attributes is not None else None,
        )

    return AutoencoderData(pick(train), pick(test), classes, skipped=len(skipped), skipped_examples=skipped[:20])


def _folder_labels(names: list[str]) -> tuple[np.ndarray | None, tuple[str, ...] | None]:
    """ImageFolder classes (the first path part) when images lie in at least two folders; images outside
    every folder are unlabelled. Otherwise the data has no labels."""
    folders = [name.split("/")[0] if "/" in name else None for name in names]
    classes = tuple(sorted({f for f in folders if f is not None}))
    if len(classes) < 2:
        return None, None
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index[f] if f is not None else UNLABELLED for f in folders], dtype=np.int64), classes


def _class_attributes(data: AutoencoderData) -> None:
    """Attributes 'class': each image's label one-hot; unlabelled images are left out and counted."""
    classes = data.classes
    for name in ("train", "test"):
        part: Split = getattr(data, name)
        labels = part.labels
        if classes is None or labels is None:
            raise InvalidInput(
                "attributes 'class' needs labelled images: builtin:mnist, or an archive with one folder per class"
            )
        labelled = labels != UNLABELLED
        data.skipped += int((~labelled).sum())
        if not labelled.any():
            raise InvalidInput(f"attributes 'class': the {name} split has no labelled image")
        one_hot = np.eye(len(classes), dtype=np.float32)[labels[labelled]]
        setattr(data, name, Split(part.images[labelled], labels[labelled], one_hot))
    data.attribute_info = {"source": "class", "size": len(classes or ()), "classes": list(classes or ())}
