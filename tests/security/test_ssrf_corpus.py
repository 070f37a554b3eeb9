"""Hostile URLs: every one refused with 400 and a reason, and the canary never connected to.

The same corpus goes to (a) the guarded fetcher directly, (b) a typed model with a URLFile
argument over the HTTP API and (c) a v1 ``predict_url`` model over the HTTP API. Only the
origin on 127.0.0.2 is allowed (``fetch_allow_networks=127.0.0.2/32``); the canary listens
on 127.0.0.1 and ::1 at the same port. The ``Defence removed`` tests switch each check off
and show the canary *is* reached then: the checks are what keeps it out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpcore
import pytest
from starlette.testclient import TestClient

from modelaas.errors import FetchRefused
from modelaas.fetch import destinations
from modelaas.fetch import download as fetch
from modelaas.fetch.destinations import FetchPolicy, parse_networks, refusal
from modelaas.runtime import core as runtime
from modelaas.settings import Settings


@dataclass(frozen=True)
class Hostile:
    url: str
    """Template: ``{canary}`` is the canary's port, ``{origin}`` the allowed origin's base URL."""
    why: str
    """Words the refusal message must contain."""
    reason: str
    reaches_canary: bool = False
    """An unguarded fetch of it would connect to the canary (on 127.0.0.1 or ::1)."""

    @property
    def redirect(self) -> bool:
        return self.url.startswith("{origin}")


def _via(target: str, hops: int = 0) -> str:
    extra = f"&hops={hops}" if hops else ""
    return "{origin}/redirect?to=" + quote(target, safe="{}") + extra


LOOPBACK, THIS_NET, SCHEME = "loopback", "this network", "only http and https"
CORPUS = [
    Hostile("http://127.0.0.1:{canary}/", LOOPBACK, "loopback", True),
    Hostile("http://localhost:{canary}/", LOOPBACK, "loopback by name", True),
    Hostile("http://127.1:{canary}/", LOOPBACK, "short dotted form of 127.0.0.1", True),
    Hostile("http://2130706433:{canary}/", LOOPBACK, "decimal integer form of 127.0.0.1", True),
    Hostile("http://0x7f000001:{canary}/", LOOPBACK, "hexadecimal form of 127.0.0.1", True),
    Hostile("http://0x7f.1:{canary}/", LOOPBACK, "mixed hex/short form of 127.0.0.1", True),
    Hostile("http://0177.0.0.1:{canary}/", "not a valid URL", "octal form of 127.0.0.1"),
    Hostile("http://127.255.255.254:{canary}/", LOOPBACK, "top of 127.0.0.0/8"),
    Hostile("http://user:pw@127.0.0.1:{canary}/", LOOPBACK, "credentials before a loopback host", True),
    Hostile("http://example.com@127.0.0.1:{canary}/", LOOPBACK, "a host name as user info", True),
    Hostile("http://0.0.0.0:{canary}/", THIS_NET, "0.0.0.0 connects to this host", True),
    Hostile("http://0:{canary}/", THIS_NET, "0 is 0.0.0.0", True),
    Hostile("http://[::1]:{canary}/", LOOPBACK, "IPv6 loopback", True),
    Hostile("http://[0:0:0:0:0:0:0:1]:{canary}/", LOOPBACK, "IPv6 loopback, long form", True),
    Hostile("http://[::]:{canary}/", "unspecified", "IPv6 unspecified connects to this host", True),
    Hostile("http://[::ffff:127.0.0.1]:{canary}/", LOOPBACK, "IPv4-mapped loopback", True),
    Hostile("http://[::ffff:7f00:1]:{canary}/", LOOPBACK, "IPv4-mapped loopback, hex", True),
    Hostile("http://[::127.0.0.1]:{canary}/", "reserved", "IPv4-compatible (deprecated) loopback"),
    Hostile("http://[64:ff9b::7f00:1]:{canary}/", LOOPBACK, "NAT64 of 127.0.0.1"),
    Hostile("http://[64:ff9b::a9fe:a9fe]/", "metadata", "NAT64 of 169.254.169.254"),
    Hostile("http://[64:ff9b:1::a00:1]/", "local-use NAT64", "local-use NAT64 prefix"),
    Hostile("http://[2002:7f00:1::]:{canary}/", LOOPBACK, "6to4 of 127.0.0.1"),
    Hostile("http://[2002:a00:1::1]/", "private", "6to4 of 10.0.0.1"),
    Hostile("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo", "Teredo tunnel address"),
    Hostile("http://10.0.0.1/", "private", "RFC 1918"),
    Hostile("http://172.16.0.1/", "private", "RFC 1918"),
    Hostile("http://192.168.0.1/", "private", "RFC 1918"),
    Hostile("http://[::ffff:10.0.0.1]/", "private", "IPv4-mapped RFC 1918"),
    Hostile("http://100.64.0.1/", "CGNAT", "shared address space, which ip.is_private misses"),
    Hostile("http://169.254.169.254/latest/meta-data/", "metadata", "cloud metadata (AWS, GCP, Azure)"),
    Hostile("http://[::ffff:169.254.169.254]/", "metadata", "IPv4-mapped cloud metadata"),
    Hostile("http://[fd00:ec2::254]/", "metadata", "AWS IPv6 metadata"),
    Hostile("http://100.100.100.200/", "metadata", "Alibaba metadata"),
    Hostile("http://169.254.1.1/", "link-local", "IPv4 link-local"),
    Hostile("http://[fe80::1]/", "link-local", "IPv6 link-local"),
    Hostile("http://[fc00::1]/", "unique-local", "IPv6 unique-local"),
    Hostile("http://224.0.0.1/", "multicast", "IPv4 multicast (is_global is True for it)"),
    Hostile("http://[ff02::1]/", "multicast", "IPv6 multicast"),
    Hostile("http://255.255.255.255/", "broadcast", "limited broadcast"),
    Hostile("http://240.0.0.1/", "reserved", "class E"),
    Hostile("http://198.18.0.1/", "benchmarking", "benchmarking range"),
    Hostile("http://192.0.2.1/", "documentation", "TEST-NET-1"),
    Hostile("http://[2001:db8::1]/", "documentation", "IPv6 documentation"),
    Hostile("file:///etc/passwd", SCHEME, "local file"),
    Hostile("ftp://127.0.0.1:{canary}/", SCHEME, "ftp"),
    Hostile("gopher://127.0.0.1:{canary}/_GET%20/", SCHEME, "gopher (raw bytes to any port)"),
    Hostile("dict://127.0.0.1:{canary}/info", SCHEME, "dict"),
    Hostile("data:text/plain,hello", SCHEME, "data URL"),
    Hostile("http:///etc/passwd", "no host", "no host at all"),
    Hostile("http://127.0.0.1:{canary}\\@example.com/", "backslash", "parser differential via backslash"),
    Hostile(_via("http://127.0.0.1:{canary}/"), LOOPBACK, "allowed host redirects to loopback", True),
    Hostile(_via("http://localhost:{canary}/"), LOOPBACK, "allowed host redirects to localhost", True),
    Hostile(_via("http://[::ffff:127.0.0.1]:{canary}/"), LOOPBACK, "redirect to IPv4-mapped loopback", True),
    Hostile(_via("//127.0.0.1:{canary}/"), LOOPBACK, "scheme-relative redirect to loopback", True),
    Hostile(_via("http://127.0.0.1:{canary}/", hops=3), LOOPBACK, "three allowed hops, then loopback", True),
    Hostile(_via("http://169.254.169.254/latest/meta-data/"), "metadata", "redirect to metadata"),
    Hostile(_via("file:///etc/passwd"), SCHEME, "redirect to a local file"),
    Hostile(_via("gopher://127.0.0.1:{canary}/_x"), SCHEME, "redirect to gopher"),
]
assert len(CORPUS) >= 25


def _url(entry: Hostile, canary: Any, origin: Any) -> str:
    return entry.url.format(canary=canary.port, origin=origin.base)


def _ids(entries: list[Hostile]) -> list[str]:
    return [e.url.replace("{origin}/redirect?to=", "redirect:").format(canary="P") for e in entries]


def _skip_without_ipv6(entry: Hostile, canary: Any) -> None:
    if entry.reaches_canary and "[" in entry.url and not canary.ipv6:
        pytest.skip("no IPv6 loopback here: the canary cannot listen on ::1")


def _policy(**changes: Any) -> FetchPolicy:
    return dataclasses.replace(FetchPolicy(allow_networks=parse_networks("127.0.0.2/32"), timeout=10.0), **changes)


def _leftovers(root: Path) -> list[Path]:
    return sorted(root.rglob("*")) if root.exists() else []


def _refused(response: Any, entry: Hostile) -> str:
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert entry.why in message, message
    if entry.redirect:
        assert "redirected to" in message
    return str(message)


# ------------------------------------------------------------------ (a) the fetcher
@pytest.mark.parametrize("entry", CORPUS, ids=_ids(CORPUS))
def test_fetcher_refuses(entry: Hostile, canary: Any, origin: Any, tmp_path: Path) -> None:
    with pytest.raises(FetchRefused) as info:
        asyncio.run(fetch.fetch(_url(entry, canary, origin), tmp_path, _policy()))
    assert info.value.status == 400
    assert entry.why in info.value.message, info.value.message
    assert canary.count == 0
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------------ (b) a typed URLFile argument
@pytest.mark.parametrize("entry", CORPUS, ids=_ids(CORPUS))
def test_typed_model_refuses(
    entry: Hostile, canary: Any, origin: Any, make_client: Callable[..., TestClient], settings: Settings
) -> None:
    client = make_client("url_inputs:Image", fetch_allow_networks=origin.ALLOW)
    r = client.post("/v2/models/url-inputs/predict/", json={"image": _url(entry, canary, origin)})
    message = _refused(r, entry)
    assert message.startswith("Argument 'image': Refused to fetch")
    assert canary.count == 0
    assert [p for p in _leftovers(settings.upload_dir) if p.is_file() or p.name.startswith("fetch-")] == []


# ------------------------------------------------------------------ (c) v1 predict_url
V1_CORPUS = [e for e in CORPUS if not e.redirect]  # the model follows its own redirects: see the limitation test


@pytest.mark.parametrize("entry", V1_CORPUS, ids=_ids(V1_CORPUS))
def test_v1_predict_url_refuses(
    entry: Hostile, canary: Any, origin: Any, make_client: Callable[..., TestClient]
) -> None:
    client = make_client("url_v1", fetch_allow_networks=origin.ALLOW)
    r = client.post("/v2/models/url-v1/predict/", data={"url": _url(entry, canary, origin)})
    message = _refused(r, entry)
    assert message.startswith("Argument 'url': Refused to fetch")
    assert canary.count == 0


def test_allowed_origin_is_fetched(canary: Any, origin: Any, make_client: Callable[..., TestClient]) -> None:
    """The control: the same paths do reach an allowed destination."""
    client = make_client("url_inputs:Image", fetch_allow_networks=origin.ALLOW)
    r = client.post("/v2/models/url-inputs/predict/", json={"image": origin.url("/img/cat.png")})
    assert r.status_code == 200, r.text
    v1 = make_client("url_v1", fetch_allow_networks=origin.ALLOW)
    r = v1.post("/v2/models/url-v1/predict/", data={"url": origin.url("/img/cat.png")})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == {"bytes": len(origin.PNG)}
    assert origin.connections == 2
    assert canary.count == 0


def test_without_allow_list_the_origin_is_refused_too(canary: Any, origin: Any, tmp_path: Path) -> None:
    with pytest.raises(FetchRefused, match="loopback"):
        asyncio.run(fetch.fetch(origin.url("/img/cat.png"), tmp_path, FetchPolicy()))
    assert origin.connections == 0


def test_v1_limitation_the_model_follows_its_own_redirects(
    canary: Any, origin: Any, make_client: Callable[..., TestClient]
) -> None:
    """Documented limitation: only the URL given is checked; the model's own fetch is not guarded."""
    client = make_client("url_v1", fetch_allow_networks=origin.ALLOW)
    url = _via("http://127.0.0.1:{canary}/").format(canary=canary.port, origin=origin.base)
    r = client.post("/v2/models/url-v1/predict/", data={"url": url})
    assert r.status_code == 200, r.text
    assert canary.wait_for_hit() >= 1


