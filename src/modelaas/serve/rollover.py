"""Rolling reloads: a server's serving processes replaced one at a time when what it serves changes.

The supervisor (serve/supervisor.py) looks at the job store's serving state every
``--serving-poll`` seconds, or at once when one of its processes changed it. When a served
model's generation changed (an activation, a reload request: src/modelaas/versions/), each
slot in turn gets a new process, which accepts connections only once warm; then the old
process of the slot is told to step back (SIGUSR1: it stops accepting and closes each
connection after its next answer) and left to exit. A new process that fails to start
abandons the reload; the old processes serve on.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from modelaas.settings import Settings
from modelaas.telemetry import metrics

log = logging.getLogger("modelaas.serve")
GRACE_SECONDS = 35.0
"""How long a stopping or replaced serving process may take to finish its requests."""


@dataclass
class Slot:
    """A place for one serving process (``--workers`` of them): its process and how it fares."""

    index: int
    process: Any = None
    conn: Connection | None = None
    ready: bool = False
    crashes: list[float] = field(default_factory=list)
    respawn_at: float | None = None


@dataclass
class Reload:
    """A rolling reload under way: slots still to replace, and the new process of the current one."""

    generations: dict[str, int]
    reason: str
    todo: list[int]
    started: float
    standby: Slot | None = None


class RollingReloads:
    """The supervisor's rolling reloads (mixed into :class:`~modelaas.serve.supervisor.Supervisor`)."""

    settings: Settings
    _reload: Reload | None
    _retiring: list[Any]
    _loaded: dict[str, int]
    _failed_generations: dict[str, int] | None
    _next_poll: float
    _serving_store: Any
    _states: dict[str, Any] | None
    _store_warned: bool
    _serving_detail: dict[str, str]

    def _spawn(self, ctx: Any, slot: Slot, sock: socket.socket, *, standby: bool = False) -> None:
        raise NotImplementedError

    def _read_messages(self, slot: Slot, *, standby: bool = False) -> None:
        raise NotImplementedError

    def _follow_serving(self, ctx: Any, slots: list[Slot], sock: socket.socket, now: float) -> None:
        """Look at the store's serving state now and then; replace processes one at a time when it changed."""
        if self._reload is not None:
            self._advance_reload(ctx, slots, sock, now)
            return
        if now < self._next_poll or not self._loaded:
            return
        self._next_poll = now + self.settings.serving_poll
        wanted = self._serving_generations()
        if wanted is None or wanted == self._failed_generations:
            return
        changed = sorted(m for m, g in wanted.items() if g != self._loaded.get(m, 0))
        if not changed:
            return
        reason = ", ".join(f"{m} ({self._serving_detail.get(m, '')}generation {wanted[m]})" for m in changed)
        log.info("Serving state changed for %s: replacing %d serving process(es) one at a time.", reason, len(slots))
        metrics.current().reloaded()
        self._reload = Reload(wanted, reason, [s.index for s in slots], now)
        self._advance_reload(ctx, slots, sock, now)

    def _served(self) -> dict[str, tuple[int | None, int]] | None:
        """What new serving processes serve, (active version, generation) by model: plain values (a serving
        process does not import the job store's modules to read them)."""
        if self._states is None:
            return None
        return {m: (st.active_version, st.generation) for m, st in self._states.items()}

    def _read_serving(self, *, quiet: bool = False) -> dict[str, Any] | None:
        """The store's serving state of every model changed once; None (logged once) if it cannot be read."""
        from modelaas.jobs.database import first_line, store_url
        from modelaas.versions.serving import ServingStore

        try:
            if self._serving_store is None:
                url = store_url(self.settings.jobs_db, self.settings.data_dir)
                self._serving_store = ServingStore(url, retry_for=1)
            return dict(self._serving_store.serving())
        except Exception as exc:  # an outage (or, at start, a store not made yet): serving goes on as it is
            if quiet:
                log.debug("No serving state in the job store yet: %s", first_line(exc))
            elif not self._store_warned:
                log.warning("Cannot read the serving state from the job store: %s; retrying.", first_line(exc))
                self._store_warned = True
            return None

    def _serving_generations(self) -> dict[str, int] | None:
        states = self._read_serving()
        if states is None:
            return None
        self._states = states
        if self._store_warned:
            log.info("The job store answers again: following its serving state.")
        self._store_warned = False
        self._serving_detail = {
            m: ("as installed, " if st.active_version is None else f"version {st.active_version}, ")
            + (f"by {st.updated_by}, " if st.updated_by else "")
            for m, st in states.items()
        }
        return {m: states[m].generation if m in states else 0 for m in self._loaded}

    def _reload_after_training(self, job: Any) -> None:
        """--reload-after-training: a model trained successfully here is reloaded by every server."""
        from modelaas.jobs.database import store_url
        from modelaas.jobs.records import JobStatus
        from modelaas.versions.serving import ServingStore

        if job.status is not JobStatus.DONE:
            return
        store = ServingStore(store_url(self.settings.jobs_db, self.settings.data_dir))
        try:
            state = store.request_reload(job.model, by=f"training {job.id}")
        finally:
            store.close()
        log.info("Training %s of %r finished: reload requested (generation %d).", job.id, job.model, state.generation)
        self._next_poll = 0.0  # this server follows at once

    def _advance_reload(self, ctx: Any, slots: list[Slot], sock: socket.socket, now: float) -> None:
        r = self._reload
        assert r is not None
        standby = r.standby
        if standby is None:
            if not r.todo:
                if self._retiring:  # finished once no process of the old generation answers any more
                    return
                self._loaded = dict(r.generations)
                self._failed_generations = None
                log.info("Reload finished in %.1f s: %s.", now - r.started, r.reason)
                self._reload = None
                return
            standby = r.standby = Slot(r.todo[0])
            self._spawn(ctx, standby, sock, standby=True)  # it accepts connections once warm
            return
        self._read_messages(standby, standby=True)
        if (standby.process is not None and not standby.process.is_alive()) or standby.conn is None:
            how = standby.process.exitcode if standby.process is not None else "?"
            log.error(
                "Reload abandoned: a new serving process did not start (exit code %s); the others keep "
                "serving; the next change of the serving state tries again.",
                how,
            )
            if standby.process is not None:
                standby.process.join(1)
                metrics.process_died(standby.process.pid)
            self._failed_generations = dict(r.generations)
            self._reload = None
            return
        if not standby.ready:
            return
        slot = next(s for s in slots if s.index == r.todo[0])
        old = slot.process
        if old is not None and old.is_alive():
            os.kill(old.pid, signal.SIGUSR1)  # it stops accepting and finishes its connections
            self._retiring.append((old, now + GRACE_SECONDS))
        if slot.conn is not None:
            slot.conn.close()
        slot.process, slot.conn, slot.ready, slot.respawn_at = standby.process, standby.conn, True, None
        log.info("Serving process %d replaced (%s).", slot.index, r.reason)
        r.todo.pop(0)
        r.standby = None

    def _reap_retiring(self, now: float) -> None:
        keep = []
        for process, deadline in self._retiring:
            if not process.is_alive():
                process.join(0)
                metrics.process_died(process.pid)
            elif now > deadline:
                log.warning("A replaced serving process (%d) did not finish in time; killing it.", process.pid)
                process.kill()
                process.join(5)
                metrics.process_died(process.pid)
            else:
                keep.append((process, deadline))
        self._retiring = keep
