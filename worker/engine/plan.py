"""Planning: a job's input split into shards of bounded size, in bounded steps, each shard sent to the
workers as soon as it is planned.

A step plans shards until ``FOVEA_PLAN_STEP_S`` has passed, then stores where it stopped in ``plan.json``
(the input's cursor, the shards so far and the first item of each); the next step goes on from there, so
an input of any size plans within the task time limit (``plan_readers`` says how each format resumes).
Every shard covers a contiguous range of item indices, its members that cannot become items (unsafe
names, links, over the size limit, a truncated tail) included as failed items: a results page at any
offset reads only the shards it overlaps. A redelivered step starts again from the same cursor and
writes the same shards under the same keys (a shard's bounds do not depend on time, only where a step
stops does).

Three inputs plan in one step: render targets and built-in sets (their size is in the spec), and inputs
of kinds that read sidecars (a captions file may come last and describe any image, so shards wait for
the end of the input).
"""

from __future__ import annotations

import io
import tarfile
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PIL import Image

from shared import keys
from shared.errors import InvalidInput, NotFound
from shared.queueing import SHARD_TASK
from shared.settings import Settings
from shared.specs.base import SpecBase, TargetsSpec
from shared.work import shard_task_id
from worker.engine.plan_readers import Planned, open_reader
from worker.inputs.builtin import BuiltinSource, parse_builtin
from worker.inputs.captioned_shapes import make_scenes
from worker.inputs.mnist_tasks import digit_items
from worker.inputs.shapes import make_shapes
from worker.kinds import map_plugin
from worker.pipelines.plugin import Sidecars
from worker.runtime.services import Services


def new_state() -> dict[str, Any]:
    return {"step": 0, "complete": False, "total": 0, "shards": 0, "starts": [], "cursor": None}


def load_state(services: Services, tenant: str, job_id: str) -> dict[str, Any] | None:
    try:
        return dict(services.storage.get_json(keys.plan(tenant, job_id)))
    except NotFound:
        return None


def load_shard_entries(services: Services, tenant: str, job_id: str, shard: int) -> dict[str, Any]:
    return dict(services.storage.get_json(keys.shard_entries(tenant, job_id, shard)))


_STORING_AHEAD = 2
"""Shards being stored on background threads while planning reads on: reading and the store's round trips
overlap (planning a plain tar is mostly waiting for PUTs otherwise). Memory: this many shards more."""


