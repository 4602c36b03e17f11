"""Job-level quality figures of saliency jobs, summed item by item (bounded memory), and the report
sections that show them: the pointing game and deletion curves, per method when methods are compared,
and the job's mean map."""

from __future__ import annotations

from typing import Any

from worker.pictures.plots import finish_png, new_figure
from worker.pipelines.plugin import Figure, JobFiles, Section


class QualityTotals:
    """Running sums of the per-item quality figures of one method."""

    def __init__(self) -> None:
        self.count = 0
        self.sums = {"pointing_hit": 0.0, "box_fraction": 0.0}
        self.rated = 0  # items with deletion curves (model-based methods)
        self.curve_sums = {"correct": 0.0, "deletion_auc": 0.0, "random_deletion_auc": 0.0}
        self.curve: list[float] = []
        self.random: list[float] = []

    def add(self, quality: dict[str, Any]) -> None:
        self.count += 1
        for name in self.sums:
            self.sums[name] += float(quality[name])
        if "deletion_curve" not in quality:
            return
        self.rated += 1
        for name in self.curve_sums:
            self.curve_sums[name] += float(quality[name])
        if not self.curve:
            self.curve, self.random = [0.0] * len(quality["deletion_curve"]), [0.0] * len(quality["deletion_curve"])
        for i, (a, b) in enumerate(zip(quality["deletion_curve"], quality["random_deletion_curve"], strict=True)):
            self.curve[i] += a
            self.random[i] += b

    def result(self) -> dict[str, Any] | None:
        if not self.count:
            return None
        out: dict[str, Any] = {
            "items": self.count,
            "pointing_game": round(self.sums["pointing_hit"] / self.count, 4),
            "pointing_baseline": round(self.sums["box_fraction"] / self.count, 4),
        }
        if self.rated:
            out["accuracy"] = round(self.curve_sums["correct"] / self.rated, 4)
            out["deletion_auc"] = round(self.curve_sums["deletion_auc"] / self.rated, 4)
            out["random_deletion_auc"] = round(self.curve_sums["random_deletion_auc"] / self.rated, 4)
            out["mean_deletion_curve"] = [round(v / self.rated, 4) for v in self.curve]
            out["mean_random_curve"] = [round(v / self.rated, 4) for v in self.random]
        return out


class SaliencySummary:
    """The ``quality`` of a job (ground-truth inputs) and, for a comparison, ``quality_by_method``."""

    def __init__(self, _spec: object = None) -> None:
        self.overall = QualityTotals()
        self.by_method: dict[str, QualityTotals] = {}

    def add(self, item: dict[str, Any]) -> None:
        if item.get("status") != "ok":
            return
        if item.get("quality"):
            self.overall.add(item["quality"])
        for method, data in (item.get("methods") or {}).items():
            if data.get("quality"):
                self.by_method.setdefault(method, QualityTotals()).add(data["quality"])

    def finish(self, _files: JobFiles) -> dict[str, Any]:
        by_method = {m: r for m, totals in self.by_method.items() if (r := totals.result()) is not None}
        return {"quality": self.overall.result(), "quality_by_method": by_method or None}


def _curves_png(figures: dict[str, Any]) -> bytes:
    by_map, random = figures["mean_deletion_curve"], figures["mean_random_curve"]
    fractions = [i / (len(by_map) - 1) for i in range(len(by_map))]
    figure, axes = new_figure(1, (4.5, 3))
    axes[0].plot(fractions, by_map, label="most salient first")
    axes[0].plot(fractions, random, label="random order", linestyle="--")
    axes[0].set(
        xlabel="fraction of pixels deleted", ylabel="probability of the class", ylim=(0, 1.02), title="deletion"
    )
    return finish_png(figure, axes)


def quality_section(figures: dict[str, Any]) -> Section:
    rows = [
        ("images with ground truth", f"{figures['items']}"),
        ("pointing game (map maximum inside the box)", f"{figures['pointing_game']:.1%}"),
        ("… by chance (mean box area)", f"{figures['pointing_baseline']:.1%}"),
    ]
    plots: tuple[Figure, ...] = ()
    if "deletion_auc" in figures:
        rows += [
            ("classifier accuracy on these images", f"{figures['accuracy']:.1%}"),
            ("deletion AUC, most salient first (lower is better)", f"{figures['deletion_auc']:.3f}"),
            ("deletion AUC, random order", f"{figures['random_deletion_auc']:.3f}"),
        ]
        plots = (Figure(alt="deletion curves", png=_curves_png(figures)),)
    return Section("Quality", rows=tuple(rows), figures=plots)


def comparison_section(by_method: dict[str, dict[str, Any]]) -> Section:
    head = ("method", "pointing game", "by chance", "deletion AUC (lower is better)", "random order")
    rows = [
        (
            method,
            f"{figures['pointing_game']:.1%}",
            f"{figures['pointing_baseline']:.1%}",
            f"{figures['deletion_auc']:.3f}" if "deletion_auc" in figures else "—",
            f"{figures['random_deletion_auc']:.3f}" if "random_deletion_auc" in figures else "—",
        )
        for method, figures in by_method.items()
    ]
    return Section("Methods compared on the same images", table=(head, *rows))


def aggregate_section(aggregate: dict[str, str]) -> Section:
    return Section(
        "Where the model looks, over the whole input",
        text=f"Mean map per pixel over {aggregate['items']} images (at the model's input size; for the gradient, "
        "the mean |d score / d pixel|: the pixels with the largest aggregate sensitivity).",
        figures=(Figure(alt="mean map", key=aggregate["mean_map_png"], width=256),),
    )


def saliency_sections(summary: dict[str, Any]) -> list[Section]:
    out = []
    if summary.get("quality"):
        out.append(quality_section(summary["quality"]))
    if summary.get("quality_by_method"):
        out.append(comparison_section(summary["quality_by_method"]))
    if summary.get("aggregate"):
        out.append(aggregate_section(summary["aggregate"]))
    return out
