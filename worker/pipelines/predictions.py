"""A model's verdict on an image, as the manifest lists it: the top classes with names and probabilities."""

from __future__ import annotations

from typing import Any

import torch

from worker.pipelines.base import LoadedModel


def label(names: list[str] | None, index: int) -> str:
    return names[index] if names is not None and 0 <= index < len(names) else str(index)


def predictions(loaded: LoadedModel, logits: torch.Tensor, top_k: int) -> list[dict[str, Any]]:
    """The ``top_k`` classes of one image's logits: index, name, probability and logit."""
    probs = logits.softmax(dim=0)
    values, indices = probs.topk(min(top_k, probs.shape[0]))
    return [
        {
            "class": int(c),
            "label": label(loaded.class_names, int(c)),
            "probability": round(float(p), 6),
            "logit": round(float(logits[int(c)]), 4),
        }
        for p, c in zip(values.tolist(), indices.tolist(), strict=True)
    ]
