"""The embedded default end to end: ``fovea up`` in a subprocess, a real HTTP submission, the report on disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cli.samples import sample_archive
from tests.support.procs import Proc, free_port, wait_until
from tests.support.stack import REPO, upload_archive, wait_for_job

pytestmark = pytest.mark.slow


def test_fovea_up_runs_a_job_and_writes_the_report(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = {
        "FOVEA_DATA_DIR": str(data),
        "FOVEA_BROKER_URL": "",
        "FOVEA_REDIS_URL": "",
        "FOVEA_STORAGE_URL": "",
        "FOVEA_API_KEYS": "",
    }
    here = tmp_path / "cwd"  # where the user starts it: nothing may be written here (kombu's ./control once was)
    here.mkdir()
    up = Proc([sys.executable, "-m", "cli.main", "up", "--port", str(port)], env=env, log=tmp_path / "up.log", cwd=here)
    children: list[str] = []
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/readyz", timeout=2).status_code == 200, 90, "fovea up")
        archive = sample_archive(tmp_path / "samples.tar")
        with httpx.Client(base_url=url, timeout=30) as client:  # loopback, no key: the local tenant
            job = client.post(
                "/v1/jobs",
                json={"kind": "saliency", "method": "spectral_residual", "input": upload_archive(client, archive)},
            )
            assert job.status_code == 201, job.text
            final = wait_for_job(client, job.json()["id"], timeout=180)
            assert final["status"] == "succeeded", up.tail()
            assert final["progress"]["failed"] == 0 and final["progress"]["done"] >= 15
            results = client.get(f"/v1/jobs/{final['id']}/results").json()
            assert httpx.get(results["items"][0]["outputs"]["overlay"]).status_code == 200
        report = data / "store" / "tenants" / "local" / "jobs" / final["id"] / "report" / "index.html"
        assert report.is_file() and "samples/chelsea.png" in report.read_text()
        # The CLI reads the same job over HTTP.
        cli = subprocess.run(
            [sys.executable, "-m", "cli.main", "status", final["id"]],
            capture_output=True,
            text=True,
            env={**os.environ, **env, "FOVEA_API_URL": url},
            cwd=REPO,
            timeout=60,
        )
        assert cli.returncode == 0 and '"succeeded"' in cli.stdout
        children = subprocess.run(["pgrep", "-P", str(up.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 2  # the API and the worker
    finally:
        os.kill(up.pid, signal.SIGTERM)  # only the parent: it must stop its children itself
        up.popen.wait(timeout=60)
        assert not up.alive()
    for pid in children:
        wait_until(lambda pid=pid: not Path(f"/proc/{pid}").exists(), 30, f"child {pid} to exit")
    assert list(here.iterdir()) == []  # all state lives under FOVEA_DATA_DIR


def test_fovea_run_in_process(tmp_path: Path) -> None:
    archive = sample_archive(tmp_path / "samples.tar")
    env = {
        **os.environ,
        "FOVEA_DATA_DIR": str(tmp_path / "data"),
        "FOVEA_BROKER_URL": "",
        "FOVEA_REDIS_URL": "",
        "FOVEA_STORAGE_URL": "",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "run",
            "-s",
            "kind=saliency",
            "-s",
            "method=spectral_residual",
            "-s",
            f"input={archive}",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"succeeded"' in done.stdout and Path(done.stdout.split('"report": "')[1].split('"')[0]).is_file()
