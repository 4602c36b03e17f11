"""Job-level maps: the per-batch sums that a pipeline reported, added up once the job ends."""

from __future__ import annotations

import io

import numpy as np

from shared import keys
from shared.storage import Storage
from worker.pictures import images as render


def write_mean_map(storage: Storage, tenant: str, job_id: str) -> dict[str, str] | None:
    """Mean map per pixel over every item summed by the pipeline; None when there were no sums."""
    total: np.ndarray | None = None
    count = 0
    for info in storage.list(keys.batch_sums_prefix(tenant, job_id)):
        with np.load(io.BytesIO(storage.get_bytes(info.key)), allow_pickle=False) as sums:
            total = sums["map_sum"] if total is None else total + sums["map_sum"]
            count += int(sums["count"])
    if total is None or count == 0:
        return None
    mean = (total / count).astype(np.float32)
    npy, png = keys.mean_map(tenant, job_id, "npy"), keys.mean_map(tenant, job_id, "png")
    storage.put_bytes(npy, render.encode_npy(mean), "application/octet-stream")
    picture = render.colorize(render.normalise(mean, 99.5), "inferno")
    storage.put_bytes(png, render.encode_png(picture), "image/png")
    relative = {"mean_map": npy, "mean_map_png": png}
    return {name: keys.relative_to_job(tenant, job_id, key) for name, key in relative.items()} | {"items": str(count)}
