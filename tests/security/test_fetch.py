"""Fetch limits and behaviour of URL inputs: size cap, deadline, bombs, types, redirects, cleanup.

Every test also checks that nothing is left in the spool. The origin server (conftest.py)
listens on 127.0.0.2, which the policies here allow explicitly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelaas.errors import ConfigError, FetchFailed, FetchRefused, ModelLoadError, PayloadTooLarge
from modelaas.fetch import download as fetch
from modelaas.fetch.destinations import FetchPolicy, parse_networks
from modelaas.model.loader import ModelRef, load
from modelaas.model.params import Kind
from modelaas.runtime import Runtime
from modelaas.settings import Settings

MIB = 1024 * 1024


def policy(origin: Any, **changes: Any) -> FetchPolicy:
    return dataclasses.replace(FetchPolicy(allow_networks=parse_networks(origin.ALLOW), timeout=10.0), **changes)


def run(url: str, dest: Path, pol: FetchPolicy, media_types: tuple[str, ...] = ()) -> fetch.Fetched:
    return asyncio.run(fetch.fetch(url, dest, pol, media_types=media_types))


def leftovers(root: Path) -> list[Path]:
    return sorted(root.rglob("*")) if root.exists() else []


def spool_clean(settings: Settings) -> bool:
    return [p for p in leftovers(settings.upload_dir) if p.is_file() or p.name.startswith("fetch-")] == []


# ------------------------------------------------------------------ a good fetch
def test_good_fetch(origin: Any, tmp_path: Path) -> None:
    got = run(origin.url("/img/a%20cat.png?size=1"), tmp_path, policy(origin), ("image/*",))
    assert got.path.read_bytes() == origin.PNG
    assert got.content_type == "image/png"
    assert got.size == len(origin.PNG)
    assert got.path.parent == tmp_path and got.path.suffix == ".png"
    assert leftovers(tmp_path) == [got.path]


def test_gzip_is_decoded(origin: Any, tmp_path: Path) -> None:
    got = run(origin.url("/gzip"), tmp_path, policy(origin))
    assert got.path.read_bytes() == b"hello " * 1000


def test_typed_model_gets_a_local_file_deleted_after_the_request(
    origin: Any, make_client: Callable[..., TestClient], settings: Settings
) -> None:
    import url_inputs

    client = make_client("url_inputs:Image", fetch_allow_networks=origin.ALLOW)
    r = client.post("/v2/models/url-inputs/predict/", json={"image": origin.url("/img/a%20cat.png")})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == {
        "name": "image",
        "size": len(origin.PNG),
        "content_type": "image/png",
        "original_filename": "a cat.png",
        "is_url_file": True,
        "head": origin.PNG[:32].decode("latin-1"),
    }
    path = Path(url_inputs.SEEN[-1])
    assert path.is_relative_to(settings.upload_dir)
    assert not path.exists()
    assert spool_clean(settings)


def test_list_of_urls_and_form_fields(origin: Any, make_client: Callable[..., TestClient], settings: Settings) -> None:
    client = make_client("url_inputs:Many", fetch_allow_networks=origin.ALLOW)
    urls = [origin.url("/img/one.png"), origin.url("/text")]
    r = client.post("/v2/models/url-inputs/predict/", data={"docs": urls, "label": "y"})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == {
        "sizes": [len(origin.PNG), 5],
        "names": ["one.png", "text"],
        "extra": None,
        "label": "y",
    }
    assert spool_clean(settings)


def test_an_answer_that_is_the_fetched_file_survives_its_deletion(
    origin: Any, make_client: Callable[..., TestClient], settings: Settings
) -> None:
    client = make_client("url_inputs:Echo", fetch_allow_networks=origin.ALLOW)
    r = client.post("/v2/models/url-inputs/predict/", json={"doc": origin.url("/img/x.png")})
    assert r.status_code == 200, r.text
    assert r.content == origin.PNG
    assert spool_clean(settings)


def test_url_file_params_are_strings_marked_for_fetching() -> None:
    params = load(ModelRef("url-inputs", "url_inputs:Many", None, "test")).predict_params
    assert params is not None
    docs, extra = params.get("docs"), params.get("extra")
    assert docs is not None and extra is not None
    assert (docs.kind, docs.item, docs.is_file, docs.extra.get("fetch")) == (Kind.ARRAY, Kind.STRING, False, True)
    assert (extra.kind, extra.required, extra.extra) == (Kind.STRING, False, {"fetch": True, "format": "uri"})


def test_url_file_in_train_is_refused_at_load() -> None:
    with pytest.raises(ModelLoadError, match="fetched for predict only"):
        load(ModelRef("url-inputs", "url_inputs:TrainsOnUrl", None, "test"))


# ------------------------------------------------------------------ size cap (413)
def test_endless_body_is_cut_at_the_cap(origin: Any, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(PayloadTooLarge, match=r"larger than the limit of 1048576 bytes") as info:
        run(origin.url("/endless"), tmp_path, policy(origin, max_bytes=MIB))
    assert info.value.status == 413
    assert time.monotonic() - started < 5
    assert leftovers(tmp_path) == []


def test_declared_length_over_the_cap_is_refused_before_reading(origin: Any, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(PayloadTooLarge):
        run(origin.url("/declared-big"), tmp_path, policy(origin, max_bytes=MIB))
    assert time.monotonic() - started < 1
    assert leftovers(tmp_path) == []


def test_compression_bomb_is_judged_on_decoded_bytes(origin: Any, tmp_path: Path) -> None:
    with pytest.raises(PayloadTooLarge, match=r"\(decoded\) is larger"):
        run(origin.url("/bomb"), tmp_path, policy(origin, max_bytes=MIB))
    assert origin.sent < MIB < origin.BOMB_DECODED  # small on the wire, over the cap decoded
    assert leftovers(tmp_path) == []


def test_endless_body_through_the_api(origin: Any, make_client: Callable[..., TestClient], settings: Settings) -> None:
    client = make_client("url_inputs:Image", fetch_allow_networks=origin.ALLOW, fetch_max_bytes=MIB)
    r = client.post("/v2/models/url-inputs/predict/", json={"image": origin.url("/endless")})
    assert r.status_code == 413
    assert "Argument 'image'" in r.json()["message"] and "--fetch-max-bytes" in r.json()["message"]
    assert spool_clean(settings)


# ------------------------------------------------------------------ deadline (502)
def test_slow_drip_is_cut_at_the_total_timeout(origin: Any, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(FetchFailed, match=r"took longer than the limit of 1 s") as info:
        run(origin.url("/drip"), tmp_path, policy(origin, timeout=1.0))  # 1 byte / 100 ms never stops
    assert info.value.status == 502
    assert 0.9 < time.monotonic() - started < 3
    assert leftovers(tmp_path) == []


def test_slow_drip_through_the_api(origin: Any, make_client: Callable[..., TestClient], settings: Settings) -> None:
    client = make_client("url_inputs:Image", fetch_allow_networks=origin.ALLOW, fetch_timeout=1.0)
    started = time.monotonic()
    r = client.post("/v2/models/url-inputs/predict/", json={"image": origin.url("/drip")})
    assert r.status_code == 502 and "took longer" in r.json()["message"]
    assert time.monotonic() - started < 3
    assert spool_clean(settings)


# ------------------------------------------------------------------ content types (400)
@pytest.mark.parametrize(("path", "said"), [("/text", "text/plain; charset=utf-8"), ("/notype", "not declared")])
def test_content_type_is_checked(path: str, said: str, origin: Any, tmp_path: Path) -> None:
    with pytest.raises(FetchRefused, match=f"its content type is {said}, expected image/\\*"):
        run(origin.url(path), tmp_path, policy(origin), ("image/*",))
    assert leftovers(tmp_path) == []


def test_content_type_mismatch_through_the_api(
    origin: Any, make_client: Callable[..., TestClient], settings: Settings
) -> None:
    client = make_client("url_inputs:Image", fetch_allow_networks=origin.ALLOW)
    r = client.post("/v2/models/url-inputs/predict/", json={"image": origin.url("/text")})
    assert r.status_code == 400 and "expected image/*" in r.json()["message"]
    assert spool_clean(settings)


@pytest.mark.parametrize(
    ("content_type", "patterns", "ok"),
    [
        ("image/png", ("image/*",), True),
        ("IMAGE/PNG; q=1", ("image/png",), True),
        ("text/plain", ("*/*",), True),
        ("text/plain", ("image/*", "application/pdf"), False),
        ("", ("image/*",), False),
        ("imagex/png", ("image/*",), False),
    ],
)
def test_media_matches(content_type: str, patterns: tuple[str, ...], ok: bool) -> None:
    assert fetch.media_matches(content_type, patterns) is ok


# ------------------------------------------------------------------ redirects
def test_five_redirects_are_followed(origin: Any, tmp_path: Path) -> None:
    got = run(origin.url("/hops/5"), tmp_path, policy(origin))
    assert got.path.read_bytes() == origin.PNG
    assert got.url.endswith("/hops/0")
    assert origin.connections == 6  # every hop connects anew, after its own check


def test_more_than_five_redirects_are_refused(origin: Any, tmp_path: Path) -> None:
    with pytest.raises(FetchRefused, match="more than 5 redirects"):
        run(origin.url("/hops/6"), tmp_path, policy(origin))
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "to", ["data:text/plain,hi", "jar:http://x/!/a", "http:host", "javascript:alert(1)", "http://[::1", "//[::1"]
)
def test_a_redirect_to_something_not_fetchable_is_refused_not_an_error(
    to: str, origin: Any, make_client: Callable[..., TestClient], settings: Settings, tmp_path: Path
) -> None:
    """Finding: redirects to data:, jar: or http:host answered 500."""
    from urllib.parse import quote

    url = origin.url("/redirect?to=" + quote(to, safe=""))
    direct = tmp_path / "direct"
    direct.mkdir()
    with pytest.raises(FetchRefused, match="redirect"):
        run(url, direct, policy(origin))
    client = make_client("url_inputs:Image", fetch_allow_networks=origin.ALLOW)
    r = client.post("/v2/models/url-inputs/predict/", json={"image": url})
    assert r.status_code == 400, r.text
    assert "request_id" in r.json() and "Argument 'image'" in r.json()["message"]
    assert leftovers(direct) == [] and spool_clean(settings)


# ------------------------------------------------------------------ remote and network failures (502)
@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/status/404", "answered HTTP 404"),
        ("/status/500", "answered HTTP 500"),
        ("/corrupt-gzip", "compressed content is corrupt"),
        ("/brotli", "unsupported Content-Encoding 'br'"),
    ],
)
def test_remote_failures(path: str, message: str, origin: Any, tmp_path: Path) -> None:
    with pytest.raises(FetchFailed, match=message):
        run(origin.url(path), tmp_path, policy(origin))
    assert leftovers(tmp_path) == []


def test_closed_port_on_an_allowed_address(origin: Any, tmp_path: Path) -> None:
    with pytest.raises(FetchFailed, match="ConnectError"):
        run("http://127.0.0.2:1/", tmp_path, policy(origin))
    assert leftovers(tmp_path) == []


def test_unresolvable_host(origin: Any, tmp_path: Path) -> None:
    with pytest.raises(FetchFailed, match=r"cannot resolve 'no-such-host\.invalid'"):
        run("http://no-such-host.invalid/", tmp_path, policy(origin))


# ------------------------------------------------------------------ proxies, TLS
def test_proxies_from_the_environment_are_ignored(
    origin: Any, canary: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = f"http://127.0.0.1:{canary.port}"
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(var, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    got = run(origin.url("/img/x.png"), tmp_path, policy(origin))
    assert got.path.read_bytes() == origin.PNG
    assert canary.count == 0


def test_tls_checks_the_host_name_while_connecting_to_the_checked_address(
    tls_origin: Any, tls_files: dict[str, Path], fake_dns: Callable[..., list[str]], tmp_path: Path
) -> None:
    fake_dns("allowed.test", "127.0.0.2")
    pol = policy(tls_origin, ssl_context=ssl.create_default_context(cafile=str(tls_files["ca"])))
    got = run(f"https://allowed.test:{tls_origin.port}/img/x.png", tmp_path, pol)
    assert got.path.read_bytes() == tls_origin.PNG
    assert tls_origin.server.sni == ["allowed.test"]
    # the same server by address: the certificate does not name 127.0.0.2, so verification fails
    with pytest.raises(FetchFailed, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        run(f"https://127.0.0.2:{tls_origin.port}/img/x.png", tmp_path, pol)
    assert leftovers(tmp_path) == [got.path]


# ------------------------------------------------------------------ settings
def test_policy_from_settings(tmp_path: Path) -> None:
    s = Settings.load(
        {"data_dir": tmp_path},
        environ={
            "MODELAAS_FETCH_ALLOW_NETWORKS": "10.0.0.0/8, fd00::/8",
            "MODELAAS_FETCH_MAX_BYTES": "1000",
            "MODELAAS_FETCH_TIMEOUT": "2.5",
        },
    )
    pol = Runtime(s, []).fetch_policy
    assert [str(n) for n in pol.allow_networks] == ["10.0.0.0/8", "fd00::/8"]
    assert (pol.max_bytes, pol.timeout, pol.connect_timeout, pol.max_redirects) == (1000, 2.5, 2.5, 5)
    default = Runtime(Settings(data_dir=tmp_path), []).fetch_policy
    assert (default.allow_networks, default.max_bytes, default.timeout) == ((), 100 * MIB, 30.0)


def test_bad_allow_list_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fetch_allow_networks"):
        Runtime(Settings(data_dir=tmp_path, fetch_allow_networks="10.0.0.0/8,not-a-network"), [])
