"""Where the server may connect when it fetches a URL input: the address rules.

A URL's host is resolved once; *every* answer must be a global unicast address
(:func:`refusal`) unless an operator allowed its network (``--fetch-allow-networks``).
IPv4 addresses hidden in IPv6 forms (IPv4-mapped, NAT64, 6to4) are judged as the IPv4
address they carry. :func:`check_destination` answers the addresses to connect to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from modelaas.errors import ConfigError, FetchFailed, FetchRefused

if TYPE_CHECKING:
    import httpx

MIB = 1024 * 1024
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = ("http", "https")
_MAX_URL = 8192

_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HOST = rf"(?:[A-Za-z][A-Za-z0-9-]*(?:\.[A-Za-z][A-Za-z0-9-]*)*|{_OCTET}(?:\.{_OCTET}){{3}})(?::{_PORT})?"
_REST = r"(?:[/?#][A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]*)?"
PLAIN_URL_PATTERN = rf"^(?:[Hh][Tt][Tt][Pp][Ss]?://{_HOST}{_REST})?(?![\s\S])"
r"""An http(s) URL of a host name or dotted IPv4 address (no user info), printable ASCII, or empty.

What v1 ``url`` arguments must look like: the API document carries it as a JSON Schema
``pattern`` (``(?![\s\S])`` is the end of the text in every regex dialect).
"""
_PLAIN_URL = re.compile(PLAIN_URL_PATTERN)


def is_plain_url(text: str) -> bool:
    """Whether ``text`` matches :data:`PLAIN_URL_PATTERN`."""
    return _PLAIN_URL.match(text) is not None


def _table(rows: dict[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), why) for nets, why in rows.items() for net in nets.split())


_V4_REFUSED = _table(
    {
        "0.0.0.0/8": "in 'this network' (0.0.0.0/8)",
        "10.0.0.0/8 172.16.0.0/12 192.168.0.0/16": "a private address",
        "100.64.0.0/10": "a shared (CGNAT) address",
        "127.0.0.0/8": "a loopback address",
        "169.254.0.0/16": "a link-local address",
        "192.0.0.0/24": "an IETF protocol address",
        "192.0.2.0/24 198.51.100.0/24 203.0.113.0/24": "a documentation address",
        "192.88.99.0/24": "a 6to4 relay address",
        "198.18.0.0/15": "a benchmarking address",
        "224.0.0.0/4": "a multicast address",
        "240.0.0.0/4": "a reserved or broadcast address",
    }
)
_V6_REFUSED = _table(  # first match wins
    {
        "::/128": "the unspecified address",
        "::1/128": "a loopback address",
        "64:ff9b:1::/48": "a local-use NAT64 address",
        "::/8": "a reserved address",  # also IPv4-compatible ::a.b.c.d and SIIT ::ffff:0:a.b.c.d
        "100::/64": "a discard-only address",
        "2001::/32": "a Teredo address",
        "2001::/23": "an IETF protocol address",
        "2001:db8::/32 3fff::/20": "a documentation address",
        "fc00::/7": "a unique-local (private) address",
        "fe80::/10": "a link-local address",
        "fec0::/10": "a site-local address",
        "ff00::/8": "a multicast address",
    }
)
_V6_GLOBAL = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)


def parse_networks(value: str | Iterable[str] | None) -> tuple[IPNetwork, ...]:
    """``"10.0.0.0/8, 192.168.1.5"`` -> networks; :class:`ConfigError` names a bad entry."""
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value or ())
    try:
        return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items)
    except ValueError as exc:
        raise ConfigError(f"fetch_allow_networks: {exc}; give CIDRs such as 10.0.0.0/8,fd00::/8") from None


@dataclass
class FetchBudget:
    """What the URL inputs of one request may still take: one deadline, one byte count."""

    deadline: float
    """``time.monotonic()`` by which every fetch of the request must be done."""
    seconds: float
    flag: str
    """The setting the time limit comes from (``--fetch-timeout`` or ``--predict-timeout``)."""
    bytes_left: int

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


@dataclass(frozen=True)
class FetchPolicy:
    """What the fetcher allows; build it from settings with :meth:`from_settings`.

    ``max_bytes`` and ``timeout`` bound one fetch; :meth:`for_request` makes the policy of
    one request, whose fetches share them (and ``max_urls`` bounds how many there are).
    """

    allow_networks: tuple[IPNetwork, ...] = ()
    max_bytes: int = 100 * MIB
    timeout: float = 30.0
    connect_timeout: float = 10.0
    max_redirects: int = 5
    max_urls: int = 16
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)
    """Trust for https (default: certifi, or SSL_CERT_FILE/SSL_CERT_DIR)."""
    budget: FetchBudget | None = field(default=None, compare=False, repr=False)
    """The shared budget of one request's fetches (see :meth:`for_request`)."""

    @classmethod
    def from_settings(cls, settings: Any) -> FetchPolicy:
        timeout = float(getattr(settings, "fetch_timeout", None) or 30.0)
        return cls(
            allow_networks=parse_networks(getattr(settings, "fetch_allow_networks", None)),
            max_bytes=int(getattr(settings, "fetch_max_bytes", None) or 100 * MIB),
            timeout=timeout,
            connect_timeout=min(10.0, timeout),
            max_urls=int(getattr(settings, "fetch_max_urls", None) or 16),
        )

    def for_request(self, urls: int, *, predict_timeout: float | None = None) -> FetchPolicy:
        """The policy for the ``urls`` URL inputs of one request: they share one deadline
        (``timeout``, or ``predict_timeout`` when shorter) and ``max_bytes``.

        Raises :class:`FetchRefused` (400) when there are more than ``max_urls``.
        """
        if urls > self.max_urls:
            raise FetchRefused(f"{urls} URL inputs in one request; at most {self.max_urls} (--fetch-max-urls).")
        seconds, flag = self.timeout, "--fetch-timeout"
        if predict_timeout is not None and predict_timeout < seconds:
            seconds, flag = predict_timeout, "--predict-timeout"
        budget = FetchBudget(time.monotonic() + seconds, seconds, flag, self.max_bytes)
        return dataclasses.replace(self, budget=budget)


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, NAT64 (64:ff9b::/96) or 6to4 address."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def refusal(ip: IPAddress, allow: Sequence[IPNetwork] = ()) -> str | None:
    """Why ``ip`` may not be fetched from (``None``: it may). Wrapped IPv4 is judged unwrapped."""
    judged: IPAddress = embedded_ipv4(ip) or ip
    if judged in _METADATA or ip in _METADATA:  # only an allow-list entry for exactly it lets it through
        single = any(n.num_addresses == 1 and (judged in n or ip in n) for n in allow)
        return None if single else "a cloud metadata address"
    if any(judged in n or ip in n for n in allow):
        return None
    for net, why in _V4_REFUSED if judged.version == 4 else _V6_REFUSED:
        if judged in net:
            return why
    if judged.version == 6 and judged not in _V6_GLOBAL:
        return "outside the IPv6 global unicast range 2000::/3"
    if not judged.is_global or judged.is_multicast:  # backstop for ranges added to the registries later
        return "not a global unicast address"
    return None


