"""The compose file and images keep the shape the design asks for (no Docker engine needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]


def load(path: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((REPO / path).read_text())


def test_compose_services_and_dependencies() -> None:
    compose = load("docker-compose.yml")
    services = compose["services"]
    assert {"redis", "s3", "init", "api", "worker-gpu0"} <= set(services)
    for name in ("redis", "s3", "api", "worker-gpu0"):
        assert "healthcheck" in services[name], name
    redis_cmd = services["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert redis_cmd[redis_cmd.index("--maxmemory-policy") + 1] == "noeviction"
    assert services["api"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services["api"]["build"]["dockerfile"] == "deploy/api.Dockerfile"
    for key in ("redis-data", "s3-data"):
        assert key in compose["volumes"]


def test_one_worker_process_per_gpu() -> None:
    worker = load("docker-compose.yml")["services"]["worker-gpu0"]
    command = worker["command"]
    assert command[command.index("--concurrency") + 1] == "1"
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "device_ids": ["0"], "capabilities": ["gpu"]}]
    assert worker["environment"]["FOVEA_DEVICE"] == "cuda"
    grace = int(worker["stop_grace_period"].rstrip("s"))
    assert grace >= 30
    extra = load("deploy/compose.gpus.yml")["services"]["worker-gpu1"]
    assert extra["extends"]["service"] == "worker-gpu0"
    assert extra["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["1"]


def test_visibility_timeout_is_far_above_the_task_limit() -> None:
    env = load("docker-compose.yml")["x-fovea-env"]
    assert int(env["FOVEA_VISIBILITY_TIMEOUT_S"]) >= 2 * int(env["FOVEA_TASK_TIME_LIMIT_S"])


def test_api_image_has_no_torch() -> None:
    api = (REPO / "deploy/api.Dockerfile").read_text()
    worker = (REPO / "deploy/worker.Dockerfile").read_text()
    assert (
        "pip install --no-cache-dir ." in api and "[worker]" not in api and "torch" not in api.replace("no torch", "")
    )
    assert '".[worker]"' in worker
    pyproject = (REPO / "pyproject.toml").read_text()
    base = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "torch" not in base
