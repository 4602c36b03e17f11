"""The Recurrent Attention Model's paper rows (Mnih et al. 2014), trained by the ``glimpse_train`` kind's own
pipeline on the real MNIST tasks, each under a time cap: the test error printed beside the paper's.

Each row runs the training contract as the engine does (load the data, build, train in bounded steps,
evaluate with the spec's Monte-Carlo samples, write the outputs), but stops at ``--minutes`` of training
even when the epochs are not all done, so a slow machine still gets a figure (the epochs reached are
printed with it). Progress goes to stderr after every step; the job's files (curves, trajectories,
metrics, the model) land in ``--out/ROW/``. One JSON line per row on stdout.

Rows (settings of the widely used PyTorch version: Adam 3e-4, batch 128, std 0.05, 10 samples at test):

    mnist28             28x28 MNIST, 6 glimpses of 8x8, 1 scale           paper 1.12%   goal <= 1.3%
    translated60        60x60 translated, 6 glimpses of 12x12, 3 scales    paper 1.22%   goal <= 1.5%
    cluttered60         60x60 cluttered (4), 8 glimpses, 12x12, 3 scales   paper 4.04%   goal <= 5%
    cluttered60-random  the same, glimpsing at random places               paper 14.4%   (shows it learns to look)
    cluttered100        100x100 cluttered (8), 8 glimpses, 12x12, 4 scales paper 10.83%

    FOVEA_ASSETS_DIR=../shared/data nice -n 10 .venv/bin/python bench/glimpse_paper_table.py mnist28 --minutes 40
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.kinds import parse_spec  # noqa: E402
from worker.kinds import training_plugin  # noqa: E402
from worker.pipelines.training_base import InputLimits  # noqa: E402

T = TypeVar("T")

ROWS: dict[str, dict[str, Any]] = {
    "mnist28": {"input": "builtin:mnist", "glimpses": 6, "patch_size": 8, "scales": 1},
    "translated60": {"input": "builtin:mnist_translated", "glimpses": 6, "patch_size": 12, "scales": 3},
    "cluttered60": {"input": "builtin:mnist_cluttered", "glimpses": 8, "patch_size": 12, "scales": 3},
    "cluttered60-random": {
        "input": "builtin:mnist_cluttered",
        "glimpses": 8,
        "patch_size": 12,
        "scales": 3,
        "random_locations": True,
    },
    "cluttered100": {
        "input": "builtin:mnist_cluttered",
        "canvas_size": 100,
        "distractors": 8,
        "glimpses": 8,
        "patch_size": 12,
        "scales": 4,
    },
}
GOALS = {"mnist28": 1.3, "translated60": 1.5, "cluttered60": 5.0}


class FolderContext:
    """The training context over a local folder: the assets from ``FOVEA_ASSETS_DIR``, files written there."""

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    limits = InputLimits(max_item_bytes=50_000_000, max_image_pixels=50_000_000)

    def __init__(self, out: Path) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.assets = Path(os.environ.get("FOVEA_ASSETS_DIR", "../shared/data"))
        self.cache: dict[str, Any] = {}

    def members(self, uri: str) -> Any:
        raise ValueError("the paper rows use built-in tasks only")

    def asset(self, relative: str) -> Path:
        return self.assets / relative

    def scratch(self, name: str) -> Path:
        folder = self.out.parent / "scratch" / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def weights(self, reference: str, arch: str) -> dict[str, torch.Tensor]:
        raise ValueError("no starting weights")

    def cached(self, key: str, build: Callable[[], T]) -> T:
        if key not in self.cache:
            self.cache[key] = build()
        return self.cache[key]  # type: ignore[no-any-return]

    def write_file(self, name: str, data: bytes, content_type: str) -> str:
        (self.out / name).write_bytes(data)
        return name

    def save_model(self, tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> None:
        import safetensors.torch

        safetensors.torch.save_file(tensors, str(self.out / "model.safetensors"))
        (self.out / "config.json").write_text(json.dumps(config, indent=1))


def machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    return f"{cpu or platform.processor()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def run(name: str, minutes: float, out: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    spec = parse_spec({"kind": "glimpse_train", **ROWS[name], **overrides})
    ctx = FolderContext(out / name)
    pipeline = training_plugin("glimpse_train").pipeline(spec, ctx)
    pipeline.load_data()
    pipeline.build(resuming=False)
    started = time.perf_counter()
    deadline = started + minutes * 60.0
    while not pipeline.done and time.perf_counter() < deadline:
        pipeline.train_for(min(300.0, deadline - time.perf_counter()), lambda: False)
        latest = pipeline.history[-1] if pipeline.history else {}
        minutes_so_far = (time.perf_counter() - started) / 60
        print(f"{name}: {minutes_so_far:.1f} min, epoch {pipeline.progress[0]}: {latest}", file=sys.stderr, flush=True)
    trained = time.perf_counter() - started
    figures = pipeline.evaluate()
    pipeline.write_outputs(figures)
    paper = figures.get("paper") or {}
    error = figures["test_error_percent"]
    goal = GOALS.get(name)
    return {
        "row": name,
        "test_error_percent": error,
        "paper_error_percent": paper.get("test_error_percent"),
        "goal_percent": goal,
        "goal_met": None if goal is None else error <= goal,
        "epochs": figures["epochs"],
        "epochs_asked": spec.epochs,  # type: ignore[attr-defined]
        "finished": pipeline.done,
        "best_epoch": figures["best_epoch"],
        "best_validation_accuracy": figures["best_validation_accuracy"],
        "glimpses_on_digit": figures.get("glimpses_on_digit"),
        "samples": figures["samples"],
        "training_minutes": round(trained / 60, 1),
        "settings": figures["settings"],
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="+", choices=sorted(ROWS))
    parser.add_argument("--minutes", type=float, default=60.0, help="training time cap per row")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "fovea-glimpse-runs")
    parser.add_argument("--set", action="append", default=[], help="override a spec field: NAME=JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    for name in args.rows:
        print(json.dumps(run(name, args.minutes, args.out, overrides)), flush=True)


if __name__ == "__main__":
    main()
