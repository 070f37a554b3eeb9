"""The request or training job the current code runs for (context variables).

Set by the web layer for each request and by a training process for its job; read by
the log set-up (every record carries them) and by the metrics and traces. Model code run
for a request sees them too: its calls carry the request's context to the model threads.
"""

from __future__ import annotations

import contextvars

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("modelaas_request_id", default=None)
job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("modelaas_job_id", default=None)
model: contextvars.ContextVar[str | None] = contextvars.ContextVar("modelaas_model", default=None)
