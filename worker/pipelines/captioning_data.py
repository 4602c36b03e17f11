"""The captioning training set, ready to train on: the vocabulary, the training captions as padded index
tensors, each split's images, and — while the encoder is frozen — every image's annotation vectors,
computed once (here, in batches) and reused by every epoch and every step of the job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from shared.specs.captioning import CaptioningTrainSpec
from worker.inputs.caption_set import CaptionSet
from worker.inputs.vocabulary import Vocabulary, tokenize
from worker.nets.grid_encoder import GridEncoder, backbone, default_layer
from worker.nets.zoo import normalize

FEATURE_CHUNK = 64
"""Images per encoder pass while features are computed."""
EXAMPLES = 6
"""Test images whose attention strips the training report shows."""


@dataclass
class Prepared:
    vocabulary: Vocabulary
    encoder: GridEncoder  # as it starts (weights loaded); fine-tuning trains a copy of it
    grid: tuple[int, int]  # (H, W): L = H * W
    feature_dim: int
    captions: torch.Tensor  # (M, T + 2) training captions, <start> ... <end> then <pad>
    caption_image: torch.Tensor  # (M,) the image of each training caption
    images: torch.Tensor | None  # (N, 3, S, S) uint8: kept when fine-tuning (features change)
    features: torch.Tensor | None  # (N, L, D) float16 annotation vectors: a frozen encoder's
    references: list[list[list[str]]]  # per image: its captions' tokens (every caption, for BLEU)
    split_images: dict[str, list[int]]
    source: CaptionSet  # its images are let go once encoded, but for ``examples``
    too_long: int  # training captions longer than max_length, left out
    examples: dict[int, np.ndarray]  # a few test images at the encoder's input size, for figures

    def annotations(self, picked: torch.Tensor, encoder: GridEncoder, preprocessing: str) -> torch.Tensor:
        """(B, L, D) float32 annotation vectors of these images: cached, or through ``encoder``."""
        if self.features is not None:
            return self.features[picked].float()
        if self.images is None:
            raise RuntimeError("neither features nor images")
        grid = encoder(normalize(self.images[picked].float(), preprocessing))
        return grid.reshape(len(picked), -1, grid.shape[-1])


def encoder_layer(spec: CaptioningTrainSpec) -> str:
    return spec.encoder.layer or default_layer(spec.encoder.arch or "")


def make_encoder(spec: CaptioningTrainSpec, state: dict[str, torch.Tensor] | None) -> GridEncoder:
    """The encoder with the given starting weights (None: random, seeded from the spec)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        network = backbone(spec.encoder.arch or "")
    encoder = GridEncoder(network, encoder_layer(spec), spec.encoder.grid, spec.coordinates)
    if state is not None:
        encoder.load_body(state)
    return encoder


def prepare(spec: CaptioningTrainSpec, data: CaptionSet, encoder: GridEncoder, device: torch.device) -> Prepared:
    words = {"lowercase": spec.lowercase, "strip_punctuation": spec.strip_punctuation}
    tokens = [[tokenize(text, **words) for text in captions] for captions in data.captions]
    split_images = {split: data.indices(split) for split in ("train", "val", "test")}
    train_tokens = [t for i in split_images["train"] for t in tokens[i] if 0 < len(t) <= spec.max_length]
    too_long = sum(1 for i in split_images["train"] for t in tokens[i] if len(t) > spec.max_length)
    if not train_tokens:
        raise ValueError("no training caption of at most max_length words")
    vocabulary = Vocabulary.build(train_tokens, spec.min_word_count)
    rows, owners = [], []
    for i in split_images["train"]:
        for t in tokens[i]:
            if 0 < len(t) <= spec.max_length:
                rows.append(vocabulary.encode(t))
                owners.append(i)
    width = max(len(r) for r in rows)
    captions = torch.zeros((len(rows), width), dtype=torch.long)
    for k, row in enumerate(rows):
        captions[k, : len(row)] = torch.tensor(row)
    stacked = torch.from_numpy(np.stack(data.images)).permute(0, 3, 1, 2).contiguous()
    encoder = encoder.to(device).eval().requires_grad_(False)
    # Fine-tuning changes the features: encode one image only, for the grid's shape.
    features, grid = encode_all(encoder, stacked[:1] if spec.fine_tune else stacked, spec.encoder.preprocessing, device)
    examples = {i: data.images[i] for i in split_images["test"][:EXAMPLES]}
    data.images = []
    return Prepared(
        vocabulary=vocabulary,
        encoder=encoder,
        grid=grid,
        feature_dim=int(features.shape[-1]),
        captions=captions.to(device),
        caption_image=torch.tensor(owners, dtype=torch.long, device=device),
        images=stacked.to(device) if spec.fine_tune else None,
        features=None if spec.fine_tune else features,
        references=tokens,
        split_images=split_images,
        source=data,
        too_long=too_long,
        examples=examples,
    )


@torch.no_grad()
def encode_all(
    encoder: GridEncoder, images: torch.Tensor, preprocessing: str, device: torch.device
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Every image's annotation vectors (N, L, D) in float16 (half the memory; far below the features'
    own precision), and the grid's (H, W)."""
    chunks, grid = [], (0, 0)
    for start in range(0, len(images), FEATURE_CHUNK):
        batch = normalize(images[start : start + FEATURE_CHUNK].to(device).float(), preprocessing)
        out = encoder(batch)
        grid = (int(out.shape[1]), int(out.shape[2]))
        chunks.append(out.reshape(len(batch), -1, out.shape[-1]).half())
    return torch.cat(chunks), grid


def data_key(spec: CaptioningTrainSpec) -> str:
    """What decides the prepared data: the input and how it is read, tokenised, split and encoded."""
    fields = {
        "input",
        "encoder",
        "fine_tune",
        "coordinates",
        "seed",
        "min_word_count",
        "max_length",
        "lowercase",
        "strip_punctuation",
        "split",
        "val_fraction",
        "test_fraction",
        "train_items",
        "val_items",
        "test_items",
        "image_size",
        "max_items",
    }
    return "captioning:" + spec.model_dump_json(include=fields)


def describe(prepared: Prepared) -> dict[str, Any]:
    """Counts for the summary."""
    source = prepared.source
    return {
        "images": {split: len(ids) for split, ids in prepared.split_images.items()},
        "training_captions": int(len(prepared.captions)),
        "vocabulary_size": len(prepared.vocabulary),
        "grid": list(prepared.grid),
        "feature_dim": prepared.feature_dim,
        "captions_too_long": prepared.too_long,
        "skipped_images": source.skipped,
        "uncaptioned_images": source.uncaptioned,
        "named_split": source.named_split,
    }
