"""Training routes: submit, list, show, cancel/delete, logs, events (SSE), artefacts.

Every route answers 501 for a model without ``train`` (like predict does for a model
without ``predict``); the v1 route (``PUT <b>/v1/models/<m>/train``) serves v1 models only.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from modelaas.errors import BadRequest, JobNotFound, ModelError, NotFound, Overloaded
from modelaas.jobs.records import Job, JobStatus, to_record
from modelaas.jobs.service import JobService
from modelaas.model.adapters import ModelAdapter
from modelaas.web.args import collect
from modelaas.web.models import v1_model
from modelaas.web.render import JSON
from modelaas.web.state import state
from modelaas.web.streams import StreamSlots
from modelaas.web.uploads import read_body

EVENT_POLL = 0.2
KEEPALIVE = 15.0
OCTET_STREAM = "application/octet-stream"
_WHOLE = re.compile(r"[0-9]{1,18}\Z", re.ASCII)


def _service(request: Request) -> JobService:
    jobs = state(request).jobs
    if jobs is None:  # pragma: no cover - the routes exist only with the train endpoint on
        raise NotFound("Training is switched off on this server.")
    return jobs


def _model(request: Request, *, v1: bool = False) -> ModelAdapter:
    """The model named in the path (v1 routes: v1 models only); 501 if it has no train."""
    adapter = v1_model(request) if v1 else state(request).runtime.model(request.path_params["model"])
    adapter.params_for("train")  # 501 if it has none
    return adapter


def _viewer(request: Request) -> str | None:
    """Whose jobs the request may see: its token's (None: every job; no access control, or admin)."""
    st = request.scope.get("state", {})
    return None if st.get("sees_all", True) else st.get("principal")


def _submitter(request: Request) -> str | None:
    principal = request.scope.get("state", {}).get("principal")
    return principal if isinstance(principal, str) else None


async def _own_job(request: Request, service: JobService, model: str, job_id: str) -> Job:
    """The job, if the request may see it (else 404, as for a job that does not exist)."""
    return await asyncio.to_thread(service.get, model, job_id, viewer=_viewer(request))


def _whole_number(text: str, what: str) -> int:
    """A non-negative whole number written in ASCII digits (no sign, spaces or underscores)."""
    if not _WHOLE.match(text):
        raise BadRequest(f"{what} must be a whole number, zero or more (got {text[:40]!r}).")
    return int(text)


