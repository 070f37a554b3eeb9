"""The one settings object.

Sources, weakest first: defaults < config file < environment < command-line flags.

* Config file (``--config-file`` or ``MODELAAS_CONFIG_FILE``): INI, read from the
  ``[DEFAULT]`` section (what ``deepaas-run --config-file`` reads) and then ``[modelaas]``.
* Environment: ``MODELAAS_<FIELD>`` (e.g. ``MODELAAS_LISTEN_PORT=8080``); DEEPaaS's
  ``OS_DEFAULT__<FIELD>`` and ``DEEPAAS_V2_MODEL`` are honoured below them.
* Flags: ``modelaas serve --<field-with-dashes>``, booleans as ``--x/--nox`` (or ``--no-x``).
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from modelaas.errors import ConfigError

GIB = 1024**3


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "modelaas"


def _doc(text: str, **extra: Any) -> dict[str, Any]:
    return {"doc": text, **extra}


@dataclass(frozen=True)
class Settings:
    """Everything a modelaas server or command can be told. Each field has a one-line doc."""

    listen_ip: str = field(default="127.0.0.1", metadata=_doc("Address to listen on."))
    listen_port: int = field(default=5000, metadata=_doc("Port to listen on.", minimum=1, maximum=65535))
    base_path: str = field(default="", metadata=_doc("Path prefix put before every route, e.g. /foo."))
    grpc_port: int | None = field(
        default=None,
        metadata=_doc(
            "Port of the Open Inference Protocol over gRPC, on --listen-ip, served by every serving process "
            "(default: off).",
            minimum=1,
            maximum=65535,
        ),
    )
    model_name: str | None = field(
        default=None,
        metadata=_doc(
            "Serve only the installed model with this name.",
            env=("DEEPAAS_V2_MODEL",),
            shown_default="every installed model",
        ),
    )
    model: str | None = field(
        default=None,
        metadata=_doc(
            "Serve the object at pkg.module:attr, no entry point needed (imported from the current directory "
            "too; named after pkg, my_model -> my-model, unless --model-name names it)."
        ),
    )
    workers: int = field(
        default=1, metadata=_doc("Serving processes, each with its own copy of the model.", short="-p", minimum=1)
    )
    engine: str = field(
        default="process",
        metadata=_doc(
            "How serving runs: process (--workers processes on this machine) or ray (Ray Serve replicas "
            "on the Ray cluster of --ray-address, or a private local Ray).",
            choices=("process", "ray"),
        ),
    )
    replicas: int = field(
        default=1, metadata=_doc("Ray Serve replicas for --engine ray, each with its own copy of the model.", minimum=1)
    )
    min_replicas: int = field(
        default=1, metadata=_doc("Fewest replicas when autoscaling (--engine ray with --max-replicas).", minimum=1)
    )
    max_replicas: int | None = field(
        default=None,
        metadata=_doc(
            "Autoscale --engine ray between --min-replicas and this many replicas (default: a fixed --replicas).",
            minimum=1,
        ),
    )
    target_ongoing_requests: float = field(
        default=2.0,
        metadata=_doc("Requests in flight per replica that autoscaling aims at.", above=0, metavar="NUMBER"),
    )
    client_max_size: int = field(
        default=GIB, metadata=_doc("Largest request body accepted, in bytes (413 beyond it).", minimum=1)
    )
    warm: bool = field(default=True, metadata=_doc("Call the model's warm() before taking requests."))
    predict_endpoint: bool = field(default=True, metadata=_doc("Serve the predict routes."))
    train_endpoint: bool = field(default=True, metadata=_doc("Serve the train routes."))
    doc_endpoint: bool = field(
        default=True,
        metadata=_doc(
            "Serve the API docs (/api, /openapi.json, /swagger.json) and the web UI (/ui); without them, / lists "
            "the API versions."
        ),
    )
    debug_endpoint: bool = field(default=False, metadata=_doc("Serve /v2/debug/ with the captured log."))
    config_file: Path | None = field(default=None, metadata=_doc("INI file with settings ([DEFAULT] or [modelaas])."))
    data_dir: Path = field(
        default_factory=_default_data_dir,
        metadata=_doc("Where modelaas keeps its state (upload spool, job store); default $XDG_DATA_HOME/modelaas."),
    )
    predict_concurrency: int = field(
        default=1,
        metadata=_doc("Predictions run at once per serving process (legacy models are not thread-safe).", minimum=1),
    )
    predict_queue: int = field(
        default=64,
        metadata=_doc("Predictions that may wait for a turn per process; beyond it, 503 with Retry-After.", minimum=0),
    )
    predict_timeout: float | None = field(
        default=None,
        metadata=_doc("Seconds a prediction may run before the client gets 504 (default: no limit).", above=0),
    )
    predict_inline: str = field(
        default="never",
        metadata=_doc(
            "Run sync predict on the event loop thread: never, always (fastest; for fast, loop-safe models: no "
            "timeout, a slow call stalls the server) or auto (once 100 calls proved fast).",
            choices=("never", "always", "auto"),
        ),
    )
    batch: str | None = field(
        default=None,
        metadata=_doc(
            "Batch bounds of @batched models: NAME=MAX_SIZE[/MAX_WAIT_MS], comma-separated (NAME * for all); "
            "a MAX_SIZE of 1 turns batching off for that model."
        ),
    )
    max_parts: int = field(default=1000, metadata=_doc("Most multipart parts accepted in one request."))
    max_field_size: int = field(
        default=1024 * 1024, metadata=_doc("Largest non-file form field or JSON body, in bytes.")
    )
    log_level: str = field(
        default="info",
        metadata=_doc(
            "Log level: debug, info, warning (or warn), error, critical.",
            choices=("debug", "info", "warning", "warn", "error", "critical"),
        ),
    )
    log_format: str = field(
        default="text",
        metadata=_doc(
            "Log lines as text, or as json (one object per line, for log shippers).", choices=("text", "json")
        ),
    )
    access_log: bool = field(default=True, metadata=_doc("Log one line per answered request (at INFO)."))
    metrics: bool = field(
        default=True, metadata=_doc("Serve Prometheus metrics at /metrics (needs the 'metrics' scope with tokens on).")
    )
    serving_poll: float = field(
        default=2.0,
        metadata=_doc(
            "Seconds between looks at the job store for activated versions and reload requests of the "
            "models served (each one replaces the serving processes one at a time).",
            minimum=0.1,
        ),
    )
    register_trainings: bool = field(
        default=False,
        metadata=_doc(
            "Register each training that finishes (done) as a new version of its model, from its output "
            "folder (not activated; see docs/versions.md)."
        ),
    )
    metrics_port: int | None = field(
        default=None,
        metadata=_doc(
            "Serve /metrics on this port of the listen address instead of the API port (default: the API port).",
            minimum=1,
            maximum=65535,
        ),
    )
    tracing: bool = field(
        default=True,
        metadata=_doc(
            "Send OpenTelemetry traces when the otel extra is installed and OTEL_* variables configure an exporter."
        ),
    )
    jobs_db: str | None = field(
        default=None,
        metadata=_doc(
            "Job store: an SQLite file path (/tmp/jobs.db, ./jobs.db) or postgresql://user@host/db (default: "
            "SQLite file jobs.sqlite3 in the data dir). SQLAlchemy URLs too: sqlite:///x.db is relative to the "
            "current directory, sqlite:////tmp/x.db absolute."
        ),
    )
    jobs_backend: str = field(
        default="process", metadata=_doc("Where trainings run: process (local) or ray.", choices=("process", "ray"))
    )
    ray_address: str | None = field(
        default=None,
        metadata=_doc(
            "Ray cluster for --jobs-backend ray and --engine ray: an address, or auto for one started on this "
            "machine with 'ray start' (default: start a private local Ray)."
        ),
    )
    train_workers: int = field(
        default=1, metadata=_doc("Trainings running at once per server; others wait queued.", minimum=1)
    )
    train_queue: int = field(
        default=16, metadata=_doc("Trainings that may wait queued per server; beyond it, 429.", minimum=0)
    )
    reload_after_training: bool = field(
        default=False,
        metadata=_doc(
            "After each successful training of a model, reload it in every server of the job store "
            "(for models whose warm() loads their latest checkpoint; see docs/versions.md)."
        ),
    )
    train_cancel_grace: float = field(
        default=5.0, metadata=_doc("Seconds a cancelled training gets to stop after SIGTERM before it is killed.")
    )
    train_nice: int = field(
        default=10, metadata=_doc("CPU niceness added to training processes, so predictions keep priority.")
    )
    train_log_size: int = field(
        default=128 * 1024 * 1024,
        metadata=_doc(
            "Largest log a training keeps, in bytes; later output is counted, not kept, and a line in the log says so.",
            minimum=1024,
        ),
    )
    train_cuda_visible_devices: str | None = field(
        default=None, metadata=_doc("CUDA_VISIBLE_DEVICES for training processes (default: as the server's).")
    )
    mlflow_tracking_uri: str | None = field(
        default=None,
        metadata=_doc(
            "MLflow tracking server (http://host:5000, or a local store such as sqlite:///mlflow.db): each training "
            "becomes an MLflow run, and registered versions go to its Model Registry (needs the mlflow extra; "
            "default: MLFLOW_TRACKING_URI when set, else off).",
            env=("MLFLOW_TRACKING_URI",),
        ),
    )
    mlflow_experiment: str | None = field(
        default=None,
        metadata=_doc("MLflow experiment of the trainings' runs.", shown_default="the model's name"),
    )
    tokens: str | None = field(
        default=None,
        repr=False,
        metadata=_doc(
            "Access tokens, ';'-separated '<scopes> <token or sha256:hex>' entries; scopes predict, train, metrics, "
            "admin (default: none, access control off). Only from MODELAAS_TOKENS or a config file: never a flag.",
            secret=True,
        ),
    )
    tokens_file: Path | None = field(
        default=None, metadata=_doc("File of access tokens: one '<scopes> <token or sha256:hex>' entry per line.")
    )
    cors_origins: str | None = field(
        default=None,
        metadata=_doc("Origins that browsers may call the API from, comma-separated, or * (default: CORS off)."),
    )
    body_timeout: float = field(
        default=60.0, metadata=_doc("Seconds a client may take to send a whole request body (408 beyond it).", above=0)
    )
    header_timeout: float = field(
        default=30.0,
        metadata=_doc(
            "Seconds a client may take to send a request's headers, or stay silent on a new connection.", above=0
        ),
    )
    max_header_size: int = field(
        default=64 * 1024, metadata=_doc("Largest request line plus headers, in bytes (431 beyond it).", minimum=1024)
    )
    keep_alive_timeout: int = field(
        default=5, metadata=_doc("Seconds an idle keep-alive connection is kept open between requests.", minimum=1)
    )
    max_event_streams: int = field(
        default=100,
        metadata=_doc("Training event streams open at once per serving process (503 beyond it).", minimum=1),
    )
    fetch_allow_networks: str | None = field(
        default=None,
        metadata=_doc("Internal networks URL inputs may be fetched from: comma-separated CIDRs (default: none)."),
    )
    fetch_max_bytes: int = field(
        default=100 * 1024 * 1024,
        metadata=_doc(
            "Most bytes the URL inputs of one request may fetch, together, decoded (413 beyond it).", minimum=1
        ),
    )
    fetch_timeout: float = field(
        default=30.0,
        metadata=_doc(
            "Seconds the URL inputs of one request may take to fetch, together (at most --predict-timeout).", above=0
        ),
    )
    fetch_max_urls: int = field(
        default=16, metadata=_doc("Most URL inputs one request may give (400 beyond it).", minimum=1)
    )
    v1_call_form: str = field(
        default="auto",
        metadata=_doc(
            "How v1 models are called: auto (from each function's signature), dict (DEEPaaS 0.5-1.3: one dict "
            "with files, urls and test args), seed (predict_file(path, **kw), predict_data(bytes, **kw)).",
            choices=("auto", "dict", "seed"),
        ),
    )
    pass_unresolved_urls: bool = field(
        default=False,
        metadata=_doc(
            "Hand v1 predict_url models URLs whose host does not resolve here (default: refused with 400, "
            "since the model fetches them itself, unchecked)."
        ),
    )

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Build settings from defaults, config file, environment and ``overrides`` (flags).

        ``overrides`` holds only the values the user gave explicitly; ``None`` values are
        ignored so that unset flags do not hide the environment.
        """
        environ = os.environ if environ is None else environ
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        unknown = set(given) - set(field_names())
        if unknown:
            raise ConfigError(f"Unknown settings: {', '.join(sorted(unknown))}")

        env_values = _from_environ(environ)
        config_file = given.get("config_file") or env_values.get("config_file")
        values: dict[str, Any] = {}
        if config_file:
            values.update(_from_config_file(Path(config_file)))
        values.update(env_values)
        values.update(given)
        return cls(**{name: coerce(name, value) for name, value in values.items()})

    def __post_init__(self) -> None:
        if isinstance(self.log_level, str):
            object.__setattr__(self, "log_level", self.log_level.strip().lower())
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("choices") and isinstance(value, str):  # INFO is info
                value = value.strip().lower()
                object.__setattr__(self, f.name, value)
            _check_field(f, value)
        for name in ("tokens", "cors_origins"):  # blank (an empty variable) means not set
            value = getattr(self, name)
            if value is not None and not value.strip():
                object.__setattr__(self, name, None)
        if self.cors_origins is not None:
            _check_origins(self.cors_origins)
        self.batch_bounds()  # its syntax checked now, not at the first request
        base = self.base_path.strip()
        if base and not base.startswith("/"):
            base = "/" + base
        object.__setattr__(self, "base_path", base.rstrip("/"))
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        if self.jobs_db and "://" not in self.jobs_db:  # an SQLite file: the same one for every process
            object.__setattr__(self, "jobs_db", str(Path(self.jobs_db).expanduser().absolute()))
        if self.max_replicas is not None and self.max_replicas < self.min_replicas:
            raise ConfigError(f"max_replicas ({self.max_replicas}) must be at least min_replicas ({self.min_replicas})")

    def make_data_dir(self) -> Path:
        """Create the data directory if it is not there yet; ConfigError (one line) if it cannot be."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = "it is a file" if self.data_dir.is_file() else exc.strerror or str(exc)
            raise ConfigError(
                f"Cannot create the data directory {self.data_dir} (--data-dir or MODELAAS_DATA_DIR): {reason}."
            ) from None
        return self.data_dir

    def batch_bounds(self) -> dict[str, tuple[int, float | None]]:
        """``--batch`` read: model name (or ``*``) -> (max size, max wait in seconds or None: the model's)."""
        bounds: dict[str, tuple[int, float | None]] = {}
        for entry in (e.strip() for e in (self.batch or "").split(",")):
            if not entry:
                continue
            name, sep, value = (x.strip() for x in entry.partition("="))
            size_text, _, wait_text = (x.strip() for x in value.partition("/"))
            try:
                size = int(size_text)
                wait = float(wait_text) / 1000.0 if wait_text else None
            except ValueError:
                size, wait = 0, None
            if not sep or not name or not 1 <= size <= 4096 or (wait is not None and not 0 <= wait <= 10):
                raise ConfigError(
                    f"batch: {entry!r} is not NAME=MAX_SIZE[/MAX_WAIT_MS] with MAX_SIZE between 1 and 4096 and "
                    "MAX_WAIT_MS between 0 and 10000, e.g. iris=64/2"
                )
            bounds[name] = (size, wait)
        return bounds

    @property
    def jobs_dir(self) -> Path:
        """Per-job folders: kept uploads (``inputs/``) and artefacts (``output/``)."""
        return self.data_dir / "jobs"

    @property
    def upload_dir(self) -> Path:
        """Spool directory for request uploads (inside ``data_dir``)."""
        return self.data_dir / "uploads"

    def to_env(self) -> dict[str, str]:
        """These settings as MODELAAS_* variables (how training processes receive them).

        Secrets (tokens) are left out: only the server needs them.
        """
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None and not f.metadata.get("secret"):
                env["MODELAAS_" + f.name.upper()] = str(value)
        return env


def _check_field(f: dataclasses.Field[Any], value: Any) -> None:
    """A value against the choices or range its field's metadata declares (ConfigError if outside)."""
    meta = f.metadata
    choices = meta.get("choices")
    if choices and value not in choices:
        listed = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
        raise ConfigError(f"{f.name} must be {listed}, not {value!r}")
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low, high, above = meta.get("minimum"), meta.get("maximum"), meta.get("above")
    if (
        (low is not None and value < low)
        or (high is not None and value > high)
        or (above is not None and value <= above)
    ):
        raise ConfigError(f"{f.name} must be {describe_range(f)}, not {value!r}")


def describe_range(f: dataclasses.Field[Any]) -> str:
    """``between 1 and 65535``, ``at least 1``, ``more than 0``: the range a field's metadata declares."""
    low, high, above = f.metadata.get("minimum"), f.metadata.get("maximum"), f.metadata.get("above")
    if low is not None and high is not None:
        return f"between {low} and {high}"
    if low is not None:
        return f"at least {low}"
    if above is not None:
        return f"more than {above}"
    return "any number"


def _check_origins(text: str) -> None:
    """``cors_origins`` is ``*`` or a list of ``scheme://host[:port]`` (what browsers send as Origin)."""
    for origin in (o.strip() for o in text.split(",")):
        if origin == "*":
            continue
        scheme, sep, rest = origin.partition("://")
        if not sep or scheme not in ("http", "https") or not rest or "/" in rest or "@" in rest:
            raise ConfigError(
                f"cors_origins: {origin!r} is not an origin; write scheme://host[:port], e.g. https://app.example.org"
            )


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Settings)]


