"""Forward hooks as context managers: activations of named layers, removed on exit even after an error."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


def find_module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        known = ", ".join(n for n in modules if n and "." not in n)
        raise ValueError(f"the model has no layer {name!r}; top-level layers: {known}")
    return modules[name]


@contextmanager
def capture(model: nn.Module, layers: Iterable[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Yields a dict that every forward pass fills with ``{layer: output}`` for the named layers."""
    store: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for name in dict.fromkeys(layers):
            module = find_module(model, name)

            def hook(_module: nn.Module, _inputs: object, output: torch.Tensor, name: str = name) -> None:
                store[name] = output

            handles.append(module.register_forward_hook(hook))
        yield store
    finally:
        for handle in handles:
            handle.remove()


def hook_count(model: nn.Module) -> int:
    """Forward hooks registered anywhere in ``model`` (tests: nothing may be left behind)."""
    return sum(len(module._forward_hooks) for module in model.modules())
