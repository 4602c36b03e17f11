"""The glimpse network's trajectory figure (Mnih et al. 2014, fig. 3): the image with each glimpse's
patches drawn as nested boxes in that glimpse's own colour, numbered in order, beside what the retina
saw at each step (every patch enlarged back to its own width and nested, the sharp centre on top of the
coarse surround). Drawn without anti-aliasing, so every box keeps its glimpse's exact colour."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from worker.pictures.images import caption

_MARGIN_COLOUR = 235  # the area outside the image, where a patch reads zeros
_PATH_COLOUR = (150, 150, 150)


def glimpse_colours(count: int) -> list[tuple[int, int, int]]:
    """One saturated RGB colour per glimpse, hues spread evenly (never grey, so never an image's pixel)."""
    colours = []
    for i in range(count):
        r, g, b = colorsys.hsv_to_rgb((i / max(count, 1)) * 0.85, 1.0, 1.0 if i % 2 == 0 else 0.8)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return colours


def to_rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) floats in [0, 1] -> (H, W, 3) uint8."""
    array = image if image.ndim == 2 else (image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0))
    pixels = np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else np.ascontiguousarray(pixels)


def retina_view(patches: np.ndarray, widths: list[int]) -> np.ndarray:
    """(k, C, p, p) patches (innermost first) -> (W, W, 3) uint8: each enlarged to its width, nested."""
    side = widths[-1]
    view = np.zeros((side, side, 3), dtype=np.uint8)
    for patch, width in reversed(list(zip(patches, widths, strict=True))):
        big = cv2.resize(to_rgb(patch), (width, width), interpolation=cv2.INTER_NEAREST)
        at = (side - width) // 2
        view[at : at + width, at : at + width] = big
    return view


def trajectory_figure(
    image: np.ndarray,
    boxes: np.ndarray,
    patches: np.ndarray,
    widths: list[int],
    *,
    panel_size: int = 160,
    title: str = "",
) -> np.ndarray:
    """The figure as RGB uint8. ``image`` (C, S, S) in [0, 1]; ``boxes`` (T, k, 4) each glimpse's patch boxes
    [x0, y0, x1, y1] in image pixels; ``patches`` (T, k, C, p, p) what the retina saw."""
    steps = len(boxes)
    side = image.shape[-1]
    margin = widths[-1] // 2
    framed = np.full((side + 2 * margin, side + 2 * margin, 3), _MARGIN_COLOUR, dtype=np.uint8)
    framed[margin : margin + side, margin : margin + side] = to_rgb(image)
    factor = panel_size / framed.shape[0]
    panel = cv2.resize(framed, (panel_size, panel_size), interpolation=cv2.INTER_NEAREST)
    colours = glimpse_colours(steps)
    path = [
        (int(((b[0][0] + b[0][2]) / 2 + margin) * factor), int(((b[0][1] + b[0][3]) / 2 + margin) * factor))
        for b in boxes
    ]
    for a, b in zip(path, path[1:], strict=False):  # the path from glimpse to glimpse, under the boxes
        cv2.line(panel, a, b, _PATH_COLOUR, 1, cv2.LINE_8)
    for step, (glimpse_boxes, colour) in enumerate(zip(boxes, colours, strict=True)):
        for x0, y0, x1, y1 in glimpse_boxes:
            top_left = (int((x0 + margin) * factor), int((y0 + margin) * factor))
            bottom_right = (int((x1 + margin) * factor) - 1, int((y1 + margin) * factor) - 1)
            cv2.rectangle(panel, top_left, bottom_right, colour, 1, cv2.LINE_8)
        x0, y0, x1, y1 = glimpse_boxes[0]
        centre = (int(((x0 + x1) / 2 + margin) * factor) + 2, int(((y0 + y1) / 2 + margin) * factor) - 2)
        cv2.putText(panel, str(step + 1), centre, cv2.FONT_HERSHEY_PLAIN, 0.9, colour, 1, cv2.LINE_8)
    view_size = max(48, panel_size // 2)
    tiles = [caption(panel, title or f"{steps} glimpses")]
    for step in range(steps):
        view = cv2.resize(retina_view(patches[step], widths), (view_size, view_size), interpolation=cv2.INTER_NEAREST)
        cv2.rectangle(view, (0, 0), (view_size - 1, view_size - 1), colours[step], 2, cv2.LINE_8)
        tile = np.full((panel_size, view_size, 3), 255, dtype=np.uint8)
        tile[(panel_size - view_size) // 2 : (panel_size - view_size) // 2 + view_size] = view
        tiles.append(caption(tile, f"{step + 1}"))
    gap = np.full((tiles[0].shape[0], 6, 3), 255, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for tile in tiles:
        parts += [tile, gap]
    return np.concatenate(parts[:-1], axis=1)
