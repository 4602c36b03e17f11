"""Model loading: a model reference becomes an nn.Module in eval mode, once per process.

Weights come only from explicit places (assets folder, object store, local torch cache); torchvision's
own download path runs only when the operator sets FOVEA_ALLOW_DOWNLOADS. Checkpoints are safetensors,
or torchvision's state dicts read with ``weights_only=True``: never pickle.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import safetensors.torch
import torch
from torch import nn

from shared import keys
from shared.errors import InvalidInput, NotFound
from shared.models import ModelRef
from shared.settings import Settings
from shared.storage import Storage, open_storage
from worker.kinds import training_plugin
from worker.nets import zoo
from worker.pipelines.base import TrainedModel
from worker.runtime import metrics
from worker.runtime.sources import checked_location


@dataclass
class LoadedModel:
    module: nn.Module
    ref: ModelRef
    class_names: list[str] | None


class ModelCache:
    """Per-process cache keyed by the reference; models are loaded lazily in the worker child."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self._settings = settings
        self._storage = storage
        self._lock = threading.RLock()  # get() holds it while a trained model loads through trained()
        self._models: dict[tuple[str, str, str], LoadedModel] = {}
        self._trained: dict[tuple[str, str, str], TrainedModel] = {}

    def get(self, ref: ModelRef, tenant: str, device: torch.device) -> LoadedModel:
        # A tenant's own models (uploads, trained jobs) are cached per tenant: never served to another.
        own = ref.job is not None or bool(ref.weights and ref.weights.startswith("upload://"))
        key = (ref.model_dump_json(), tenant if own else "", str(device))
        with self._lock:
            if key in self._models:
                metrics.MODEL_CACHE_HITS.inc()
            else:
                start = time.perf_counter()
                self._models[key] = self._load(ref, tenant, device)
                metrics.MODEL_CACHE_LOADS.inc()
                metrics.MODEL_LOAD_SECONDS.observe(time.perf_counter() - start)
            return self._models[key]

    def _load(self, ref: ModelRef, tenant: str, device: torch.device) -> LoadedModel:
        if ref.job is not None:
            return self._load_trained(ref.job, tenant, device, ref.resize)
        with torch.random.fork_rng(devices=[]):  # a seeded network, without touching the process's generator
            torch.manual_seed(ref.seed)
            module = zoo.build(ref.arch or "", ref.num_classes)
        if ref.weights is not None:
            state = self._state_dict(ref, tenant)
            try:
                module.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise InvalidInput(f"weights {ref.weights} do not fit {ref.arch}: {str(exc)[:500]}") from exc
        zoo.ready_for_inference(module, device)
        names: list[str] | None
        if ref.class_names == "imagenet":
            names = zoo.imagenet_class_names()
        elif ref.class_names == "inception5h":
            names = zoo.inception5h_class_names(str(self.asset("weights/inception5h_labels.txt")))
        elif isinstance(ref.class_names, list):
            names = list(ref.class_names)
        else:
            names = None
        return LoadedModel(module=module, ref=ref, class_names=names)

    def _load_trained(self, job_id: str, tenant: str, device: torch.device, resize: str) -> LoadedModel:
        """A classifier that a training job left: its config says how to feed and read it."""
        trained = self.trained(job_id, tenant, device, "classifier")
        config = trained.config
        ref = ModelRef(
            arch=config["arch"],
            num_classes=config["num_classes"],
            preprocessing=config["preprocessing"],
            input_size=config["input_size"],
            class_names=config["class_names"],
            resize=resize,
        )
        return LoadedModel(module=trained.module, ref=ref, class_names=list(config["class_names"]))

    def trained(self, job_id: str, tenant: str, device: torch.device, model_type: str) -> TrainedModel:
        """The model of a training job of this tenant, rebuilt by the kind that trained it; cached."""
        key = ("trained:" + job_id, tenant, str(device))
        with self._lock:
            cached = self._trained.get(key)
        if cached is not None:
            metrics.MODEL_CACHE_HITS.inc()
            return cached
        start = time.perf_counter()
        try:
            config = self._storage.get_json(keys.model_config(tenant, job_id))
            state = safetensors.torch.load(self._storage.get_bytes(keys.model_weights(tenant, job_id)))
        except NotFound as exc:
            raise InvalidInput(f"job {job_id} has no trained model (it has not finished, or trains nothing)") from exc
        kind = str(config.get("kind", "classifier_train"))  # configs older than the kind registry: classifiers
        found = str(config.get("model_type", "classifier"))
        if found != model_type:
            raise InvalidInput(f"job {job_id} trained a {found} ({kind}); this job needs a {model_type}")
        module = training_plugin(kind).load_model(config, state)
        zoo.ready_for_inference(module, device)
        trained = TrainedModel(module=module, config=config)
        with self._lock:
            self._trained[key] = trained
        metrics.MODEL_CACHE_LOADS.inc()
        metrics.MODEL_LOAD_SECONDS.observe(time.perf_counter() - start)
        return trained

    def state_dict_for(self, weights: str, arch: str, tenant: str) -> dict[str, torch.Tensor]:
        """Weights for fine-tuning: the same resolution rules as a model reference."""
        return self._state_dict(ModelRef(arch=arch, weights=weights), tenant)

    def _state_dict(self, ref: ModelRef, tenant: str) -> dict[str, torch.Tensor]:
        weights = ref.weights or ""
        if weights.startswith("assets:"):
            return safetensors.torch.load_file(str(self.asset(weights.removeprefix("assets:"))))
        if weights.startswith("upload://"):
            upload_id = weights.removeprefix("upload://")
            found = next(iter(self._storage.list(keys.uploads_prefix(tenant, upload_id))), None)
            if found is None:
                raise InvalidInput(f"upload {upload_id} not found")
            return safetensors.torch.load(self._storage.get_bytes(found.key))
        if weights.startswith("s3://"):
            location = checked_location(weights, self._settings)
            try:
                data = open_storage(self._settings, bucket=location.bucket).get_bytes(location.key)
            except NotFound as exc:
                raise InvalidInput(f"weights not found: {weights}") from exc
            return safetensors.torch.load(data)
        if weights.startswith("torchvision:"):
            return self._torchvision_state(ref, weights.removeprefix("torchvision:"))
        raise InvalidInput(f"unsupported weights reference {weights!r}")

    def asset(self, relative: str) -> Path:
        """A file or folder of the operator's assets folder (never outside it)."""
        if self._settings.assets_dir is None:
            raise InvalidInput(f"'assets:{relative}' needs FOVEA_ASSETS_DIR to be set on the worker")
        if relative.startswith("/") or ".." in relative.split("/"):
            raise InvalidInput(f"asset path {relative!r} leaves the assets folder")
        path = Path(self._settings.assets_dir) / relative
        if not path.exists():
            raise InvalidInput(f"not found in the assets folder: {relative}")
        return path

    def _torchvision_state(self, ref: ModelRef, name: str) -> dict[str, torch.Tensor]:
        import torchvision

        enum = torchvision.models.get_model_weights(ref.arch or "")
        weights = enum.DEFAULT if name == "DEFAULT" else enum[name]
        hub = Path(self._settings.torch_home) / "hub" if self._settings.torch_home else Path(torch.hub.get_dir())
        cached = hub / "checkpoints" / Path(weights.url).name
        if not cached.is_file() and not self._settings.allow_downloads:
            raise InvalidInput(
                f"{ref.arch} weights {name} are not in the torch cache ({cached}) and downloads are off "
                "(FOVEA_ALLOW_DOWNLOADS=true allows them)"
            )
        # torchvision's own loader: downloads only if missing (allowed above), loads with weights_only.
        return weights.get_state_dict(progress=False, check_hash=True, model_dir=str(cached.parent))
