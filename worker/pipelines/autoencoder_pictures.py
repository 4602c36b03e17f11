"""The pictures of the autoencoder kinds: loss curves, rows of images (test images over their
reconstructions; noisy, denoised, clean), the 2-D map of codes coloured by label, the principal angles
of a linear AE, and a sheet of the most anomalous images beside their reconstructions."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
import torch

from worker.pictures import images as pictures
from worker.pictures.plots import finish_png, new_figure

_MAX_LEGEND = 20


def to_pixels(images: torch.Tensor | np.ndarray) -> list[np.ndarray]:
    """(N, C, S, S) in [0, 1] (or uint8) -> N RGB uint8 (S, S, 3) tiles."""
    array = images.detach().float().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if array.shape[1] == 1:
        array = np.repeat(array, 3, axis=1)
    return [np.ascontiguousarray(tile.transpose(1, 2, 0)) for tile in array]


def _enlarged(tile: np.ndarray, side: int) -> np.ndarray:
    factor = max(1, side // max(tile.shape[:2]))
    return np.kron(tile, np.ones((factor, factor, 1), dtype=np.uint8)) if factor > 1 else tile


def image_rows_png(rows: Sequence[tuple[str, torch.Tensor | np.ndarray]], side: int = 84) -> bytes:
    """Rows of images, each row under its caption (pixels enlarged, not smoothed, so a 28 px digit stays
    sharp)."""
    strips = []
    columns = max(len(images) for _, images in rows)
    for label, images in rows:
        tiles = [_enlarged(t, side) for t in to_pixels(images)]
        tiles += [np.full_like(tiles[0], 255)] * (columns - len(tiles))
        row = pictures.grid(tiles, columns=columns, gap=4)
        strips.append(pictures.caption(row, label) if label else row)
    width = max(strip.shape[1] for strip in strips)
    padded = [np.pad(s, ((0, 8), (0, width - s.shape[1]), (0, 0)), constant_values=255) for s in strips]
    return pictures.encode_png(np.concatenate(padded)[:-8])


def curves_png(history: list[dict[str, float]], loss_name: str) -> bytes:
    epochs = [h["epoch"] for h in history]
    attributes = "test_attribute_loss" in (history[0] if history else {})
    figure, axes = new_figure(2 if attributes else 1, (9 if attributes else 5.5, 3.6))
    axes[0].plot(epochs, [h["train_loss"] for h in history], label="train")
    axes[0].plot(epochs, [h["test_loss"] for h in history], label="test")
    axes[0].set(xlabel="epoch", ylabel=loss_name, title="reconstruction loss")
    if attributes:
        axes[1].plot(epochs, [h["train_attribute_loss"] for h in history], label="train")
        axes[1].plot(epochs, [h["test_attribute_loss"] for h in history], label="test")
        axes[1].set(xlabel="epoch", title="attribute loss")
    return finish_png(figure, axes)


def code_map_png(points: np.ndarray, labels: np.ndarray | None, classes: Sequence[str] | None, title: str) -> bytes:
    """A scatter of 2-D code points, one colour per class when there are labels (the course's '784
    dimensions to 2' figure for MNIST)."""
    figure, axes = new_figure(1, (6.4, 5.6))
    axis = axes[0]
    size = 4 if len(points) > 2000 else 10
    if labels is None or classes is None:
        axis.scatter(points[:, 0], points[:, 1], s=size, alpha=0.6, linewidths=0, label="images")
    else:
        colours = "tab10" if len(classes) <= 10 else "tab20"
        palette = matplotlib.colormaps[colours]
        for index, name in enumerate(classes):
            chosen = labels == index
            if chosen.any():
                shown = name if index < _MAX_LEGEND else None
                axis.scatter(
                    points[chosen, 0],
                    points[chosen, 1],
                    s=size,
                    alpha=0.7,
                    linewidths=0,
                    color=palette(index % 20),
                    label=shown,
                )
        unlabelled = labels < 0
        if unlabelled.any():
            axis.scatter(
                points[unlabelled, 0],
                points[unlabelled, 1],
                s=size,
                alpha=0.5,
                linewidths=0,
                color="0.6",
                label="no class",
            )
    axis.set(title=title, xlabel="map x", ylabel="map y")
    return finish_png(figure, axes)


def angles_png(angles_deg: Sequence[float]) -> bytes:
    figure, axes = new_figure(1, (6.4, 3.4))
    ranks = np.arange(1, len(angles_deg) + 1)
    axes[0].bar(ranks, sorted(angles_deg), label="principal angle")
    axes[0].axhline(1.0, color="tab:red", linewidth=1, label="1°")
    axes[0].set(
        xlabel="angle (smallest first)", ylabel="degrees", title=f"decoder vs the top-{len(angles_deg)} SVD subspace"
    )
    return finish_png(figure, axes)


def anomaly_sheet(entries: Sequence[tuple[list[np.ndarray], str]], side: int = 96, columns: int = 4) -> np.ndarray:
    """(pictures, caption) per image: the image, (the noisy input,) its reconstruction side by side,
    captioned, highest error first."""
    cells = []
    for tiles, text in entries:
        pair = pictures.grid([_enlarged(tile, side) for tile in tiles], columns=len(tiles), gap=2)
        cells.append(pictures.caption(pair, text))
    return pictures.grid(cells, columns=min(columns, len(cells)), gap=10)
