"""The spelling of a built-in generated input: ``builtin:NAME[?n=N&seed=S&size=P&distractors=D]`` (every parameter
optional, in any order). ``size`` is the side of the generated images in pixels; a model should be shown
images drawn as it was trained on (a captioner trained on 64-px scenes sees thin strokes and anti-aliased
edges at that scale), so jobs that apply a model to generated scenes name it or get the model's."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import InvalidInput

BUILTIN_SHAPES_SEED = 12345  # held out: training uses the job's seed and seed + 1000003
DEFAULT_SIZES = {"shapes": 64, "captioned_shapes": 128}
SIZES = (32, 512)  # the sizes a generated image may have, inclusive


@dataclass
class BuiltinSource:
    """Generated images with ground truth (label and box per image, or captions and boxes)."""

    name: str
    count: int
    seed: int
    size: int | None = None  # None: the set's default (DEFAULT_SIZES; the digit tasks' own)
    distractors: int | None = None  # builtin:mnist_cluttered: None is the task's default

    @property
    def side(self) -> int:
        return self.size if self.size is not None else DEFAULT_SIZES.get(self.name, 64)


def parse_builtin(uri: str) -> BuiltinSource:
    name, _, query = uri.removeprefix("builtin:").partition("?")
    params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    size = int(params["size"]) if "size" in params else None
    if size is not None and not SIZES[0] <= size <= SIZES[1]:
        raise InvalidInput(f"builtin:{name} size={size}: the side must be {SIZES[0]}-{SIZES[1]} pixels")
    distractors = int(params["distractors"]) if "distractors" in params else None
    count, seed = int(params.get("n", 200)), int(params.get("seed", BUILTIN_SHAPES_SEED))
    return BuiltinSource(name, count, seed, size, distractors)
