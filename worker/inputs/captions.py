"""Caption files beside the images of an input, in the formats people have:

- a COCO captions JSON (``images`` with ``id`` and ``file_name``, ``annotations`` with ``image_id`` and
  ``caption``), and Karpathy's split file of the same images (``images`` with ``filename``,
  ``sentences`` and ``split``), which is what the usual tutorials train from;
- Flickr8k's ``Flickr8k.token.txt`` (``IMAGE.jpg#N<TAB>caption``) and its split lists
  ``Flickr_8k.{train,dev,test}Images.txt``;
- WebDataset pairs: ``KEY.txt`` (one caption per line) or ``KEY.json`` (``caption`` or ``captions``) beside
  ``KEY.jpg`` in the same folder.

``CaptionFiles`` takes the members one at a time (only the description files, which it ``claims``), then
``finish`` resolves every caption to an image of the input. A malformed file, an empty caption or a
caption of an image that is not there is an ``InvalidInput`` naming the file and line (the job fails
before anything is trained). It is the caption kind's sidecar reader as well as the training set's.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from shared.errors import InvalidInput

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_FLICKR_SPLITS = {"trainimages.txt": "train", "devimages.txt": "val", "testimages.txt": "test"}
_KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}


@dataclass(frozen=True)
class Caption:
    text: str
    where: str
    """``FILE line N`` (or ``FILE entry``): where it was read, for error messages."""


@dataclass(frozen=True)
class _Pending:
    target: str  # the image as the file names it: a path, or a WebDataset key
    folder: str  # the description file's folder
    caption: Caption | None  # None: a split entry
    split: str | None = None
    webdataset: bool = False


def _key_of(name: str) -> tuple[str, str]:
    """A WebDataset member's (folder, key): the key is the base name up to its first dot."""
    folder, base = posixpath.split(name)
    return folder, base.split(".", 1)[0]


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _lines_of(text: str, key: str, count: int) -> list[int] | None:
    """The line of each of the ``count`` entries that hold ``key``, by its occurrences in the text (None
    when the count does not match, e.g. the key also appears inside a caption)."""
    found = [m.start() for m in re.finditer(re.escape(key), text)]
    if len(found) != count:
        return None
    lines, line, last = [], 1, 0
    for position in found:
        line += text.count("\n", last, position)
        last = position
        lines.append(line)
    return lines


