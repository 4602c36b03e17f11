"""The ``saliency`` job spec: gradient maps for classes and hidden units, the Captum family, and
classical spectral residual. Pydantic validates it at the API, so a bad spec is a 422."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from shared.models import ModelRef
from shared.specs.base import ArchiveSpec, Unit
from shared.strict import RequestModel

SaliencyMethod = Literal["gradient", "smoothgrad", "integrated_gradients", "grad_cam", "spectral_residual"]

MAX_UNIT_CHANNELS = 64
"""Hidden-unit saliency: channels per job (each gives a map per image and a tile of the unit grid)."""


class TopClasses(RequestModel):
    """Explain each of the k most probable classes (one map per class and image)."""

    model_config = ConfigDict(extra="forbid")

    top_k: int = Field(..., ge=1, le=10)


class SaliencySpec(ArchiveSpec):
    """Saliency maps for every image of an archive.

    ``spectral_residual`` (Hou & Zhang 2007, OpenCV contrib) needs no model. ``gradient``
    (Simonyan et al. 2014) is max over RGB of |d score / d pixel| for the unnormalised class score of
    the winning class (``target: "predicted"``) or of a given class index.
    """

    kind: Literal["saliency"]
    method: SaliencyMethod = "gradient"
    methods: list[SaliencyMethod] | None = Field(
        None,
        min_length=2,
        max_length=5,
        description="Compare several methods on the same images (instead of 'method'): one set of outputs per "
        "method, suffixed ':METHOD', side by side in the report with quality figures per method",
    )
    implementation: Literal["torch", "opencv"] = Field(
        "torch", description="spectral_residual: batched PyTorch on the worker's device, or OpenCV contrib on the CPU"
    )
    object_threshold: float = Field(
        3.0, gt=0.0, le=100.0, description="spectral_residual: objects are where S(x) > this times the mean saliency"
    )
    min_box_area: float = Field(
        0.001, ge=0.0, le=1.0, description="spectral_residual: smallest box, as a fraction of the image"
    )
    binary_map: bool = Field(False, description="spectral_residual: also write OpenCV's k-means + Otsu binary map")
    model: ModelRef | None = Field(None, description="Required for every method but spectral_residual")
    smoothgrad_samples: int = Field(25, ge=1, le=500, description="smoothgrad: noisy copies per image")
    smoothgrad_noise: float = Field(
        0.15, gt=0.0, le=1.0, description="smoothgrad: noise std as a fraction of each image's own input range"
    )
    seed: int = Field(0, ge=0, description="smoothgrad: seeds each image's noise (with the image's place in the input)")
    ig_steps: int = Field(32, ge=2, le=1024, description="integrated_gradients: integration steps")
    ig_baseline: Literal["black", "zero", "blur"] = Field(
        "black", description="integrated_gradients: the baseline image"
    )
    grad_cam_layer: str | None = Field(
        None, max_length=200, description="grad_cam: dotted module name (default: the last feature block)"
    )
    internal_batch_size: int = Field(
        64,
        ge=1,
        le=4096,
        description="Forward/backward passes per chunk (smoothgrad, integrated_gradients); halves on OOM",
    )
    target: Literal["predicted"] | int | TopClasses | Unit = Field(
        "predicted",
        description="'predicted', a class index, {'top_k': k}, or a hidden unit {'layer', 'channel', 'position'}",
    )
    precision: Literal["fp32", "fp16", "bf16"] = Field(
        "fp32",
        description="gradient: the fast path autocasts to fp16 (maps agree with fp32 at Pearson r >= 0.99) or bf16 "
        "(r about 0.97), keeping the first convolution in fp32",
    )
    deletion_steps: int = Field(
        10, ge=2, le=100, description="Inputs with ground truth: points on the deletion curve (quality figures)"
    )
    deletion_fill: Literal["blur", "black"] = Field(
        "blur",
        description="Deleted pixels take the blurred image's value, or black (a black fill leaves the object's "
        "silhouette, which a shape classifier still recognises)",
    )
    signed: bool = Field(False, description="gradient: also write the signed map (red: brightening raises the score)")
    top_k: int = Field(5, ge=1, le=50, description="Predictions listed per item (gradient)")
    colormap: Literal["inferno", "jet", "viridis", "turbo", "gray"] = "inferno"
    overlay_alpha: float = Field(0.7, ge=0.0, le=1.0, description="Heat opacity where the map is at its top")
    clip_percentile: float = Field(
        99.5, ge=50.0, le=100.0, description="Pictures scale the map by this percentile and clip above it"
    )
    max_output_side: int = Field(1024, ge=32, le=8192, description="Heatmaps and overlays are at most this wide/high")
    raw_map: bool = Field(False, description="Also write the map as float16 .npy")
    batch_size: int | None = Field(None, ge=1, le=1024, description="GPU batch; default from the worker settings")

    @property
    def compared(self) -> list[SaliencyMethod]:
        """The methods this job runs: ``methods``, or just ``method``."""
        return list(self.methods) if self.methods else [self.method]

    @model_validator(mode="after")
    def _check(self) -> SaliencySpec:
        if self.methods is not None and len(set(self.methods)) != len(self.methods):
            raise ValueError("methods must be distinct")
        for method in self.compared:
            if method != "spectral_residual":
                self._check_model(method)
        gradient_only = [m for m in self.compared if m != "gradient"]
        if isinstance(self.target, Unit) and gradient_only:
            raise ValueError("hidden-unit targets need method 'gradient' alone")
        if isinstance(self.target, Unit) and len(self.target.channels) > MAX_UNIT_CHANNELS:
            raise ValueError(f"target.channel: hidden-unit saliency takes at most {MAX_UNIT_CHANNELS} channels")
        if self.precision != "fp32" and "gradient" not in self.compared:
            raise ValueError("precision other than fp32 needs method 'gradient'")
        if self.signed and "gradient" not in self.compared:
            raise ValueError("signed maps need method 'gradient'")
        return self

    def _check_model(self, method: str) -> None:
        if self.model is None:
            raise ValueError(f"method '{method}' needs a model")
        known = self.model.job is None  # a trained job's class count is known only when it loads
        if known and isinstance(self.target, int) and not 0 <= self.target < self.model.num_classes:
            raise ValueError(f"target must be in [0, {self.model.num_classes})")
        if known and isinstance(self.target, TopClasses) and self.target.top_k > self.model.num_classes:
            raise ValueError(f"target.top_k is more than the model's {self.model.num_classes} classes")
