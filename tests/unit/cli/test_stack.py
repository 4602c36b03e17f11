"""Starting workers: the metrics folder each worker's processes write to, and Celery's options."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cli.stack import METRICS_ENV, worker_command, worker_metrics_env
from shared.settings import Settings


def test_each_worker_gets_a_fresh_metrics_folder_and_gone_workers_lose_theirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv(METRICS_ENV, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    assert worker_metrics_env(Settings(metrics_port=0)) == {}  # no endpoint, no folder
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"fovea-metrics-{gone.stdout.strip()}"  # a worker that has exited
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"old")
    env = worker_metrics_env(Settings(metrics_port=9808))
    folder = Path(env[METRICS_ENV])
    assert folder.parent == tmp_path and folder.is_dir() and list(folder.iterdir()) == []
    assert not stale.exists()
    (folder / "counter_2.db").write_bytes(b"mine")
    assert worker_metrics_env(Settings(metrics_port=9808)) == env and list(folder.iterdir()) == []  # restarted


def test_an_operators_metrics_folder_is_emptied_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(METRICS_ENV, str(tmp_path))
    (tmp_path / "gauge_livesum_1.db").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("theirs")
    assert worker_metrics_env(Settings(metrics_port=9808)) == {METRICS_ENV: str(tmp_path)}
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_task_events_turn_heartbeats_on_for_flower() -> None:
    quiet, loud = worker_command(1), worker_command(1, events=True)
    assert "--without-heartbeat" in quiet and "--without-heartbeat" not in loud
    assert quiet[quiet.index("--concurrency") + 1] == "1" and "--without-mingle" in loud


def test_a_worker_takes_both_queues_unless_told_which() -> None:
    both, items, control = (
        worker_command(1),
        worker_command(1, queues=("items",)),
        worker_command(1, queues=("control",)),
    )
    assert both[both.index("-Q") + 1] == "fovea,fovea-control"
    assert items[items.index("-Q") + 1] == "fovea" and control[control.index("-Q") + 1] == "fovea-control"
    with pytest.raises(ValueError, match="unknown queue"):
        worker_command(1, queues=("gpu",))
