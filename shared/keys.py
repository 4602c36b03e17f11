"""Every object-store key the service writes, in one place.

Layout under the storage root (one tenant's data never shares a prefix with another's)::

    live/{job_id}.json                                 a job that has not finished yet (its tenant)
    tenants/{tenant}/records/{job_id}.json             the durable job record (listed cheaply, oldest first)
    tenants/{tenant}/newest/{inverted time}-{job_id}   an empty object per job, listed newest first
    tenants/{tenant}/jobs/{job_id}/plan.json           the plan as it stands: planning's cursor, each shard's first item
    tenants/{tenant}/jobs/{job_id}/inputs/{shard}.json a shard's entries (index, name, where its bytes are, truth)
    tenants/{tenant}/jobs/{job_id}/inputs/{shard}.tar  items repacked per shard from a compressed archive
    tenants/{tenant}/jobs/{job_id}/shards/{shard}.json shard manifest (one entry per item of the shard)
    tenants/{tenant}/jobs/{job_id}/index.json          an ended job's shard index: first item, ok and failed counts
    tenants/{tenant}/jobs/{job_id}/items/{index}/{output}   per-item outputs
    tenants/{tenant}/jobs/{job_id}/packs/{shard}/{first}-{token}.tar   packed outputs (members INDEX.NAME.EXT)
    tenants/{tenant}/jobs/{job_id}/job/{name}          pictures of the whole job (a contact sheet, filters)
    tenants/{tenant}/jobs/{job_id}/sums/{first}.npz    per-batch sums for job-level maps (exactly once)
    tenants/{tenant}/jobs/{job_id}/aggregate/...       the job-level mean map (.npy and .png)
    tenants/{tenant}/jobs/{job_id}/arrays/{name}.npy   per-item arrays (embeddings), row i = item i
    tenants/{tenant}/jobs/{job_id}/checkpoints/...     training checkpoints and the pointer to the newest
    tenants/{tenant}/jobs/{job_id}/model/...           a trained model: model.safetensors and config.json
    tenants/{tenant}/jobs/{job_id}/files/{name}        a training job's files (metrics, curves), and files.json
    tenants/{tenant}/jobs/{job_id}/manifest.json | summary.json | report/index.html
    tenants/{tenant}/uploads/{upload_id}/{filename}    uploaded archives

Item outputs are keyed by the item's index in the plan, not its name: the key is deterministic (a
redelivered shard overwrites, never duplicates) and no archive member name can escape the prefix.
"""

from __future__ import annotations

import re

from shared.errors import NotFound
from shared.settings import IDENTIFIER

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_component(text: str, fallback: str = "file") -> str:
    """One path component made of safe characters only (never '..' or empty), for names that are not
    identities (a file name, an output name): different names may map to one component."""
    cleaned = _SAFE.sub("_", text).strip("._") or fallback
    return cleaned[:120]


def identifier(value: str, what: str = "id") -> str:
    """A tenant, job or upload id, used as it is: never rewritten, so no two spellings meet in one key.
    Anything else cannot name a stored object (NotFound: a 404 at the API)."""
    if not IDENTIFIER.match(value):
        raise NotFound(f"no such {what}")
    return value


LIVE = "live/"
"""One small object per job that is not finished yet (its tenant): what the reconciler walks when the
coordinator has lost its state. Outside every tenant's area."""

UNUSED_UPLOADS = "uploads-unused/"
"""One small object per upload that no job has used yet (its tenant, when it was made): swept when old."""

TENANTS = "tenants/"
"""The root of every tenant's data: the service's own area of the store."""

SERVICE_ROOTS = (TENANTS, LIVE, UNUSED_UPLOADS)
"""Every top-level prefix the service writes under its storage root: its own areas, which no URI a user
gives (an input, weights) may reach. A key function here that starts anywhere else is a bug (tested)."""


def unused_upload(upload_id: str) -> str:
    return f"{UNUSED_UPLOADS}{identifier(upload_id, 'upload')}.json"


def live_job(job_id: str) -> str:
    return f"{LIVE}{identifier(job_id, 'job')}.json"


