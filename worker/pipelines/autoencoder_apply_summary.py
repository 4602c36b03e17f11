"""The whole archive through an autoencoder, seen at once: the 2-D map of every image (coloured by label
where the input has labels) and the images with the highest reconstruction error beside their
reconstructions (the anomaly ranking). A job summary: fed one manifest entry at a time, it holds at
most ``MAX_POINTS`` map points (every image while they fit, then every 2nd, 4th, ... in index order)
and the top ``anomalies`` entries, whatever the archive's size."""

from __future__ import annotations

import heapq
import io
import math
from typing import Any

import numpy as np
from PIL import Image

from worker.pipelines.autoencoder_pictures import anomaly_sheet, code_map_png
from worker.pipelines.plugin import JobFiles, Section

MAX_POINTS = 50_000
MAX_LABELS = 20  # colours on the map; further labels are drawn as "other"
MAP_PICTURE = "code_map.png"
ANOMALIES_PICTURE = "most_anomalous.png"


class ApplySummary:
    def __init__(self, spec: Any) -> None:
        self.top = int(getattr(spec, "anomalies", 24))
        self._heap: list[tuple[float, int, str, dict[str, str]]] = []  # (error, -index, name, outputs)
        self._points: list[tuple[int, float, float, str | None]] = []  # (rank among ok items, x, y, label)
        self._stride = 1
        self._seen = 0
        self._count, self._sum, self._squares = 0, 0.0, 0.0
        self._min, self._max = math.inf, -math.inf

    def add(self, item: dict[str, Any]) -> None:
        error = item.get("reconstruction_error")
        if item.get("status") != "ok" or error is None:
            return
        error = float(error)
        self._count, self._sum, self._squares = self._count + 1, self._sum + error, self._squares + error * error
        self._min, self._max = min(self._min, error), max(self._max, error)
        entry = (error, -int(item["index"]), str(item["name"]), dict(item.get("outputs") or {}))
        if len(self._heap) < self.top:
            heapq.heappush(self._heap, entry)
        elif self.top and entry[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, entry)
        if self._seen % self._stride == 0 and item.get("map_2d") is not None:
            x, y = item["map_2d"]
            self._points.append((self._seen, float(x), float(y), item.get("label")))
            if len(self._points) > MAX_POINTS:
                self._stride *= 2
                self._points = [p for p in self._points if p[0] % self._stride == 0]
        self._seen += 1

    def ranked(self) -> list[tuple[float, int, str, dict[str, str]]]:
        """The highest errors first (ties: the lower index first)."""
        return sorted(self._heap, key=lambda e: (-e[0], -e[1]))

    def finish(self, files: JobFiles) -> dict[str, Any]:
        if not self._count:
            return {}
        mean = self._sum / self._count
        spread = math.sqrt(max(self._squares / self._count - mean * mean, 0.0))
        ranked = self.ranked()
        out: dict[str, Any] = {
            "reconstruction_error": {
                "items": self._count,
                "mean": round(mean, 6),
                "std": round(spread, 6),
                "min": round(self._min, 6),
                "max": round(self._max, 6),
            },
            "most_anomalous": [
                {"index": -neg, "name": name, "reconstruction_error": round(e, 6)} for e, neg, name, _ in ranked
            ],
            "map_points": len(self._points),
            "map_every": self._stride,
        }
        self._draw_map(files)
        entries = []
        for error, _neg, name, outputs in ranked:
            shown = [outputs[n] for n in ("input", "noisy", "denoised", "reconstruction") if n in outputs]
            if shown:
                entries.append(([_read(files, key) for key in shown], f"{error:.4f} {name[-18:]}"))
        if entries:
            buffer = io.BytesIO()
            columns = {1: 8, 2: 4}.get(len(entries[0][0]), 3)
            Image.fromarray(anomaly_sheet(entries, columns=columns)).save(buffer, format="PNG")
            files.write_job(ANOMALIES_PICTURE, buffer.getvalue(), "image/png")
        return out

    def _draw_map(self, files: JobFiles) -> None:
        points = np.array([(x, y) for _, x, y, _ in self._points], dtype=np.float32).reshape(-1, 2)
        names = [label for *_, label in self._points]
        labels, classes = None, None
        if any(name is not None for name in names):
            counts: dict[str, int] = {}
            for name in names:
                if name is not None:
                    counts[name] = counts.get(name, 0) + 1
            classes = sorted(counts, key=lambda n: (-counts[n], n))[:MAX_LABELS]
            classes.sort()
            index = {name: i for i, name in enumerate(classes)}
            if len(counts) > MAX_LABELS:
                classes.append("other")
            labels = np.array([index.get(n, len(classes) - 1) if n is not None else -1 for n in names], dtype=np.int64)
        every = "" if self._stride == 1 else f" (every {self._stride}th)"
        title = f"{len(points)} images{every} on the model's 2-D map"
        files.write_job(MAP_PICTURE, code_map_png(points, labels, classes, title), "image/png")


def _read(files: JobFiles, key: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(files.read(key))).convert("RGB"))


def apply_sections(summary: dict[str, Any]) -> list[Section]:
    errors = summary.get("reconstruction_error")
    if not errors:
        return []
    rows = (
        ("images", str(errors["items"])),
        ("mean ± std", f"{errors['mean']:.4f} ± {errors['std']:.4f}"),
        ("lowest / highest", f"{errors['min']:.4f} / {errors['max']:.4f}"),
        (
            "on the map",
            f"{summary.get('map_points', 0)}"
            + (f" (every {summary['map_every']}th image)" if summary.get("map_every", 1) > 1 else ""),
        ),
    )
    table = (
        ("rank", "image", "reconstruction error"),
        *(
            (str(rank + 1), e["name"], f"{e['reconstruction_error']:.4f}")
            for rank, e in enumerate(summary.get("most_anomalous", []))
        ),
    )
    text = (
        "Per image, the model's own loss between the image and its reconstruction (mean over pixels); the "
        "highest first: the images the model finds least like its training data. arrays/code.npy holds every "
        "image's code (row i is item i), arrays/map_2d.npy its map position."
    )
    return [
        Section("Reconstruction error", rows=rows),
        Section("Most anomalous", text=text, table=table if len(table) > 1 else ()),
    ]
