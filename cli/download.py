"""``fovea results``: a job's report, manifest and outputs, downloaded into a folder a page at a time.

Outputs land as ``items/INDEX-OUTPUT.EXT``, whether the job stored them one object each or packed (one
tar per shard segment, members ``INDEX.NAME.EXT``): a pack is downloaded once, its members are cut out
by the offsets the results give, and it is deleted once the pages have moved past it, so the scratch
space holds a page's packs, not the job's. A running job's pending items are skipped (run it again once
the job has ended); its finished items are all there.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from tqdm import tqdm

from shared.packs import PackedOutput, parse_ref

if TYPE_CHECKING:
    from cli.client import Client

PAGE = 1000


def download(client: Client, job_id: str, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    page = client.results(job_id, limit=PAGE)
    for name, target in (("report", "report.html"), ("manifest", "manifest.json")):
        if page.get(name):
            _save(client.files, page[name], out / target)
    packs = _Packs(client.files, out / ".packs")
    offset, pending = 0, 0
    try:
        with tqdm(total=int(page["total"]), unit="item", desc="download") as bar:
            while page["items"]:
                packs.keep(set(page.get("packs") or {}))
                for item in page["items"]:
                    if item["status"] == "pending":
                        pending += 1
                    else:
                        _item(client, item, out / "items", packs, page.get("packs") or {})
                    bar.update(1)
                offset += len(page["items"])
                if page.get("next_offset") is None:
                    break
                page = client.results(job_id, offset=offset, limit=PAGE)
    finally:
        packs.keep(set())
    if pending:
        tqdm.write(f"{pending} items are still pending: run this again once the job has ended")
    return out


def _item(client: Client, item: dict[str, Any], folder: Path, packs: _Packs, pack_urls: dict[str, str]) -> None:
    packed = item.get("packed") or {}
    for output, url in item["outputs"].items():
        ref = parse_ref(packed.get(output, ""))
        suffix = Path(ref.member if ref is not None else httpx.URL(url).path).suffix
        target = folder / f"{item['index']:08d}-{output}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if ref is not None and ref.pack in pack_urls:
            target.write_bytes(packs.read(ref, pack_urls[ref.pack]))
        else:  # one object, or a packed output read through its own signed range URL
            _save(client.files, url, target)


def _save(http: httpx.Client, url: str, target: Path) -> None:
    with http.stream("GET", url) as response, target.open("wb") as handle:
        response.raise_for_status()
        for chunk in response.iter_bytes(1 << 20):
            handle.write(chunk)


class _Packs:
    """Packs downloaded once each into a scratch folder, read by range, deleted when no page needs them."""

    def __init__(self, http: httpx.Client, folder: Path) -> None:
        self.http, self.folder = http, folder
        self.local: dict[str, Path] = {}
        self.made = 0

    def read(self, ref: PackedOutput, url: str) -> bytes:
        path = self.local.get(ref.pack)
        if path is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{self.made:06d}.tar"
            self.made += 1
            _save(self.http, url, path)
            self.local[ref.pack] = path
        with path.open("rb") as handle:
            handle.seek(ref.offset)
            data = handle.read(ref.size)
        if len(data) != ref.size:
            raise OSError(f"pack {ref.pack} is shorter than {ref.member}'s place in it")
        return data

    def keep(self, packs: set[str]) -> None:
        """Delete the downloaded packs not in ``packs`` (the scratch folder too, once it is empty)."""
        for pack in [p for p in self.local if p not in packs]:
            self.local.pop(pack).unlink(missing_ok=True)
        if not self.local and self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()
