"""Matplotlib figures as PNG bytes, headless (the Agg backend), for reports."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def new_figure(columns: int, size: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    figure, axes = plt.subplots(1, columns, figsize=size, dpi=100, squeeze=False)
    return figure, list(axes[0])


def finish_png(figure: Figure, axes: list[Axes]) -> bytes:
    """Grid and legend on every axis, tight layout, PNG bytes; the figure is closed."""
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
