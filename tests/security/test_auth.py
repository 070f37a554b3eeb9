"""Access control: bearer tokens and scopes, CORS, and the warning for open servers."""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

import pytest

from modelaas import tokens as auth
from modelaas.errors import ConfigError
from modelaas.serve.supervisor import Supervisor, is_loopback
from modelaas.settings import Settings
from modelaas.tokens import TokenTable, hash_token, load_tokens, parse_entries

PREDICT_TOKEN = "predict-token-0123456789"
TRAIN_TOKEN = "train-token-0123456789abc"
ADMIN_TOKEN = "admin-token-0123456789abcd"
HASHED_TOKEN = "hashed-token-0123456789abc"  # configured by its digest only
TOKENS = f"predict {PREDICT_TOKEN}; train {TRAIN_TOKEN}\nadmin {ADMIN_TOKEN}; predict,train {hash_token(HASHED_TOKEN)}"
TRAINER = "trainer:Trainer"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def guarded(make_client):
    return make_client(TRAINER, tokens=TOKENS)


@pytest.fixture
def job_id(make_client):
    """A finished training of the trainer model, submitted with the admin token."""
    c = make_client(TRAINER, tokens=TOKENS)
    r = c.post("/v2/models/trainer/train/", data={"epochs": "1"}, headers=bearer(ADMIN_TOKEN))
    assert r.status_code == 200, r.text
    return c, r.json()["uuid"]


# ------------------------------------------------------------------ route matrix
PROTECTED = [
    # (method, path, scope it needs; None = any valid token)
    ("GET", "/v2/models/", None),
    ("GET", "/v2/models/trainer/", None),
    ("GET", "/v2/models/trainer", None),  # the Open Inference Protocol's model metadata
    ("GET", "/v2/models/trainer/ready", None),
    ("POST", "/v2/models/trainer/infer", "predict"),
    ("POST", "/v2/models/trainer/predict/", "predict"),
    ("POST", "/v2/models/trainer/predict", "predict"),
    ("POST", "/v2/models/trainer/train/", "train"),
    ("GET", "/v2/models/trainer/train/", "train"),
    ("GET", "/v2/models/trainer/train/{job}", "train"),
    ("DELETE", "/v2/models/trainer/train/{job}", "train"),
    ("GET", "/v2/models/trainer/train/{job}/logs", "train"),
    ("GET", "/v2/models/trainer/train/{job}/events", "train"),
    ("GET", "/v2/models/trainer/train/{job}/files", "train"),
    ("GET", "/v2/models/trainer/train/{job}/files/weights.txt", "train"),
    ("GET", "/v2/models/no-such-model/", None),  # no hint whether a model exists
    ("GET", "/v2/models/trainer/whatever", None),  # no route: still under the models
    ("GET", "/v2/debug/", "admin"),
]
PUBLIC = ["/", "/v2/", "/healthz", "/readyz", "/api", "/openapi.json", "/swagger.json", "/ui", "/no/such/path"]


def _call(client, method: str, path: str, job: str, headers: dict[str, str] | None = None):
    return client.request(method, path.replace("{job}", job), headers=headers or {}, follow_redirects=False)


@pytest.mark.parametrize(("method", "path", "need"), PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED])
def test_protected_routes_need_a_valid_token(job_id, method, path, need):
    client, job = job_id
    for headers in (None, bearer("not-a-configured-token-123"), {"Authorization": f"Basic {ADMIN_TOKEN}"}):
        r = _call(client, method, path, job, headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"] == 'Bearer realm="modelaas"'
        body = r.json()
        key = "error" if path.endswith(("/trainer", "/ready", "/infer")) else "message"  # OIP routes: their shape
        assert set(body) == {key, "request_id"} and body["request_id"] == r.headers["x-request-id"]
        assert "token" in body[key]


@pytest.mark.parametrize(("method", "path", "need"), PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED])
def test_scopes_decide_who_gets_through(job_id, method, path, need):
    client, job = job_id
    holders = {PREDICT_TOKEN: {"predict"}, TRAIN_TOKEN: {"train"}, HASHED_TOKEN: {"predict", "train"}}
    for token, scopes in holders.items():
        r = _call(client, method, path, job, bearer(token))
        if need is None or need in scopes:
            assert r.status_code not in (401, 403), (token, r.text)
        else:
            assert r.status_code == 403, (token, r.text)
            body = r.json()
            assert need in body.get("message", body.get("error", "")) and "request_id" in body
    r = _call(client, method, path, job, bearer(ADMIN_TOKEN))  # admin implies every scope
    assert r.status_code not in (401, 403), r.text


@pytest.mark.parametrize("path", PUBLIC)
def test_public_routes_need_no_token(guarded, path):
    r = guarded.get(path, follow_redirects=False)
    assert r.status_code not in (401, 403), r.text


def test_static_docs_assets_are_public(guarded):
    assert guarded.get("/api/static/swagger-ui.css").status_code == 200


def test_a_granted_request_really_runs(guarded):
    r = guarded.get("/v2/models/", headers=bearer(PREDICT_TOKEN))
    assert r.status_code == 200 and [m["id"] for m in r.json()["models"]] == ["trainer"]


