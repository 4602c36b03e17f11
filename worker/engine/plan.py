"""Planning: read a job's input once and split it into shards of bounded size.

Archive members are repacked into one small tar per shard (the WebDataset habit): the input is read
in a single streaming pass whatever its format, and each shard task reads only its own bytes. An
object-store prefix needs no repacking: each shard gets a list of keys. Members that cannot become
items (unsafe names, links, over the size limit, a truncated tail) are recorded as failed items here.
Re-running a plan over the same input yields the same indices and keys, so a redelivered planning
task overwrites what it wrote before.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from shared import keys
from shared.errors import InvalidInput
from shared.specs.base import SpecBase, TargetsSpec
from shared.storage import open_storage
from shared.storage.base import ObjectInfo
from worker.inputs.archive import iter_members, unsafe_reason
from worker.inputs.captioned_shapes import make_scenes
from worker.inputs.shapes import make_shapes
from worker.kinds import map_plugin
from worker.pipelines.plugin import Sidecars
from worker.runtime.services import Services
from worker.runtime.sources import ArchiveSource, BuiltinSource, PrefixSource, resolve_input


@dataclass
class _ShardWriter:
    """Accumulates one shard's members in a spooled tar, then stores it."""

    services: Services
    tenant: str
    job_id: str
    index: int
    entries: list[list[Any]] = field(default_factory=list)
    nbytes: int = 0

    def __post_init__(self) -> None:
        self._spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115 - closed in flush()
        self._tar = tarfile.open(fileobj=self._spool, mode="w")  # noqa: SIM115 - closed in flush()

    def add(self, item_index: int, name: str, data: bytes, truth: dict[str, Any] | None = None) -> None:
        info = tarfile.TarInfo(f"{item_index:08d}")
        info.size = len(data)
        self._tar.addfile(info, io.BytesIO(data))
        self.entries.append([item_index, name] if truth is None else [item_index, name, truth])
        self.nbytes += len(data)

    def flush(self) -> dict[str, Any]:
        self._tar.close()
        self._spool.seek(0)
        self.services.storage.put_stream(keys.shard_input(self.tenant, self.job_id, self.index), self._spool)  # type: ignore[arg-type]
        self._spool.close()
        return {"shard": self.index, "source": "tar", "items": self.entries}


def build_plan(services: Services, tenant: str, job_id: str, spec: SpecBase) -> dict[str, Any]:
    """Plan the job's items into shards; the kind's sidecar reader (if it has one) takes the members that
    describe images (captions) and its ground truth rides with each image's shard entry."""
    settings = services.settings
    if isinstance(spec, TargetsSpec):  # the items are the spec's own targets
        # One batch per shard: a render batch is minutes of GPU work, and small shards spread a big job
        # over every worker.
        per_shard = min(settings.shard_items, spec.batch_size)
        shards, errors, total = _plan_targets(spec.render_targets(), per_shard)
        return _store_plan(services, tenant, job_id, shards, errors, total)
    uri = spec.input_uri()
    if uri is None:
        raise InvalidInput(f"a {spec.kind} job has no input to plan")
    source = resolve_input(uri, tenant, settings, services.storage)
    make_reader = map_plugin(spec.kind).sidecars
    reader = make_reader(spec) if make_reader is not None else None
    if isinstance(source, BuiltinSource):
        shards, errors, total = _plan_builtin(services, tenant, job_id, source)
    elif isinstance(source, PrefixSource):
        shards, errors, total = _plan_prefix(services, tenant, job_id, source, reader)
    else:
        shards, errors, total = _plan_archive(services, tenant, job_id, source, reader)
    if reader is not None:
        _attach_truth(shards, reader)
    return _store_plan(services, tenant, job_id, shards, errors, total)


def _attach_truth(shards: list[dict[str, Any]], reader: Sidecars) -> None:
    """Each image's described truth, appended to its entry (``[index, name, truth]`` in a tar shard,
    ``[index, name, key, truth]`` in a key shard)."""
    reader.finish({str(entry[1]) for shard in shards for entry in shard["items"]})
    for shard in shards:
        for entry in shard["items"]:
            truth = reader.truth(str(entry[1]))
            if truth is not None:
                entry.append(truth)


def _store_plan(
    services: Services,
    tenant: str,
    job_id: str,
    shards: list[dict[str, Any]],
    errors: list[dict[str, Any]],
    total: int,
) -> dict[str, Any]:
    for shard in shards:
        services.storage.put_json(keys.shard_entries(tenant, job_id, shard["shard"]), shard)
    plan = {"total": total, "shards": len(shards), "errors": errors}
    services.storage.put_json(keys.plan(tenant, job_id), plan)
    return plan


def load_shard_entries(services: Services, tenant: str, job_id: str, shard: int) -> dict[str, Any]:
    return dict(services.storage.get_json(keys.shard_entries(tenant, job_id, shard)))


