"""DEEPaaS and modelaas side by side: the shared virtualenvs and both real servers.

Two DEEPaaS releases are compared (:class:`Release`): :data:`V2`, ``deepaas==2.6.0`` with
``examples/v2-demo-app`` and the compatibility corpus in ``tests/compat/packages``, and
:data:`V1`, ``deepaas==1.3.0`` (the last release with the ``/v1`` routes) with the v1
corpus in ``tests/compat/packages-v1``.

:func:`deepaas_venv` builds (or reuses from a cache keyed by a hash of the inputs) a
virtualenv with the release's DEEPaaS, then modelaas itself (non-editable), then every
model package of that release. It writes ``pip freeze`` before and after modelaas, so that
a test can check that installing modelaas changed no package DEEPaaS had installed.

:func:`serve_both` starts DEEPaaS and ``modelaas serve`` from that virtualenv, on free
loopback ports, each in its own process group, and stops both (with every process they
started) afterwards.

The cache lives in ``$MODELAAS_TEST_CACHE`` (default ``~/.cache/modelaas-tests``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO_APP = ROOT / "examples" / "v2-demo-app"
CORPUS = ROOT / "tests" / "compat" / "packages"
CORPUS_V1 = ROOT / "tests" / "compat" / "packages-v1"
DEEPAAS = "deepaas==2.6.0"
PIP_TIMEOUT = 240  # seconds for one pip command
READY_TIMEOUT = 60
# pip's words when it cannot reach an index ("from versions: none": it saw no release at all,
# unlike a requirement that no existing release satisfies, which is a real failure).
_NETWORK_TROUBLE = re.compile(
    r"NewConnectionError|Temporary failure in name resolution|Name or service not known|"
    r"Network is unreachable|Connection refused|ConnectTimeout|ReadTimeout|timed out|ProxyError|SSLError|"
    r"\(from versions: none\)",
)

# ------------------------------------------------------------------ the virtualenv


def _packages_in(folder: Path) -> dict[str, Path]:
    found = sorted(folder.iterdir()) if folder.is_dir() else []
    return {p.name: p for p in found if (p / "pyproject.toml").is_file()}


def model_packages() -> dict[str, Path]:
    """The model packages installed beside DEEPaaS 2.6.0 and modelaas, by label."""
    return {"demo-app": DEMO_APP, **_packages_in(CORPUS)}


def v1_model_packages() -> dict[str, Path]:
    """The v1 model packages installed beside DEEPaaS 1.3.0 and modelaas, by label."""
    return _packages_in(CORPUS_V1)


# DEEPaaS 1.3.0 does not start on Python 3.8 or later as released: its worker pool class sets
# ``Process = NonDaemonProcess``, which Python 3.8+ calls as ``Process(ctx, ...)``, so that the
# context lands in ``group`` ("group argument must be None for now") while the app is built.
# This launcher gives the pool the method DEEPaaS 2.x itself later used (make the context's
# process, then change its class) and runs ``deepaas-run``. The pool only runs the /v2 view's
# predict and train; the /v1 routes call the model in the server process. DEEPaaS 1.3.0 on
# Python 3.7 with aiohttp 3.6.2, unpatched, answered every request of the v1 corpus module
# exactly as this one does (status, content type and body).
_RUN_DEEPAAS_1_3 = """
import sys
from deepaas.model.v2 import wrapper

def _process(ctx, *args, **kwargs):
    proc = ctx.Process(*args, **kwargs)
    proc.__class__ = wrapper.NonDaemonProcess
    return proc

