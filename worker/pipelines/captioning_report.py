"""Report sections of the captioning kinds: corpus BLEU / CIDEr and where the attention falls, for a
training job's test split and for a ``caption`` job whose input carries reference captions."""

from __future__ import annotations

from typing import Any

from worker.pipelines.plugin import Section

_NAMES = (("bleu1", "BLEU-1"), ("bleu2", "BLEU-2"), ("bleu3", "BLEU-3"), ("bleu4", "BLEU-4"), ("cider", "CIDEr-D"))


def score_rows(scores: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [(label, f"{scores[name]:.4f}") for name, label in _NAMES if name in scores]
    if "attention_in_box" in scores:
        rows += [
            (
                f"object words whose attention peak is inside the object's box ({scores['object_words']} words)",
                f"{scores['attention_in_box']:.1%}",
            ),
            ("… by chance (the box's share of the image)", f"{scores['attention_in_box_chance']:.1%}"),
            ("object words naming no object of the scene", str(scores["unmatched_object_words"])),
        ]
    return rows


def training_sections(summary: dict[str, Any]) -> list[Section]:
    images = summary.get("images", {})
    test = summary.get("test") or {}
    stopped = " (stopped early: no better validation BLEU-4)" if summary.get("stopped_early") else ""
    result = [
        *score_rows(test),
        ("beam width", str(summary.get("beam_size"))),
        ("attention", str(summary.get("attention"))),
        ("epochs", f"{summary.get('epochs')}{stopped}; the model is epoch {summary.get('best_epoch')}"),
        ("best validation BLEU-4 (greedy)", f"{summary.get('best_val_bleu4', 0.0):.4f}"),
    ]
    data = [
        ("images train / val / test", f"{images.get('train')} / {images.get('val')} / {images.get('test')}"),
        ("split", "named by the data" if summary.get("named_split") else "random by image"),
        ("training captions", str(summary.get("training_captions"))),
        ("vocabulary (with <pad>, <start>, <end>, <unk>)", str(summary.get("vocabulary_size"))),
        ("grid (L = H x W) and D", f"{summary.get('grid')} x {summary.get('feature_dim')}"),
        ("training captions over max_length, left out", str(summary.get("captions_too_long"))),
        (
            "unreadable images skipped / images without a caption",
            f"{summary.get('skipped_images')} / {summary.get('uncaptioned_images')}",
        ),
    ]
    examples = summary.get("examples") or []
    table = (("generated (test split)", "reference"),) + tuple(
        (e["caption"], " | ".join(e["references"][:3])) for e in examples
    )
    sections = [Section("Test split", rows=tuple(result)), Section("Data", rows=tuple(data))]
    if examples:
        sections.append(Section("Examples", table=table))
    return sections


def caption_sections(summary: dict[str, Any]) -> list[Section]:
    scores = summary.get("references") or {}
    if not scores:
        return []
    text = (
        f"Corpus-level scores of the {scores.get('items')} captioned images whose input carries reference "
        "captions (COCO caption evaluation code; METEOR and SPICE need Java and are not computed)."
    )
    return [Section("Against the reference captions", text=text, rows=tuple(score_rows(scores)))]