def test_v1_unresolvable_host_is_refused(canary: Any, make_client: Callable[..., TestClient]) -> None:
    """The model might resolve it elsewhere (its own hosts file): fail closed, saying why and how to allow it."""
    client = make_client("url_v1")
    r = client.post("/v2/models/url-v1/predict/", data={"url": "http://no-such-host.invalid/"})
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert "cannot resolve 'no-such-host.invalid'" in message and "--pass-unresolved-urls" in message
    assert canary.count == 0


def test_v1_unresolvable_host_goes_to_the_model_when_allowed(
    canary: Any, make_client: Callable[..., TestClient]
) -> None:
    client = make_client("url_v1", pass_unresolved_urls=True)
    r = client.post("/v2/models/url-v1/predict/", data={"url": "http://no-such-host.invalid/"})
    assert r.status_code == 500 and "failed in predict" in r.json()["message"], r.text  # the model's own fetch
    assert canary.count == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://no-such-host.invalid*/",
        "http://no-such-host.invalid/caf\u00e9",
        "http://[2606:4700::1111]/",
        "http://u@a.invalid/",
    ],
)
def test_v1_url_that_is_not_plain_is_refused_as_the_document_says(
    url: str, canary: Any, make_client: Callable[..., TestClient]
) -> None:
    """Unresolvable names go to the model when allowed, but only in the form the API document gives for ``url``."""
    client = make_client("url_v1", pass_unresolved_urls=True)
    r = client.post("/v2/models/url-v1/predict/", data={"url": url})
    assert r.status_code == 400, r.text
    assert "is not a plain http or https URL" in r.json()["message"]


