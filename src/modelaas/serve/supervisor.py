"""The supervisor: binds the socket, keeps ``--workers`` serving processes alive.

* A serving process that fails to load or warm its models before serving stops the whole
  server: its traceback is printed and the exit code is 3 (no silent fallback).
* A serving process that dies later (a crash, a segfault in model code) is replaced,
  with a growing back-off if it keeps dying; the others keep serving meanwhile.
* SIGTERM/SIGINT: serving processes stop accepting and finish in-flight requests while
  running trainings are stopped and recorded as interrupted (so their event streams end); exit.
  A terminal's Ctrl-C (SIGINT to the supervisor and its serving processes alike, once or
  many times) stops the server quietly with exit code 0: serving processes ignore SIGINT
  from their start and are stopped by the supervisor's SIGTERM.
* Serving processes die with the supervisor, even when it is killed with SIGKILL.
* Access tokens are read before anything starts (a bad tokens file stops start-up); a
  server that listens beyond loopback without any token says so loudly in its log.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelaas.errors import ConfigError
from modelaas.jobs.ids import new_server_id
from modelaas.serve.banner import banner
from modelaas.serve.logs import configure_logging
from modelaas.serve.rollover import GRACE_SECONDS, Reload, RollingReloads, Slot
from modelaas.serve.worker import FATAL_EXIT, worker_main
from modelaas.settings import Settings
from modelaas.telemetry import metrics
from modelaas.tokens import load_tokens

if TYPE_CHECKING:
    from modelaas.jobs.wiring import SchedulerHost

log = logging.getLogger("modelaas.serve")


class Supervisor(RollingReloads):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stopping = False
        self._exit_code = 0
        self._announced = False
        self.server_id = new_server_id()
        self._scheduler: SchedulerHost | None = None
        self._metrics_sock: socket.socket | None = None
        self._metrics_dir: str | None = None
        self._models: list[tuple[str, str]] = []
        self._loaded: dict[str, int] = {}
        """The serving generation of each model its processes loaded (see src/modelaas/versions/)."""
        self._reload: Reload | None = None
        self._retiring: list[Any] = []
        """Replaced processes finishing their connections: (process, deadline)."""
        self._failed_generations: dict[str, int] | None = None
        self._next_poll = 0.0
        self._serving_store: Any = None
        self._states: dict[str, Any] | None = None
        """Each model's serving state as last read from the job store, given to new serving processes."""
        self._store_warned = False
        self._serving_detail: dict[str, str] = {}
        """What each model serves and who changed it last, for the log of a reload."""

    def run(self) -> int:
        configure_logging(self.settings.log_level, self.settings.log_format)
        self.settings.make_data_dir()
        self._check_access()
        sock = bind_socket(self.settings.listen_ip, self.settings.listen_port)
        if self.settings.metrics and self.settings.metrics_port is not None:
            try:
                self._metrics_sock = bind_socket(self.settings.listen_ip, self.settings.metrics_port, "--metrics-port")
            except BaseException:
                sock.close()
                raise
        if self.settings.metrics:  # before prometheus_client is imported here or in a serving process
            self._metrics_dir = str(metrics.make_multiprocess_dir())  # and those of killed servers removed
            metrics.prepare_multiprocess(Path(self._metrics_dir))
            metrics.install()  # restarts and trainings are recorded here (prometheus_client: on first use)
        ctx = multiprocessing.get_context("spawn")
        slots = [Slot(i) for i in range(self.settings.workers)]
        previous_sigterm = signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        scheduler = None
        try:
            # What to serve (one query; a store without it yet: every model as installed), then the
            # serving processes: their start-up (imports, the model) overlaps the job store's.
            self._states = self._read_serving(quiet=True)
            for slot in slots:
                self._spawn(ctx, slot, sock)
            if self.settings.train_endpoint and not self._stopping:  # a Ctrl-C at once: no store to open
                scheduler = self._scheduler = self._start_scheduler()
            while not self._stopping:
                self._step(ctx, slots, sock)
        finally:
            try:
                self._shutdown(slots, scheduler)  # a Ctrl-C pressed again meanwhile changes nothing
            finally:
                # Stopped: a Ctrl-C pressed again while the process exits changes nothing either
                # (restored to the default, it would kill the process during Python's exit).
                signal.signal(signal.SIGTERM, previous_sigterm)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                sock.close()
                if self._metrics_sock is not None:
                    self._metrics_sock.close()
                if self._metrics_dir is not None:
                    shutil.rmtree(self._metrics_dir, ignore_errors=True)
        return self._exit_code

    def _check_access(self) -> None:
        tokens = load_tokens(self.settings)
        if tokens.enabled:
            log.info("Access control is on: %d token%s.", len(tokens), "" if len(tokens) == 1 else "s")
        elif not is_loopback(self.settings.listen_ip):
            log.warning(
                "Listening on %s without access tokens: anyone who can reach this address can run "
                "predictions and start, read and delete trainings. Set tokens with the environment "
                "variable MODELAAS_TOKENS='admin sha256:<hex>' or with --tokens-file PATH "
                "(see docs/security.md), or listen on 127.0.0.1.",
                self.settings.listen_ip,
            )

    def _start_scheduler(self) -> SchedulerHost:
        """The job store is opened (and migrated); a bad URL stops start-up (and the serving processes)."""
        from modelaas.jobs.database import relative_sqlite_warning, store_name
        from modelaas.jobs.wiring import SchedulerHost
        from modelaas.versions.trainings import training_hook

        warning = relative_sqlite_warning(self.settings.jobs_db)
        if warning:
            log.warning("%s", warning)
        host = SchedulerHost(self.settings, self.server_id, ended=training_hook(self.settings))
        if self.settings.reload_after_training:
            host.scheduler.on_end = self._reload_after_training
        host.start()
        log.info("Job store: %s", store_name(host.store.url))
        return host

    # ----------------------------------------------------------------- loop
    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self._stopping:
            log.info("Received %s; finishing in-flight requests and stopping.", signal.Signals(signum).name)
        self._stopping = True

    def _spawn(self, ctx: Any, slot: Slot, sock: socket.socket, *, standby: bool = False) -> None:
        parent_conn, child_conn = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=worker_main,
            args=(self.settings, sock, child_conn, self.server_id, self._metrics_sock, standby, self._served()),
            name=f"modelaas-worker-{slot.index}",
        )
        with sigint_blocked_in_children():
            process.start()
        child_conn.close()
        slot.process, slot.conn, slot.ready, slot.respawn_at = process, parent_conn, False, None

    def _step(self, ctx: Any, slots: list[Slot], sock: socket.socket) -> None:
        waitables: list[Any] = []
        standby = self._reload.standby if self._reload is not None else None
        for slot in [*slots, *([standby] if standby is not None else [])]:
            if slot.process is not None:
                waitables.append(slot.process.sentinel)
                if slot.conn is not None:
                    waitables.append(slot.conn)
        waitables += [process.sentinel for process, _ in self._retiring]
        wait(waitables, timeout=0.25)
        now = time.monotonic()
        self._reap_retiring(now)
        if self._announced:
            self._follow_serving(ctx, slots, sock, now)
        for slot in slots:
            self._read_messages(slot)
            if self._stopping:
                return
            if slot.process is not None and not slot.process.is_alive():
                self._on_death(slot, now)
            if slot.process is None and slot.respawn_at is not None and now >= slot.respawn_at:
                log.info("Starting a new serving process in place of worker %d.", slot.index)
                self._spawn(ctx, slot, sock)
        if not self._announced and all(s.ready for s in slots):
            self._announced = True
            self._announce()

    def _read_messages(self, slot: Slot, *, standby: bool = False) -> None:
        conn = slot.conn
        while conn is not None and conn.poll():
            try:
                message = conn.recv()
            except (EOFError, OSError):
                slot.conn = None
                conn.close()
                return
            if message[0] == "ready":
                slot.ready = True
                if len(message) > 1:
                    self._models = message[1]
                if len(message) > 2 and not self._announced:
                    self._loaded = dict(message[2])
            elif message[0] == "serving-changed":
                self._next_poll = 0.0
            elif message[0] == "job-submitted" and self._scheduler is not None:
                self._scheduler.wake()
            elif message[0] == "fatal" and standby:  # a new process of a reload: the reload fails, not the server
                log.error("A new serving process failed to start: %s", message[1])
            elif message[0] == "fatal":
                _, text, trace = message
                if trace:
                    print(trace.rstrip(), file=sys.stderr)
                print(f"Error: {text}", file=sys.stderr)
                self._exit_code = FATAL_EXIT
                self._stopping = True

    def _on_death(self, slot: Slot, now: float) -> None:
        code = slot.process.exitcode
        was_ready = slot.ready
        metrics.process_died(slot.process.pid)
        slot.process.join(0)
        slot.process, slot.ready = None, False
        if slot.conn is not None:
            slot.conn.close()
            slot.conn = None
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        if not was_ready and not self._announced:
            print(f"Error: a serving process died while starting ({how}).", file=sys.stderr)
            self._exit_code = FATAL_EXIT
            self._stopping = True
            return
        slot.crashes = [t for t in slot.crashes if now - t < 60] + [now]
        delay = min(10.0, 0.1 * 2 ** (len(slot.crashes) - 1))
        log.error("Serving process %d died (%s); replacing it in %.1f s.", slot.index, how, delay)
        metrics.current().restarted()
        slot.respawn_at = now + delay

    def _announce(self) -> None:
        s = self.settings
        host = f"[{s.listen_ip}]" if ":" in s.listen_ip else s.listen_ip
        url = f"http://{host}:{s.listen_port}{s.base_path}"
        for line in banner(s, self._models, url):
            log.info("%s", line)
        docs = f"; API docs at {url}/api" if s.doc_endpoint else ""
        log.info("modelaas is ready on %s with %d serving process(es)%s", url, s.workers, docs)

    def _shutdown(self, slots: list[Slot], scheduler: SchedulerHost | None) -> None:
        """Serving processes stop accepting and finish their requests while trainings are stopped.

        Trainings are stopped (and recorded) before waiting for the serving processes: an
        open event stream of a training ends only when the training does.
        """
        alive = [s.process for s in slots if s.process is not None and s.process.is_alive()]
        if self._reload is not None and self._reload.standby is not None and self._reload.standby.process is not None:
            alive.append(self._reload.standby.process)
        alive += [process for process, _ in self._retiring if process.is_alive()]
        trainings = len(scheduler.scheduler.running_jobs()) if scheduler is not None else 0
        log.info(
            "Shutting down: %d serving process(es) finish their requests; %d training(s) running are stopped.",
            len(alive),
            trainings,
        )
        for process in alive:
            try:
                os.kill(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            if scheduler is not None:
                scheduler.stop()
                scheduler.store.close()
        finally:
            self._join(alive, slots)

    def _join(self, alive: list[Any], slots: list[Slot]) -> None:
        deadline = time.monotonic() + GRACE_SECONDS
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("Serving process %d did not stop in time; killing it.", process.pid)
                process.kill()
                process.join(5)
        for slot in slots:
            if slot.conn is not None:
                slot.conn.close()


@contextlib.contextmanager
def sigint_blocked_in_children() -> Iterator[None]:
    """Processes started inside begin with SIGINT blocked (held pending, never delivered).

    A terminal's Ctrl-C reaches the whole foreground process group: the supervisor, which
    stops the server, and its serving processes, which it stops with SIGTERM. In them SIGINT
    would raise KeyboardInterrupt wherever they are (a traceback on the user's screen). A
    blocked signal stays blocked across fork and exec, before any of the child's Python runs;
    the child then ignores it and unblocks it (:func:`~modelaas.serve.worker.worker_main`).
    Here it is blocked for this thread only: one that arrives meanwhile waits, or is taken
    by another thread, and reaches the supervisor's handler either way.
    """
    # multiprocessing starts its resource tracker with the first child, and unblocks SIGINT
    # when it has: started first, it leaves the mask alone
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name: it may resolve to anything
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def bind_socket(host: str, port: int, flag: str = "--listen-port") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"Port {port} on {host} is already in use; pick another with {flag}.") from None
        raise ConfigError(f"Cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
