"""A read-only registry of architecture builders, and each model's input preprocessing.

``build(arch, num_classes)`` always returns a randomly initialised module: torchvision is called with
``weights=None``, which never downloads. Weights are loaded afterwards from an explicit reference.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

import torch
import torchvision
from torch import nn

from worker.nets.tiny import TinyCNN

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _torchvision(name: str) -> Callable[[int], nn.Module]:
    def build(num_classes: int) -> nn.Module:
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)

    return build


BUILDERS: MappingProxyType[str, Callable[[int], nn.Module]] = MappingProxyType(
    {
        "squeezenet1_1": _torchvision("squeezenet1_1"),
        "mobilenet_v2": _torchvision("mobilenet_v2"),
        "resnet18": _torchvision("resnet18"),
        "resnet50": _torchvision("resnet50"),
        "vgg16": _torchvision("vgg16"),
        "alexnet": _torchvision("alexnet"),
        "tiny_cnn": lambda num_classes: TinyCNN(num_classes),
    }
)


def build(arch: str, num_classes: int) -> nn.Module:
    try:
        builder = BUILDERS[arch]
    except KeyError as exc:
        raise ValueError(f"unknown architecture {arch!r}") from exc
    return builder(num_classes)


def preprocess(images: list[torch.Tensor], size: int, mode: str, device: torch.device) -> torch.Tensor:
    """uint8 (3, H, W) tensors -> one float batch (B, 3, size, size) in the model's input convention.

    The whole image is resized (aspect not kept) so that a saliency map covers all of it.
    """
    batch = torch.stack(
        [
            torch.nn.functional.interpolate(
                img.to(device=device, dtype=torch.float32)[None],
                size=(size, size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )[0]
            for img in images
        ]
    )
    if mode == "imagenet":
        mean = torch.tensor(_IMAGENET_MEAN, device=device)[:, None, None]
        std = torch.tensor(_IMAGENET_STD, device=device)[:, None, None]
        return (batch / 255.0 - mean) / std
    if mode == "symmetric":
        return batch / 127.5 - 1.0
    if mode == "unit":
        return batch / 255.0
    raise ValueError(f"unknown preprocessing {mode!r}")


def imagenet_class_names() -> list[str]:
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return list(_IMAGENET_CATEGORIES)