# ------------------------------------------------------------------ defence removed
REACHING = [e for e in CORPUS if e.reaches_canary]
REACHING_V1 = [e for e in REACHING if not e.redirect and "@" not in e.url]  # urllib cannot do user info


@pytest.fixture
def no_address_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(destinations, "refusal", lambda ip, allow=(): None)


@pytest.mark.parametrize("entry", REACHING, ids=_ids(REACHING))
def test_defence_removed_address_check_fetcher_reaches_canary(
    entry: Hostile, canary: Any, origin: Any, tmp_path: Path, no_address_check: None
) -> None:
    _skip_without_ipv6(entry, canary)
    got = asyncio.run(fetch.fetch(_url(entry, canary, origin), tmp_path, _policy()))
    assert got.path.read_bytes() == b"canary"
    assert canary.count >= 1


@pytest.mark.parametrize("entry", REACHING, ids=_ids(REACHING))
def test_defence_removed_address_check_typed_model_reaches_canary(
    entry: Hostile, canary: Any, origin: Any, make_client: Callable[..., TestClient], no_address_check: None
) -> None:
    _skip_without_ipv6(entry, canary)
    client = make_client("url_inputs:Image", fetch_allow_networks=origin.ALLOW)
    r = client.post("/v2/models/url-inputs/predict/", json={"image": _url(entry, canary, origin)})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"]["head"] == "canary"
    assert canary.count >= 1


