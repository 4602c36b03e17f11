"""Prometheus's configuration, the alert rules and the Grafana dashboard agree with the compose file and
with the metrics the service exports: every query parses (Prometheus's grammar) and names only metrics
and labels that exist."""

from __future__ import annotations

import promql_parser
import pytest
import yaml
from prometheus_client import Metric
from prometheus_client.metrics import MetricWrapperBase

import api.metrics
import worker.runtime.metrics
from tests.support.compose import REPO, env_example, model, workers
from tests.support.monitoring import DASHBOARD, queries, selectors
from worker.runtime.exporter import Backlog, WorkerMonitor
from worker.runtime.gpu_metrics import GpuCollector

PROMETHEUS = yaml.safe_load((REPO / "deploy/prometheus.yml").read_text())
TARGET_LABELS = {"job", "instance"}  # added by Prometheus to every scraped series
SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported() -> dict[str, set[str]]:
    """Every series name the API and the workers can export -> its label names."""
    families: list[tuple[str, str, set[str]]] = [
        (metric._name, metric._type, set(metric._labelnames))
        for module in (api.metrics, worker.runtime.metrics)
        for metric in vars(module).values()
        if isinstance(metric, MetricWrapperBase)
    ]
    monitor = WorkerMonitor("celery@host", "cpu")
    monitor.observe_reconciler(True, Backlog(1, 1, 1, 0.0, 1))
    collected: list[Metric] = [*monitor.collect(), *GpuCollector().describe()]
    families += [
        (f.name, f.type, set(getattr(f, "_labelnames", ())) | {k for s in f.samples for k in s.labels})
        for f in collected
    ]
    names: dict[str, set[str]] = {}
    for name, kind, labels in families:
        for suffix in SAMPLE_SUFFIXES[kind]:
            names[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    names["up"] = set()
    return names


@pytest.mark.parametrize(("where", "expr"), list(queries()))
def test_every_query_parses_and_names_real_metrics_and_labels(where: str, expr: str) -> None:
    names = exported()
    found = list(selectors(promql_parser.parse(expr)))
    assert found, f"{where}: no metric in {expr}"
    for selector in found:
        assert selector.name in names, f"{where}: {selector.name} is not exported"
        used = {m.name for m in selector.matchers.matchers}
        assert used <= names[selector.name] | TARGET_LABELS, f"{where}: {selector.name} has no label {used}"


def test_query_checks_can_fail() -> None:
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(fovea_items_processed_total[5m])")
    names = exported()
    assert "fovea_items_processed" not in names and "fovea_items_processed_total" in names
    assert names["fovea_items_failed_total"] >= {"kind", "reason"}


def test_prometheus_scrapes_the_api_every_worker_and_flower() -> None:
    services = model(env_example())["services"]
    jobs = {job["job_name"]: job for job in PROMETHEUS["scrape_configs"]}
    api_port = services["api"]["command"][services["api"]["command"].index("--port") + 1]
    assert jobs["fovea-api"]["static_configs"][0]["targets"] == [f"api:{api_port}"]
    discovery = jobs["fovea-workers"]["dns_sd_configs"][0]
    for name, service in workers(services).items():  # found through the alias every worker carries
        assert set(discovery["names"]) <= set(service["networks"]["default"]["aliases"]), name
        assert discovery["port"] == int(service["environment"]["FOVEA_METRICS_PORT"]) in map(int, service["expose"])
        assert service["environment"]["FOVEA_METRICS_HOST"] == "0.0.0.0"  # reachable from Prometheus's container
    flower = services["flower"]["command"]
    assert jobs["flower"]["static_configs"][0]["targets"] == [f"flower:{flower[flower.index('--port=5555')][7:]}"]


def test_prometheus_and_grafana_get_their_files() -> None:
    services = model(env_example())["services"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in services["prometheus"]["volumes"] if v.startswith("./")}
    assert mounts["./deploy/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert PROMETHEUS["rule_files"] == [mounts["./deploy/alerts.yml"]]
    grafana = {v.split(":")[0]: v.split(":")[1] for v in services["grafana"]["volumes"] if v.startswith("./")}
    provisioning = REPO / "deploy/grafana/provisioning"
    assert grafana["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((provisioning / "dashboards/fovea.yml").read_text())["providers"][0]
    assert grafana["./deploy/grafana/dashboards"] == provider["options"]["path"]
    source = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())["datasources"][0]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"


def test_dashboard_is_grafana_ready() -> None:
    assert DASHBOARD["uid"] and DASHBOARD["title"]
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
    titles = " ".join(panel["title"] for panel in DASHBOARD["panels"]).lower()
    for figure in ("items per second", "failed", "queue depth", "oldest waiting", "batch", "shard", "gpu utilisation"):
        assert figure in titles, figure
