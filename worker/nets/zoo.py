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

from worker.nets.framing import Resize, fit
from worker.nets.inception5h import Inception5h
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
        "inception5h": lambda num_classes: Inception5h(num_classes),
        "inception_v3": lambda num_classes: torchvision.models.inception_v3(
            weights=None, num_classes=num_classes, aux_logits=False, init_weights=False
        ),
    }
)


def build(arch: str, num_classes: int) -> nn.Module:
    try:
        builder = BUILDERS[arch]
    except KeyError as exc:
        raise ValueError(f"unknown architecture {arch!r}") from exc
    return builder(num_classes)


def prefers_channels_last(device: torch.device) -> bool:
    """Models and input batches live in channels_last on CUDA, the layout cuDNN's fastest convolution
    kernels use; on the CPU the usual layout is as fast. (One place, so a test can take the CUDA path.)"""
    return device.type == "cuda"


def ready_for_inference(module: nn.Module, device: torch.device) -> nn.Module:
    """Eval mode, no weight gradients, on ``device``, in the device's preferred memory layout (inputs in
    another layout are converted by the first layer)."""
    module.eval().requires_grad_(False).to(device)
    if prefers_channels_last(device):
        module.to(memory_format=torch.channels_last)
    return module


def preprocess(
    images: list[torch.Tensor], size: int, mode: str, device: torch.device, resize: Resize = "squash"
) -> torch.Tensor:
    """uint8 (3, H, W) tensors -> one float batch (B, 3, size, size) in the model's input convention, each
    image fitted as ``resize`` says (``worker.nets.framing``; padding takes the model's zero input)."""
    fill = denormalize(torch.zeros(3, 1, 1, device=device), mode).flatten()
    batch = torch.stack([fit(img.to(device=device, dtype=torch.float32), size, resize, fill) for img in images])
    batch = normalize(batch, mode)
    return batch.contiguous(memory_format=torch.channels_last) if prefers_channels_last(device) else batch


def normalize(batch: torch.Tensor, mode: str) -> torch.Tensor:
    """Pixel values 0..255 (float, (B, 3, H, W)) -> the model's input convention."""
    if mode == "imagenet":
        mean = torch.tensor(_IMAGENET_MEAN, device=batch.device)[:, None, None]
        std = torch.tensor(_IMAGENET_STD, device=batch.device)[:, None, None]
        return (batch / 255.0 - mean) / std
    if mode == "symmetric":
        return batch / 127.5 - 1.0
    if mode == "unit":
        return batch / 255.0
    if mode == "inception5h":
        return batch - 117.0
    raise ValueError(f"unknown preprocessing {mode!r}")


def denormalize(inputs: torch.Tensor, mode: str) -> torch.Tensor:
    """The inverse of ``normalize``: model inputs -> pixel values 0..255 (not clamped)."""
    if mode == "imagenet":
        mean = torch.tensor(_IMAGENET_MEAN, device=inputs.device)[:, None, None]
        std = torch.tensor(_IMAGENET_STD, device=inputs.device)[:, None, None]
        return (inputs * std + mean) * 255.0
    if mode == "symmetric":
        return (inputs + 1.0) * 127.5
    if mode == "unit":
        return inputs * 255.0
    if mode == "inception5h":
        return inputs + 117.0
    raise ValueError(f"unknown preprocessing {mode!r}")


def pixel_scale(mode: str, device: torch.device | None = None) -> torch.Tensor:
    """Model-input units per pixel value (0..255), per channel, shaped (3, 1, 1): converts a step given
    in pixel values into the model's input space."""
    if mode == "imagenet":
        return 1.0 / (255.0 * torch.tensor(_IMAGENET_STD, device=device))[:, None, None]
    per_pixel = {"symmetric": 1.0 / 127.5, "unit": 1.0 / 255.0, "inception5h": 1.0}.get(mode)
    if per_pixel is None:
        raise ValueError(f"unknown preprocessing {mode!r}")
    return torch.full((3, 1, 1), per_pixel, device=device)


def replace_classifier(module: nn.Module, num_classes: int) -> nn.Module:
    """Give a (pretrained) network a new last layer for ``num_classes`` (fine-tuning)."""
    for name in ("fc", "classifier"):
        head = getattr(module, name, None)
        if isinstance(head, nn.Linear):
            setattr(module, name, nn.Linear(head.in_features, num_classes))
            return module
        if isinstance(head, nn.Sequential):
            for index in range(len(head) - 1, -1, -1):
                layer = head[index]
                if isinstance(layer, nn.Linear):
                    head[index] = nn.Linear(layer.in_features, num_classes)
                    return module
                if isinstance(layer, nn.Conv2d):  # SqueezeNet's 1x1 convolution classifier
                    head[index] = nn.Conv2d(layer.in_channels, num_classes, kernel_size=1)
                    return module
    raise ValueError("cannot find the classifier layer to replace")


def inception5h_class_names(labels_file: str) -> list[str]:
    """The 1008 output names of inception5h: its labels file (WordNet id, then names) padded with 'unused'."""
    with open(labels_file, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle]
    names = [line.split(" ", 1)[1] if line.startswith("n") and " " in line else line for line in lines]
    names += [f"unused {i}" for i in range(len(names), 1008)]
    return names[:1008]


def imagenet_class_names() -> list[str]:
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return list(_IMAGENET_CATEGORIES)