@pytest.mark.parametrize("entry", REACHING_V1, ids=_ids(REACHING_V1))
def test_defence_removed_address_check_v1_reaches_canary(
    entry: Hostile,
    canary: Any,
    origin: Any,
    make_client: Callable[..., TestClient],
    no_address_check: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both v1 defences off: the address check, and the URL form (which stops some spellings too)."""
    _skip_without_ipv6(entry, canary)
    monkeypatch.setattr(runtime, "is_plain_url", lambda url: True)
    client = make_client("url_v1", fetch_allow_networks=origin.ALLOW)
    r = client.post("/v2/models/url-v1/predict/", data={"url": _url(entry, canary, origin)})
    assert canary.wait_for_hit() >= 1, r.text


def test_defence_removed_redirect_recheck_reaches_canary(
    canary: Any, origin: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking only the first hop (vLLM CVE-2025-6242) lets a redirect reach the canary."""
    real = fetch.check_destination
    calls = []

    async def first_hop_only(url: Any, policy: FetchPolicy, **kw: Any) -> Any:
        calls.append(url)
        if len(calls) > 1:
            policy = dataclasses.replace(policy, allow_networks=parse_networks("0.0.0.0/0,::/0"))
        return await real(url, policy, **kw)

    url = _via("http://127.0.0.1:{canary}/").format(canary=canary.port, origin=origin.base)
    with pytest.raises(FetchRefused, match="redirected to"):
        asyncio.run(fetch.fetch(url, tmp_path, _policy()))
    assert canary.count == 0
    calls.clear()
    monkeypatch.setattr(fetch, "check_destination", first_hop_only)
    asyncio.run(fetch.fetch(url, tmp_path, _policy()))
    assert canary.count == 1


def test_defence_removed_pinning_lets_dns_rebinding_reach_canary(
    canary: Any, origin: Any, tmp_path: Path, fake_dns: Callable[..., list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rebind.test`` answers 127.0.0.2 (allowed) to the check and 127.0.0.1 afterwards."""
    answers = fake_dns("rebind.test", "127.0.0.2", "127.0.0.1")
    url = f"http://rebind.test:{canary.port}/img/x.png"
    got = asyncio.run(fetch.fetch(url, tmp_path, _policy()))
    assert got.path.read_bytes() == origin.PNG  # the address that was checked was the one connected to
    assert answers == ["127.0.0.2"]  # resolved once, by the check
    assert canary.count == 0

    async def connect_by_name(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        return await httpcore.AnyIOBackend().connect_tcp(host, port, *args, **kwargs)  # resolves again

    monkeypatch.setattr(fetch._PinnedBackend, "connect_tcp", connect_by_name)
    answers.clear()
    got = asyncio.run(fetch.fetch(url, tmp_path, _policy()))
    assert got.path.read_bytes() == b"canary"
    assert canary.count == 1


def test_defence_removed_scheme_check_lets_v1_model_speak_ftp(
    canary: Any, origin: Any, make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ftp:// to an allowed address: refused by the scheme check alone; without it the model connects."""
    client = make_client("url_v1", fetch_allow_networks=origin.ALLOW)
    url = f"ftp://{origin.host}:{origin.port}/file"
    r = client.post("/v2/models/url-v1/predict/", data={"url": url})
    assert r.status_code == 400 and "only http and https" in r.json()["message"]
    assert origin.connections == 0
    monkeypatch.setattr(destinations, "SCHEMES", ("http", "https", "ftp"))
    r = client.post("/v2/models/url-v1/predict/", data={"url": url})
    assert r.status_code == 400 and "not a plain http or https URL" in r.json()["message"]  # the second defence
    assert origin.connections == 0
    monkeypatch.setattr(runtime, "is_plain_url", lambda url: True)
    client.post("/v2/models/url-v1/predict/", data={"url": url})
    assert origin.connections >= 1


# ------------------------------------------------------------------ the address rules themselves
@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"],
)
def test_global_unicast_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_allow_list_overrides_but_metadata_needs_its_own_entry() -> None:
    ip = ipaddress.ip_address
    assert refusal(ip("10.1.2.3"), parse_networks("10.0.0.0/8")) is None
    assert refusal(ip("::ffff:10.1.2.3"), parse_networks("10.0.0.0/8")) is None
    assert refusal(ip("10.1.2.3"), parse_networks("192.168.0.0/16")) == "a private address"
    assert refusal(ip("169.254.169.254"), parse_networks("169.254.0.0/16")) == "a cloud metadata address"
    assert refusal(ip("169.254.169.254"), parse_networks("169.254.169.254/32")) is None
