"""Trained models for tests: a shapes classifier trained once per test session (about ten seconds on two CPU
cores), and a randomly initialised captioner shaped as a captioning job leaves it."""

from __future__ import annotations

from functools import cache

import torch

from worker.inputs.shapes import make_shapes
from worker.inputs.vocabulary import SPECIAL
from worker.nets.captioner import build_captioner
from worker.nets.tiny import TinyCNN
from worker.pipelines.base import TrainedModel
from worker.pipelines.classifier_loop import TrainData, Trainer, to_tensor_images

SIZE = 64


@cache
def shapes_classifier() -> tuple[TinyCNN, list[str], float]:
    """(model in eval mode without gradients, class names, test accuracy); inputs are RGB/255 at 64 px."""
    cpu = torch.device("cpu")
    train, test = make_shapes(2000, SIZE, 0), make_shapes(300, SIZE, 1)
    data = TrainData(
        to_tensor_images(train.images, SIZE, cpu),
        torch.from_numpy(train.labels),
        to_tensor_images(test.images, SIZE, cpu),
        torch.from_numpy(test.labels),
        train.classes,
    )
    torch.manual_seed(0)
    model = TinyCNN(len(train.classes))
    trainer = Trainer(
        model, data, epochs=3, batch_size=64, learning_rate=2e-3, weight_decay=0.0, preprocessing="unit", seed=0
    )
    trainer.train_for(3600.0)
    _, accuracy = trainer.evaluate(data.test_x, data.test_y)
    model.eval().requires_grad_(False)
    return model, list(train.classes), accuracy


CONTRACT_CAPTIONER = "contract-captioner"


@cache
def tiny_captioner(seed: int = 0) -> TrainedModel:
    """A randomly initialised captioner as a captioning_train job would leave it (a tiny_cnn encoder at 32 px,
    a vocabulary of the shapes' words): for apply kinds that need a captioner's job."""
    words = [*SPECIAL, "a", "small", "large", "red", "green", "blue", "yellow"]
    words += ["circle", "square", "triangle", "cross", "left", "of", "above", "below"]
    config = {
        "kind": "captioning_train",
        "model_type": "captioner",
        "vocabulary": words,
        "attention": "soft",
        "max_length": 12,
        "tokenizer": {"lowercase": True, "strip_punctuation": True},
        "grid": [4, 4],
        "encoder": {
            "arch": "tiny_cnn",
            "weights": None,
            "layer": "features",
            "grid": None,
            "coordinates": True,
            "input_size": 32,
            "preprocessing": "unit",
            "fine_tuned": False,
        },
        "decoder": {"feature_dim": 66, "embed_dim": 8, "attention_dim": 8, "decoder_dim": 16, "dropout": 0.5},
        "trained_on": "builtin:captioned_shapes",
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = build_captioner(config)
    module.eval().requires_grad_(False)
    return TrainedModel(module=module, config=config)
