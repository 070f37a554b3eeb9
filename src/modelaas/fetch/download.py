"""The guarded fetcher: every URL the server downloads goes through :func:`fetch`.

Rules (docs/security.md, "URL inputs"): http/https only, and httpx and urllib must read the
same host from the URL; the host is resolved once per hop and *every* answer must be a
global unicast address (:func:`refusal`) unless an operator allowed its network; the
connection goes to one of the addresses that were checked; redirects are followed here, at
most ``max_redirects``, each hop checked anew; no proxies from the environment; the
*decoded* body is capped; one deadline covers the whole fetch; content types are checked.

Pinning: httpx gets a transport over an ``httpcore.AsyncConnectionPool`` whose network
backend (:class:`_PinnedBackend`) does no name resolution: asked to ``connect_tcp`` to the
URL's host name, it opens the socket to the checked addresses (any other host is refused).
The Host header still comes from the URL, and TLS runs ``start_tls(server_hostname=<host
name>)`` on that socket, so SNI and certificate verification check the host name.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
import tempfile
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
import httpcore
import httpx

from modelaas.errors import FetchFailed, FetchRefused, PayloadTooLarge
from modelaas.fetch.destinations import (
    Destination,
    FetchPolicy,
    check_destination,
    parse_url,
    shown,
)
from modelaas.model.files import safe_suffix

_REDIRECTS = {301, 302, 303, 307, 308}
_HEADERS = {"Accept-Encoding": "gzip, deflate", "User-Agent": "modelaas-fetch"}
_CHUNK = 64 * 1024
_NETWORK_ERRORS = (
    httpx.HTTPError,
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    ssl.SSLError,
)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to the checked destination, at the addresses that were checked."""

    def __init__(self, dest: Destination) -> None:
        self.dest = dest
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if (host, port) != (self.dest.host, self.dest.port):
            raise httpcore.ConnectError(f"{host}:{port} is not the destination that was checked")
        error: Exception = httpcore.ConnectError("no address")
        for ip in self.dest.addresses:
            try:
                return await self._inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: httpcore.Response) -> None:
        self.response = response

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.response.aiter_stream()

    async def aclose(self) -> None:
        await self.response.aclose()