wrapper.NonDaemonPool.Process = staticmethod(_process)
from deepaas.cmd.run import main
sys.exit(main())
"""


def _deepaas_2_6(bin_dir: Path, port: int, model: str | None) -> list[str]:
    command = [str(bin_dir / "deepaas-run"), "--listen-ip", "127.0.0.1", "--listen-port", str(port)]
    return command + (["--model-name", model] if model else [])


def _deepaas_1_3(bin_dir: Path, port: int, model: str | None) -> list[str]:
    # 1.3.0 has no --model-name: it serves every installed v1 model; the v1 routes are off by default
    assert model is None, "DEEPaaS 1.3.0 serves every installed model: start it without a model name"
    return [
        *(str(bin_dir / "python"), "-c", _RUN_DEEPAAS_1_3, "--enable-v1"),
        *("--listen-ip", "127.0.0.1", "--listen-port", str(port)),
    ]


@dataclass(frozen=True)
class Release:
    """A DEEPaaS release the comparisons run against: what to install, which models, how to start it."""

    name: str
    """Part of the cache key (and so of the virtualenv's name)."""
    requirements: tuple[str, ...]
    """What ``pip install`` gets first: DEEPaaS, with the pins it needs."""
    packages: Callable[[], dict[str, Path]]
    """The model packages installed after modelaas, by label."""
    command: Callable[[Path, int, str | None], list[str]]
    """The DEEPaaS server command, from the virtualenv's ``bin``, the port and the model name (or None)."""


V2 = Release("parity-v2", (DEEPAAS,), model_packages, _deepaas_2_6)

V1 = Release(
    "parity-v1",
    (
        "deepaas==1.3.0",
        # DEEPaaS 1.3.0 asks for webargs>=5.5.2,<6 and marshmallow>=3.2.1, aiohttp>=3.6.2,
        # aiohttp-apispec>=2.2.0, werkzeug>=0.16; left to pip, these resolve to marshmallow 4
        # (which webargs 5 cannot load) and today's aiohttp. Pinned, the oldest releases of its time
        # that install on Python 3.11 and work together:
        "webargs==5.5.3",  # the last 5.x: dict2schema, marshmallow 3 support
        "marshmallow==3.10.0",  # December 2020; ``fields.Str(default=...)`` is a dump default, as in 3.2
        # aiohttp 3.6/3.7 have no wheels for Python 3.10+ and do not build there; 3.8.6 has them up to
        # 3.11, with a yarl of its time (yarl 1.9+ refuses its "host:port" Host: 500 on every request);
        # 3.10.11 has them for 3.12 and 3.13, where it works with today's yarl. The same answers on both.
        "aiohttp==3.8.6; python_version < '3.12'",
        "yarl==1.8.2; python_version < '3.12'",
        "aiohttp==3.10.11; python_version >= '3.12'",
        "aiohttp-apispec==2.2.3",  # the last release, for webargs 5 (brings apispec 3.3.2)
        "werkzeug==1.0.1",  # the FileStorage DEEPaaS 1.3.0 hands to v1 models, as of its time
    ),
    v1_model_packages,
    _deepaas_1_3,
)


def _build_debris(path: Path) -> bool:
    return any(part in ("__pycache__", "build", "dist") or part.endswith(".egg-info") for part in path.parts)


def _tree(base: Path, *parts: str) -> list[Path]:
    out: list[Path] = []
    for part in parts:
        path = base / part
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out += [p for p in sorted(path.rglob("*")) if p.is_file() and not _build_debris(p.relative_to(base))]
    return out


def _sources(release: Release) -> dict[str, tuple[Path, list[Path]]]:
    """The files each install reads: label -> (the folder they are copied from, the files)."""
    root_files = ["pyproject.toml", "README.md", "src", *sorted(p.name for p in ROOT.glob("LICEN[CS]E*"))]
    sources = {"modelaas": (ROOT, _tree(ROOT, *root_files))}
    for label, base in release.packages().items():
        sources[label] = (base, _tree(base, "."))
    return sources


def _cache_key(release: Release, sources: dict[str, tuple[Path, list[Path]]]) -> str:
    digest = hashlib.sha256()
    digest.update(f"{sys.version}|{sys.platform}|{' '.join(release.requirements)}|{release.name}".encode())
    for label, (base, files) in sources.items():
        for path in files:
            digest.update(f"\0{label}/{path.relative_to(base).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _copy(base: Path, files: list[Path], dest: Path) -> str:
    """Install from a copy: building in place would leave build/ and *.egg-info in the work tree."""
    for path in files:
        target = dest / path.relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return str(dest)


def _freeze(python: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    versions: dict[str, str] = {}
    for line in out.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        if not sep:
            name, _, version = line.partition(" @ ")
        versions[re.sub(r"[-_.]+", "-", name).lower().strip()] = version.strip()
    return versions


def _no_network(message: str) -> None:
    """Skip without a package index, except in CI, which has one: there it is a failure."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def _pip(python: Path, log: Path, *args: str) -> None:
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--retries", "2", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}  # PIP_* (mirrors, certs) stay
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT, env=env)
    except subprocess.TimeoutExpired as exc:
        _no_network(f"pip install {' '.join(args)} took longer than {PIP_TIMEOUT}s (network?): {exc}")
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}\n")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        if _NETWORK_TROUBLE.search(proc.stdout + proc.stderr):
            _no_network(f"cannot reach the package index to build the DEEPaaS venv:\n{tail}")
        pytest.fail(f"pip install {' '.join(args)} failed:\n{tail}")


def parse_freeze(path: Path) -> dict[str, str]:
    pairs = (line.split("==", 1) for line in path.read_text().splitlines() if "==" in line)
    return {name: version for name, version in pairs}


def _write_freeze(path: Path, versions: dict[str, str]) -> None:
    path.write_text("".join(f"{name}=={version}\n" for name, version in sorted(versions.items())))


def _build(venv: Path, work: Path, release: Release) -> None:
    log = venv.parent / (venv.name + ".log")
    log.write_text("")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    python = venv / "bin" / "python"
    _pip(python, log, *release.requirements)
    _write_freeze(venv / "freeze-deepaas.txt", _freeze(python))
    sources = _sources(release)
    own_base, own_files = sources.pop("modelaas")
    _pip(python, log, _copy(own_base, own_files, work / "modelaas"))
    _write_freeze(venv / "freeze-modelaas.txt", _freeze(python))
    _pip(python, log, *(_copy(base, files, work / label) for label, (base, files) in sources.items()))
    (venv / ".complete").write_text("ok\n")


def _prune(cache: Path, keep: Path, max_age: float = 7 * 86400) -> None:
    """Remove virtualenvs of other inputs unused for ``max_age`` seconds (with their lock and log)."""
    for old in cache.glob("parity-*"):
        if old.is_dir() and old != keep and time.time() - old.stat().st_mtime > max_age:
            shutil.rmtree(old, ignore_errors=True)
            for extra in (".lock", ".log"):
                old.with_name(old.name + extra).unlink(missing_ok=True)


def deepaas_venv(tmp_path_factory: pytest.TempPathFactory, release: Release = V2) -> Path:
    """The virtualenv with DEEPaaS, modelaas and the model packages (built once per set of inputs)."""
    cache = Path(os.environ.get("MODELAAS_TEST_CACHE") or Path.home() / ".cache" / "modelaas-tests")
    cache.mkdir(parents=True, exist_ok=True)
    venv = cache / f"parity-{_cache_key(release, _sources(release))}"
    with (cache / (venv.name + ".lock")).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; the others then reuse it
        try:
            if not (venv / ".complete").exists():
                shutil.rmtree(venv, ignore_errors=True)
                try:
                    _build(venv, tmp_path_factory.mktemp("deepaas-venv-src"), release)
                except BaseException:
                    shutil.rmtree(venv, ignore_errors=True)
                    raise
            os.utime(venv)
            _prune(cache, keep=venv)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return venv


# ----------------------------------------------------------------------- servers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    ready_path: str
    problem: str | None = None
    """Why the server is not serving (set by :meth:`wait_ready`), or None."""

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until the server says it is ready; otherwise record why in :attr:`problem`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.problem = f"{self.name} exited with {self.proc.returncode} before it was ready:\n{self.log_tail()}"
                return
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.problem = f"{self.name} did not answer GET {self.ready_path} within {timeout}s:\n{self.log_tail()}"

    def require(self) -> str:
        """The base URL; fails the calling test if the server never became ready."""
        if self.problem:
            pytest.fail(self.problem)
        return self.url


def ask_both(
    servers: dict[str, Server], send: Callable[[str], httpx.Response]
) -> tuple[httpx.Response, httpx.Response]:
    """The same request to DEEPaaS, then to modelaas: (theirs, ours)."""
    return send(servers["deepaas"].require()), send(servers["modelaas"].require())


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``procs`` still running (zombies are not)."""
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            continue
    return out


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive(members)


def _stop(server: Server) -> list[int]:
    """Stop the server's process group and every process it started; return the pids still alive (should be none).

    SIGTERM first; then SIGKILL for whatever is left (deepaas-run 2.6.0 with its worker pool does not exit on
    SIGTERM). Processes the server started in groups of their own (modelaas trainings) are stopped too.
    """
    pgid = server.proc.pid
    try:
        started = psutil.Process(pgid).children(recursive=True)
    except psutil.Error:
        started = []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(timeout=3)
    deadline = time.monotonic() + 10
    while (_group_members(pgid) or alive(started)) and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        for proc in alive(started):
            with contextlib.suppress(psutil.Error):
                proc.kill()
        time.sleep(0.2)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(timeout=10)
    return sorted({p.pid for p in _group_members(pgid) + alive(started)})


@contextlib.contextmanager
def serve_both(
    venv: Path,
    model: str | None,
    tmp: Path,
    *,
    release: Release = V2,
    modelaas_flags: tuple[str, ...] = (),
) -> Iterator[dict[str, Server]]:
    """DEEPaaS and ``modelaas serve`` for ``model`` (every installed model if None), started together;
    ready (or with a problem) when yielded. ``modelaas_flags`` go to ``modelaas serve`` only.

    Stopping them afterwards fails if any process they started is left running.
    """
    bin_dir = venv / "bin"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MODELAAS_", "OS_DEFAULT__", "DEEPAAS_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(tmp)  # no user config files for either server
    commands = {
        "deepaas": ("/", lambda port: release.command(bin_dir, port, model)),
        "modelaas": (
            "/readyz",
            lambda port: [
                *(str(bin_dir / "modelaas"), "serve", "--listen-port", str(port)),
                *("--data-dir", str(tmp / "modelaas-data"), *modelaas_flags),
                *(("--model-name", model) if model else ()),
            ],
        ),
    }
    started: dict[str, Server] = {}
    leftovers: dict[str, list[int]] = {}
    try:
        for name, (ready_path, command) in commands.items():
            port = _free_port()
            log = tmp / f"{name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    command(port),
                    cwd=tmp,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            started[name] = Server(name, proc, f"http://127.0.0.1:{port}", log, ready_path)
        for server in started.values():
            server.wait_ready()
        yield started
    finally:
        for name, server in started.items():
            left = _stop(server)
            if left:
                leftovers[name] = left
    assert not leftovers, f"server processes left running after teardown: {leftovers}"


# ----------------------------------------------------------------------- requests

ACTIVE = ("queued", "running")
"""Job states before the end (modelaas adds ``queued``; DEEPaaS reports queued jobs as running)."""


def predict_url(base: str, model: str) -> str:
    return f"{base}/v2/models/{model}/predict/"


def train_url(base: str, model: str, job: str = "") -> str:
    return f"{base}/v2/models/{model}/train/{job}"


def submit(base: str, model: str, **kwargs: Any) -> dict[str, Any]:
    """Start a training (``kwargs`` as for ``httpx.post``); its record."""
    response = httpx.post(train_url(base, model), timeout=30, **kwargs)
    assert response.status_code == 200, f"{base}: {response.status_code} {response.text}"
    record: dict[str, Any] = response.json()
    return record


def finished(base: str, model: str, job: str, *, timeout: float) -> dict[str, Any]:
    """The job's record once it has ended, or its last record after ``timeout`` seconds (still active)."""
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = httpx.get(train_url(base, model, job), timeout=30).json()
        if record.get("status") not in ACTIVE or time.monotonic() > deadline:
            return record
        time.sleep(0.1)


def train_both(
    servers: dict[str, Server], model: str, *, timeout: float, **kwargs: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same training submitted to DEEPaaS and to modelaas (``kwargs`` as for ``httpx.post``), run at
    the same time: (theirs, ours), the records once ended or after ``timeout`` seconds."""
    bases = [servers[name].require() for name in ("deepaas", "modelaas")]
    jobs = [submit(base, model, **kwargs)["uuid"] for base in bases]
    theirs, ours = (finished(base, model, job, timeout=timeout) for base, job in zip(bases, jobs, strict=True))
    return theirs, ours


def outcome(record: dict[str, Any]) -> str:
    """A job's status and message, for failure reports (which cut long records short)."""
    return f"job {record.get('uuid')} {record.get('status')}: {record.get('message', '')}"


def modelaas_log(base: str, model: str, job: str) -> str:
    """The job's log as modelaas stores it (DEEPaaS keeps none)."""
    response = httpx.get(train_url(base, model, job) + "/logs", timeout=30)
    assert response.status_code == 200, response.text
    return response.text
