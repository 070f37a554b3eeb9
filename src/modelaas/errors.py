"""The one exception tree of modelaas.

Every error a user can meet is one of these classes. Each class knows the HTTP status
it answers with and the exit code the CLI ends with; the web layer and the CLI each
have a single handler that renders them.

::

    ModelaasError                      500 / exit 1
    ├── ConfigError                    500 / exit 2   bad settings or flags
    ├── ModelLoadError                 500 / exit 3   a model failed to import or describe itself
    ├── ClientError                    400 / exit 2   the request is wrong
    │   ├── BadRequest                 400
    │   │   └── FetchRefused           400            a URL input points somewhere not allowed
    │   ├── Unauthorized               401            no or unknown token; carries WWW-Authenticate
    │   ├── Forbidden                  403            the token lacks the scope
    │   ├── RequestTimeout             408            the client sent too slowly
    │   ├── ValidationError            422            field -> list of messages
    │   ├── NotFound                   404
    │   │   ├── ModelNotFound          404            names the installed models
    │   │   └── JobNotFound            404
    │   ├── NotAcceptable              406
    │   ├── ClientGone                 499            the client left before its turn
    │   ├── PayloadTooLarge            413
    │   └── TooManyJobs                429            training queue full; carries Retry-After
    ├── NotImplementedByModel          501            the model lacks this method
    ├── FetchFailed                    502            a URL input could not be fetched
    ├── MlflowFailed                   502            MLflow (--mlflow-tracking-uri) failed or is unreachable
    ├── ModelError                     500            model code raised; keeps the model's status
    ├── OutputInvalid                  500            model output broke its declared schema
    ├── Overloaded                     503            wait queue full; carries Retry-After
    ├── ServerUnreachable              503            (client) no answer from the server
    ├── JobFailed                      500            (client) a job waited for did not end done
    └── PredictTimeout                 504            model code ran past --predict-timeout
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

REDACTED = "<redacted>"
"""What stands in an answer or a log line for a value that must not be shown (a token, a secret)."""


class ModelaasError(Exception):
    """Base of every error modelaas raises on purpose."""

    status: int = 500
    exit_code: int = 1
    request_id: str | None = None
    """(client) The id the server gave the failed request: its log lines carry it too."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def with_request_id(self, request_id: str) -> ModelaasError:
        """This error, carrying the server's ``request_id`` (in its attribute and its message)."""
        self.request_id = request_id
        self.message = f"{self.message} (request id {request_id})"
        self.args = (self.message,)
        return self

    def body(self) -> dict[str, Any]:
        """The JSON body that describes this error to an HTTP client."""
        return {"message": self.message}

    def headers(self) -> dict[str, str]:
        """Extra HTTP headers to send with this error."""
        return {}


class ConfigError(ModelaasError):
    """A setting, flag or config file is wrong."""

    exit_code = 2


class ModelLoadError(ModelaasError):
    """A model could not be imported or could not describe its arguments.

    ``traceback_text`` holds the model's own traceback, printed by the CLI at start-up.
    """

    exit_code = 3

    def __init__(self, message: str, *, traceback_text: str | None = None) -> None:
        super().__init__(message)
        self.traceback_text = traceback_text


class ClientError(ModelaasError):
    """The request itself is wrong; repeating it unchanged will fail again."""

    status = 400
    exit_code = 2


class BadRequest(ClientError):
    status = 400


class FetchRefused(BadRequest):
    """A URL given as input points to a destination the server will not fetch from."""


class Unauthorized(ClientError):
    status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="modelaas"'}


class Forbidden(ClientError):
    status = 403


class RequestTimeout(ClientError):
    status = 408


class ValidationError(ClientError):
    """Arguments failed validation; ``errors`` maps each field to its messages."""

    status = 422

    def __init__(self, errors: Mapping[str, Sequence[str] | Any]) -> None:
        self.errors = {key: _as_messages(val) for key, val in errors.items()}
        summary = "; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in self.errors.items())
        super().__init__(f"Invalid arguments: {summary}" if summary else "Invalid arguments")

    def body(self) -> dict[str, Any]:
        # The DEEPaaS contract: a bare map of field -> list of messages.
        return dict(self.errors)


