"""A shapes classifier trained once per test session (about ten seconds on two CPU cores)."""

from __future__ import annotations

from functools import cache

import torch

from worker.inputs.shapes import make_shapes
from worker.nets.tiny import TinyCNN
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