def tenant_prefix(tenant: str) -> str:
    return f"{TENANTS}{identifier(tenant, 'tenant')}/"


def relative_to_job(tenant: str, job_id: str, key: str) -> str:
    """A key of the job's folder as the job's manifest and summary name it: relative to that folder, the
    way a downloaded results folder is laid out (``items/00000003/overlay.jpg``)."""
    prefix = job_prefix(tenant, job_id)
    if not key.startswith(prefix):
        raise ValueError(f"{key} is not in the folder of job {job_id}")
    return key[len(prefix) :]


def in_job(tenant: str, job_id: str, relative: str) -> str:
    """The key of a path relative to the job's folder (never outside it)."""
    parts = relative.split("/")
    if relative.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise NotFound(f"no such file of job {job_id}")
    return job_prefix(tenant, job_id) + relative


def jobs_prefix(tenant: str) -> str:
    return tenant_prefix(tenant) + "jobs/"


def job_prefix(tenant: str, job_id: str) -> str:
    return f"{jobs_prefix(tenant)}{identifier(job_id, 'job')}/"


def records_prefix(tenant: str) -> str:
    return tenant_prefix(tenant) + "records/"


def newest_prefix(tenant: str) -> str:
    return tenant_prefix(tenant) + "newest/"


def newest_entry(tenant: str, job_id: str) -> str:
    """An empty object per job whose key sorts newest first."""
    return newest_prefix(tenant) + _newest_name(job_id)


def _newest_name(job_id: str) -> str:
    """A name that sorts newest first (ids start with their creation time in milliseconds, as 12 hex
    digits; the name holds that time inverted, then the id)."""
    identifier(job_id, "job")
    stamp = job_id[2:14]
    millis = int(stamp, 16) if len(stamp) == 12 and all(c in "0123456789abcdef" for c in stamp) else 0
    return f"{0xFFFFFFFFFFFF - millis:012x}-{job_id}"


def jobs_index_prefix(tenant: str, facet: str) -> str:
    """Empty objects naming the tenant's jobs that share a facet (``kind-NAME``, ``status-NAME``, ``open``),
    newest first, so that a filtered jobs list reads only the jobs that match."""
    return f"{tenant_prefix(tenant)}index/{facet}/"


def jobs_index_entry(tenant: str, facet: str, job_id: str) -> str:
    return jobs_index_prefix(tenant, facet) + _newest_name(job_id)


def jobs_index_built(tenant: str) -> str:
    """Written once the tenant's jobs from before the facet index have been entered in it."""
    return f"{tenant_prefix(tenant)}index/built"


def job_record(tenant: str, job_id: str) -> str:
    return f"{records_prefix(tenant)}{identifier(job_id, 'job')}.json"


def plan(tenant: str, job_id: str) -> str:
    return job_prefix(tenant, job_id) + "plan.json"


def shard_input(tenant: str, job_id: str, shard: int) -> str:
    return job_prefix(tenant, job_id) + f"inputs/{shard:06d}.tar"


def shard_entries(tenant: str, job_id: str, shard: int) -> str:
    return job_prefix(tenant, job_id) + f"inputs/{shard:06d}.json"


def shard_manifest(tenant: str, job_id: str, shard: int) -> str:
    return job_prefix(tenant, job_id) + f"shards/{shard:06d}.json"


def results_index(tenant: str, job_id: str) -> str:
    """An ended job's shard index (``shared.results``): what its results pages read first."""
    return job_prefix(tenant, job_id) + "index.json"


def result_view(tenant: str, job_id: str, view: str, chunk: int | None = None) -> str:
    """An ended job's items filtered and sorted once (``shared.result_views``): its description when
    ``chunk`` is None, else one chunk of its items in order."""
    base = job_prefix(tenant, job_id) + f"views/{safe_component(view)}/"
    return base + ("view.json" if chunk is None else f"{chunk:06d}.json")


def shard_manifests_prefix(tenant: str, job_id: str) -> str:
    return job_prefix(tenant, job_id) + "shards/"


def item_output(tenant: str, job_id: str, index: int, output: str) -> str:
    return job_prefix(tenant, job_id) + f"items/{index:08d}/{safe_component(output)}"


