"""Ctrl-C on ``modelaas serve`` at a terminal: the terminal sends SIGINT to the whole
foreground process group (the supervisor and its serving processes alike), once or as
often as the user presses it. The server stops quietly (no traceback) with exit code 0."""

import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_all(fd: int, proc: subprocess.Popen, timeout: float) -> bytes:
    """What the terminal shows until the process has ended and said everything."""
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    return seen


def wait_ready(url: str, proc: subprocess.Popen, primary: int) -> bytes:
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.05)
        if ready:
            seen += os.read(primary, 65536)
        assert proc.poll() is None, seen.decode(errors="replace")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return seen
        except httpx.TransportError:
            pass
    raise AssertionError("server did not become ready: " + seen.decode(errors="replace"))


def wait_starting(proc: subprocess.Popen, primary: int) -> bytes:
    """Until the supervisor has started a child (its serving processes are starting up)."""
    import psutil

    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.01)
        if ready:
            seen += os.read(primary, 65536)
        assert proc.poll() is None, seen.decode(errors="replace")
        if psutil.Process(proc.pid).children():
            return seen
    raise AssertionError("no serving process started: " + seen.decode(errors="replace"))


@pytest.mark.parametrize("when", ["serving", "starting"])
@pytest.mark.parametrize("presses", [1, 3, 6])
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_serve_quietly_with_exit_0(tmp_path: Path, presses: int, workers: int, when: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    primary, secondary = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(MODELS), "COLUMNS": "100"}
    cmd = [sys.executable, "-m", "modelaas", "serve", "--model", "v2_basic", "--listen-port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--data-dir", str(tmp_path / "data"), "--workers", str(workers)],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        start_new_session=True,  # its own session and process group, as a shell's foreground job
    )
    os.close(secondary)
    try:
        seen = wait_ready(url, proc, primary) if when == "serving" else wait_starting(proc, primary)
        for _ in range(presses):  # what the terminal does on each Ctrl-C
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.05)
        seen += read_all(primary, proc, timeout=60)
        code = proc.wait(timeout=60)
        text = seen.decode(errors="replace")
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
        assert code == 0, text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        os.close(primary)
