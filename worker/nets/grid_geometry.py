"""Where each cell of an encoder's grid sits in the image: the centre of the cell's receptive field.

An even division of the image ((i + 0.5) / n of its width) is where the cells of a strided CNN are not,
in general: a 3x3 convolution of stride 2 with padding 1 centres its output i on input 2i, so after the
four of them in MobileNetV2's stride-16 grid, cell i is centred on pixel 16 i, half a cell up and left of
(i + 0.5) x 16; VGG's 2x2 poolings keep (i + 0.5) x stride; SqueezeNet's unpadded convolutions and
poolings move the centres the other way. The attention figure and the attention-in-box check put each
cell where its features come from, so the centres are measured once per encoder, for any architecture:

on a copy of the network cut at the grid's layer, every convolution's weights are made uniform and its
bias zero, every batch norm the identity, every max pooling an average pooling of the same geometry (a
maximum over a constant picks its first element, which would pull the centres up and left), so that the
gradient of one cell's output with respect to a constant input is that cell's receptive field, symmetric
about its centre. Two cells well inside a probe twice the input's size (so that the image's border cuts
neither field) give the grid's offset and stride; pooling to a coarser grid averages the centres of the
cells each pooled cell covers, as the pooling averages their features."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import fx, nn
from torch.nn import functional as F


def cell_centres(body: nn.Module, input_size: int, grid: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The centres of the grid's cells as fractions of the image's width (x, one per column) and height
    (y, one per row), for ``body`` (the encoder cut at its grid layer) on ``input_size`` inputs, after
    average pooling to ``grid`` x ``grid`` (None: the layer's own grid)."""
    probe = _uniform_copy(body)
    with torch.no_grad():
        rows, columns = _grid_shape(probe(torch.zeros(1, 3, input_size, input_size)))
    size = 2 * input_size
    # Cells a quarter of the input from the middle of the double-size probe: each has half the input or
    # more of image on every side.
    out_rows, out_columns = _grid_shape(probe(torch.zeros(1, 3, size, size)))
    x_offset, x_step = _axis(probe, size, out_columns, columns, axis=1)
    y_offset, y_step = _axis(probe, size, out_rows, rows, axis=0)
    xs = (x_offset + x_step * np.arange(columns)) / input_size
    ys = (y_offset + y_step * np.arange(rows)) / input_size
    if grid is not None:
        xs, ys = _pooled(xs, grid), _pooled(ys, grid)
    return xs, ys


def _grid(out: object) -> torch.Tensor:
    """The probe's output grid: a feature extractor returns {"grid": tensor}, a plain module the tensor."""
    tensor = out["grid"] if isinstance(out, dict) else out
    assert isinstance(tensor, torch.Tensor)
    return tensor


def _grid_shape(out: object) -> tuple[int, int]:
    tensor = _grid(out)
    return int(tensor.shape[-2]), int(tensor.shape[-1])


def _axis(probe: nn.Module, size: int, cells_in_probe: int, cells: int, axis: int) -> tuple[float, float]:
    """(offset, step) in pixels along one axis: cell i is centred at offset + step * i."""
    middle = cells_in_probe // 2
    spread = max(1, cells // 4)
    first, last = middle - spread, middle + spread
    inputs = torch.full((1, 3, size, size), 1e-3, requires_grad=True)
    grid = _grid(probe(inputs))
    centres = []
    for cell in (first, last):
        picked = grid[0, :, middle, cell] if axis else grid[0, :, cell, middle]
        (gradient,) = torch.autograd.grad(picked.sum(), inputs, retain_graph=True)
        # The gradient's centroid along this axis, in pixels (pixel j spans [j, j + 1)).
        profile = gradient[0].abs().sum(0).sum(1 - axis).double()
        positions = torch.arange(size, dtype=torch.float64) + 0.5
        centres.append(float((profile * positions).sum() / profile.sum()))
    step = (centres[1] - centres[0]) / (last - first)
    return centres[0] - step * first, step


def _pooled(centres: np.ndarray, grid: int) -> np.ndarray:
    """The centres after adaptive average pooling to ``grid`` cells (PyTorch's bins: floor to ceil)."""
    n = len(centres)
    bins = [(math.floor(k * n / grid), math.ceil((k + 1) * n / grid)) for k in range(grid)]
    return np.array([centres[start:end].mean() for start, end in bins])


def _uniform_copy(body: nn.Module) -> nn.Module:
    probe = copy.deepcopy(body).cpu().float().eval()  # a GPU worker's encoder too: measured on the CPU
    for module in probe.modules():
        if isinstance(module, nn.modules.conv._ConvNd | nn.Linear):
            with torch.no_grad():
                module.weight.fill_(1.0 / module.weight[0].numel())
                if module.bias is not None:
                    module.bias.zero_()
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_parameters()  # mean 0, variance 1, weight 1, bias 0: the identity, up to eps
    for name, module in list(probe.named_modules()):
        if isinstance(module, nn.MaxPool2d):
            parent, _, child = name.rpartition(".")
            average = nn.AvgPool2d(module.kernel_size, module.stride, module.padding, ceil_mode=module.ceil_mode)
            setattr(probe.get_submodule(parent) if parent else probe, child, average)
    if isinstance(probe, fx.GraphModule):
        for node in probe.graph.nodes:
            if node.op == "call_function" and "max_pool2d" in getattr(node.target, "__name__", ""):
                node.target = _average_pool
        probe.recompile()
    for parameter in probe.parameters():
        parameter.requires_grad_(False)
    return probe


def _average_pool(
    x: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> torch.Tensor:
    """``F.max_pool2d``'s signature, averaging: the same windows (dilation 1, as every zoo network's)."""
    return F.avg_pool2d(x, kernel_size, stride if stride else kernel_size, padding, ceil_mode=ceil_mode)
