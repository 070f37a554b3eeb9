"""Helpers shared by tests in every folder (``from support import ...``: pytest puts tests/ on the path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from modelaas.model.adapters import ModelAdapter
from modelaas.model.loader import ModelRef, load
from modelaas.settings import Settings

T = TypeVar("T")


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
    import os
    import pty
    import subprocess
    import sys

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
