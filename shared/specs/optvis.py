"""Specs of the job kinds that optimise images through a fixed network: feature visualisation, inversion,
first-layer filters with activation maps, and DeepDream. Unset settings take their preset's value; the
descriptions state the presets, so the API docs say what a job will do."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from shared.models import ModelRef
from shared.specs.base import ArchiveSpec, TargetsSpec, Unit
from shared.strict import RequestModel

Precision = Literal["fp32", "bf16", "fp16"]
_LAYER = Field(..., min_length=1, max_length=200, examples=["mixed4c"])


def _default_model() -> ModelRef:
    return ModelRef(preset="inception5h")


_MODEL_DESCRIPTION = "The network (default: the inception5h preset, GoogLeNet of the original DeepDream)"


class ClassTarget(RequestModel):
    """A class: its pre-softmax logit is maximised."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    class_index: int = Field(..., ge=0, alias="class", description="Class index in the model's output order")


class FeatureVisualizationSpec(TargetsSpec):
    """Render the image that most activates each target (Simonyan et al. 2014; Olah et al. 2017).

    Presets: ``robust`` (Lucid/Lucent: FFT parameterisation with decorrelated colour, Adam lr 0.05, 512
    steps, 128 px upsampled to 224, transforms pad 12 / jitter 8 / scale 0.9-1.1 / rotate +-10 / jitter 4);
    ``paper`` (Simonyan's class model as CS231n runs it: the zero image, pixels, plain gradient ascent
    with each step of L2 length 6 in 0..1 pixel units, L2 prior 1e-3 on the model input, jitter 16,
    blur every 10 steps, 100 steps, at the model's input size). All targets are optimised in batches.
    """

    kind: Literal["feature_visualization"]
    model: ModelRef = Field(default_factory=_default_model, description=_MODEL_DESCRIPTION)
    targets: list[ClassTarget | Unit] = Field(
        ...,
        min_length=1,
        max_length=256,
        examples=[[{"class": 425}, {"layer": "mixed4a", "channel": [97, 143]}]],
        description="Classes {'class': i} and/or channels {'layer', 'channel', 'position'}; one image per target",
    )
    preset: Literal["robust", "paper"] = "robust"
    parameterization: Literal["fft", "pixels"] | None = Field(None, description="robust: fft; paper: pixels")
    steps: int | None = Field(None, ge=1, le=10_000, description="robust: 512; paper: 100")
    learning_rate: float | None = Field(None, gt=0.0, le=1000.0, description="robust: 0.05 (Adam); paper: 6")
    size: int | None = Field(None, ge=16, le=1024, description="Image side; robust: 128; paper: model input size")
    l2: float | None = Field(None, ge=0.0, le=100.0, description="Weight of ||model input||^2; paper: 1e-3")
    tv: float = Field(0.0, ge=0.0, le=1000.0, description="Weight of the total-variation prior (beta 2)")
    alpha: float = Field(0.0, ge=0.0, le=1000.0, description="Weight of the alpha-norm prior (alpha 6)")
    transforms: bool | None = Field(None, description="robust: Lucid's transforms; paper: jitter 16 only")
    batch_size: int = Field(32, ge=1, le=1024, description="Targets optimised together")
    seed: int = Field(0, ge=0)
    precision: Precision = Field("fp32", description="bf16/fp16 autocast of the forward pass (GPU)")

    def render_targets(self) -> list[tuple[str, dict[str, Any]]]:
        """One item per class and per channel: ``(name, params)``, in the order the targets are given."""
        out: list[tuple[str, dict[str, Any]]] = []
        for target in self.targets:
            if isinstance(target, ClassTarget):
                out.append((f"class-{target.class_index}", {"class": target.class_index}))
                continue
            for channel in target.channels:
                params: dict[str, Any] = {"layer": target.layer, "channel": channel}
                name = f"{target.layer}-{channel}"
                if target.position is not None:
                    params["position"] = list(target.position)
                    name += f"-at-{target.position[0]}-{target.position[1]}"
                out.append((name, params))
        return out

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: list[ClassTarget | Unit], info: ValidationInfo) -> list[ClassTarget | Unit]:
        count = sum(len(t.channels) if isinstance(t, Unit) else 1 for t in value)
        if count > 4096:
            raise ValueError(f"{count} images asked for; at most 4096 per job")
        model = info.data.get("model")
        known = isinstance(model, ModelRef) and model.job is None  # a trained job's classes are known when it loads
        for target in value:
            if known and isinstance(target, ClassTarget) and target.class_index >= model.num_classes:  # type: ignore[union-attr]
                raise ValueError(f"class {target.class_index} is not below the model's {model.num_classes} classes")  # type: ignore[union-attr]
        return value