class _PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport (public httpcore API only) whose sockets go to one checked destination."""

    def __init__(self, dest: Destination, ssl_context: ssl.SSLContext) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, max_connections=1, http1=True, http2=False, network_backend=_PinnedBackend(dest)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = httpcore.URL(
            scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port, target=request.url.raw_path
        )
        stream: Any = request.stream
        req = httpcore.Request(
            request.method, url, headers=request.headers.raw, content=stream, extensions=request.extensions
        )
        resp = await self._pool.handle_async_request(req)
        return httpx.Response(resp.status, headers=resp.headers, stream=_Body(resp), extensions=resp.extensions)

    async def aclose(self) -> None:
        await self._pool.aclose()


@cache
def _default_ssl() -> ssl.SSLContext:
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class Fetched:
    path: Path
    content_type: str
    url: str
    """The URL the content came from (after redirects)."""
    size: int


async def fetch(url: str, dest_dir: str | Path, policy: FetchPolicy, *, media_types: Sequence[str] = ()) -> Fetched:
    """Download ``url`` into a new file in ``dest_dir`` under ``policy``.

    With a request's policy (:meth:`FetchPolicy.for_request`), the fetch takes its share
    of the request's budget: what is left of its deadline and of its bytes.

    Raises :class:`FetchRefused` (400: destination, scheme, content type, too many
    redirects), :class:`PayloadTooLarge` (413: decoded body over ``max_bytes``) or
    :class:`FetchFailed` (502: network or remote errors, the deadline). On any error no
    file is left behind.
    """
    parsed = parse_url(url)
    budget = policy.budget
    if budget is None:
        seconds, limit, flag = policy.timeout, policy.timeout, "--fetch-timeout"
        within = policy
    else:  # the request's fetches share one deadline and one byte count
        seconds, limit, flag = budget.remaining(), budget.seconds, budget.flag
        within = dataclasses.replace(policy, max_bytes=min(policy.max_bytes, budget.bytes_left))
    try:
        with anyio.fail_after(seconds):
            got = await _follow(parsed, Path(dest_dir), within, tuple(media_types))
    except TimeoutError:
        what = "it" if budget is None else "the URL inputs of this request"
        raise FetchFailed(
            f"Could not fetch {shown(url)}: {what} took longer than the limit of {limit:g} s ({flag})."
        ) from None
    except PayloadTooLarge:
        if budget is None or within.max_bytes == policy.max_bytes:
            raise
        raise PayloadTooLarge(
            f"Refused to fetch {shown(url)}: the URL inputs of this request are larger, together, than the limit "
            f"of {policy.max_bytes} bytes (--fetch-max-bytes)."
        ) from None
    if budget is not None:
        budget.bytes_left -= got.size
    return got


async def _follow(url: httpx.URL, dest_dir: Path, policy: FetchPolicy, media_types: tuple[str, ...]) -> Fetched:
    first = url
    timeout = httpx.Timeout(policy.timeout, connect=policy.connect_timeout)
    for hop in range(policy.max_redirects + 1):
        label = shown(url) if hop == 0 else f"{shown(first)} (redirected to {shown(url)})"
        dest = await check_destination(url, policy, label=label)
        transport = _PinnedTransport(dest, policy.ssl_context or _default_ssl())
        async with httpx.AsyncClient(
            transport=transport, trust_env=False, follow_redirects=False, timeout=timeout, headers=_HEADERS
        ) as client:
            try:
                async with client.stream("GET", url) as response:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        target = _joined(url, location, label)
                        url = parse_url(target, f"{shown(first)} (redirected to {shown(target)})")
                        continue
                    _check_response(response, label, policy, media_types)
                    return await _save(response, dest_dir, policy, label)
            except httpx.InvalidURL as exc:  # httpx reads Location itself, even without following it
                raise _bad_redirect(label, exc) from None
            except _NETWORK_ERRORS as exc:
                if isinstance(exc, httpx.RemoteProtocolError) and "location header" in str(exc).lower():
                    raise _bad_redirect(label, exc) from None
                raise FetchFailed(f"Could not fetch {label}: {type(exc).__name__}: {exc}".rstrip(": ") + ".") from None
    raise FetchRefused(f"Refused to fetch {shown(first)}: more than {policy.max_redirects} redirects.")


def _bad_redirect(label: str, exc: Exception) -> FetchRefused:
    reason = str(exc).removeprefix("Invalid URL in location header: ").rstrip(".")
    return FetchRefused(f"Refused to fetch {label}: it redirects to an invalid URL ({reason}).")


def _joined(url: httpx.URL, location: str, label: str) -> str:
    try:
        return str(url.join(location))
    except (httpx.InvalidURL, ValueError, UnicodeError):
        raise FetchRefused(f"Refused to fetch {label}: it redirects to an invalid URL {shown(location)}.") from None


def _check_response(response: httpx.Response, label: str, policy: FetchPolicy, media_types: tuple[str, ...]) -> None:
    if not 200 <= response.status_code < 300:
        raise FetchFailed(f"Could not fetch {label}: the server answered HTTP {response.status_code}.")
    ctype = response.headers.get("content-type", "")
    if media_types and not media_matches(ctype, media_types):
        raise FetchRefused(
            f"Refused to fetch {label}: its content type is {ctype or 'not declared'!s}, "
            f"expected {', '.join(media_types)}."
        )
    length = response.headers.get("content-length", "")
    if not response.headers.get("content-encoding") and length.isdigit() and int(length) > policy.max_bytes:
        raise _too_large(label, policy)


def media_matches(content_type: str, patterns: Sequence[str]) -> bool:
    """Whether ``content_type`` is one of ``patterns`` (``image/png``, ``image/*``, ``*/*``)."""
    base = content_type.split(";", 1)[0].strip().lower()
    for pattern in (p.strip().lower() for p in patterns):
        if pattern in ("*", "*/*", base) or (pattern.endswith("/*") and base.startswith(pattern[:-1]) and base):
            return True
    return False


def _too_large(label: str, policy: FetchPolicy) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Refused to fetch {label}: its content (decoded) is larger than the limit of {policy.max_bytes} bytes "
        "(--fetch-max-bytes)."
    )


async def _save(response: httpx.Response, dest_dir: Path, policy: FetchPolicy, label: str) -> Fetched:
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise FetchFailed(f"Could not fetch {label}: unsupported Content-Encoding {encoding!r}.")
    z = zlib.decompressobj(15 if encoding == "deflate" else 31) if encoding not in ("", "identity") else None
    suffix = safe_suffix(unquote(response.url.path))
    fd, name = tempfile.mkstemp(dir=dest_dir, prefix="fetch-", suffix=suffix)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for raw in response.aiter_raw():
                for chunk in _decoded(z, raw, label) if z is not None else (raw,):
                    size += len(chunk)
                    if size > policy.max_bytes:
                        raise _too_large(label, policy)
                    out.write(chunk)
            if z is not None and not z.eof:
                raise FetchFailed(f"Could not fetch {label}: its compressed content is truncated.")
    except BaseException:
        with suppress(OSError):
            os.unlink(name)
        raise
    ctype = response.headers.get("content-type", "") or "application/octet-stream"
    return Fetched(Path(name), ctype, str(response.url), size)


def _decoded(z: Any, data: bytes, label: str) -> Iterator[bytes]:
    """Decompress ``data`` at most ``_CHUNK`` bytes at a time, so a bomb is cut at the cap."""
    while not z.eof:
        try:
            out = z.decompress(data, _CHUNK)
        except zlib.error as exc:
            raise FetchFailed(f"Could not fetch {label}: its compressed content is corrupt ({exc}).") from None
        data = z.unconsumed_tail
        if out:
            yield out
        if not data and len(out) < _CHUNK:
            return