class _Shards:
    """The shards a step plans: each closed at ``shard_items`` entries or ``shard_bytes`` bytes, then stored
    and sent, in order (or held until the end of the input, when sidecars are still to come). A context:
    leaving it waits for every store, and sends what was stored only when no error left it."""

    def __init__(
        self, services: Services, tenant: str, job_id: str, state: dict[str, Any], hold: bool, per_shard: int = 0
    ) -> None:
        self.services, self.tenant, self.job_id, self.state, self.hold = services, tenant, job_id, state, hold
        self.settings = services.settings
        self.per_shard = per_shard or self.settings.shard_items
        self.open: dict[str, Any] | None = None
        self.nbytes = 0
        self.held: list[dict[str, Any]] = []
        self._spool: Any = None
        self._tar: tarfile.TarFile | None = None
        self._pool = ThreadPoolExecutor(_STORING_AHEAD, thread_name_prefix="fovea-plan-store")
        self._storing: deque[tuple[Future[None], dict[str, Any]]] = deque()

    def __enter__(self) -> _Shards:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        try:
            if error is None:
                self._drain(0)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=error is not None)

    def _entry(self, source: str, where: dict[str, Any]) -> dict[str, Any]:
        if self.open is None:
            number = int(self.state["shards"])
            self.open = {"shard": number, "source": source, **where, "first": int(self.state["total"]), "count": 0}
            self.open |= {"items": [], "errors": [], "truth": {}}
            self.nbytes = 0
            if source == "tar":
                self._spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115 - closed in _store()
                self._tar = tarfile.open(fileobj=self._spool, mode="w")  # noqa: SIM115 - closed in close()
        return self.open

    def next_index(self) -> int:
        if int(self.state["total"]) >= self.settings.max_items_per_job:
            raise InvalidInput(
                f"input holds more than {self.settings.max_items_per_job} items (FOVEA_MAX_ITEMS_PER_JOB)"
            )
        return int(self.state["total"])

    def add(
        self,
        source: str,
        where: dict[str, Any],
        name: str,
        row: list[Any],
        data: bytes | None,
        size: int,
        truth: dict[str, Any] | None = None,
    ) -> None:
        """An item; ``data`` is repacked into the shard's own tar, else ``row`` says where it lies."""
        index = self.next_index()
        entry = self._entry(source, where)
        if data is not None and self._tar is not None:
            info = tarfile.TarInfo(f"{index:08d}")
            info.size = len(data)
            self._tar.addfile(info, io.BytesIO(data))
        entry["items"].append([index, name, *row])
        if truth is not None:
            entry["truth"][str(index)] = truth
        self._counted(entry, size)

    def add_error(self, source: str, where: dict[str, Any], name: str, error: str) -> None:
        index = self.next_index()
        entry = self._entry(source, where)
        entry["errors"].append({"index": index, "name": name, "status": "failed", "error": error})
        self._counted(entry, 0)

    def _counted(self, entry: dict[str, Any], size: int) -> None:
        entry["count"] += 1
        self.state["total"] = int(self.state["total"]) + 1
        self.nbytes += size
        if entry["count"] >= self.per_shard or self.nbytes >= self.settings.shard_bytes:
            self.close()

    def close(self) -> bool:
        """Close the open shard (if any): it is stored (its repacked tar, then its entries) on a storing
        thread, and sent once stored, in order."""
        entry, self.open = self.open, None
        if entry is None:
            return False
        spool, tar, self._spool, self._tar = self._spool, self._tar, None, None
        if tar is not None:
            tar.close()
        self.state["starts"].append(entry["first"])
        self.state["shards"] = int(self.state["shards"]) + 1
        self._storing.append((self._pool.submit(self._store, entry, spool), entry))
        self._drain(_STORING_AHEAD)
        return True

    def _store(self, entry: dict[str, Any], spool: Any) -> None:
        if spool is not None:
            try:
                spool.seek(0)
                self.services.storage.put_stream(keys.shard_input(self.tenant, self.job_id, entry["shard"]), spool)
            finally:
                spool.close()
        if not self.hold:
            self.services.storage.put_json(keys.shard_entries(self.tenant, self.job_id, entry["shard"]), entry)

    def _drain(self, keep: int) -> None:
        """Wait for the oldest stores until ``keep`` are left; send (or hold) each stored shard."""
        while len(self._storing) > keep:
            future, entry = self._storing.popleft()
            future.result()  # a store's error (an outage) is the step's: it is raised here
            if self.hold:
                self.held.append(entry)
            else:
                self._send(entry)

    def _send(self, entry: dict[str, Any]) -> None:
        shard = int(entry["shard"])
        self.services.submit(self.job_id, shard_task_id(shard), SHARD_TASK, (self.tenant, self.job_id, shard))

    def release(self, reader: Sidecars | None) -> None:
        """Send the held shards, each image's described truth attached (once every sidecar was read)."""
        self._drain(0)
        if reader is not None:
            reader.finish({str(row[1]) for entry in self.held for row in entry["items"]})
        for entry in self.held:
            if reader is not None:
                for row in entry["items"]:
                    truth = reader.truth(str(row[1]))
                    if truth is not None:
                        entry["truth"][str(row[0])] = truth
            self.services.storage.put_json(keys.shard_entries(self.tenant, self.job_id, entry["shard"]), entry)
            self._send(entry)
        self.held = []


def plan_step(services: Services, tenant: str, job_id: str, spec: SpecBase, step: int) -> dict[str, Any]:
    """Run planning step ``step`` (if it is the one due) and return the plan as it then stands."""
    state = load_state(services, tenant, job_id) or new_state()
    if state["complete"] or int(state["step"]) != step:
        return state  # done already: a redelivered step
    if isinstance(spec, TargetsSpec):
        _plan_targets(services, tenant, job_id, spec, state)
    elif (uri := spec.input_uri()) is None:
        raise InvalidInput(f"a {spec.kind} job has no input to plan")
    elif uri.startswith("builtin:"):
        _plan_builtin(services, tenant, job_id, parse_builtin(uri), state)
    else:
        make_reader = map_plugin(spec.kind).sidecars
        _plan_input(services, tenant, job_id, uri, state, make_reader(spec) if make_reader is not None else None)
    state["step"] = step + 1
    services.storage.put_json(keys.plan(tenant, job_id), state)
    return state


