"""Training-job handles of :class:`modelaas.Client`: records, events (SSE), logs, artefacts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote

import httpx

from modelaas.client.transport import Transport
from modelaas.errors import JobFailed, JobNotFound, ModelaasError, ModelNotFound, NotFound, ServerUnreachable


class _Connected(Protocol):
    """A :class:`~modelaas.client.Client`, as job handles see it: its transport."""

    @property
    def transport(self) -> Transport: ...


FINAL = frozenset({"done", "error", "cancelled", "interrupted"})
"""Statuses a job never leaves."""
STREAM_READ_TIMEOUT = 60.0
"""Longest silence on an event stream before it counts as dropped (the server sends a
keep-alive comment every 15 s)."""
MAX_RECONNECTS = 5
"""Reconnections in a row, without receiving an event, before giving up."""
MAX_RETRY_DELAY = 30.0


def model_path(name: str) -> str:
    return f"v2/models/{quote(name, safe='')}/"


def job_path(model: str, job: str) -> str:
    return f"{model_path(model)}train/{quote(job, safe='')}"


class Event(NamedTuple):
    """One Server-Sent Event of a job: ``kind`` is ``state``, ``progress`` or ``log``;
    ``data`` is its decoded JSON (the raw text if it is not JSON); ``id`` a number that grows
    with each event (counted across all jobs, not from 1 for each), to resume from with
    ``job.events(after=id)``."""

    id: int
    kind: str
    data: Any

    @property
    def final(self) -> bool:
        """Whether this event gives the job its final state (the stream ends with it)."""
        return self.kind == "state" and isinstance(self.data, dict) and self.data.get("status") in FINAL


class Job:
    """A handle on one training job. ``record`` is the record as last fetched."""

    def __init__(self, client: _Connected | Transport, model: str, record: dict[str, Any]) -> None:
        self._transport = client if isinstance(client, Transport) else client.transport
        self.model = model
        self.record = record
        self.id = str(record["uuid"])
        self._path = job_path(model, self.id)

    def __repr__(self) -> str:
        return f"<Job {self.model}/{self.id} {self.status}>"

    @property
    def status(self) -> str:
        return str(self.record["status"])

    @property
    def finished(self) -> bool:
        """Whether the job is in a final state (as of the last fetched record)."""
        return self.status in FINAL

    @property
    def progress(self) -> float | None:
        value = self.record.get("progress")
        return None if value is None else float(value)

    @property
    def message(self) -> str | None:
        return self.record.get("message")

    @property
    def result(self) -> Any:
        """What ``train`` returned, once the job is ``done`` (``None`` before)."""
        if self.status != "done":
            return None
        return (self.record.get("result") or {}).get("output")

    # ---------------------------------------------------------------- record
    def refresh(self) -> dict[str, Any]:
        """Fetch the record again (and answer it)."""
        self.record = self._request("GET", self._path).json()
        return self.record

    def wait(self, timeout: float | None = None, poll: float = 1.0, *, raise_on_failure: bool = True) -> dict[str, Any]:
        """Block until the job is in a final state and answer its final record.

        Follows the job's event stream; against a server without one (DEEPaaS), polls
        the record every ``poll`` seconds. Raises :class:`TimeoutError` after ``timeout``
        seconds. A job that ends other than ``done`` (``error``, ``interrupted``,
        ``cancelled``) raises :class:`~modelaas.errors.JobFailed`, its final record in
        ``.record``; with ``raise_on_failure=False`` its record is answered instead.
        """
        record = self._wait_final(timeout, poll)
        if raise_on_failure and record["status"] != "done":
            raise JobFailed(record)
        return record

    def _wait_final(self, timeout: float | None, poll: float) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.finished:
            try:
                for event in _follow(self, 0, deadline):
                    if event.final:
                        break
            except TimeoutError:
                raise TimeoutError(f"Job {self.id} did not finish within {timeout} s.") from None
            except (JobNotFound, ModelNotFound):
                raise
            except NotFound:
                pass  # no events route: poll
        while True:
            record = self.refresh()
            if self.finished:
                return record
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"Job {self.id} did not finish within {timeout} s (still {self.status}).")
            time.sleep(poll if remaining is None else min(poll, remaining))

    def cancel(self) -> dict[str, Any]:
        """Cancel the job if it is still active and answer its record (``cancelled``).

        A job that has already ended is left alone (the server's DELETE would remove it).
        """
        if self.refresh()["status"] in FINAL:
            return self.record
        self.record = self._request("DELETE", self._path).json()
        return self.record

    def delete(self) -> None:
        """Remove the job and its artefacts from the server, cancelling it first if needed."""
        self._request("DELETE", self._path)  # cancels an active job, removes a finished one
        try:
            self._request("DELETE", self._path)
        except JobNotFound:
            pass

    # ---------------------------------------------------------------- events and logs
    def events(self, after: int = 0) -> Iterator[Event]:
        """The job's events after event ``after``, in order, as they happen.

        Starts with the job's history and ends after the event that gives the job its
        final state (at once for a finished job with nothing after ``after``). A dropped
        connection is resumed with ``Last-Event-ID``: no event is lost or repeated.
        """
        return _follow(self, after, None)

    def logs(self, offset: int = 0) -> tuple[list[str], int]:
        """One page of the job's output (up to 10,000 lines) from line ``offset`` on, and the
        offset to continue from; :meth:`all_logs` reads every page."""
        lines, next_offset, _ = self._logs(offset)
        return lines, next_offset

    def all_logs(self, offset: int = 0) -> Iterator[str]:
        """Every line of the job's output stored so far, from line ``offset`` on, page by page."""
        while True:
            lines, offset, _ = self._logs(offset)
            if not lines:
                return
            yield from lines

    def follow_logs(self, offset: int = 0, poll: float = 0.5) -> Iterator[str]:
        """The job's output lines from line ``offset`` on, as they come, until the job ends.

        Ends after a read that found no more lines once the job had ended: every line is
        read, however many pages the log has.
        """
        while True:
            lines, offset, status = self._logs(offset)
            yield from lines
            if lines:
                continue  # more may be waiting: read on at once
            if status is None:
                status = self.refresh()["status"]
                if status in FINAL:  # no status with the lines: one more read after seeing it
                    lines, offset, _ = self._logs(offset)
                    yield from lines
                    if lines:
                        continue
            if status in FINAL:
                return
            time.sleep(poll)

    def _logs(self, offset: int) -> tuple[list[str], int, str | None]:
        response = self._request("GET", f"{self._path}/logs", params={"offset": offset})
        lines = response.text.split("\n")
        if lines[-1] == "":
            lines.pop()
        try:
            next_offset = int(response.headers["X-Next-Offset"])
        except (KeyError, ValueError):
            next_offset = offset + len(lines)
        return lines, next_offset, response.headers.get("X-Job-Status")

    # ---------------------------------------------------------------- artefacts
    def files(self) -> list[dict[str, Any]]:
        """The artefacts the job wrote: ``[{"path", "size", "href"}]``."""
        return list(self._request("GET", f"{self._path}/files").json())

    def download(self, path: str, dest: str | Path) -> Path:
        """Stream the artefact ``path`` to ``dest`` (a file, or a folder to put it in) and
        answer where it was written. Nothing is left at ``dest`` if the download fails."""
        target = Path(dest)
        if target.is_dir():
            target = target / PurePosixPath(path).name
        part = target.with_name(target.name + ".part")
        url = f"{self._path}/files/{quote(path, safe='/')}"
        with self._transport.stream("GET", url, model=self.model, job=self.id) as response:
            try:
                with part.open("wb") as fh:
                    for chunk in response.iter_bytes():
                        fh.write(chunk)
                part.replace(target)
            except httpx.TransportError as exc:
                part.unlink(missing_ok=True)
                raise self._transport.unreachable(exc) from exc
            except BaseException:
                part.unlink(missing_ok=True)
                raise
        return target

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._transport.request(method, path, model=self.model, job=self.id, **kwargs)


# -------------------------------------------------------------------- Server-Sent Events
class SSEParser:
    """The event-stream format (WHATWG HTML, "Server-sent events"), fed line by line."""

    def __init__(self, last_id: int = 0) -> None:
        self.last_id = last_id
        """The id of the last dispatched event: what ``Last-Event-ID`` resumes from."""
        self.retry: float | None = None
        """The reconnection delay the server asked for, in seconds."""
        self._id = last_id
        self._kind = ""
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        """Take one line (without its end); answer the event a blank line completes."""
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._kind = value
        elif name == "id" and "\0" not in value:
            try:
                self._id = int(value)
            except ValueError:
                pass  # this server's ids are whole numbers; others are not followed
        elif name == "retry" and value.isdigit():
            self.retry = int(value) / 1000
        return None

    def _dispatch(self) -> Event | None:
        self.last_id = self._id
        data, kind = self._data, self._kind or "message"
        self._data, self._kind = [], ""
        if not data:
            return None
        text = "\n".join(data)
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        return Event(self.last_id, kind, value)


def _follow(job: Job, after: int, deadline: float | None) -> Iterator[Event]:
    """Read the job's event stream, reconnecting with ``Last-Event-ID`` when it drops."""
    transport = job._transport
    last, failures, delay = after, 0, 1.0
    while True:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last:
            headers["Last-Event-ID"] = str(last)
        parser = SSEParser(last)
        try:
            with transport.stream(
                "GET",
                f"{job._path}/events",
                model=job.model,
                job=job.id,
                headers=headers,
                timeout=_stream_timeout(transport.timeout, deadline),
            ) as response:
                for line in response.iter_lines():
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(f"Job {job.id}: no final state before the deadline.")
                    event = parser.feed(line)
                    if event is None:
                        continue
                    last, failures = event.id, 0
                    yield event
                    if event.final:
                        return
            return  # the server ended the stream
        except (httpx.TransportError, ModelaasError) as exc:
            if isinstance(exc, ModelaasError) and not isinstance(exc, ServerUnreachable):
                raise  # an error answer, not a lost connection
            lost: Exception = exc
        delay = min(parser.retry if parser.retry is not None else delay, MAX_RETRY_DELAY)
        if deadline is not None and time.monotonic() + 0.01 >= deadline:
            raise TimeoutError(f"Job {job.id}: no final state before the deadline.")
        failures += 1
        if failures > MAX_RECONNECTS:
            raise ModelaasError(f"Lost the event stream of job {job.id}: {lost}", status=503) from lost
        time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))


def _stream_timeout(timeout: float | None, deadline: float | None) -> httpx.Timeout:
    read = STREAM_READ_TIMEOUT
    if deadline is not None:
        read = min(read, max(0.01, deadline - time.monotonic()))
    return httpx.Timeout(timeout, read=read)
