"""A model's and an optimiser's state as flat tensors for a safetensors checkpoint, and back. Every
training kind saves through these, so a checkpoint never holds pickled objects."""

from __future__ import annotations

import torch
from torch import nn


def module_tensors(module: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{name}": value.detach().cpu().contiguous() for name, value in module.state_dict().items()}


def load_module(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    start = len(prefix) + 1
    module.load_state_dict({name[start:]: value for name, value in tensors.items() if name.startswith(prefix + ".")})


def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """The optimiser's per-parameter state (Adam's moments and step counts); its hyper-parameters come
    from the spec again when it is rebuilt."""
    out = {}
    for index, values in optimizer.state_dict()["state"].items():
        for name, value in values.items():
            out[f"{prefix}.{index}.{name}"] = torch.as_tensor(value).detach().cpu().clone().contiguous()
    return out


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    device = next(p.device for group in optimizer.param_groups for p in group["params"])
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value if name == "step" else value.to(device)
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
