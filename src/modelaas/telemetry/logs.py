"""Log records that say which request or training job they belong to, as text or JSON lines.

* :class:`ContextFilter` puts ``request_id``, ``job_id`` and ``model`` (from
  :mod:`modelaas.telemetry.context`) on every record that passes a handler, the model's
  own records included.
* :class:`TextFormatter`: ``<time> [<pid>] <LEVEL> <logger>: [request <id>] <message>``.
* :class:`JsonFormatter`: one JSON object per line with stable keys (``ts``, ``level``,
  ``logger``, ``msg``, ``pid``, then ``request_id``, ``job_id``, ``model`` and the
  fields of :data:`FIELDS` when a record has them, ``exc`` for a traceback).
* :class:`ContextStream`: stands in for ``sys.stdout``/``sys.stderr`` in a serving
  process, so that what model code prints while it runs for a request becomes log
  records (logger ``modelaas.model.output``) carrying that request's id.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
from typing import Any, TextIO

from modelaas.telemetry import context, tracing

FORMATS = ("text", "json")
FIELDS = (
    "request_id",
    "job_id",
    "model",
    "trace_id",
    "span_id",
    "client",
    "method",
    "path",
    "status",
    "duration_ms",
    "bytes",
    "query",
    "job_status",
)
"""Record attributes a JSON line carries when they are set (besides the base keys)."""


class ContextFilter(logging.Filter):
    """Sets ``request_id``, ``job_id`` and ``model`` of a record from the current context (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = context.request_id.get()
        if getattr(record, "job_id", None) is None:
            record.job_id = context.job_id.get()
        if getattr(record, "model", None) is None:
            record.model = context.model.get()
        if getattr(record, "trace_id", None) is None:
            record.trace_id, record.span_id = tracing.current_ids()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        rid, jid = getattr(record, "request_id", None), getattr(record, "job_id", None)
        if rid is None and jid is None:
            return line
        head, sep, message = line.partition(f"{record.name}: ")
        tag = f"[request {rid}] " if rid is not None else f"[job {jid}] "
        return f"{head}{sep}{tag}{message}" if not message.startswith(tag) else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        out: dict[str, Any] = {
            "ts": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)


def formatter(kind: str) -> logging.Formatter:
    """The formatter for ``--log-format`` ``text`` or ``json``."""
    return JsonFormatter() if kind == "json" else TextFormatter()


class ContextStream:
    """A text stream that turns lines written during a request or training job into log records.

    Outside a request or job, writes go to the wrapped stream unchanged.
    """

    def __init__(self, wrapped: TextIO, logger: str = "modelaas.model.output") -> None:
        self.wrapped = wrapped
        self.log = logging.getLogger(logger)
        self._pending = threading.local()

    def write(self, text: str) -> int:
        if context.request_id.get() is None and context.job_id.get() is None:
            return self.wrapped.write(text)
        pending = getattr(self._pending, "text", "") + text
        *lines, rest = pending.split("\n")
        self._pending.text = rest
        for line in lines:
            if line.strip():
                self.log.info("%s", line.rstrip("\r"))
        return len(text)

    def flush(self) -> None:
        rest = getattr(self._pending, "text", "")
        if rest.strip() and (context.request_id.get() is not None or context.job_id.get() is not None):
            self._pending.text = ""
            self.log.info("%s", rest)
        self.wrapped.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding...
        return getattr(self.wrapped, name)