def pack(tenant: str, job_id: str, shard: int, first_index: int, token: str) -> str:
    """One segment of a shard's packed outputs, named by its first item and a token of the attempt that
    wrote it (an attempt never overwrites another's pack, whose offsets items may already point into)."""
    return job_prefix(tenant, job_id) + f"packs/{shard:06d}/{first_index:08d}-{safe_component(token)}.tar"


def packs_prefix(tenant: str, job_id: str) -> str:
    return job_prefix(tenant, job_id) + "packs/"


def job_output(tenant: str, job_id: str, output: str) -> str:
    """A picture of the whole job (a contact sheet, a filter grid), beside the per-item outputs."""
    return job_prefix(tenant, job_id) + f"job/{safe_component(output)}"


def job_outputs_prefix(tenant: str, job_id: str) -> str:
    return job_prefix(tenant, job_id) + "job/"


def progress_snapshot(tenant: str, job_id: str) -> str:
    """The job's progress as of its last finished shard: what readers see while the coordinator is away."""
    return job_prefix(tenant, job_id) + "progress.json"


def manifest(tenant: str, job_id: str) -> str:
    return job_prefix(tenant, job_id) + "manifest.json"


def summary(tenant: str, job_id: str) -> str:
    return job_prefix(tenant, job_id) + "summary.json"


def report(tenant: str, job_id: str) -> str:
    return job_prefix(tenant, job_id) + "report/index.html"


def upload(tenant: str, upload_id: str, filename: str) -> str:
    return tenant_prefix(tenant) + f"uploads/{identifier(upload_id, 'upload')}/{safe_component(filename)}"


def uploads_prefix(tenant: str, upload_id: str) -> str:
    return tenant_prefix(tenant) + f"uploads/{identifier(upload_id, 'upload')}/"


def checkpoint(tenant: str, job_id: str, step: int) -> str:
    return job_prefix(tenant, job_id) + f"checkpoints/step-{step:06d}.safetensors"


def checkpoint_latest(tenant: str, job_id: str) -> str:
    """A small JSON pointer to the newest complete checkpoint (written after the checkpoint itself)."""
    return job_prefix(tenant, job_id) + "checkpoints/latest.json"


def model_weights(tenant: str, job_id: str) -> str:
    return job_prefix(tenant, job_id) + "model/model.safetensors"


def model_config(tenant: str, job_id: str) -> str:
    return job_prefix(tenant, job_id) + "model/config.json"


def job_file(tenant: str, job_id: str, name: str) -> str:
    """A file a training job writes for people (metrics.jsonl, curves.png), listed in its results."""
    return job_prefix(tenant, job_id) + f"files/{safe_component(name)}"


def job_files_index(tenant: str, job_id: str) -> str:
    """Name -> key of a job's files (the model, its config, metrics, pictures): its results' ``files``."""
    return job_prefix(tenant, job_id) + "files.json"


def batch_sums(tenant: str, job_id: str, first_index: int) -> str:
    return job_prefix(tenant, job_id) + f"sums/{first_index:08d}.npz"


def batch_sums_prefix(tenant: str, job_id: str) -> str:
    return job_prefix(tenant, job_id) + "sums/"


def batch_arrays(tenant: str, job_id: str, first_index: int) -> str:
    """One batch's per-item arrays (with the items' indices), keyed by its first item."""
    return job_prefix(tenant, job_id) + f"arrays/batches/{first_index:08d}.npz"


def batch_arrays_prefix(tenant: str, job_id: str) -> str:
    return job_prefix(tenant, job_id) + "arrays/batches/"


def job_array(tenant: str, job_id: str, name: str) -> str:
    """A per-item array of the whole job: row i is item i."""
    return job_prefix(tenant, job_id) + f"arrays/{safe_component(name)}.npy"


def mean_map(tenant: str, job_id: str, extension: str) -> str:
    """The job-level mean map: ``npy`` (the values) or ``png`` (a picture of them)."""
    return job_prefix(tenant, job_id) + f"aggregate/mean_map.{safe_component(extension)}"
