"""What a batch leaves beside its items' outputs: the pipeline's job-level sums (a mean map) and per-item
array rows (embeddings, codes), each stored keyed by the first item of what they cover, before those items
are recorded. A rerun after a crash re-forms its batches from unrecorded items only, starting at the
same first item, so it overwrites what a dead attempt stored instead of adding to it: every item is
summed exactly once.

With per-item outputs they are stored with each batch. With packed outputs they are gathered for the
pack segment and stored when it is sealed (just before the pack, whose items are recorded after it),
so a shard writes a few objects, not a few per batch.
"""

from __future__ import annotations

import io

import numpy as np

from shared import keys
from shared.storage import Storage
from worker.pipelines.base import Item, Outcome


class BatchExtras:
    def __init__(self, storage: Storage, tenant: str, job_id: str, gather: bool) -> None:
        self.storage, self.tenant, self.job_id, self.gather = storage, tenant, job_id, gather
        self._first: int | None = None
        self._sums: dict[str, np.ndarray] | None = None
        self._rows: dict[str, list[tuple[int, np.ndarray]]] = {}

    def add(self, batch: list[Item], outcomes: list[Outcome], sums: dict[str, np.ndarray] | None) -> None:
        if self._first is None:
            self._first = batch[0].index
        if sums is not None:
            self._sums = dict(sums) if self._sums is None else {k: self._sums[k] + v for k, v in sums.items()}
        for item, outcome in zip(batch, outcomes, strict=True):
            for name, value in outcome.arrays.items():
                self._rows.setdefault(name, []).append((item.index, np.asarray(value, dtype=np.float32)))
        if not self.gather:
            self.store()

    def store(self) -> None:
        """Store what was gathered (keyed by its first item), and start again."""
        first, sums, rows = self._first, self._sums, self._rows
        self.drop()
        if first is None:
            return
        if sums is not None:
            self.storage.put_bytes(keys.batch_sums(self.tenant, self.job_id, first), _npz(sums))
        if rows:
            arrays: dict[str, np.ndarray] = {}
            for name, have in sorted(rows.items()):
                arrays[f"index.{name}"] = np.array([index for index, _ in have], dtype=np.int64)
                arrays[f"rows.{name}"] = np.stack([value for _, value in have])
            self.storage.put_bytes(keys.batch_arrays(self.tenant, self.job_id, first), _npz(arrays))

    def drop(self) -> None:
        self._first, self._sums, self._rows = None, None, {}


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()