class NotFound(ClientError):
    status = 404


class ModelNotFound(NotFound):
    def __init__(self, name: str, available: Sequence[str]) -> None:
        known = ", ".join(sorted(available)) or "none"
        super().__init__(f"No model named {name!r}. Installed models: {known}.")
        self.name = name
        self.available = list(available)


class JobNotFound(NotFound):
    def __init__(self, model: str | None, job_id: str, *, where: str = "") -> None:
        """``model`` None: no model's; ``where``: where it was looked for (``on http://...``)."""
        text = f"Model {model!r} has no training job {job_id!r}" if model else f"There is no training job {job_id!r}"
        super().__init__(f"{text} {where}.".replace(" .", "."))


class Conflict(ClientError):
    """The request fits, but not the state of what it names (409)."""

    status = 409


class TooManyJobs(ClientError):
    status = 429

    def __init__(self, message: str, *, retry_after: int = 10) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class NotAcceptable(ClientError):
    status = 406


class ClientGone(ClientError):
    """The client disconnected before its request was served; nobody reads the answer."""

    status = 499


class PayloadTooLarge(ClientError):
    status = 413


class NotImplementedByModel(ModelaasError):
    status = 501

    @classmethod
    def of(cls, model: str, method: str) -> NotImplementedByModel:
        """The one way to say that ``model`` lacks ``method`` (predict, train...)."""
        return cls(f"Model {model!r} does not implement {method}.")


class FetchFailed(ModelaasError):
    """A URL given as input could not be fetched (network error, remote error, too large, too slow)."""

    status = 502


class MlflowFailed(ModelaasError):
    """The MLflow server of --mlflow-tracking-uri failed or could not be reached."""

    status = 502


class ModelError(ModelaasError):
    """Model code raised. The status is the exception's own when it carries one."""

    status = 500


class OutputInvalid(ModelaasError):
    """The model's answer broke its declared schema or cannot be sent."""

    status = 500

    def of_model(self, model: str) -> OutputInvalid:
        """This error, its message naming the model whose answer it is."""
        return OutputInvalid(f"Model {model!r} failed in predict: {self.message[:1].lower()}{self.message[1:]}")


class Overloaded(ModelaasError):
    status = 503

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ServerUnreachable(ModelaasError):
    """The client could not reach the server, or got no answer in time."""

    status = 503


class PredictTimeout(ModelaasError):
    status = 504


class JobFailed(ModelaasError):
    """A training job the client waited for ended ``error``, ``interrupted`` or ``cancelled``;
    ``record`` is its final record (status, message, logs' whereabouts)."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = dict(record)
        status, uuid = self.record.get("status"), self.record.get("uuid")
        why = self.record.get("message") or "no message"
        super().__init__(f"Job {uuid} ended {status}: {why}")


def _as_messages(value: Any) -> list[str] | Any:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) if not isinstance(v, (dict, list)) else v for v in value]
    return value  # nested maps (lists of dicts, nested schemas) are kept as they are


def from_model_exception(exc: BaseException, *, model: str, method: str) -> ModelaasError:
    """Turn an exception raised by model code into the error the client should see.

    An exception that carries an integer ``status`` or ``status_code`` between 400 and 599
    (aiohttp's ``HTTPBadRequest``, werkzeug and starlette HTTP exceptions, ...) answers with
    that status and its reason or text; ``NotImplementedError`` answers 501; anything else
    answers 500 with the exception's message.
    """
    if isinstance(exc, ModelaasError):
        return exc
    if isinstance(exc, NotImplementedError):
        return NotImplementedByModel.of(model, method)
    status = _carried_status(exc)
    if status is not None:
        return ModelError(_carried_reason(exc) or _describe(exc), status=status)
    return ModelError(f"Model {model!r} failed in {method}: {_describe(exc)}")


def _carried_status(exc: BaseException) -> int | None:
    for attr in ("status", "status_code", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
            return value
    return None


def _carried_reason(exc: BaseException) -> str:
    for attr in ("reason", "text", "detail", "description"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt: the name says more than "3"
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if text else type(exc).__name__
