"""A job's folder as its summaries and its report use it: files by their path relative to the folder
(never whole keys), outputs inside packs included.

The report reads a few pictures of each of its gallery's items; with packed outputs those lie close
together in one or two packs, so they are read first as one range a pack (within a memory budget)
instead of one small range read each.
"""

from __future__ import annotations

from typing import Any

from shared import keys
from shared.packs import parse_ref, read_packed
from shared.storage import Storage

SPAN_BUDGET = 64 * 1024 * 1024
"""Bytes of packs read ahead for the report at most; past it, outputs are read one by one."""


class JobFiles:
    def __init__(self, storage: Storage, tenant: str, job_id: str) -> None:
        self.storage, self.tenant, self.job_id = storage, tenant, job_id
        self._spans: dict[str, tuple[int, bytes]] = {}

    def read(self, path: str) -> bytes:
        """A file of the job, by its path relative to the job's folder (as manifests name them): a whole
        object, or an output in a pack."""
        packed = parse_ref(path)
        if packed is None:
            return self.storage.get_bytes(keys.in_job(self.tenant, self.job_id, path))
        kept = self._spans.get(packed.pack)
        if kept is not None and kept[0] <= packed.offset and packed.offset + packed.size <= kept[0] + len(kept[1]):
            start = packed.offset - kept[0]
            return kept[1][start : start + packed.size]
        return read_packed(self.storage, keys.in_job(self.tenant, self.job_id, packed.pack), packed)

    def read_ahead(self, items: list[dict[str, Any]]) -> None:
        """Read the packed outputs of ``items`` now, one range a pack (from its first to its last output
        among them), as long as they fit the budget."""
        spans: dict[str, list[int]] = {}
        for item in items:
            for path in item.get("outputs", {}).values():
                ref = parse_ref(path)
                if ref is not None:
                    span = spans.setdefault(ref.pack, [ref.offset, ref.offset + ref.size])
                    span[0], span[1] = min(span[0], ref.offset), max(span[1], ref.offset + ref.size)
        budget = SPAN_BUDGET
        for pack, (start, stop) in spans.items():
            if stop - start > budget:
                continue
            with self.storage.open(keys.in_job(self.tenant, self.job_id, pack), start, stop - start) as stream:
                data = stream.read()
            self._spans[pack] = (start, data)
            budget -= len(data)

    def write_job(self, output: str, data: bytes, content_type: str) -> str:
        key = keys.job_output(self.tenant, self.job_id, output)
        self.storage.put_bytes(key, data, content_type)
        return keys.relative_to_job(self.tenant, self.job_id, key)