def _plan_input(
    services: Services, tenant: str, job_id: str, uri: str, state: dict[str, Any], sidecars: Sidecars | None
) -> None:
    settings = services.settings
    # The step's time counts from here: re-entering a compressed archive (decompressing up to the cursor)
    # is part of it. A step plans at least one shard, so planning always moves on.
    deadline = time.monotonic() + (float("inf") if sidecars is not None else settings.plan_step_s)
    reader = open_reader(settings, services.storage, tenant, uri, state["cursor"])
    where = {"object": reader.location} if reader.source in ("range", "zip") else {}
    if reader.source == "keys":
        where = {"bucket": reader.location["bucket"]}
    stopped = False
    with _Shards(services, tenant, job_id, state, hold=sidecars is not None) as shards:
        try:
            for member in reader.members:
                if sidecars is not None and member.error is None and sidecars.claims(member.name):
                    _read_sidecar(sidecars, member, settings.max_item_bytes)
                    continue
                state["cursor"] = member.cursor
                if member.error is not None:
                    shards.add_error(reader.source, where, member.name, member.error)
                else:
                    data = member.read() if reader.source == "tar" else None
                    shards.add(reader.source, where, member.name, member.row, data, member.size)
                if shards.open is None and time.monotonic() >= deadline:
                    stopped = True
                    break
        finally:
            reader.close()
        shards.close()
        shards.release(sidecars)
    if not stopped:
        state["complete"] = True
        if int(state["total"]) == 0 and reader.source == "keys":
            raise InvalidInput(f"no objects under s3://{reader.location['bucket']}/{uri.split('/', 3)[-1]}")


def _read_sidecar(sidecars: Sidecars, member: Planned, limit: int) -> None:
    if member.size > limit:
        raise InvalidInput(f"{member.name}: {member.size} bytes, over the limit of {limit}")
    sidecars.read(member.name, member.read())


def _plan_targets(services: Services, tenant: str, job_id: str, spec: TargetsSpec, state: dict[str, Any]) -> None:
    """Items that are parameters, one render batch to a shard: a batch is minutes of GPU work, and small
    shards spread a big job over every worker."""
    per_shard = min(services.settings.shard_items, spec.batch_size)
    with _Shards(services, tenant, job_id, state, hold=False, per_shard=per_shard) as shards:
        for name, params in spec.render_targets():
            shards.add("targets", {}, name, [params], None, 0)
        shards.close()
    state["complete"] = True


def _plan_builtin(services: Services, tenant: str, job_id: str, source: BuiltinSource, state: dict[str, Any]) -> None:
    """Generated images as PNG items, each with its ground truth (class and box, or captions and boxes)."""
    if source.count > services.settings.max_items_per_job:
        raise InvalidInput(f"builtin:{source.name} n={source.count} is over FOVEA_MAX_ITEMS_PER_JOB")
    with _Shards(services, tenant, job_id, state, hold=False) as shards:
        for name, image, truth in _builtin_items(source, services.settings):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            shards.add("tar", {}, name, [], buffer.getvalue(), 0, truth)
        shards.close()
    state["complete"] = True


def _builtin_items(source: BuiltinSource, settings: Settings) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    if source.name == "shapes":
        data = make_shapes(source.count, source.side, source.seed)
        for index in range(source.count):
            label = int(data.labels[index])
            truth = {"class": label, "label": data.classes[label], "box": [int(v) for v in data.boxes[index]]}  # type: ignore[index]
            yield f"shapes/{index:06d}-{data.classes[label]}.png", data.images[index], truth
    elif source.name == "captioned_shapes":
        for index, scene in enumerate(make_scenes(source.count, source.side, source.seed, "apply")):
            yield f"captioned_shapes/{index:06d}.png", scene.image, scene.truth
    elif source.name.startswith("mnist"):
        scratch = settings.data_dir.resolve() / "scratch" / "mnist"
        assets, sizes = settings.assets_dir, (source.size, source.distractors)
        yield from digit_items(assets, scratch, source.name, source.count, source.seed, *sizes)
    else:
        raise InvalidInput(f"unknown built-in input {source.name!r}")