def shown(url: str | httpx.URL) -> str:
    """The URL as error messages show it: quoted, without credentials, at most 200 characters."""
    text = re.sub(r"//[^/?#@\\]*@", "//", str(url), count=1)
    return repr(text if len(text) <= 200 else text[:200] + "...")


def parse_url(text: str, label: str = "") -> httpx.URL:
    """Parse a URL the way the fetch will use it; refuse what is not plainly http(s)://host."""
    label = label or shown(str(text)[:_MAX_URL])
    if not isinstance(text, str) or len(text) > _MAX_URL:
        raise FetchRefused(f"Refused to fetch {label}: not a URL of at most {_MAX_URL} characters.")
    scheme = text.split(":", 1)[0].strip().lower() if ":" in text else ""
    if scheme not in SCHEMES:
        raise FetchRefused(f"Refused to fetch {label}: only http and https URLs are fetched, not {scheme!r}.")
    if "\\" in text or any(ord(c) <= 32 or ord(c) == 127 for c in text):
        raise FetchRefused(f"Refused to fetch {label}: URLs with spaces, control characters or backslashes.")
    import httpx  # here: a serving process only needs it once a URL comes

    try:
        url, split = httpx.URL(text), urlsplit(text)
        default = 443 if url.scheme == "https" else 80
        same = (split.hostname or "") == url.host.lower() and (split.port or default) == (url.port or default)
    except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
        raise FetchRefused(f"Refused to fetch {label}: not a valid URL ({exc}).") from None
    if not url.host:
        raise FetchRefused(f"Refused to fetch {label}: the URL has no host.")
    if not same:
        raise FetchRefused(f"Refused to fetch {label}: the URL is ambiguous (parsers disagree on its host).")
    return url


@dataclass(frozen=True)
class Destination:
    """A host and port that passed the checks, and the addresses it resolved to."""

    host: str
    port: int
    addresses: tuple[IPAddress, ...]


async def check_destination(url: str | httpx.URL, policy: FetchPolicy, *, label: str = "") -> Destination:
    """Parse, resolve and check where ``url`` points; :class:`FetchRefused` says why not."""
    url = parse_url(url) if isinstance(url, str) else url
    label = label or shown(url)
    host, port = url.raw_host.decode("ascii"), url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise FetchFailed(f"Could not fetch {label}: cannot resolve {host!r} ({exc}).") from None
    addresses: list[IPAddress] = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        why = refusal(ip, policy.allow_networks)
        if why is not None:
            inner = embedded_ipv4(ip)
            note = f" (it embeds {inner})" if inner and ":" in host else ""  # literals only: no DNS oracle
            raise FetchRefused(
                f"Refused to fetch {label}: {host} points to {why}{note}. Only global unicast addresses are fetched "
                "(operators can allow networks with --fetch-allow-networks)."
            )
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise FetchFailed(f"Could not fetch {label}: {host!r} has no IPv4 or IPv6 address.")
    return Destination(host, port, tuple(addresses))