def test_without_tokens_nothing_is_checked(make_client):
    c = make_client("v2_basic")
    r = c.post("/v2/models/v2-basic/predict/", data={"count": "1"})
    assert r.status_code == 200, r.text
    assert "www-authenticate" not in r.headers


def test_predict_scope_runs_predictions(make_client):
    c = make_client("v2_basic", tokens=TOKENS)
    assert c.post("/v2/models/v2-basic/predict/", data={"count": "1"}).status_code == 401
    r = c.post("/v2/models/v2-basic/predict/", data={"count": "1"}, headers=bearer(PREDICT_TOKEN))
    assert r.status_code == 200 and r.json()["predictions"]["args"]["count"] == 1
    assert c.post("/v2/models/v2-basic/predict/", data={"count": "1"}, headers=bearer(TRAIN_TOKEN)).status_code == 403


def test_v1_routes_are_guarded_too(make_client):
    c = make_client("v1_seed", tokens=TOKENS)
    assert c.get("/v1/models/").status_code == 401
    assert c.get("/v1/models/", headers=bearer(TRAIN_TOKEN)).status_code == 200
    files = {"data": ("x.bin", b"abc")}
    assert c.post("/v1/models/v1-seed/predict", files=files).status_code == 401
    assert c.post("/v1/models/v1-seed/predict", files=files, headers=bearer(TRAIN_TOKEN)).status_code == 403
    assert c.post("/v1/models/v1-seed/predict", files=files, headers=bearer(PREDICT_TOKEN)).status_code == 200
    assert c.get("/v1/").status_code == 200


def test_base_path_routes_are_guarded(make_client):
    c = make_client("v2_basic", tokens=TOKENS, base_path="/svc")
    assert c.post("/svc/v2/models/v2-basic/predict/", data={"count": "1"}).status_code == 401
    assert c.get("/svc/healthz").status_code == 200


# ------------------------------------------------------------------ SSE token in the query
def test_events_accept_the_token_in_the_query(job_id):
    client, job = job_id
    url = f"/v2/models/trainer/train/{job}/events"
    r = client.get(url, params={"access_token": ADMIN_TOKEN})  # the job's own token (a train token sees its own only)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert client.get(url, params={"access_token": TRAIN_TOKEN}).status_code == 404  # someone else's job
    assert client.get(url, params={"access_token": PREDICT_TOKEN}).status_code == 403
    assert client.get(url, params={"access_token": "unknown-token-0123456789"}).status_code == 401


def test_only_the_events_route_takes_a_query_token(job_id):
    client, job = job_id
    for path in ("/v2/models/", f"/v2/models/trainer/train/{job}", f"/v2/models/trainer/train/{job}/logs"):
        assert client.get(path, params={"access_token": ADMIN_TOKEN}).status_code == 401, path
    r = client.post("/v2/models/trainer/predict/", params={"access_token": ADMIN_TOKEN})
    assert r.status_code == 401


# ------------------------------------------------------------------ the token table
def test_tokens_are_kept_as_digests_only():
    table = load_tokens(Settings(tokens=TOKENS))
    assert len(table) == 4
    held = repr([vars(e) for e in table.entries]) + repr(vars(table))
    for token in (PREDICT_TOKEN, TRAIN_TOKEN, ADMIN_TOKEN):
        assert token not in held
    assert table.scopes_for(ADMIN_TOKEN) == {"admin"}
    assert table.scopes_for(HASHED_TOKEN) == {"predict", "train"}
    assert table.scopes_for("predict-token-012345678") is None  # a prefix is no token


