"""Does the model look at what it names? For scenes whose objects' boxes are known (``captioned_shapes``):
for each object word of a generated caption, whether the peak of the attention that produced it falls
inside that object's box, and by chance (the box's share of the image).

The k-th generated mention of a kind ("circle") is matched to the first not-yet-matched object of that
kind in the scene's caption order. A kind word that names no object of the scene (a kind the scene lacks,
or one mention more than the scene has) is a wrong word of the caption: it counts as a miss (with no box,
so nothing by chance) and as unmatched, so that a captioner is not scored only on the words it got right.
The peak is the most attended grid cell, placed at the centre of its receptive field in the image
(``GridEncoder.cell_centres``: for a stride-16 MobileNetV2 or ResNet grid half a cell up and left of an even
division of the image)."""

from __future__ import annotations

from typing import Any

import numpy as np

from worker.inputs.captioned_shapes import KINDS


def object_word_hits(
    words: list[str],
    alphas: np.ndarray,
    objects: list[dict[str, Any]],
    image_size: tuple[int, int],
    centres: tuple[np.ndarray, np.ndarray],
    kinds: tuple[str, ...] = KINDS,
) -> dict[str, Any]:
    """words: the caption; alphas: (len(words), H, W); objects: [{"word", "box": [x0, y0, x1, y1]}];
    image_size: (width, height); centres: each column's x and each row's y as fractions of the image;
    kinds: the words that name objects. Returns {"words": [{"word", "position", "hit", "box_fraction"}],
    "unmatched"}."""
    width, height = image_size
    xs, ys = centres
    free = list(range(len(objects)))
    out, unmatched = [], 0
    named = set(kinds) | {str(obj["word"]) for obj in objects}
    for position, word in enumerate(words):
        if word not in named:
            continue
        match = next((i for i in free if objects[i]["word"] == word), None)
        if match is None:
            unmatched += 1
            out.append({"word": word, "position": position, "hit": False, "box_fraction": 0.0})
            continue
        free.remove(match)
        grid = alphas[position]
        row, column = np.unravel_index(int(np.argmax(grid)), grid.shape)
        x, y = float(xs[column]) * width, float(ys[row]) * height
        x0, y0, x1, y1 = objects[match]["box"]
        out.append(
            {
                "word": word,
                "position": position,
                "hit": bool(x0 <= x < x1 and y0 <= y < y1),
                "box_fraction": round((x1 - x0) * (y1 - y0) / float(width * height), 6),
            }
        )
    return {"words": out, "unmatched": unmatched}


class HitTotals:
    """Running sums over items: the share of object words whose attention peak is inside their box."""

    def __init__(self) -> None:
        self.words = 0
        self.hits = 0
        self.chance = 0.0
        self.unmatched = 0

    def add(self, hits: dict[str, Any]) -> None:
        for entry in hits["words"]:
            self.words += 1
            self.hits += int(entry["hit"])
            self.chance += float(entry["box_fraction"])
        self.unmatched += int(hits["unmatched"])

    def result(self) -> dict[str, Any] | None:
        if not self.words:
            return None
        return {
            "object_words": self.words,
            "attention_in_box": round(self.hits / self.words, 4),
            "attention_in_box_chance": round(self.chance / self.words, 4),
            "unmatched_object_words": self.unmatched,
        }
