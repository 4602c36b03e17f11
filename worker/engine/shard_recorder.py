"""Putting a shard's finished items on record: at once, or (packed outputs) once the pack segment holding
their outputs is stored, so that no item on record points at bytes that are not in the store."""

from __future__ import annotations

from typing import Any

from worker.engine.batch_extras import BatchExtras
from worker.runtime import metrics
from worker.runtime.packing import PackWriter


class ShardRecorder:
    """Puts finished items on record: at once, or (packed outputs) once the pack segment holding their
    outputs is stored, so no item on record points at bytes that are not in the store."""

    def __init__(
        self,
        items: metrics.ItemRecorder,
        results: dict[int, dict[str, Any]],
        pack: PackWriter | None,
        extras: BatchExtras,
        segment_bytes: int,
    ) -> None:
        self.items, self.results, self.pack = items, results, pack
        self.extras, self.segment_bytes = extras, segment_bytes
        self.waiting: dict[int, dict[str, Any]] = {}
        self.ended: list[int] = []

    def begin(self, indices: list[int]) -> None:
        """These items are about to be processed (and those processed since the last batch have ended)."""
        ended, self.ended = self.ended, []
        self.items.coordinator.begin_attempt(self.items.job, indices, ended)

    def record(self, outcome: dict[int, dict[str, Any]], reason: str, has_outputs: bool = True) -> None:
        """``reason``: why the failed ones among ``outcome`` failed (for the metrics)."""
        if self.pack is None or not has_outputs:
            self.items.record(outcome, reason)
            self.results.update(outcome)
            return
        self.waiting.update(outcome)
        # Processed without killing the worker: if a later item does, these are not suspects (they run
        # again, batched, since their outputs die with the unstored segment). Said with the next batch's
        # beginning, in the same round trip.
        self.ended += list(outcome)
        if self.pack.nbytes >= self.segment_bytes:
            self.seal()

    def seal(self) -> None:
        """Store the segment's sums and arrays, then its pack, then record its items (in that order: what is
        on record is in the store)."""
        if self.pack is not None:
            self.extras.store()
            self.pack.seal()
        self.items.record(self.waiting, metrics.PIPELINE)  # only the pipeline's results wait for a pack
        self.results.update(self.waiting)
        self.waiting = {}

    def discard(self) -> None:
        if self.pack is not None:
            self.pack.discard()
        self.extras.drop()
