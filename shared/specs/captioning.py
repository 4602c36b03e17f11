"""The attention-captioning job specs (Show, Attend and Tell; Xu et al. 2015): ``captioning_train`` trains
a soft- (or hard-) attention LSTM captioner over a CNN's feature grid on a caption set, and ``caption``
captions the images of any archive with it by beam search, one attention map per generated word."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.models import ARCHITECTURES, PRESETS, Preprocessing, check_weights
from shared.specs.base import ArchiveSpec, TrainedModelRef, TrainedModelUse, TrainingSpec, check_input_uri

_TRAIN_INPUT = re.compile(r"^(builtin:captioned_shapes|upload://[A-Za-z0-9_-]+|s3://[a-z0-9][a-z0-9.-]{1,62}/\S+)$")

ENCODER_PRESETS = ("mobilenet_v2-imagenet", "squeezenet1_1-imagenet")


class Encoder(BaseModel):
    """The CNN whose feature grid the decoder attends over: a preset (ImageNet weights from the assets
    folder) or an architecture of the model zoo with explicit weights (null: random initialisation)."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(None, description=f"One of: {', '.join(ENCODER_PRESETS)}")
    arch: str | None = Field(None, description=f"One of: {', '.join(ARCHITECTURES)}")
    weights: str | None = Field(
        None, description="null (random init), assets:..., upload://..., s3://..., torchvision:NAME"
    )
    preprocessing: Preprocessing = "imagenet"
    layer: str | None = Field(
        None,
        max_length=200,
        description="The module whose output is the grid (default per architecture: a 14x14 or 13x13 grid at 224 px, "
        "like the paper's VGG conv5 features)",
    )
    input_size: int = Field(224, ge=32, le=1024, description="Images are resized to input_size x input_size")
    grid: int | None = Field(
        None, ge=1, le=64, description="Average-pool the layer's output to grid x grid (null: as it is)"
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("preset") is not None:
            name = str(data["preset"])
            if name not in ENCODER_PRESETS:
                raise ValueError(f"unknown encoder preset {name!r}; known: {', '.join(ENCODER_PRESETS)}")
            preset = {k: v for k, v in PRESETS[name].items() if k in {"arch", "weights", "preprocessing"}}
            return {**preset, **{k: v for k, v in data.items() if v is not None}}
        return data

    @model_validator(mode="after")
    def _check(self) -> Encoder:
        if self.arch is None:
            raise ValueError("give 'preset' or 'arch'")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown arch {self.arch!r}; known: {', '.join(ARCHITECTURES)}")
        if self.weights is not None:
            check_weights(self.weights)
        return self


class CaptioningTrainSpec(TrainingSpec):
    """Train an attention captioner (Xu et al. 2015) on a caption set.

    ``input``: ``builtin:captioned_shapes`` (generated scenes of 1-3 shapes with their captions and every
    noun's box), or an archive of images with their captions in any of: a COCO captions JSON (``images`` +
    ``annotations``), Flickr8k's ``Flickr8k.token.txt`` (``IMAGE.jpg#N<TAB>caption``), or WebDataset pairs
    (``KEY.jpg`` + ``KEY.txt``, or ``KEY.json`` with ``caption`` / ``captions``).
    """

    kind: Literal["captioning_train"]
    input: str = Field(
        ..., examples=["builtin:captioned_shapes"], description="builtin:captioned_shapes, upload://ID, s3://..."
    )
    encoder: Encoder = Field(
        default_factory=lambda: Encoder(preset="mobilenet_v2-imagenet"),
        description="The CNN giving the L x D grid; ImageNet MobileNetV2 (features.13: 14 x 14 x 96) by default",
    )
    fine_tune: bool = Field(False, description="Train the encoder too (then its features are recomputed every batch)")
    encoder_learning_rate: float = Field(1e-4, gt=0.0, le=1.0, description="fine_tune: Adam's rate for the encoder")
    coordinates: bool = Field(
        True,
        description="Append each location's (x, y) in [-1, 1] to its features: CNN features carry position only "
        "weakly, and captions that say 'left of' need it (false: the paper's grid as it is)",
    )
    attention: Literal["soft", "hard"] = Field(
        "soft", description="soft: deterministic attention; hard: one sampled location per word, trained with REINFORCE"
    )
    embed_dim: int = Field(512, ge=4, le=4096, description="Word embedding size (m)")
    attention_dim: int = Field(512, ge=4, le=4096, description="Hidden size of the attention MLP")
    decoder_dim: int = Field(512, ge=4, le=4096, description="LSTM size (n)")
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    gate: bool = Field(
        True, description="Scale the context by the gating scalar beta_t = sigmoid(f_beta(h_{t-1})) (the paper's)"
    )
    initial_state: Literal["mean", "learned"] = Field(
        "mean",
        description="The LSTM's initial state: mean: an affine map of the mean annotation vector (the paper's); "
        "learned: the same for every image, so that all the decoder knows of the image comes through attention",
    )
    query: Literal["previous", "current"] = Field(
        "previous",
        description="What a word's attention map is computed from: previous: h_{t-1}, before the LSTM reads the "
        "last word (the paper's); current: h_t, after the LSTM has read the last word and the mean annotation "
        "vector (Lu et al. 2017's spatial attention), so the word just said can choose where to look",
    )
    doubly_stochastic: float = Field(
        1.0,
        ge=0.0,
        le=100.0,
        description="lambda of the doubly stochastic penalty sum_i (1 - sum_t alpha_ti)^2, averaged over the L locations",
    )
    sharpness: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="soft: weight of a penalty on each word's attention entropy (per word, as the cross-entropy), "
        "so that a word is made from few locations, not a blend of the image (0: the paper's loss)",
    )
    sharpness_start: int = Field(
        0,
        ge=0,
        le=1000,
        description="soft: epochs trained without the sharpness penalty, so that the decoder learns the captions "
        "first; its weight then grows linearly to sharpness over sharpness_ramp epochs",
    )
    sharpness_ramp: int = Field(1, ge=1, le=1000, description="soft: epochs over which the sharpness weight grows")
    entropy_weight: float = Field(0.01, ge=0.0, le=10.0, description="hard: weight of the attention entropy bonus")
    baseline_decay: float = Field(
        0.9, ge=0.0, lt=1.0, description="hard: moving-average baseline b = d b + (1 - d) log p(y)"
    )
    learning_rate: float = Field(4e-4, gt=0.0, le=1.0, description="Adam's rate for the decoder")
    grad_clip: float = Field(5.0, gt=0.0, le=1000.0, description="Each gradient is clipped to [-c, c]")
    batch_size: int = Field(32, ge=1, le=4096, description="Captions per batch")
    epochs: int = Field(20, ge=1, le=1000, description="At most this many epochs")
    patience: int = Field(
        5, ge=0, le=1000, description="Stop after this many epochs without a better validation BLEU-4 (0: never)"
    )
    beam_size: int = Field(3, ge=1, le=20, description="Beam width of the test-split figures")
    min_word_count: int = Field(
        5, ge=1, le=10_000, description="Rarer training words become <unk> (5: the usual tutorial)"
    )
    max_length: int = Field(50, ge=2, le=500, description="Longer captions (in words) are left out of training")
    lowercase: bool = True
    strip_punctuation: bool = Field(True, description="Tokens are runs of letters, digits and apostrophes")
    split: Literal["auto", "named", "random"] = Field(
        "auto",
        description="auto: the split the data names (COCO images' 'split', Flickr8k's Flickr_8k.*Images.txt) when it "
        "names one, else random by image; named: require it; random: always by image with the fractions below",
    )
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    train_items: int = Field(4000, ge=10, le=1_000_000, description="builtin:captioned_shapes: training scenes")
    val_items: int = Field(300, ge=10, le=100_000, description="builtin:captioned_shapes: validation scenes")
    test_items: int = Field(500, ge=10, le=100_000, description="builtin:captioned_shapes: test scenes")
    image_size: int = Field(128, ge=32, le=512, description="builtin:captioned_shapes: scene side in pixels")
    max_items: int = Field(200_000, ge=10, le=2_000_000, description="Archives: images held in memory at most")

    @field_validator("input")
    @classmethod
    def _input_uri(cls, value: str) -> str:
        return check_input_uri(
            value, _TRAIN_INPUT, "input must be builtin:captioned_shapes, upload://ID or s3://bucket/archive"
        )


