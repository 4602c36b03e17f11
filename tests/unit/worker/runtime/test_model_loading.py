"""Model references resolve to exact weights from the store; wrong weights are a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import safetensors.torch
import torch

from shared import keys
from shared.errors import InvalidInput
from shared.models import ModelRef
from shared.settings import Settings
from shared.storage.local import LocalStorage
from worker.nets.tiny import TinyCNN
from worker.runtime.models import ModelCache


def test_uploaded_safetensors_weights_load_exactly(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store", secret=b"x")
    torch.manual_seed(3)
    original = TinyCNN(num_classes=4).eval()
    storage.put_bytes(keys.upload("alice", "w1", "tiny.safetensors"), safetensors.torch.save(original.state_dict()))
    cache = ModelCache(Settings(data_dir=tmp_path, signing_secret="x"), storage)
    ref = ModelRef(arch="tiny_cnn", weights="upload://w1", num_classes=4, class_names=["a", "b", "c", "d"])
    loaded = cache.get(ref, "alice", torch.device("cpu"))
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded.module(x), original(x))
    assert loaded.class_names == ["a", "b", "c", "d"]
    with pytest.raises(InvalidInput, match="not found"):
        cache.get(ref, "bob", torch.device("cpu"))  # another tenant's upload is invisible
    wrong = ModelRef(arch="tiny_cnn", weights="upload://w1", num_classes=7)
    with pytest.raises(InvalidInput, match="do not fit"):
        cache.get(wrong, "alice", torch.device("cpu"))


def test_random_init_needs_no_file(tmp_path: Path) -> None:
    cache = ModelCache(Settings(data_dir=tmp_path, signing_secret="x"), LocalStorage(tmp_path / "s", secret=b"x"))
    loaded = cache.get(ModelRef(arch="resnet18", num_classes=10), "t", torch.device("cpu"))
    assert not any(p.requires_grad for p in loaded.module.parameters()) and not loaded.module.training


def test_random_init_is_seeded(tmp_path: Path) -> None:
    """Two identical specs with null weights explain the same network; another seed, another network."""
    storage = LocalStorage(tmp_path / "store", secret=b"x")
    settings = Settings(data_dir=tmp_path, signing_secret="x")
    state = {
        seed: ModelCache(settings, storage)
        .get(ModelRef(arch="resnet18", num_classes=5, seed=seed), "t", torch.device("cpu"))
        .module.state_dict()
        for seed in (0, 1)
    }
    again = ModelCache(settings, storage).get(ModelRef(arch="resnet18", num_classes=5), "t", torch.device("cpu"))
    assert all(torch.equal(v, state[0][k]) for k, v in again.module.state_dict().items())
    assert not torch.equal(state[0]["conv1.weight"], state[1]["conv1.weight"])
