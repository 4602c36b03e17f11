"""The pieces every report page is made of: one style sheet, embedded thumbnails, and the kinds' sections.

Pages are self-contained (pictures are data URIs) so they work from a presigned URL, a local disk or an
email attachment alike. Everything a kind or a user supplied is escaped here: hooks give plain text.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable

from PIL import Image

from worker.pipelines.plugin import Figure, Section

Read = Callable[[str], bytes]
"""Reads a file of the job by its path relative to the job's folder (as manifests and summaries name it)."""

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem} .counts span{display:inline-block;margin-right:1.5rem}
.gallery{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0;width:200px}
figure img{width:200px;height:auto;border:1px solid #ddd} figure img.extra{width:64px;margin:2px 2px 0 0} figcaption{font-size:.8rem;word-break:break-all}
table{border-collapse:collapse;font-size:.85rem;margin-bottom:1rem} td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}
.ok{color:#137333} .bad{color:#b3261e}
figure.wide{width:auto} .panels{display:flex;gap:6px} .panel{width:160px;font-size:.8rem;text-align:center}
.panel img{width:160px} .section img{max-width:100%}
"""


def escape(text: object) -> str:
    return html.escape(str(text))


def thumbnail(read: Read, path: str, size: int = 200) -> str | None:
    """A JPEG data URI of the picture at ``path`` fitted in ``size`` pixels; None if it is not a picture."""
    try:
        image = Image.open(io.BytesIO(read(path))).convert("RGB")
    except Exception:
        return None
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figure(read: Read, figure: Figure) -> str:
    if figure.png is not None:
        uri: str | None = "data:image/png;base64," + base64.b64encode(figure.png).decode()
    elif figure.key is not None:
        uri = thumbnail(read, figure.key, figure.width or 1200)
    else:
        uri = None
    if uri is None:
        return ""
    width = f' style="width:{figure.width}px;image-rendering:pixelated"' if figure.width else ""
    return f'<img src="{uri}" alt="{escape(figure.alt)}" title="{escape(figure.alt)}"{width}>'


def section(read: Read, part: Section) -> str:
    """One section of a report, from the plain data a kind's hooks gave."""
    out = [f'<div class="section"><h2>{escape(part.title)}</h2>']
    if part.text:
        out.append(f"<p>{escape(part.text)}</p>")
    if part.rows:
        rows = "".join(
            f"<tr><td>{escape(label)}</td><td><b>{escape(value)}</b></td></tr>" for label, value in part.rows
        )
        out.append(f"<table>{rows}</table>")
    if part.table:
        head, *body = part.table
        cells = "".join(f"<th>{escape(h)}</th>" for h in head)
        rows = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in body)
        out.append(f"<table><tr>{cells}</tr>{rows}</table>")
    out += [_figure(read, figure) for figure in part.figures]
    out.append("</div>")
    return "".join(out)


def page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{escape(title)}</title><style>{STYLE}</style></head><body>
<h1>{escape(title)}</h1>
{body}
</body></html>
"""
