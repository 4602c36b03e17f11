"""A static, self-contained HTML report: counts, a thumbnail gallery, and every failure with its reason.

Thumbnails are embedded as data URIs so the page works from a presigned URL, a local disk or an email
attachment alike; the gallery is capped (the manifest lists everything).
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from PIL import Image

from shared.jobs import JobRecord
from shared.storage import Storage
from worker.engine.quality_summary import comparison_section, quality_section

_EXTRA_PICTURES = {"boxes", "objects", "signed", "receptive_field", "unit_grid", "overlay_rank2", "overlay_rank3"}
"""Outputs shown small beside each item's overlay (the heatmap repeats the overlay, so it is left out)."""

_PREVIEWS = ("overlay", "strip", "dream", "image")
"""The output that stands for an item in the gallery, first found (else its first output)."""

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem} .counts span{display:inline-block;margin-right:1.5rem}
.gallery{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0;width:200px}
figure img{width:200px;height:auto;border:1px solid #ddd} figure img.extra{width:64px;margin:2px 2px 0 0} figcaption{font-size:.8rem;word-break:break-all}
table{border-collapse:collapse;font-size:.85rem;margin-bottom:1rem} td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}
.ok{color:#137333} .bad{color:#b3261e}
figure.wide{width:auto} .methods{display:flex;gap:6px} .method{width:160px;font-size:.8rem;text-align:center}
.method img{width:160px}
"""


def _thumbnail(storage: Storage, key: str, size: int = 200) -> str | None:
    try:
        image = Image.open(io.BytesIO(storage.get_bytes(key))).convert("RGB")
    except Exception:
        return None
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _caption(item: dict[str, Any]) -> str:
    text = html.escape(item["name"])
    unit = item.get("unit")
    if unit:
        where = f" at {unit['position']}" if unit.get("position") else ""
        text += f"<br>unit <b>{html.escape(unit['layer'])}:{unit['channel']}</b>{where}, activation {unit['activation']:.3g}"
    if item.get("units"):
        layers = {u["layer"] for u in item["units"]}
        text += f"<br>{len(item['units'])} units of <b>{html.escape(', '.join(sorted(layers)))}</b>"
    boxes = item.get("boxes")
    if boxes is not None:
        text += f"<br>{len(boxes)} object box(es)"
    target = item.get("target")
    if target and "class" not in target:  # a rendered channel or neuron
        where = f" at {target['position']}" if target.get("position") else ""
        text += f"<br><b>{html.escape(str(target.get('layer')))}:{target.get('channel')}</b>{where}"
    elif target:
        prob = next((p["probability"] for p in item.get("predictions", []) if p["class"] == target["class"]), None)
        extra = f" ({prob:.0%})" if prob is not None else ""
        text += f"<br><b>{html.escape(str(target['label']))}</b>{extra}"
    if "objective" in item:
        text += f"<br>objective {item['objective']:.4g}"
    if item.get("errors"):
        text += "<br>feature error " + ", ".join(f"{html.escape(k)} {v:.3f}" for k, v in item["errors"].items())
    for layer, info in (item.get("layers") or {}).items():
        text += f"<br>{html.escape(layer)}: most active channel <b>{info['most_active']}</b>"
    return text


def _pictures_section(storage: Storage, job_pictures: dict[str, str] | None) -> str:
    if not job_pictures:
        return ""
    shown = []
    for name, key in sorted(job_pictures.items()):
        uri = _thumbnail(storage, key, 1200)
        if uri:
            shown.append(
                f'<figure style="width:auto"><img src="{uri}" alt="{html.escape(name)}" style="width:auto;max-width:100%">'
                f"<figcaption>{html.escape(name)}</figcaption></figure>"
            )
    return "<h2>The whole job</h2>" + "".join(shown) if shown else ""


def _aggregate_section(storage: Storage, aggregate: dict[str, str] | None) -> str:
    if not aggregate:
        return ""
    uri = _thumbnail(storage, aggregate["mean_map_png"], 256)
    if uri is None:
        return ""
    return (
        f"<h2>Where the model looks, over the whole input</h2><p>Mean map per pixel over {aggregate['items']} images "
        "(at the model's input size; for the gradient, the mean |d score / d pixel|: the pixels with the largest "
        f'aggregate sensitivity).</p><img src="{uri}" alt="mean map" style="width:256px;image-rendering:pixelated">'
    )


def _methods_figure(storage: Storage, item: dict[str, Any]) -> str:
    """One image, one overlay per method side by side, each marked with its pointing-game result."""
    cells = []
    for method, data in item["methods"].items():
        key = item.get("outputs", {}).get(f"overlay:{method}")
        uri = _thumbnail(storage, key, 160) if key else None
        if uri is None:
            continue
        hit = (data.get("quality") or {}).get("pointing_hit")
        mark = "" if hit is None else (" ✓" if hit else " ✗")
        cells.append(
            f'<div class="method"><img src="{uri}" alt="{html.escape(method)}"><span>{html.escape(method)}{mark}</span></div>'
        )
    return f'<figure class="wide"><div class="methods">{"".join(cells)}</div><figcaption>{_caption(item)}</figcaption></figure>'


def render_report(
    storage: Storage, record: JobRecord, summary: dict[str, Any], items: list[dict[str, Any]], gallery_items: int
) -> str:
    title = html.escape(record.name or f"{record.kind} job {record.id}")
    figures: list[str] = []
    for item in (i for i in items if i["status"] == "ok"):
        if len(figures) >= gallery_items:
            break
        if item.get("methods"):
            figures.append(_methods_figure(storage, item))
            continue
        outputs = item.get("outputs", {})
        preview = next((outputs[n] for n in _PREVIEWS if n in outputs), next(iter(outputs.values()), None))
        uri = _thumbnail(storage, preview) if preview else None
        if uri:
            extras = "".join(
                f'<img class="extra" src="{small}" alt="{html.escape(name)}" title="{html.escape(name)}">'
                for name, key in list(outputs.items())[:8]
                if key != preview
                and (name in _EXTRA_PICTURES or name.startswith(("activations:", "overlay:")))
                and (small := _thumbnail(storage, key, 96))
            )
            figures.append(
                f'<figure><img src="{uri}" alt=""><div>{extras}</div><figcaption>{_caption(item)}</figcaption></figure>'
            )
    failures = [
        f"<tr><td>{item['index']}</td><td>{html.escape(item['name'])}</td><td>{html.escape(str(item.get('error')))}</td></tr>"
        for item in items
        if item["status"] != "ok"
    ]
    shown = len(figures)
    ok = summary["ok"]
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title><style>{_STYLE}</style></head><body>
<h1>{title}</h1>
<p>Job <code>{html.escape(record.id)}</code> · kind <code>{html.escape(record.kind)}</code> ·
status <b>{html.escape(summary["status"])}</b></p>
<p class="counts"><span>items: <b>{summary["total"]}</b></span><span class="ok">ok: <b>{ok}</b></span>
<span class="bad">failed: <b>{summary["failed"]}</b></span>
<span>time: {summary["seconds"]} s</span><span>{summary["items_per_second"]} items/s</span></p>
{quality_section(summary.get("quality"))}
{comparison_section(summary.get("quality_by_method"))}
{_aggregate_section(storage, summary.get("aggregate"))}
{_pictures_section(storage, summary.get("pictures"))}
<h2>Gallery</h2>
<p>{shown} of {ok} successful items shown; <code>manifest.json</code> lists every item and its outputs.</p>
<div class="gallery">{"".join(figures) or "<p>No successful items.</p>"}</div>
<h2>Failed items ({len(failures)})</h2>
{"<table><tr><th>#</th><th>file</th><th>reason</th></tr>" + "".join(failures) + "</table>" if failures else "<p>None.</p>"}
</body></html>
"""
