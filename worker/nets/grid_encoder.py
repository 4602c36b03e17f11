"""The captioner's encoder: a model-zoo CNN cut at one layer, whose output grid becomes L = H x W
annotation vectors of D channels (Xu et al. 2015 use VGG's 14 x 14 x 512 conv5 features).

The cut is torchvision's feature extractor (an FX graph of the network up to that layer), so nothing
after the layer is run or stored. Optionally the grid is average-pooled to a fixed size, and each
location's (x, y) in [-1, 1] is appended to its features. Where each cell lies in the image (the centre
of its receptive field, for figures and the attention-in-box check) is ``cell_centres``."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.feature_extraction import create_feature_extractor

from worker.nets import zoo
from worker.nets.grid_geometry import cell_centres

DEFAULT_LAYERS = {
    "mobilenet_v2": "features.13",  # 96 x 14 x 14 at 224 px (the last stride-16 block)
    "squeezenet1_1": "features",  # 512 x 13 x 13
    "resnet18": "layer3",  # 256 x 14 x 14
    "resnet50": "layer3",  # 1024 x 14 x 14
    "vgg16": "features.29",  # conv5_3 after ReLU, 512 x 14 x 14: the paper's grid
    "alexnet": "features.11",  # 256 x 13 x 13
    "tiny_cnn": "features",  # 64 x S/8 x S/8
    "inception5h": "mixed4c",  # 512 x 14 x 14
    "inception_v3": "Mixed_6e",  # 768 x 17 x 17 at 299 px
}


def default_layer(arch: str) -> str:
    return DEFAULT_LAYERS[arch]


def backbone(arch: str) -> nn.Module:
    """The zoo's architecture (with an ImageNet head, never run), randomly initialised."""
    return zoo.build(arch, 1008 if arch == "inception5h" else 1000)


class GridEncoder(nn.Module):
    def __init__(self, network: nn.Module, layer: str, grid: int | None = None, coordinates: bool = True) -> None:
        super().__init__()
        self.body = create_feature_extractor(network, return_nodes={layer: "grid"})
        self.grid = grid
        self.coordinates = coordinates

    def load_body(self, state: dict[str, torch.Tensor]) -> None:
        """Take the weights of the layers this encoder keeps from a whole network's state dict (a
        classifier of any head: the layers past the cut are not needed). Every kept tensor must be there."""
        own = self.body.state_dict()
        missing = sorted(set(own) - set(state))
        if missing:
            raise ValueError(f"the weights lack {len(missing)} tensors of the encoder, e.g. {missing[:3]}")
        self.body.load_state_dict({name: state[name] for name in own}, strict=True)

    def cell_centres(self, input_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Each column's x and each row's y centre as fractions of the image (the encoder's input is the
        whole image squashed to ``input_size``): measured once per architecture, layer, size and grid."""
        return _centres(self.body, input_size, self.grid)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) model inputs -> (B, H, W, D) annotation vectors (D includes x, y when appended)."""
        out = self.body(images)["grid"]
        if self.grid is not None:
            out = F.adaptive_avg_pool2d(out, self.grid)
        out = out.permute(0, 2, 3, 1)
        if self.coordinates:
            out = with_coordinates(out)
        return out.contiguous()


def with_coordinates(grid: torch.Tensor) -> torch.Tensor:
    """(B, H, W, D) -> (B, H, W, D + 2): each location's x and y, evenly spaced from -1 (left, top) to 1: a
    position code the decoder learns to read (where the cells lie in the image is ``cell_centres``)."""
    batch, height, width, _ = grid.shape
    ys = (torch.arange(height, device=grid.device, dtype=grid.dtype) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, device=grid.device, dtype=grid.dtype) + 0.5) / width * 2 - 1
    coords = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (H, W, 2): x, y
    return torch.cat([grid, coords.expand(batch, height, width, 2)], dim=-1)


# The geometry depends only on the cut network's layers, not on its weights: keyed by its description, so
# that a worker measures it once for every captioner it loads with the same encoder.
_CENTRES: dict[tuple[str, int, int | None], tuple[np.ndarray, np.ndarray]] = {}


def _centres(body: nn.Module, input_size: int, grid: int | None) -> tuple[np.ndarray, np.ndarray]:
    key = (repr(body), input_size, grid)
    if key not in _CENTRES:
        _CENTRES[key] = cell_centres(body, input_size, grid)
    return _CENTRES[key]