class InversionSpec(ArchiveSpec):
    """Reconstruct each image from a layer's representation (Mahendran & Vedaldi 2015): minimise
    ||phi(x) - phi0||^2 / ||phi0||^2 + alpha-norm (alpha 6) + total variation (beta 2) from small noise."""

    kind: Literal["inversion"]
    model: ModelRef = Field(default_factory=_default_model, description=_MODEL_DESCRIPTION)
    layers: list[str] = Field(
        ...,
        min_length=1,
        max_length=12,
        examples=[["conv2d0", "conv2d2", "mixed3b", "mixed4c", "mixed5b"]],
        description="Layers to invert, shallow to deep (a strip per image in this order)",
    )
    steps: int = Field(200, ge=1, le=10_000)
    optimizer: Literal["adam", "momentum"] = Field("adam", description="momentum: SGD 0.9, the paper's")
    learning_rate: float = Field(0.05, gt=0.0, le=100.0)
    lr_drops: bool = Field(True, description="Divide the learning rate by 10 at 60% and again at 85% of the steps")
    alpha: float = Field(1e-4, ge=0.0, le=1000.0, description="Weight of the alpha-norm prior (alpha 6)")
    tv: float | None = Field(
        None,
        ge=0.0,
        le=10_000.0,
        description="Weight of the total-variation prior (beta 2); default by depth: 5 at the network's first "
        "module rising to 5000 at its last (the paper raises it 10x per group of layers)",
    )
    batch_size: int = Field(8, ge=1, le=256, description="Images inverted together")
    seed: int = Field(0, ge=0)
    precision: Precision = "fp32"


class FiltersSpec(ArchiveSpec):
    """The first layer's filters as an image grid, and for each image the activation maps of chosen
    layers with the most active channel highlighted and overlaid on the image."""

    kind: Literal["filters"]
    model: ModelRef = Field(default_factory=_default_model, description=_MODEL_DESCRIPTION)
    layers: list[str] = Field(..., min_length=1, max_length=8, examples=[["conv2d0", "mixed3a", "mixed4c"]])
    first_layer: str | None = Field(None, max_length=200, description="Default: the first convolution")
    channels_shown: int = Field(64, ge=1, le=1024, description="Channels per activation grid, most active first")
    batch_size: int = Field(16, ge=1, le=1024)


DREAM_PRESETS: dict[str, dict[str, object]] = {
    "keras": {
        "octaves": 3,
        "octave_scale": 1.4,
        "steps": 20,
        "step_size": 1.275,
        "max_loss": None,  # the recipe's 15 is in InceptionV3's units: applied for inception_v3 only
        "border": 2,
        "jitter": 0,
    },
    "notebook": {
        "octaves": 4,
        "octave_scale": 1.4,
        "steps": 10,
        "step_size": 1.5,
        "max_loss": None,
        "border": 0,
        "jitter": 32,
    },
}


class DeepDreamSpec(ArchiveSpec):
    """DeepDream over every image: ascend chosen layers' squared activations, octave by octave, with the
    detail lost by each downscale re-injected (the keras.io recipe).

    Presets: ``keras`` (3 octaves x 1.4, 20 steps of 0.01 in [-1, 1] input units = 1.275 pixel values,
    layer border 2, and on inception_v3 the recipe's loss ceiling 15) and ``notebook`` (the original GoogLeNet notebook: 4 octaves x 1.4,
    10 steps of 1.5 pixel values, random roll up to 32). Layers default to ``mixed4c`` for inception5h
    and to the keras recipe's Mixed_6b..6e (1, 1.5, 2, 2.5) for inception_v3. Images larger than
    ``tile_size`` are processed in tiles; same-size images dream in one batch.
    """

    kind: Literal["deepdream"]
    model: ModelRef = Field(default_factory=_default_model, description=_MODEL_DESCRIPTION)
    preset: Literal["keras", "notebook"] = "notebook"
    layers: dict[str, Annotated[float, Field(gt=-100.0, lt=100.0)]] | None = Field(
        None, examples=[{"mixed4c": 1.0}], description="Layer -> weight; default by model (see above)"
    )
    octaves: int | None = Field(None, ge=1, le=10)
    octave_scale: float | None = Field(None, gt=1.0, le=4.0)
    steps: int | None = Field(None, ge=1, le=1000, description="Steps per octave")
    step_size: float | None = Field(None, gt=0.0, le=255.0, description="Per step, in pixel values (0..255)")
    max_loss: float | None = Field(
        None, gt=0.0, description="Stop an image above this loss, in the model's units (keras on inception_v3: 15)"
    )
    border: int | None = Field(None, ge=0, le=16, description="Layer cells left out at each edge of the loss")
    jitter: int | None = Field(None, ge=0, le=1024, description="Random roll of up to this many pixels per step")
    reinject_detail: bool = True
    tile_size: int = Field(512, ge=0, le=8192, description="Gradients in tiles of at most this side; 0: never")
    max_side: int = Field(4096, ge=32, le=16384, description="Larger images are scaled down to this side first")
    batch_size: int = Field(8, ge=1, le=256, description="Same-size images dreamed together")
    seed: int = Field(0, ge=0)
    precision: Precision = "fp32"
    jpeg_quality: int = Field(95, ge=50, le=100)

    def setting(self, name: str) -> Any:
        """An explicit value, else the preset's."""
        value = getattr(self, name)
        return DREAM_PRESETS[self.preset][name] if value is None else value