class CaptionFiles:
    def __init__(self) -> None:
        self._pending: list[_Pending] = []
        self.captions: dict[str, list[Caption]] = {}
        """Item name -> its captions, once ``finish`` has run."""
        self.splits: dict[str, str] = {}
        """Item name -> the split the data names for it (train / val / test), once ``finish`` has run."""
        self.files: list[str] = []

    # --- the sidecar contract -------------------------------------------------------------------

    def claims(self, name: str) -> bool:
        return name.lower().endswith((".json", ".txt"))

    def read(self, name: str, data: bytes) -> None:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        self.files.append(name)
        base = posixpath.basename(name).lower()
        if base.endswith(".json"):
            self._read_json(name, text)
        elif base.endswith(".lemma.token.txt"):
            return  # Flickr8k's lemmatised copy of the same captions
        elif base.endswith(".token.txt"):
            self._read_flickr(name, text)
        elif any(base.endswith(suffix) for suffix in _FLICKR_SPLITS):
            split = next(s for suffix, s in _FLICKR_SPLITS.items() if base.endswith(suffix))
            self._read_split_list(name, text, split)
        else:
            self._read_webdataset_text(name, text)

    def finish(self, item_names: set[str]) -> None:
        by_base: dict[str, list[str]] = {}
        by_key: dict[tuple[str, str], list[str]] = {}
        for name in sorted(item_names):
            by_base.setdefault(posixpath.basename(name), []).append(name)
            if is_image(name):
                by_key.setdefault(_key_of(name), []).append(name)
        self.captions, self.splits = {}, {}
        for entry in self._pending:
            item: str | None
            if entry.webdataset:
                found = by_key.get((entry.folder, entry.target), [])
                item = found[0] if found else None
            else:
                path = posixpath.normpath(posixpath.join(entry.folder, entry.target))
                candidates = by_base.get(posixpath.basename(entry.target), [])
                item = path if path in item_names else (candidates[0] if len(candidates) == 1 else None)
            if entry.caption is None:  # a split list may name images the input leaves out
                if item is not None and entry.split is not None:
                    self.splits[item] = entry.split
                continue
            if item is None:
                what = f"{entry.target}.*" if entry.webdataset else repr(entry.target)
                raise InvalidInput(f"{entry.caption.where}: a caption of image {what}, which is not in the input")
            self.captions.setdefault(item, []).append(entry.caption)
            if entry.split is not None:
                self.splits[item] = entry.split

    def truth(self, item_name: str) -> dict[str, Any] | None:
        captions = self.captions.get(item_name)
        return {"references": [c.text for c in captions]} if captions else None

    # --- formats ----------------------------------------------------------------------------------

    def _add(self, where: str, text: object, target: str, folder: str, **extra: Any) -> None:
        if not isinstance(text, str):
            raise InvalidInput(f"{where}: a caption must be a string, not {type(text).__name__}")
        if not text.strip():
            raise InvalidInput(f"{where}: empty caption of {target}")
        self._pending.append(_Pending(target, folder, Caption(text.strip(), where), **extra))

    def _read_json(self, name: str, text: str) -> None:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{name} line {exc.lineno}: malformed JSON ({exc.msg}, column {exc.colno})") from exc
        folder = posixpath.dirname(name)
        if isinstance(doc, dict) and "annotations" in doc:
            self._read_coco(name, text, doc, folder)
        elif isinstance(doc, dict) and isinstance(doc.get("images"), list):
            self._read_karpathy(name, text, doc, folder)
        elif isinstance(doc, dict) and ("caption" in doc or "captions" in doc):
            _, key = _key_of(name)
            captions = doc["captions"] if "captions" in doc else [doc["caption"]]
            if not isinstance(captions, list) or not captions:
                raise InvalidInput(f"{name} line 1: 'captions' must be a non-empty list of strings")
            for caption in captions:
                self._add(f"{name} line 1", caption, key, folder, webdataset=True)
        else:
            raise InvalidInput(
                f"{name} line 1: neither a COCO captions file (images + annotations), a Karpathy split file "
                "(images with sentences) nor a caption record (caption / captions)"
            )

    def _read_coco(self, name: str, text: str, doc: dict[str, Any], folder: str) -> None:
        images, annotations = doc.get("images"), doc.get("annotations")
        if not isinstance(images, list) or not isinstance(annotations, list):
            raise InvalidInput(f"{name} line 1: 'images' and 'annotations' must be lists")
        files: dict[Any, tuple[str, str | None]] = {}
        image_lines = _lines_of(text, '"file_name"', len(images))
        for k, image in enumerate(images):
            where = f"{name} line {image_lines[k]}" if image_lines else f"{name} images[{k}]"
            if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
                raise InvalidInput(f"{where}: an image entry needs 'id' and 'file_name'")
            files[image["id"]] = (image["file_name"], _KARPATHY_SPLITS.get(str(image.get("split", ""))))
        lines = _lines_of(text, '"image_id"', len(annotations))
        for k, annotation in enumerate(annotations):
            where = f"{name} line {lines[k]}" if lines else f"{name} annotations[{k}]"
            if not isinstance(annotation, dict) or "image_id" not in annotation or "caption" not in annotation:
                raise InvalidInput(f"{where}: an annotation needs 'image_id' and 'caption'")
            if annotation["image_id"] not in files:
                raise InvalidInput(f"{where}: image_id {annotation['image_id']!r} is not among the file's images")
            file_name, split = files[annotation["image_id"]]
            self._add(where, annotation["caption"], file_name, folder, split=split)

    def _read_karpathy(self, name: str, text: str, doc: dict[str, Any], folder: str) -> None:
        images = doc["images"]
        lines = _lines_of(text, '"sentences"', len(images))
        for k, image in enumerate(images):
            where = f"{name} line {lines[k]}" if lines else f"{name} images[{k}]"
            if not isinstance(image, dict) or not isinstance(image.get("filename"), str):
                raise InvalidInput(f"{where}: an image entry needs 'filename' and 'sentences'")
            sentences = image.get("sentences")
            if not isinstance(sentences, list) or not sentences:
                raise InvalidInput(f"{where}: 'sentences' must be a non-empty list")
            target = posixpath.join(str(image.get("filepath", "")), image["filename"])
            split = _KARPATHY_SPLITS.get(str(image.get("split", "")))
            for sentence in sentences:
                raw = sentence.get("raw") if isinstance(sentence, dict) else sentence
                self._add(where, raw, target, folder, split=split)

    def _read_flickr(self, name: str, text: str) -> None:
        folder = posixpath.dirname(name)
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            head, tab, caption = line.partition("\t")
            image = head.partition("#")[0].strip()
            if not tab or not image:
                raise InvalidInput(f"{name} line {number}: expected IMAGE.jpg#N<TAB>caption")
            self._add(f"{name} line {number}", caption, image, folder)

    def _read_split_list(self, name: str, text: str, split: str) -> None:
        folder = posixpath.dirname(name)
        for line in text.splitlines():
            if line.strip():
                self._pending.append(_Pending(line.strip(), folder, None, split=split))

    def _read_webdataset_text(self, name: str, text: str) -> None:
        folder, key = _key_of(name)
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        if not lines:
            raise InvalidInput(f"{name} line 1: empty caption of {key}")
        for number, line in lines:
            self._add(f"{name} line {number}", line, key, folder, webdataset=True)