def test_every_entry_is_compared_in_constant_time(monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    table = load_tokens(Settings(tokens=TOKENS))
    assert table.scopes_for(PREDICT_TOKEN) == {"predict"}  # the first entry matches...
    assert len(calls) == 4  # ... and every entry was still compared
    calls.clear()
    assert table.scopes_for("x" * 20) is None
    assert len(calls) == 4


def test_tokens_file_with_comments_and_hashed_entries(tmp_path: Path):
    path = tmp_path / "tokens"
    path.write_text(f"# who may do what\n\npredict {hash_token(PREDICT_TOKEN)}\nadmin,train   {ADMIN_TOKEN}\n")
    table = load_tokens(Settings(tokens_file=path))
    assert table.scopes_for(PREDICT_TOKEN) == {"predict"}
    assert table.scopes_for(ADMIN_TOKEN) == {"admin", "train"}


def test_environment_and_file_add_up(tmp_path: Path):
    path = tmp_path / "tokens"
    path.write_text(f"train {TRAIN_TOKEN}\n")
    settings = Settings.load(environ={"MODELAAS_TOKENS": f"predict {PREDICT_TOKEN}", "MODELAAS_TOKENS_FILE": str(path)})
    table = load_tokens(settings)
    assert table.scopes_for(PREDICT_TOKEN) == {"predict"} and table.scopes_for(TRAIN_TOKEN) == {"train"}


def test_blank_setting_means_no_tokens():
    assert not load_tokens(Settings.load(environ={"MODELAAS_TOKENS": "  "})).enabled


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("predict", "write '<scopes> <token>'"),
        ("predict a b", "write '<scopes> <token>'"),
        (f"read {PREDICT_TOKEN}", "unknown scope 'read'"),
        ("predict short", "at least 16 characters"),
        ("predict tokén-with-accent-123456", "at least 16 characters"),
        ("predict sha256:abc", "64 hex digits"),
    ],
)
def test_bad_entries_are_config_errors(text, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_entries(text, source="test")


def test_an_empty_or_missing_tokens_file_stops_start_up(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="has no token"):
        load_tokens(Settings(tokens_file=empty))
    with pytest.raises(ConfigError, match="Cannot read the tokens file"):
        load_tokens(Settings(tokens_file=tmp_path / "missing"))


def test_new_tokens_are_valid_entries():
    token = auth.new_token()
    (entry,) = parse_entries(f"admin {token}", source="test")
    assert TokenTable([entry]).scopes_for(token) == {"admin"}


# ------------------------------------------------------------------ CORS
def test_cors_is_off_by_default(make_client):
    c = make_client("v2_basic")
    r = c.get("/v2/models/", headers={"Origin": "https://app.example.org"})
    assert "access-control-allow-origin" not in r.headers
    preflight = c.options(
        "/v2/models/v2-basic/predict/",
        headers={"Origin": "https://app.example.org", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_origins_are_allowed_and_preflight_needs_no_token(make_client):
    origin = "https://app.example.org"
    c = make_client("v2_basic", tokens=TOKENS, cors_origins=f"{origin}, http://localhost:3000")
    preflight = c.options(
        "/v2/models/v2-basic/predict/",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    r = c.post("/v2/models/v2-basic/predict/", data={"count": "1"}, headers={"Origin": origin, **bearer(PREDICT_TOKEN)})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
    assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
    refused = c.get("/v2/models/", headers={"Origin": origin})  # a 401 the page can read
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == origin
    other = c.get("/v2/models/", headers={"Origin": "https://evil.example.com", **bearer(PREDICT_TOKEN)})
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize("value", ["https://a.example/path", "a.example", "ftp://a.example", "https://u@a.example"])
def test_cors_origins_must_be_origins(value):
    with pytest.raises(ConfigError, match="is not an origin"):
        Settings(cors_origins=value)


# ------------------------------------------------------------------ start-up
@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.10", False),
        ("my-host.example", False),
    ],
)
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("host", "tokens", "warned"),
    [("0.0.0.0", None, True), ("::", None, True), ("0.0.0.0", TOKENS, False), ("127.0.0.1", None, False)],
)
def test_open_server_beyond_loopback_is_warned_about(caplog, tmp_path, host, tokens, warned):
    caplog.set_level(logging.INFO, logger="modelaas.serve")
    Supervisor(Settings(listen_ip=host, tokens=tokens, data_dir=tmp_path))._check_access()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if warned:
        (text,) = warnings
        assert host in text and "MODELAAS_TOKENS" in text and "--tokens-file" in text
    else:
        assert warnings == []


@pytest.mark.slow
def test_a_bad_tokens_file_stops_serve(server, tmp_path):
    path = tmp_path / "tokens"
    path.write_text("predict short\n")
    srv = server("--model", "v2_basic", "--tokens-file", str(path), ready=False)
    code, err = srv.wait_exit(timeout=60)
    assert code == 2, err
    assert "at least 16 characters" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_real_server_checks_tokens(server):
    srv = server("--model", "v2_basic", env={"MODELAAS_TOKENS": f"predict {hash_token(PREDICT_TOKEN)}"})
    import httpx

    url = srv.url + "/v2/models/v2-basic/predict/"
    assert httpx.post(url, data={"count": "1"}).status_code == 401
    assert httpx.post(url, data={"count": "1"}, headers=bearer(PREDICT_TOKEN)).status_code == 200


# ------------------------------------------------------------------ the docs
SECURITY_MD = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_the_documented_way_to_make_a_token_works():
    import shlex
    import subprocess
    import sys

    (line,) = [x for x in SECURITY_MD.read_text().splitlines() if x.startswith("modelaas token new --scopes predict")]
    command = line.split("#")[0]
    argv = [sys.executable, "-m", "modelaas", *shlex.split(command)[1:]]
    made = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30)
    token, told = made.stdout.strip(), made.stderr.strip().splitlines()[-1]  # as the doc says
    entry = told.split(": ", 1)[1]  # "Entry for --tokens-file or MODELAAS_TOKENS: <entry>"
    (parsed,) = parse_entries(entry, source="docs")
    assert TokenTable([parsed]).scopes_for(token) == {"predict", "train"}


def test_the_documented_warning_is_the_one_logged(caplog, tmp_path):
    caplog.set_level(logging.WARNING, logger="modelaas.serve")
    Supervisor(Settings(listen_ip="0.0.0.0", data_dir=tmp_path))._check_access()
    (record,) = caplog.records
    assert f"WARNING modelaas.serve: {record.getMessage()}" in SECURITY_MD.read_text()
