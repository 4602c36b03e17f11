"""Forward hooks as context managers: activations of named layers, removed on exit even after an error.

With ``stop_early`` the forward pass ends as soon as every named layer has produced its output: an
objective on a middle layer does not pay for the rest of the network (``forward`` catches the stop).
"""

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


class StopForward(Exception):
    """Raised by a hook once every wanted activation is captured."""


@contextmanager
def capture(model: nn.Module, layers: Iterable[str], stop_early: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Yields a dict that every forward pass fills with ``{layer: output}`` for the named layers."""
    store: dict[str, torch.Tensor] = {}
    names = list(dict.fromkeys(layers))
    handles = []
    try:
        for name in names:
            module = find_module(model, name)

            def hook(_module: nn.Module, _inputs: object, output: torch.Tensor, name: str = name) -> None:
                store[name] = output
                if stop_early and all(n in store for n in names):
                    raise StopForward

            handles.append(module.register_forward_hook(hook))
        yield store
    finally:
        for handle in handles:
            handle.remove()


def forward(model: nn.Module, x: torch.Tensor, activations: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """One forward pass that refills ``activations``; None when a hook stopped it early (no output)."""
    activations.clear()
    try:
        return model(x)  # type: ignore[no-any-return]
    except StopForward:
        return None


def hook_count(model: nn.Module) -> int:
    """Forward hooks registered anywhere in ``model`` (tests: nothing may be left behind)."""
    return sum(len(module._forward_hooks) for module in model.modules())
