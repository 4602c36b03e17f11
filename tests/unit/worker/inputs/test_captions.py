"""Caption data: every format parses to the same captions, bad files fail naming the file and line, the
vocabulary and tokeniser behave, and generated scenes are described by exactly their captions."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest

from shared.errors import InvalidInput
from tests.support.contexts import tar_bytes
from tests.support.images import png
from worker.inputs.archive import Member, iter_members
from worker.inputs.caption_set import CaptionSet, read_set
from worker.inputs.captioned_shapes import COLOURS, make_scenes
from worker.inputs.vocabulary import Vocabulary, tokenize

CAPTIONS = {
    "0.png": ["A dog runs on the grass.", "a brown dog"],
    "1.png": ["Two people ride bikes"],
    "2.png": ["a cat sleeps", "the cat is asleep", "a grey cat"],
    "3.png": ["an empty street at night"],
}
IMAGES = {name: png(40, 30, seed=i) for i, name in enumerate(CAPTIONS)}


def _coco() -> dict[str, bytes]:
    images = [{"id": 100 + i, "file_name": name} for i, name in enumerate(CAPTIONS)]
    annotations = [
        {"id": k, "image_id": 100 + i, "caption": text}
        for i, texts in enumerate(CAPTIONS.values())
        for k, text in enumerate(texts)
    ]
    doc = json.dumps({"info": {}, "images": images, "annotations": annotations}, indent=1).encode()
    return {**{f"val2014/{n}": d for n, d in IMAGES.items()}, "annotations/captions_val2014.json": doc}


def _karpathy() -> dict[str, bytes]:
    images = [
        {"filepath": "val2014", "filename": name, "sentences": [{"raw": t, "tokens": t.split()} for t in texts]}
        for name, texts in CAPTIONS.items()
    ]
    return {
        **{f"val2014/{n}": d for n, d in IMAGES.items()},
        "dataset_coco.json": json.dumps({"images": images}).encode(),
    }


def _flickr() -> dict[str, bytes]:
    lines = [f"{name}#{k}\t{text}" for name, texts in CAPTIONS.items() for k, text in enumerate(texts)]
    images = {f"Flicker8k_Dataset/{n}": d for n, d in IMAGES.items()}
    return {**images, "Flickr8k_text/Flickr8k.token.txt": ("\n".join(lines) + "\n").encode()}


def _webdataset_txt() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, texts in CAPTIONS.items():
        key = name.removesuffix(".png")
        out[f"shard/{key}.png"] = IMAGES[name]
        out[f"shard/{key}.txt"] = "\n".join(texts).encode()
    return out


def _webdataset_json() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, texts in CAPTIONS.items():
        key = name.removesuffix(".png")
        out[f"shard/{key}.png"] = IMAGES[name]
        record: dict[str, Any] = {"caption": texts[0]} if len(texts) == 1 else {"captions": texts, "url": "x"}
        out[f"shard/{key}.json"] = json.dumps(record).encode()
    return out


def _read(members: dict[str, bytes], **options: Any) -> CaptionSet:
    settings = {
        "input_size": 16,
        "max_items": 100,
        "max_pixels": 10**7,
        "max_bytes": 10**7,
        "split": "random",
        "val_fraction": 0.25,
        "test_fraction": 0.25,
        "seed": 0,
    }
    stream = iter_members(io.BytesIO(tar_bytes(members)), "in.tar", max_bytes=10**7)
    return read_set(stream, **{**settings, **options})


@pytest.mark.parametrize("layout", [_coco, _karpathy, _flickr, _webdataset_txt, _webdataset_json])
def test_every_format_gives_the_same_captions(layout: Any) -> None:
    data = _read(layout())
    by_image = {name.rsplit("/", 1)[-1]: captions for name, captions in zip(data.names, data.captions, strict=True)}
    assert by_image == CAPTIONS
    assert all(image.shape == (16, 16, 3) for image in data.images)
    assert data.sizes == [(40, 30)] * 4
    assert sorted(data.splits) == ["test", "train", "train", "val"]


def _error(members: dict[str, bytes]) -> str:
    with pytest.raises(InvalidInput) as caught:
        _read(members)
    return str(caught.value)


def test_bad_caption_files_name_the_file_and_line() -> None:
    flickr = _flickr()
    lines = flickr["Flickr8k_text/Flickr8k.token.txt"].decode().splitlines()
    missing = "\n".join([*lines[:3], "nothere.jpg#0\ta ghost", *lines[3:]]).encode()
    message = _error({**flickr, "Flickr8k_text/Flickr8k.token.txt": missing})
    assert "Flickr8k.token.txt line 4" in message and "nothere.jpg" in message
    empty = "\n".join([*lines[:5], "2.png#3\t   ", *lines[5:]]).encode()
    message = _error({**flickr, "Flickr8k_text/Flickr8k.token.txt": empty})
    assert "Flickr8k.token.txt line 6" in message and "empty caption" in message
    no_tab = "\n".join([*lines[:1], "0.png#5 a dog without a tab"]).encode()
    assert "line 2: expected IMAGE.jpg#N<TAB>caption" in _error({**flickr, "Flickr8k_text/Flickr8k.token.txt": no_tab})
    coco = _coco()
    text = coco["annotations/captions_val2014.json"].decode()
    message = _error({**coco, "annotations/captions_val2014.json": text[:-30].encode()})
    assert "captions_val2014.json line" in message and "malformed JSON" in message
    doc = json.loads(text)
    doc["annotations"][4]["image_id"] = 999
    laid_out = json.dumps(doc, indent=1)
    message = _error({**coco, "annotations/captions_val2014.json": laid_out.encode()})
    line = laid_out[: laid_out.index('"image_id": 999')].count("\n") + 1
    assert f"captions_val2014.json line {line}: image_id 999" in message
    doc["annotations"][4]["image_id"], doc["annotations"][6]["caption"] = 101, ""
    assert "empty caption" in _error({**coco, "annotations/captions_val2014.json": json.dumps(doc).encode()})
    webdataset = _webdataset_txt()
    assert "shard/9.txt line 1" in _error({**webdataset, "shard/9.txt": b"a caption of no image"})
    assert "not UTF-8" in _error({**webdataset, "shard/0.txt": b"\xff\xfe\xfa"})
    assert "no caption file" in _error(IMAGES)


def test_named_splits_are_used_and_unreadable_images_are_skipped() -> None:
    flickr = _flickr()
    flickr["Flickr8k_text/Flickr_8k.testImages.txt"] = b"2.png\n"
    flickr["Flickr8k_text/Flickr_8k.devImages.txt"] = b"1.png\nnot-in-this-input.png\n"
    flickr["Flickr8k_text/Flickr_8k.trainImages.txt"] = b"0.png\n"
    flickr["Flicker8k_Dataset/3.png"] = b"not an image"
    data = _read(flickr, split="auto")
    assert data.named_split and data.skipped == 1
    assert dict(zip([n.rsplit("/", 1)[-1] for n in data.names], data.splits, strict=True)) == {
        "0.png": "train",
        "1.png": "val",
        "2.png": "test",
    }
    with pytest.raises(InvalidInput, match="name no train"):
        _read(_flickr(), split="named")


def test_tokeniser_and_vocabulary() -> None:
    assert tokenize("A man's dog, running!") == ["a", "man's", "dog", "running"]
    assert tokenize("A Dog.", lowercase=False, strip_punctuation=False) == ["A", "Dog."]
    captions = [["a", "dog"], ["a", "cat"], ["a", "dog", "runs"]]
    vocabulary = Vocabulary.build(captions, min_count=2)
    assert vocabulary.words == ["<pad>", "<start>", "<end>", "<unk>", "a", "dog"]
    encoded = vocabulary.encode(["a", "cat", "dog"])
    assert encoded == [1, 4, 3, 5, 2]
    assert vocabulary.decode([*encoded, 4, 4]) == ["a", "<unk>", "dog"]


def test_generated_scenes_are_described_by_their_captions() -> None:
    scenes = make_scenes(300, 128, seed=3)
    again = make_scenes(300, 128, seed=3)
    assert all(a.caption == b.caption and np.array_equal(a.image, b.image) for a, b in zip(scenes, again, strict=True))
    held_out = make_scenes(300, 128, seed=3, stream="test")
    assert sum(a.caption == b.caption for a, b in zip(scenes, held_out, strict=True)) < 30  # another stream
    counts = {1: 0, 2: 0, 3: 0}
    for scene in scenes:
        counts[len(scene.objects)] += 1
        words = scene.caption.split()
        nouns = [w for w in words if w in {"circle", "square", "triangle", "cross"}]
        assert nouns == [o["word"] for o in scene.objects]
        centres = [((o["box"][0] + o["box"][2]) / 2, (o["box"][1] + o["box"][3]) / 2) for o in scene.objects]
        assert centres == sorted(centres)  # named from left to right
        relations = [w for w in words if w in {"left", "above", "below"}]
        assert len(relations) == len(centres) - 1
        for (ax, ay), (bx, by), relation in zip(centres, centres[1:], relations, strict=False):
            expected = "left" if abs(by - ay) < bx - ax else ("above" if by > ay else "below")
            assert relation == expected
        for obj in scene.objects:
            x0, y0, x1, y1 = obj["box"]
            assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128
            colour = np.array(COLOURS[obj["colour"]])
            centre = scene.image[(y0 + y1) // 2, (x0 + x1) // 2].astype(int)
            assert np.abs(centre - colour).max() <= 2  # the named colour is drawn there
    assert min(counts.values()) > 50


def test_members_without_bytes_fail_caption_files_clearly() -> None:
    members = [
        Member("captions.json", error="member is 10 bytes, over the limit of 5"),
        Member("0.png", IMAGES["0.png"]),
    ]
    with pytest.raises(InvalidInput, match="captions.json: member is 10 bytes"):
        read_set(
            iter(members),
            input_size=16,
            max_items=10,
            max_pixels=10**7,
            max_bytes=10**7,
            split="random",
            val_fraction=0.2,
            test_fraction=0.2,
            seed=0,
        )