def field_type(name: str) -> type:
    """The plain type of a settings field (``int`` for ``int | None``)."""
    hint = get_type_hints(Settings)[name]
    if get_origin(hint) in (Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
    return hint


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def coerce(name: str, value: Any) -> Any:
    """Turn a text value (from a file or the environment) into the field's type."""
    kind = field_type(name)
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() in ("", "none") and kind is not str:
        return None
    try:
        if kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is Path:
            return Path(text)
    except ValueError:
        raise ConfigError(f"Setting {name}: {value!r} is not a valid {kind.__name__}") from None
    return text


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        candidates = [f"OS_DEFAULT__{f.name.upper()}", *f.metadata.get("env", ()), f"MODELAAS_{f.name.upper()}"]
        for var in candidates:  # later ones win
            if var in environ:
                values[f.name] = environ[var]
    return values


def _from_config_file(path: Path) -> dict[str, Any]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc.strerror}") from None
    except configparser.Error as exc:
        raise ConfigError(f"Config file {path} is not valid INI: {exc}") from None
    known = set(field_names())
    values: dict[str, Any] = {}
    sections = [dict(parser.defaults())]
    if parser.has_section("modelaas"):
        sections.append({k: v for k, v in parser.items("modelaas")})
    for section in sections:
        for key, value in section.items():
            name = key.replace("-", "_")
            if name in known and name != "config_file":
                values[name] = value
    return values
