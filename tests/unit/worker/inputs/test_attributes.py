"""Attribute sidecars: NAME.json beside NAME.png, or an attributes.json mapping; strict readers fail the
job naming the file, lenient ones leave the reason with the image that needed the vector."""

from __future__ import annotations

import pytest

from shared.errors import InvalidInput
from worker.inputs.attributes import AttributeSidecars


def _read(reader: AttributeSidecars, members: dict[str, bytes]) -> AttributeSidecars:
    for name, data in members.items():
        assert reader.claims(name)
        reader.read(name, data)
    return reader


def test_both_layouts_give_each_image_its_vector() -> None:
    members = {
        "a/x.json": b"[1, 2.5]",
        "a/y.json": b'{"attributes": [3, 4]}',
        "b/attributes.json": b'{"z.png": [5, 6], "deep/w.jpg": [7, 8]}',
    }
    reader = _read(AttributeSidecars(strict=True), members)
    reader.finish({"a/x.png", "a/y.jpeg", "b/z.png", "b/deep/w.jpg"})
    assert reader.truth("a/x.png") == {"attributes": [1.0, 2.5]}
    assert reader.truth("a/y.jpeg") == {"attributes": [3.0, 4.0]}
    assert reader.truth("b/z.png") == {"attributes": [5.0, 6.0]}
    assert reader.truth("b/deep/w.jpg") == {"attributes": [7.0, 8.0]}
    assert reader.truth("a/other.png") is None and not reader.claims("a/x.png")


@pytest.mark.parametrize(
    ("members", "names", "reason"),
    [
        ({"x.json": b"[1, 2"}, {"x.png"}, "x.json: not valid JSON"),
        ({"x.json": b'["a", 2]'}, {"x.png"}, "finite number"),
        ({"x.json": b"[true]"}, {"x.png"}, "finite number"),
        ({"x.json": b"[]"}, {"x.png"}, "non-empty"),
        ({"x.json": b'{"caption": "a cat"}'}, {"x.png"}, "x.json: expected a list"),
        ({"attributes.json": b"[1, 2]"}, {"x.png"}, "must map image names"),
        ({"gone.json": b"[1]"}, {"x.png"}, "not in the input: gone.json"),
        ({"x.json": b"[1]", "y.json": b"[1, 2]"}, {"x.png", "y.png"}, "differ in length"),
    ],
)
def test_a_strict_reader_names_what_is_wrong(members: dict[str, bytes], names: set[str], reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        _read(AttributeSidecars(strict=True), members).finish(names)


def test_a_lenient_reader_leaves_the_reason_with_the_image() -> None:
    reader = _read(
        AttributeSidecars(strict=False),
        {"x.json": b"[1, 2", "y.json": b'{"caption": "a cat"}', "z.json": b'[1, "a"]', "gone.json": b"[1]"},
    )
    reader.finish({"x.png", "y.png", "z.png"})  # descriptions of missing images are no reason to fail here
    assert "not valid JSON" in reader.truth("x.png")["attributes_error"]  # type: ignore[index]
    assert reader.truth("y.png") is None  # not an attribute file at all: ignored
    assert "finite number" in reader.truth("z.png")["attributes_error"]  # type: ignore[index]
