"""Per-item arrays of a whole job (embeddings, codes): the rows every batch stored, assembled once the job
ends into one ``.npy`` per name whose row i is item i (NaN where an item has none). Built on disk, row by
row, so memory stays bounded by a batch whatever the job's size."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np

from shared import keys
from shared.storage import Storage


def write_job_arrays(storage: Storage, tenant: str, job_id: str, total: int, ok: np.ndarray) -> dict[str, str]:
    """Name -> key of each assembled array; rows only for items that finished ok (``ok[i]``: a bitmap,
    a byte an item, not a set of every index)."""
    batches = [info.key for info in storage.list(keys.batch_arrays_prefix(tenant, job_id))]
    if not batches:
        return {}
    with tempfile.TemporaryDirectory() as folder:
        arrays: dict[str, np.memmap] = {}
        for key in batches:
            with np.load(io.BytesIO(storage.get_bytes(key)), allow_pickle=False) as batch:
                for entry in batch.files:
                    if not entry.startswith("rows."):
                        continue
                    name = entry.removeprefix("rows.")
                    rows, indices = batch[entry], batch[f"index.{name}"]
                    if name not in arrays:
                        path = Path(folder) / f"{keys.safe_component(name)}.npy"
                        arrays[name] = np.lib.format.open_memmap(  # type: ignore[assignment]
                            path, "w+", np.float32, (total, *rows.shape[1:])
                        )
                        arrays[name][:] = np.nan
                    for index, row in zip(indices.tolist(), rows, strict=True):
                        if 0 <= index < total and ok[index]:
                            arrays[name][index] = row
        written = {}
        for name, array in arrays.items():
            array.flush()
            key = keys.job_array(tenant, job_id, name)
            with open(str(array.filename), "rb") as handle:
                storage.put_stream(key, handle, "application/octet-stream")
            written[name] = key
            del array
        return written
