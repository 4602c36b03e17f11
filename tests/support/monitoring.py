"""The alert rules and the Grafana dashboard as data: every PromQL query they hold, and the metrics each names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import promql_parser
import yaml

from tests.support.compose import REPO

ALERTS = yaml.safe_load((REPO / "deploy/alerts.yml").read_text())
DASHBOARD = json.loads((REPO / "deploy/grafana/dashboards/fovea.json").read_text())


def queries() -> Iterator[tuple[str, str]]:
    for rule in ALERTS["groups"][0]["rules"]:
        yield rule["alert"], rule["expr"]
    for panel in DASHBOARD["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def selectors(expr: Any) -> Iterator[Any]:
    """Every vector selector in a parsed query."""
    if isinstance(expr, promql_parser.VectorSelector):
        yield expr
    for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
        child = getattr(expr, attr, None)
        if isinstance(child, promql_parser.Expr):
            yield from selectors(child)
    for arg in getattr(expr, "args", None) or []:
        yield from selectors(arg)
