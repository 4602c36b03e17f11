"""Job-level quality figures from the per-item ones, and their section of the report."""

from __future__ import annotations

import base64
import html
from typing import Any

from worker.render.plots import finish_png, new_figure


def summarise_quality(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    rated = [item["quality"] for item in items if item.get("status") == "ok" and item.get("quality")]
    if not rated:
        return None
    count = len(rated)
    out: dict[str, Any] = {
        "items": count,
        "pointing_game": round(sum(q["pointing_hit"] for q in rated) / count, 4),
        "pointing_baseline": round(sum(q["box_fraction"] for q in rated) / count, 4),
    }
    curves = [q for q in rated if "deletion_curve" in q]
    if curves:
        out["accuracy"] = round(sum(q["correct"] for q in curves) / len(curves), 4)
        out["deletion_auc"] = round(sum(q["deletion_auc"] for q in curves) / len(curves), 4)
        out["random_deletion_auc"] = round(sum(q["random_deletion_auc"] for q in curves) / len(curves), 4)
        steps = len(curves[0]["deletion_curve"])
        out["mean_deletion_curve"] = [
            round(sum(q["deletion_curve"][i] for q in curves) / len(curves), 4) for i in range(steps)
        ]
        out["mean_random_curve"] = [
            round(sum(q["random_deletion_curve"][i] for q in curves) / len(curves), 4) for i in range(steps)
        ]
    return out


def summarise_quality_by_method(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
    """For a comparison of methods: the job-level figures of each method over the same images."""
    methods: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        for method, data in (item.get("methods") or {}).items():
            methods.setdefault(method, []).append({"status": item["status"], "quality": data.get("quality")})
    figures = {method: summarise_quality(rated) for method, rated in methods.items()}
    kept = {method: value for method, value in figures.items() if value is not None}
    return kept or None


def comparison_section(by_method: dict[str, dict[str, Any]] | None) -> str:
    if not by_method:
        return ""
    rows = []
    for method, figures in by_method.items():
        auc = f"{figures['deletion_auc']:.3f}" if "deletion_auc" in figures else "—"
        random = f"{figures['random_deletion_auc']:.3f}" if "random_deletion_auc" in figures else "—"
        rows.append(
            f"<tr><td>{html.escape(method)}</td><td>{figures['pointing_game']:.1%}</td>"
            f"<td>{figures['pointing_baseline']:.1%}</td><td>{auc}</td><td>{random}</td></tr>"
        )
    head = (
        "<tr><th>method</th><th>pointing game</th><th>by chance</th><th>deletion AUC (lower is better)</th>"
        "<th>random order</th></tr>"
    )
    return f"<h2>Methods compared on the same images</h2><table>{head}{''.join(rows)}</table>"


def quality_section(figures: dict[str, Any] | None) -> str:
    if not figures:
        return ""
    rows = [
        ("images with ground truth", f"{figures['items']}"),
        ("pointing game (map maximum inside the box)", f"{figures['pointing_game']:.1%}"),
        ("… by chance (mean box area)", f"{figures['pointing_baseline']:.1%}"),
    ]
    plot = ""
    if "deletion_auc" in figures:
        rows += [
            ("classifier accuracy on these images", f"{figures['accuracy']:.1%}"),
            ("deletion AUC, most salient first (lower is better)", f"{figures['deletion_auc']:.3f}"),
            ("deletion AUC, random order", f"{figures['random_deletion_auc']:.3f}"),
        ]
        plot = f'<img alt="deletion curves" src="data:image/png;base64,{_plot(figures)}">'
    table = "".join(f"<tr><td>{html.escape(a)}</td><td><b>{b}</b></td></tr>" for a, b in rows)
    return f"<h2>Quality</h2><table>{table}</table>{plot}"


def _plot(figures: dict[str, Any]) -> str:
    by_map, random = figures["mean_deletion_curve"], figures["mean_random_curve"]
    fractions = [i / (len(by_map) - 1) for i in range(len(by_map))]
    figure, axes = new_figure(1, (4.5, 3))
    axes[0].plot(fractions, by_map, label="most salient first")
    axes[0].plot(fractions, random, label="random order", linestyle="--")
    axes[0].set(
        xlabel="fraction of pixels deleted", ylabel="probability of the class", ylim=(0, 1.02), title="deletion"
    )
    return base64.b64encode(finish_png(figure, axes)).decode()
