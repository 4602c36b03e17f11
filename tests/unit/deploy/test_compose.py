"""The compose files are valid Compose, keep the shape the design asks for, and set only real settings
(no Docker engine needed: the Compose specification's JSON schema, as check-jsonschema ships it)."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import jsonschema
import pytest

from shared.queueing import celery_config
from shared.settings import Settings
from tests.support.compose import COMPOSE, GPUS, REPO, env_example, interpolate, model, raw, variables, workers

SETTINGS = {f"FOVEA_{name.upper()}" for name in Settings.model_fields}


def compose_schema() -> dict[str, Any]:
    schema = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return dict(json.loads(schema.read_text()))


def errors(document: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


@pytest.mark.parametrize("path", [COMPOSE, GPUS], ids=["docker-compose.yml", "compose.gpus.yml"])
def test_valid_against_the_compose_specification(path: Any) -> None:
    assert errors(raw(path)) == []
    assert errors(interpolate(raw(path), env_example())) == []  # and as Compose sees it with .env filled


def test_the_schema_check_can_fail() -> None:
    broken = copy.deepcopy(raw(COMPOSE))
    broken["services"]["api"]["healtcheck"] = broken["services"]["api"].pop("healthcheck")
    broken["services"]["redis"]["ports"] = 6379  # not a list
    found = errors(broken)
    assert any("healtcheck" in e for e in found) and any(e.startswith("services/redis/ports") for e in found)


def test_every_variable_is_in_env_example_or_has_a_default() -> None:
    example = env_example()
    for path in (COMPOSE, GPUS):
        missing = [name for name, default in variables(path).items() if default is None and name not in example]
        assert missing == [], path
    model(example)  # nothing required is left unset


def test_fovea_services_set_only_real_settings_and_they_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    services = model(env_example())["services"]
    fovea = {name: s for name, s in services.items() if s.get("command", [None])[0] == "fovea"}
    assert {"init", "api", "worker-gpu0", "worker-gpu1", "control"} <= set(fovea)
    for name, service in fovea.items():
        env = service["environment"]
        unknown = sorted(set(env) - SETTINGS)
        assert unknown == [], f"{name} sets variables Settings does not read: {unknown}"
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        settings = Settings()  # every value parses as its setting's type
        celery_config(settings)  # and the task time limit sits below the visibility timeout
        for key in env:
            monkeypatch.delenv(key)


def test_compose_services_and_dependencies() -> None:
    compose = raw(COMPOSE)
    services = compose["services"]
    assert {"redis", "s3", "init", "api", "worker-gpu0", "flower", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        if name == "init":  # a one-shot job: its exit status is its health, and the others wait for it
            assert service["restart"] == "no"
            continue
        assert "healthcheck" in service and service["restart"] == "unless-stopped", name
    redis_cmd = services["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert redis_cmd[redis_cmd.index("--maxmemory-policy") + 1] == "noeviction"
    assert services["api"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services["api"]["build"]["dockerfile"] == "deploy/api.Dockerfile"
    for key in ("redis-data", "s3-data", "prometheus-data", "grafana-data"):
        assert key in compose["volumes"]


def test_workers_start_only_when_redis_and_the_store_are_healthy() -> None:
    found = workers(model(env_example())["services"])
    assert set(found) == {"worker-gpu0", "worker-gpu1"}
    for name, worker in found.items():
        depends = worker["depends_on"]
        assert depends["redis"]["condition"] == depends["s3"]["condition"] == "service_healthy", name
        assert depends["init"]["condition"] == "service_completed_successfully", name


def test_one_worker_process_per_gpu_and_every_worker_alike() -> None:
    found = workers(model(env_example())["services"])
    base = found["worker-gpu0"]
    command = base["command"]
    assert command[command.index("--concurrency") + 1] == "1"
    assert base["environment"]["FOVEA_DEVICE"] == "cuda"
    assert int(base["stop_grace_period"].rstrip("s")) >= 30
    for index, name in enumerate(sorted(found)):
        worker = found[name]
        devices = worker["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "device_ids": [str(index)], "capabilities": ["gpu"]}], name
        assert worker["hostname"] == name
        assert "fovea-workers" in worker["networks"]["default"]["aliases"]
        assert "extends" not in worker  # extends would append the base's GPU to this one's
        same = {key: value for key, value in worker.items() if key not in ("hostname", "deploy")}
        assert same == {key: value for key, value in base.items() if key not in ("hostname", "deploy")}, name


def test_gpu_workers_take_items_and_a_cpu_worker_of_its_own_plans_and_finalises() -> None:
    services = model(env_example())["services"]
    for name, worker in workers(services).items():
        command = worker["command"]
        assert command[command.index("--queues") + 1] == "items", name
    control = services["control"]
    command = control["command"]
    assert command[command.index("--queues") + 1] == "control" and int(command[command.index("--nice") + 1]) > 0
    assert control["environment"]["FOVEA_DEVICE"] == "cpu" and "deploy" not in control  # no GPU reserved
    assert control["depends_on"] == services["worker-gpu0"]["depends_on"]
    assert control["healthcheck"] == services["worker-gpu0"]["healthcheck"]
    assert "fovea-workers" in control["networks"]["default"]["aliases"]  # Prometheus scrapes it too


def test_visibility_timeout_is_far_above_the_task_limit() -> None:
    env = raw(COMPOSE)["x-fovea-env"]
    assert int(env["FOVEA_VISIBILITY_TIMEOUT_S"]) >= 2 * int(env["FOVEA_TASK_TIME_LIMIT_S"])


def test_operator_tools_listen_on_loopback_only() -> None:
    services = raw(COMPOSE)["services"]
    for name in ("flower", "prometheus", "grafana"):
        assert all(str(port).startswith("127.0.0.1:") for port in services[name]["ports"]), name
    broker = raw(COMPOSE)["x-fovea-env"]["FOVEA_BROKER_URL"]
    flower = services["flower"]["command"]
    assert flower[flower.index("--broker") + 1] == broker


def test_api_image_has_no_torch() -> None:
    api = (REPO / "deploy/api.Dockerfile").read_text()
    worker = (REPO / "deploy/worker.Dockerfile").read_text()
    assert 'pip install --no-cache-dir ".[flower]"' in api and "[worker]" not in api
    assert "torch" not in api.replace("no torch", "")
    assert '".[worker]"' in worker
    pyproject = (REPO / "pyproject.toml").read_text()
    base = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    flower = pyproject.split("flower = [", 1)[1].split("]", 1)[0]
    assert "torch" not in base and "torch" not in flower
