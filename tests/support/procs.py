"""Real service processes for tests: redis-server, an S3 server (moto or SeaweedFS), the API, workers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_with_grpc() -> int:
    """A free port P whose P + 10000 is free too (SeaweedFS puts its gRPC ports there)."""
    import random

    for _ in range(200):
        port = random.randint(20000, 29000)
        if not port_open(port) and not port_open(port + 10000):
            return port
    raise RuntimeError("no free port pair found")


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Proc:
    """A child process in its own session, stopped (with its children) on ``stop``."""

    def __init__(
        self, args: list[str], env: dict[str, str] | None = None, log: Path | None = None, cwd: Path | None = None
    ) -> None:
        self.args = args
        self.log = log
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - lives as long as the process
        self.popen = subprocess.Popen(
            args,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout=timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_redis(workdir: Path, port: int | None = None) -> tuple[Proc, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (scripts/setup.sh installs it)")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = Proc(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        log=workdir / "redis.log",
    )
    wait_until(lambda: port_open(port), 15, "redis-server")
    return proc, port


def start_moto(workdir: Path) -> tuple[Proc, str]:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = Proc([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log=workdir / "moto.log")
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(url + "/moto-api/", timeout=1).status_code < 500, 30, "moto server")
    return proc, url


def seaweed_ports() -> tuple[int, int, int, int]:
    """S3, master, volume and filer ports for one SeaweedFS (each with its gRPC port free too)."""
    s3_port, master, volume, filer = (free_port_with_grpc() for _ in range(4))
    return s3_port, master, volume, filer


def start_seaweed(
    workdir: Path, access_key: str, secret_key: str, ports: tuple[int, int, int, int] | None = None
) -> tuple[Proc, str]:
    """SeaweedFS in 'mini' mode: enforces signatures, presigned-URL expiry and conditional writes. Started
    again with the same ``ports`` and ``workdir``, it serves the same data (an outage, not a new store)."""
    s3_port, master, volume, filer = ports or seaweed_ports()
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        str(VENV_BIN / "weed"),
        "mini",
        f"-dir={workdir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3_port}",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        "-webdav=false",
    ]
    env = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    proc = Proc(args, env=env, log=workdir / "weed.log")
    url = f"http://127.0.0.1:{s3_port}"
    wait_until(lambda: port_open(s3_port), 60, "SeaweedFS S3")
    return proc, url
