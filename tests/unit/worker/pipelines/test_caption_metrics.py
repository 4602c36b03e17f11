"""Caption metrics: our corpus BLEU (the COCO caption evaluation code) agrees with NLTK's corpus_bleu, an
independent implementation, and with a case worked out by hand; attention-in-box counts what it says."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nltk.translate.bleu_score import corpus_bleu

from worker.pictures.attention import even_centres
from worker.pipelines.caption_attention import HitTotals, object_word_hits
from worker.pipelines.caption_metrics import bleu4, corpus_scores

REFERENCES = [
    ["a man riding a wave on top of a surfboard", "a surfer rides a large wave in the ocean"],
    ["two dogs play with a frisbee in the park", "a couple of dogs playing in the grass"],
    ["a plate of food with broccoli and rice", "a white plate topped with rice and vegetables"],
    ["a red bus driving down a city street", "a double decker bus on a street"],
    ["a cat sitting on top of a laptop keyboard", "a cat laying on a laptop computer"],
]
HYPOTHESES = [
    "a man riding a wave on a surfboard",
    "two dogs playing with a frisbee in the grass",
    "a plate of rice and broccoli",
    "a red double decker bus on a city street",
    "a cat sitting on a laptop",
]


def _tokens() -> tuple[list[list[list[str]]], list[list[str]]]:
    return [[r.split() for r in refs] for refs in REFERENCES], [h.split() for h in HYPOTHESES]


def test_corpus_bleu_agrees_with_nltk() -> None:
    references, hypotheses = _tokens()
    ours = corpus_scores(references, hypotheses)
    for n in range(1, 5):
        weights = tuple([1.0 / n] * n)
        theirs = corpus_bleu(references, hypotheses, weights=weights)
        assert ours[f"bleu{n}"] == pytest.approx(theirs, abs=1e-5), n
    assert ours["bleu4"] == pytest.approx(bleu4(references, hypotheses), abs=1e-6)
    assert 0 < ours["cider"] < 10


def test_bleu_by_hand() -> None:
    # Hypothesis "the cat sat" against "the cat sat down": unigrams 3/3, bigrams 2/2, brevity penalty
    # exp(1 - 4/3); BLEU-2 = BP * sqrt(1 * 1).
    scores = corpus_scores([[["the", "cat", "sat", "down"]]], [["the", "cat", "sat"]])
    assert scores["bleu1"] == pytest.approx(math.exp(1 - 4 / 3), abs=1e-6)
    assert scores["bleu2"] == pytest.approx(math.exp(1 - 4 / 3), abs=1e-6)
    perfect = corpus_scores(
        [[["a", "red", "circle", "left", "of", "a", "square"]]] * 2,
        [["a", "red", "circle", "left", "of", "a", "square"]] * 2,
    )
    assert perfect["bleu4"] == pytest.approx(1.0, abs=1e-6)
    assert corpus_scores([], []) == {}


def test_attention_in_box_matches_object_words_to_their_objects() -> None:
    objects = [{"word": "circle", "box": [0, 0, 50, 50]}, {"word": "square", "box": [50, 50, 100, 100]}]
    words = ["a", "red", "circle", "left", "of", "a", "square", "and", "a", "cross", "square"]
    alphas = np.zeros((len(words), 2, 2))
    alphas[2, 0, 0] = 1.0  # circle: top-left cell, inside its box
    alphas[6, 0, 0] = 1.0  # square: top-left cell, outside its box
    alphas[9, 1, 1] = 1.0  # cross: no cross in the scene, wherever it looks
    alphas[10, 1, 1] = 1.0  # the second square: in the one square's box, but the scene has one square only
    hits = object_word_hits(words, alphas, objects, (100, 100), even_centres(2, 2))
    assert [(w["word"], w["position"], w["hit"]) for w in hits["words"]] == [
        ("circle", 2, True),
        ("square", 6, False),
        ("cross", 9, False),
        ("square", 10, False),
    ]
    # Wrong object words are misses: the second "square" names no other square, and "cross" is a kind this
    # scene lacks; neither has a box, so neither adds to the share by chance.
    assert hits["unmatched"] == 2
    totals = HitTotals()
    totals.add(hits)
    assert totals.result() == {
        "object_words": 4,
        "attention_in_box": 0.25,
        "attention_in_box_chance": 0.125,
        "unmatched_object_words": 2,
    }
    # Words that name no kind at all are not object words.
    blob = object_word_hits(["a", "red", "blob"], alphas[:3], objects, (100, 100), even_centres(2, 2))
    assert blob == {"words": [], "unmatched": 0}


def test_the_peak_is_placed_at_its_cells_measured_centre() -> None:
    # A peak on the cell of a stride-16 grid whose field is centred on the box's left edge region: by an
    # even division of the image it would sit 8 px further right, outside the box.
    objects = [{"word": "circle", "box": [0, 0, 12, 100]}]
    alphas = np.zeros((1, 14, 14))
    alphas[0, 7, 1] = 1.0
    measured = (16 * np.arange(14) + 0.5) / 224, (16 * np.arange(14) + 0.5) / 224  # x 9.4 px, evenly 13.7
    scene = (128, 128)
    assert object_word_hits(["circle"], alphas, objects, scene, measured)["words"][0]["hit"]
    assert not object_word_hits(["circle"], alphas, objects, scene, even_centres(14, 14))["words"][0]["hit"]
