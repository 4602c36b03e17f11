"""The static report links the console's job page where it shows only part of the items."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from shared.jobs import JobRecord, now
from worker.pipelines.plugin import ReportHooks
from worker.report.page import console_url, render_report


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "PNG")
    return out.getvalue()


def _report(ok: int, failed: int, shown: int, console: str | None) -> str:
    record = JobRecord(id="j_1", tenant="t", kind="saliency", spec={}, created_at=now())
    summary: dict[str, Any] = {"status": "succeeded", "total": ok + failed, "ok": ok, "failed": failed}
    summary |= {"seconds": 1.0, "items_per_second": 1.0}
    gallery = [
        {"index": i, "name": f"<b>{i}</b>.png", "status": "ok", "outputs": {"overlay": "x.png"}} for i in range(shown)
    ]
    failures = [{"index": 99, "name": "bad.png", "status": "failed", "error": "not an image"}]
    return render_report(lambda _key: _png(), record, summary, gallery, failures, ReportHooks(), console=console)


def test_a_capped_gallery_and_failure_list_link_the_console() -> None:
    url = console_url("https://fovea.example.org/", "j_1")
    assert url == "https://fovea.example.org/console/#/job/j_1"
    capped = _report(ok=500, failed=3, shown=2, console=url)
    assert f'href="{url}"' in capped and f'href="{url}?status=failed"' in capped
    assert "<b>0</b>.png" not in capped  # names are escaped in the report as in the console
    whole = _report(ok=2, failed=1, shown=2, console=url)
    assert url not in whole  # everything is shown: nothing to link
    assert console_url("", "j_1") == "/console/#/job/j_1"