def _plan_archive(
    services: Services, tenant: str, job_id: str, source: ArchiveSource, reader: Sidecars | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    settings = services.settings
    shards: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    writer: _ShardWriter | None = None
    total = 0
    try:
        members = iter_members(source.stream, source.name, max_bytes=settings.max_item_bytes)
        for member in members:
            if reader is not None and member.data is not None and reader.claims(member.name):
                reader.read(member.name, member.data)
                continue
            if total >= settings.max_items_per_job:
                raise InvalidInput(
                    f"input holds more than {settings.max_items_per_job} items (FOVEA_MAX_ITEMS_PER_JOB)"
                )
            index, total = total, total + 1
            if member.error is not None or member.data is None:
                errors.append({"index": index, "name": member.name, "status": "failed", "error": member.error})
                continue
            if writer is None:
                writer = _ShardWriter(services, tenant, job_id, len(shards))
            writer.add(index, member.name, member.data)
            if len(writer.entries) >= settings.shard_items or writer.nbytes >= settings.shard_bytes:
                shards.append(writer.flush())
                writer = None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    finally:
        source.stream.close()
    if writer is not None:
        shards.append(writer.flush())
    return shards, errors, total


def _plan_prefix(
    services: Services, tenant: str, job_id: str, source: PrefixSource, reader: Sidecars | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    settings = services.settings
    shards: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    current: list[list[Any]] = []
    nbytes = 0
    total = 0
    info: ObjectInfo
    described = open_storage(settings, bucket=source.bucket) if reader is not None else None
    for info in source.objects:
        if info.key.endswith("/"):
            continue
        name = info.key[len(source.prefix) :]
        if reader is not None and described is not None and reader.claims(name):
            if info.size > settings.max_item_bytes:
                raise InvalidInput(f"{name}: {info.size} bytes, over the limit of {settings.max_item_bytes}")
            reader.read(name, described.get_bytes(info.key))
            continue
        if total >= settings.max_items_per_job:
            raise InvalidInput(f"input holds more than {settings.max_items_per_job} items (FOVEA_MAX_ITEMS_PER_JOB)")
        index, total = total, total + 1
        reason = unsafe_reason(name)
        if info.size > settings.max_item_bytes:
            reason = f"object is {info.size} bytes, over the limit of {settings.max_item_bytes}"
        if reason:
            errors.append({"index": index, "name": name, "status": "failed", "error": reason})
            continue
        current.append([index, name, info.key])
        nbytes += info.size
        if len(current) >= settings.shard_items or nbytes >= settings.shard_bytes:
            shards.append({"shard": len(shards), "source": "keys", "bucket": source.bucket, "items": current})
            current, nbytes = [], 0
    if current:
        shards.append({"shard": len(shards), "source": "keys", "bucket": source.bucket, "items": current})
    if total == 0:
        raise InvalidInput(f"no objects under s3://{source.bucket}/{source.prefix}")
    return shards, errors, total


def _plan_targets(
    targets: list[tuple[str, dict[str, Any]]], per_shard: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Items that are parameters: ``[index, name, params]`` rows, ``per_shard`` to a shard."""
    rows = [[index, name, params] for index, (name, params) in enumerate(targets)]
    shards = [
        {"shard": number, "source": "targets", "items": rows[start : start + per_shard]}
        for number, start in enumerate(range(0, len(rows), per_shard))
    ]
    return shards, [], len(rows)


def _plan_builtin(
    services: Services, tenant: str, job_id: str, source: BuiltinSource
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Generated images as PNG items, each with its ground truth (class and box, or captions and boxes)."""
    if source.count > services.settings.max_items_per_job:
        raise InvalidInput(f"builtin:{source.name} n={source.count} is over FOVEA_MAX_ITEMS_PER_JOB")
    shards: list[dict[str, Any]] = []
    writer: _ShardWriter | None = None
    for index, (name, image, truth) in enumerate(_builtin_items(source)):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        if writer is None:
            writer = _ShardWriter(services, tenant, job_id, len(shards))
        writer.add(index, name, buffer.getvalue(), truth)
        if len(writer.entries) >= services.settings.shard_items:
            shards.append(writer.flush())
            writer = None
    if writer is not None:
        shards.append(writer.flush())
    return shards, [], source.count


def _builtin_items(source: BuiltinSource) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    if source.name == "shapes":
        data = make_shapes(source.count, 64, source.seed)
        for index in range(source.count):
            label = int(data.labels[index])
            truth = {"class": label, "label": data.classes[label], "box": [int(v) for v in data.boxes[index]]}  # type: ignore[index]
            yield f"shapes/{index:06d}-{data.classes[label]}.png", data.images[index], truth
    elif source.name == "captioned_shapes":
        for index, scene in enumerate(make_scenes(source.count, 128, source.seed, "apply")):
            yield f"captioned_shapes/{index:06d}.png", scene.image, scene.truth
    else:
        raise InvalidInput(f"unknown built-in input {source.name!r}")
