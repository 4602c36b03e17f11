"""What a person reads of a glimpse network: the paper's test errors (Mnih et al. 2014, table 1 and 2 as
circulated) for the same task, glimpse count, patch size and scales, the training curves, and the
report sections of both glimpse kinds."""

from __future__ import annotations

from typing import Any

from worker.pictures.plots import finish_png, new_figure
from worker.pipelines.plugin import Section

# (task, canvas, distractors, patch size, scales) -> {glimpses: the paper's test error in %}
PAPER_ERRORS: dict[tuple[str, int, int, int, int], dict[int, float]] = {
    ("mnist", 28, 0, 8, 1): {4: 1.54, 6: 1.12, 7: 1.07},
    ("mnist_translated", 60, 0, 12, 3): {4: 1.54, 6: 1.22, 8: 1.20},
    ("mnist_cluttered", 60, 4, 12, 3): {4: 4.96, 6: 4.08, 8: 4.04},
    ("mnist_cluttered", 100, 8, 12, 4): {4: 14.95, 6: 11.58, 8: 10.83},
}
PAPER_RANDOM_LOCATIONS = {("mnist_cluttered", 60, 4): 14.4}
"""The paper's control on cluttered 60x60: the same model glimpsing at random places."""


def paper_row(
    task: str | None, canvas: int, distractors: int, patch: int, scales: int, glimpses: int, random: bool
) -> dict[str, Any] | None:
    """The paper's figure for these settings (None when the paper has no such row)."""
    if task is None:
        return None
    if random:
        found = PAPER_RANDOM_LOCATIONS.get((task, canvas, distractors))
        return None if found is None else {"test_error_percent": found, "model": "random glimpse locations"}
    row = PAPER_ERRORS.get((task, canvas, distractors, patch, scales), {})
    if glimpses not in row:
        return None
    return {
        "test_error_percent": row[glimpses],
        "model": f"RAM, {glimpses} glimpses, {patch}x{patch}, {scales} scale{'s' if scales > 1 else ''}",
    }


def curves_png(history: list[dict[str, float]]) -> bytes:
    """Accuracy (training reward and validation accuracy), the losses, and the REINFORCE term per epoch."""
    epochs = [row["epoch"] for row in history]
    figure, axes = new_figure(3, (13.0, 3.6))
    axes[0].plot(epochs, [row["train_reward"] for row in history], label="training accuracy (mean reward)")
    axes[0].plot(epochs, [row["validation_accuracy"] for row in history], label="validation accuracy")
    axes[0].set_xlabel("epoch")
    axes[1].plot(epochs, [row["train_action"] for row in history], label="cross-entropy (action)")
    axes[1].plot(epochs, [row["train_baseline"] for row in history], label="baseline squared error")
    axes[1].set_xlabel("epoch")
    axes[2].plot(epochs, [row["train_reinforce"] for row in history], label="REINFORCE term")
    axes[2].set_xlabel("epoch")
    return finish_png(figure, axes)


def training_sections(summary: dict[str, Any]) -> list[Section]:
    paper = summary.get("paper") or {}
    stopped = " (stopped early: no better validation accuracy)" if summary.get("stopped_early") else ""
    error = summary.get("test_error_percent")
    rows = [
        ("test error", f"{error:.2f}%" if isinstance(error, float) else str(error)),
        ("the paper's", f"{paper['test_error_percent']:.2f}% ({paper['model']})" if paper else "no such row"),
        ("Monte-Carlo samples per test image", str(summary.get("samples"))),
        ("epochs", f"{summary.get('epochs')}{stopped}; the model is epoch {summary.get('best_epoch')}"),
        ("best validation accuracy", f"{summary.get('best_validation_accuracy', 0.0):.4f}"),
    ]
    settings = summary.get("settings") or {}
    data = summary.get("images") or {}
    detail = [
        ("task", str(summary.get("task"))),
        ("glimpses, patch, scales", f"{settings.get('glimpses')}, {settings.get('patch_size')}, "
         f"{settings.get('scales')} (x{settings.get('scale')})"),
        ("core, policy std", f"{settings.get('core')}, {settings.get('std')}"),
        ("locations", "uniformly random (control)" if settings.get("random_locations") else "learned"),
        ("images train / validation / test", f"{data.get('train')} / {data.get('validation')} / {data.get('test')}"),
        ("unreadable images skipped", str(summary.get("skipped_items", 0))),
    ]  # fmt: skip
    return [Section("Test set", rows=tuple(rows)), Section("Model and data", rows=tuple(detail))]


def apply_caption(item: dict[str, Any]) -> list[str]:
    lines = []
    if item.get("class") is not None:
        lines.append(f"{item['class']} ({item.get('probability', 0.0):.0%})")
    if item.get("label") is not None:
        lines.append(f"label {item['label']}")
    return lines


class ApplySummary:
    """Accuracy over the items whose input says their class (a digit task, an ImageFolder folder)."""

    def __init__(self, _spec: Any) -> None:
        self.labelled = 0
        self.right = 0
        self.items = 0

    def add(self, item: dict[str, Any]) -> None:
        if item.get("status", "ok") != "ok" or item.get("class") is None:
            return
        self.items += 1
        if item.get("label") is not None:
            self.labelled += 1
            self.right += int(str(item["label"]) == str(item["class"]))

    def finish(self, _files: Any) -> dict[str, Any]:
        accuracy = self.right / self.labelled if self.labelled else None
        return {"classified": self.items, "labelled": self.labelled, "accuracy": accuracy}


def apply_sections(summary: dict[str, Any]) -> list[Section]:
    if not summary.get("labelled"):
        return []
    rows = (
        ("images whose class the input names", str(summary["labelled"])),
        ("accuracy", f"{summary['accuracy']:.2%}"),
    )
    return [Section("Against the input's classes", rows=rows)]
