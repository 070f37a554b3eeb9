"""Helpers shared by tests in every folder (``from support import ...``: pytest puts tests/ on the path)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from modelaas.model.adapters import ModelAdapter
from modelaas.model.loader import ModelRef, load
from modelaas.settings import Settings

T = TypeVar("T")
MODELS = Path(__file__).resolve().parent / "fixtures" / "models"


def load_fixture(
    target: str, name: str | None = None, interface: str | None = None, settings: Settings | None = None
) -> ModelAdapter:
    """Load a fixture model (tests/fixtures/models) as if it were installed: ``target`` is ``module[:attr]``."""
    name = name or target.split(":")[0].split(".")[0].replace("_", "-")
    return load(ModelRef(name, target, interface, "test"), settings)


def spool_files(root: Path) -> list[Path]:
    """Every file left under an upload spool."""
    if not root.exists():
        return []
    return [p for p in root.rglob("*") if p.is_file()]


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy (and return that); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def wait_status(client: Any, url: str, statuses: set[str], timeout: float = 30.0) -> dict[str, Any]:
    """Poll the job record at ``url`` until its status is one of ``statuses``; that record."""
    seen: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        seen["record"] = client.get(url).json()
        return seen["record"] if seen["record"].get("status") in statuses else None

    try:
        return wait_for(check, timeout=timeout, what=f"{url} to be {' or '.join(sorted(statuses))}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last record: {seen.get('record')}") from None


def metric_value(text: str, series: str) -> float:
    """One sample of a Prometheus exposition text, e.g. ``modelaas_x_total{model="m"}`` (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def modelaas_in_a_terminal(args: list[str], env: dict[str, str], *, timeout: float = 60) -> str:
    """What ``modelaas *args`` shows on a pseudo-terminal (it must exit 0 within ``timeout`` s)."""
    import pty

    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelaas", *args], stdin=secondary, stdout=secondary, stderr=secondary, env=env
    )
    os.close(secondary)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO once the process has closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=timeout) == 0, out.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    return out.decode(errors="replace")


# ----------------------------------------------------------------- real servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``modelaas serve`` in its own process group, on a free loopback port."""

    def __init__(
        self, args: list[str], *, data_dir: Path, env: dict[str, str] | None = None, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(MODELS), os.environ.get("PYTHONPATH", "")])}
        full_env.update(env or {})
        cmd = [sys.executable, "-m", "modelaas", "serve", "--listen-port", str(self.port), "--data-dir", str(data_dir)]
        self.proc = subprocess.Popen(
            cmd + args, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        # stderr is read as it comes (a server logs a line per request: an unread pipe would fill and stop it)
        self._err: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._err.append(line)

    def stderr_text(self) -> str:
        """What the server wrote to stderr so far."""
        return "".join(self._err)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"server exited with {self.proc.returncode}: {self.stderr_text()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError("server did not become ready")

    def wait_exit(self, timeout: float = 30) -> tuple[int, str]:
        self.proc.wait(timeout=timeout)
        self._close()
        return self.proc.returncode, self.stderr_text()

    def _close(self) -> None:
        self._reader.join(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None and not self._reader.is_alive():
                pipe.close()

    def worker_pids(self) -> list[int]:
        import psutil

        pids = []
        for child in psutil.Process(self.proc.pid).children():
            try:
                if "resource_tracker" not in " ".join(child.cmdline()):
                    pids.append(child.pid)
            except (psutil.Error, OSError):  # a child that is just dying
                continue
        return pids

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._close()
        try:  # the group, in case a child outlived its parent
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