class SubmitEndpoint:
    """``POST .../train/``: validate, keep uploads with the job, queue it, answer its record."""

    def __init__(self, *, wait: bool = False) -> None:
        self.wait = wait
        """DEEPaaS 1.x ``PUT /v1/.../train``: answer the training's output when it ends."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        st = state(request)
        service = _service(request)
        adapter = _model(request, v1=self.wait)
        params = adapter.train_params
        assert params is not None
        settings = st.settings
        body = await read_body(
            receive,
            request.headers,
            spool_root=st.spool_root,
            max_body=settings.client_max_size,
            max_parts=settings.max_parts,
            max_field_size=settings.max_field_size,
        )
        try:
            raw = collect(
                params, request.query_params.multi_items(), body.fields, body.files, body.json, request.headers.raw
            )
            job = await asyncio.to_thread(service.submit, adapter, raw, submitter=_submitter(request))
        finally:
            body.cleanup()
        if st.trainings is not None:
            st.trainings.submitted()
        if not self.wait:
            await JSON(to_record(job))(scope, receive, send)
            return
        while job.status.is_active:
            await asyncio.sleep(EVENT_POLL)
            if await request.is_disconnected():
                return  # nobody reads the answer; the job goes on (see the v2 train routes)
            job = await asyncio.to_thread(service.get, adapter.name, job.id)
        if job.status is not JobStatus.DONE:
            raise ModelError(job.message or f"Training {job.status.value}.")
        await JSON(job.result)(scope, receive, send)


MAX_PAGE = 10_000


async def index(request: Request) -> Response:
    """The model's jobs, oldest first: all of them (DEEPaaS), or a page with ``limit`` and
    ``offset``; ``X-Total-Count`` says how many there are, ``Link: <...>; rel="next"`` where
    the next page is."""
    params = request.query_params
    limit = None
    if "limit" in params:
        limit = _whole_number(params["limit"], "limit")
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit must be between 1 and {MAX_PAGE} (got {limit}).")
    offset = _whole_number(params.get("offset", "0"), "offset")
    service, model = _service(request), _model(request).name
    jobs, total = await asyncio.to_thread(service.list, model, limit=limit, offset=offset, viewer=_viewer(request))
    headers = {"X-Total-Count": str(total)}
    if limit is not None and offset + len(jobs) < total:
        headers["Link"] = f'<{request.url.path}?limit={limit}&offset={offset + len(jobs)}>; rel="next"'
    return JSON([to_record(j) for j in jobs], headers=headers)


async def show(request: Request) -> Response:
    job = await _own_job(request, _service(request), _model(request).name, request.path_params["job"])
    return JSON(to_record(job))


async def delete(request: Request) -> Response:
    service, model, job_id = _service(request), _model(request).name, request.path_params["job"]
    await _own_job(request, service, model, job_id)
    job = await asyncio.to_thread(service.delete, model, job_id)
    return JSON(to_record(job))


async def logs(request: Request) -> Response:
    """Log lines from line ``offset`` on; ``X-Next-Offset`` says where to go on from.

    The status is read before the lines: when ``X-Job-Status`` is final, the answer holds
    every line stored before the job got that state.
    """
    service = _service(request)
    model, job_id = _model(request).name, request.path_params["job"]
    job = await _own_job(request, service, model, job_id)
    offset = _whole_number(request.query_params.get("offset", "0"), "offset")
    lines, next_offset = await asyncio.to_thread(service.logs, model, job_id, offset)
    text = "".join(line + "\n" for line in lines)
    return PlainTextResponse(text, headers={"X-Next-Offset": str(next_offset), "X-Job-Status": job.status.value})


async def events(request: Request) -> Response:
    """Server-Sent Events: every state change, progress report and log line, in order.

    Event ids increase along the job's history: a client that reconnects with
    ``Last-Event-ID`` (or ``?after=``; the header wins) gets every later event, once.
    The stream ends after the event that gives the job its final state. At most
    ``--max-event-streams`` streams are open at once in a serving process (each polls the
    store; without a bound, hundreds slowed every train route down); beyond, 503.
    """
    service = _service(request)
    model, job_id = _model(request).name, request.path_params["job"]
    await _own_job(request, service, model, job_id)  # 404 before streaming
    header = request.headers.get("last-event-id")
    if header is not None and header.strip():
        after = _whole_number(header.strip(), "Last-Event-ID")
    else:
        after = _whole_number(request.query_params.get("after", "0"), "after")
    slots = _stream_slots(request)
    if not slots.take():
        raise Overloaded(
            f"{slots.limit} event streams are open on this server process already (--max-event-streams); "
            "retry later, or follow .../logs and the job's record.",
            retry_after=5,
        )
    return _EventStream(
        _stream(service, request, model, job_id, after),
        release=slots.give_back,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _stream_slots(request: Request) -> StreamSlots:
    return state(request).event_streams


class _EventStream(StreamingResponse):
    """A streaming answer that gives its slot back however it ends (done, client gone, error)."""

    def __init__(self, content: AsyncIterator[str], *, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release: Callable[[], None] | None = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


async def _stream(service: JobService, request: Request, model: str, job_id: str, after: int) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    yield "retry: 1000\n\n"
    while True:
        try:
            batch = await asyncio.to_thread(service.events, model, job_id, after)
        except JobNotFound:  # deleted meanwhile: nothing more will come
            return
        for event in batch:
            after = event.id
            yield f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(event.data, ensure_ascii=False)}\n\n"
            last_sent = loop.time()
            if event.kind == "state" and JobStatus(event.data["status"]).is_terminal:
                return
        if not batch:
            try:
                job = await asyncio.to_thread(service.get, model, job_id)
                if job.status.is_terminal and not await asyncio.to_thread(service.events, model, job_id, after):
                    return
            except JobNotFound:
                return
            if loop.time() - last_sent > KEEPALIVE:
                last_sent = loop.time()
                yield ": keep-alive\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(EVENT_POLL)


async def files(request: Request) -> Response:
    service = _service(request)
    model, job_id = _model(request).name, request.path_params["job"]
    await _own_job(request, service, model, job_id)
    listing = await asyncio.to_thread(service.list_files, model, job_id)
    base = str(request.url.path).rstrip("/")
    return JSON([{**item, "href": f"{base}/{quote(item['path'], safe='/')}"} for item in listing])


async def file(request: Request) -> Response:
    """One artefact, as an attachment; nothing outside the job's output folder (404)."""
    service = _service(request)
    model, job_id, relative = _model(request).name, request.path_params["job"], request.path_params["path"]
    await _own_job(request, service, model, job_id)
    if "\x00" in relative:  # a NUL byte is no file name (and makes path resolution raise)
        raise NotFound(f"Job {job_id!r} has no file {relative!r}.")
    path = await asyncio.to_thread(service.file_path, model, job_id, relative)
    return FileResponse(path, media_type=OCTET_STREAM, filename=path.name, content_disposition_type="attachment")