class CaptionSpec(ArchiveSpec):
    """Caption every image of an input with a trained captioner: beam search, the caption's log-probability
    and the image with each word's attention map over it."""

    kind: Literal["caption"]
    model: TrainedModelRef = Field(..., description="The captioning_train job whose model captions: {'job': ID}")
    beam_size: int = Field(5, ge=1, le=20, description="Beam width (1: greedy decoding)")
    max_length: int | None = Field(None, ge=1, le=500, description="Most words per caption (default: the model's)")
    attention_figure: bool = Field(True, description="Write the strip of per-word attention maps per image")
    raw_maps: bool = Field(
        False, description="Also write the attention maps as float16 .npy (words x grid rows x columns)"
    )
    panel_size: int = Field(160, ge=48, le=1024, description="Side of each panel of the attention strip")
    columns: int = Field(8, ge=1, le=64, description="Panels per row of the strip")
    batch_size: int = Field(32, ge=1, le=1024, description="Images per batch (one beam search for the whole batch)")
    metrics_max_items: int = Field(
        100_000, ge=1, le=10_000_000, description="Corpus BLEU / CIDEr over at most this many items with references"
    )

    def trained_models(self) -> list[TrainedModelUse]:
        return [TrainedModelUse("model.job", self.model.job, "captioner")]
