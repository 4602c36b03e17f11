"""The report of a training job: what was trained on what, the kind's result sections, the pictures it
wrote (curves, reconstructions, maps), the curves' table, and how to use the model."""

from __future__ import annotations

from typing import Any

from shared.jobs import JobRecord
from worker.pipelines.plugin import Figure, ReportHooks, Section
from worker.report.html import Read, escape, page, section

_PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _history_table(history: list[dict[str, float]]) -> Section | None:
    if not history:
        return None
    columns = list(history[0])
    rows = [tuple(_cell(row.get(c)) for c in columns) for row in history]
    return Section("Every epoch", table=(tuple(c.replace("_", " ") for c in columns), *rows))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def render_training_report(
    read: Read,
    record: JobRecord,
    summary: dict[str, Any],
    history: list[dict[str, float]],
    files: dict[str, str],
    hooks: ReportHooks,
) -> str:
    spec = record.spec
    pictures = tuple(Figure(alt=name, key=key) for name, key in files.items() if name.endswith(_PICTURE_SUFFIXES))
    parts = [*hooks.sections(summary)]
    if pictures:
        parts.append(Section("Pictures", figures=pictures))
    table = _history_table(history)
    if table is not None:
        parts.append(table)
    body = (
        f"<p>Job <code>{escape(record.id)}</code> · kind <code>{escape(record.kind)}</code> · "
        f"input <code>{escape(spec.get('input', ''))}</code> · status <b>{escape(summary['status'])}</b></p>"
        f'<p>Use the model in later jobs as <code>{{"job": "{escape(record.id)}"}}</code>.</p>'
        + "".join(section(read, part) for part in parts)
    )
    return page(record.name or f"{record.kind} job {record.id}", body)
