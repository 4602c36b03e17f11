"""The static HTML report of a map job: counts, the kind's sections, the job's pictures, a thumbnail
gallery and every failure with its reason. What stands for an item, what sits beside it and what
captions it come from the kind's report hooks; the gallery is capped (the manifest lists everything).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from shared.jobs import JobRecord
from worker.pipelines.plugin import Figure, ReportHooks, Section
from worker.report.html import Read, escape, page, section, thumbnail


def _caption(hooks: ReportHooks, item: dict[str, Any]) -> str:
    return "<br>".join(escape(line) for line in [item["name"], *hooks.caption(item)])


def _panels(read: Read, hooks: ReportHooks, item: dict[str, Any], panels: list[tuple[str, str]]) -> str:
    """Several outputs of one item side by side (a comparison of methods), each with its label."""
    cells = []
    for label, output in panels:
        key = item.get("outputs", {}).get(output)
        uri = thumbnail(read, key, 160) if key else None
        if uri is not None:
            cells.append(
                f'<div class="panel"><img src="{uri}" alt="{escape(label)}"><span>{escape(label)}</span></div>'
            )
    return f'<figure class="wide"><div class="panels">{"".join(cells)}</div><figcaption>{_caption(hooks, item)}</figcaption></figure>'


def _figure(read: Read, hooks: ReportHooks, item: dict[str, Any]) -> str | None:
    panels = hooks.panels(item) if hooks.panels is not None else []
    if panels:
        return _panels(read, hooks, item, panels)
    outputs: dict[str, str] = item.get("outputs", {})
    preview = next((outputs[n] for n in hooks.preview if n in outputs), next(iter(outputs.values()), None))
    wide = hooks.preview_width
    uri = thumbnail(read, preview, wide or 200) if preview else None
    if uri is None:
        return None
    if wide:
        return (
            f'<figure class="wide"><img src="{uri}" alt="" style="width:auto;max-width:{wide}px">'
            f"<figcaption>{_caption(hooks, item)}</figcaption></figure>"
        )
    extras = "".join(
        f'<img class="extra" src="{small}" alt="{escape(name)}" title="{escape(name)}">'
        for name, key in list(outputs.items())[:8]
        if key != preview and hooks.beside(name) and (small := thumbnail(read, key, 96))
    )
    return (
        f'<figure><img src="{uri}" alt=""><div>{extras}</div><figcaption>{_caption(hooks, item)}</figcaption></figure>'
    )


def console_url(public_url: str, job_id: str) -> str:
    """The job's page in the web console: absolute with the API's public URL, else from the API's root
    (right when the report is opened through the API; a downloaded report needs the public URL set)."""
    return f"{public_url.rstrip('/')}/console/#/job/{job_id}"


def _job_pictures(summary: dict[str, Any]) -> list[Section]:
    pictures = summary.get("pictures") or {}
    if not pictures:
        return []
    figures = tuple(Figure(alt=name, key=key) for name, key in sorted(pictures.items()))
    return [Section("The whole job", figures=figures)]


def render_report(
    read: Read,
    record: JobRecord,
    summary: dict[str, Any],
    gallery: list[dict[str, Any]],
    failures: list[dict[str, Any]],
    hooks: ReportHooks,
    each: Callable[[Callable[[dict[str, Any]], str | None], list[dict[str, Any]]], Iterable[str | None]] = map,
    console: str | None = None,
) -> str:
    """The page, from the summary and the items it shows: the first successful items (the gallery) and the
    first failures; the counts say how many there are in all. ``each`` maps over the gallery (an
    executor's ``map`` reads the pictures of several items at once). ``console``: the job's page in the
    web console, linked where the report shows only part of the items."""
    figures = [figure for figure in each(lambda item: _figure(read, hooks, item), gallery) if figure is not None]
    rows = [
        f"<tr><td>{item['index']}</td><td>{escape(item['name'])}</td><td>{escape(item.get('error'))}</td></tr>"
        for item in failures
    ]
    ok, failed_count = summary["ok"], summary["failed"]
    sections = "".join(section(read, part) for part in [*hooks.sections(summary), *_job_pictures(summary)])
    more = (
        f"<p>The first {len(rows)} are listed; <code>manifest.json</code> has every one"
        + (f', and <a href="{escape(console)}?status=failed">the console</a> pages through them all' if console else "")
        + ".</p>"
        if len(rows) < failed_count
        else ""
    )
    browse = (
        f' <a class="console" href="{escape(console)}">Browse every item in the console</a> (sorted, filtered, at full size).'
        if console and len(figures) < ok
        else ""
    )
    failed = (
        "<table><tr><th>#</th><th>file</th><th>reason</th></tr>" + "".join(rows) + "</table>" + more
        if rows
        else "<p>None.</p>"
    )
    body = f"""<p>Job <code>{escape(record.id)}</code> · kind <code>{escape(record.kind)}</code> ·
status <b>{escape(summary["status"])}</b></p>
<p class="counts"><span>items: <b>{summary["total"]}</b></span><span class="ok">ok: <b>{ok}</b></span>
<span class="bad">failed: <b>{failed_count}</b></span>
<span>time: {summary["seconds"]} s</span><span>{summary["items_per_second"]} items/s</span></p>
{sections}
<h2>Gallery</h2>
<p>{len(figures)} of {ok} successful items shown; <code>manifest.json</code> lists every item and its outputs.{browse}</p>
<div class="gallery">{"".join(figures) or "<p>No successful items.</p>"}</div>
<h2>Failed items ({failed_count})</h2>
{failed}"""
    return page(record.name or f"{record.kind} job {record.id}", body)
