"""Access control: bearer tokens with scopes.

A token entry is ``<scopes> <secret>``:

* ``<scopes>``: comma-separated ``predict``, ``train``, ``metrics`` (reading ``/metrics``),
  ``admin`` (``admin`` implies the others);
* ``<secret>``: the token itself, or ``sha256:<64 hex digits>``, the SHA-256 of the token, so
  that the secret need not be written down anywhere.

Entries come from the ``tokens`` setting (``MODELAAS_TOKENS``; entries separated by ``;``
or new lines) and from the ``tokens_file`` setting (one entry per line; blank lines and
lines starting with ``#`` are skipped). Plain tokens are at least 16 characters of the
RFC 6750 token alphabet (``A-Z a-z 0-9 - . _ ~ + /``, then ``=`` padding).

Only SHA-256 digests are kept in memory; a token is checked by comparing its digest with
every entry (``hmac.compare_digest``), so the answer time does not depend on which entry
matched or how much of one did. No entries at all means access control is off.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from modelaas.errors import REDACTED, ConfigError
from modelaas.settings import Settings

PREDICT, TRAIN, ADMIN, METRICS = "predict", "train", "admin", "metrics"
PUBLIC, ANY_TOKEN = "public", "token"
"""What a route may need besides a scope: nothing, or any valid token."""
SCOPES = (PREDICT, TRAIN, ADMIN, METRICS)
MIN_TOKEN_LENGTH = 16
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*\Z", re.ASCII)
_HASHED = re.compile(r"sha256:([0-9a-fA-F]{64})\Z", re.ASCII)
_WORD = re.compile(rf"[A-Za-z0-9\-._~+/]{{{MIN_TOKEN_LENGTH},}}=*", re.ASCII)


@dataclass(frozen=True)
class TokenEntry:
    digest: bytes
    scopes: frozenset[str]


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def hash_token(token: str) -> str:
    """The ``sha256:<hex>`` form of ``token``, to write in a tokens file instead of the token."""
    return "sha256:" + digest(token).hex()


def principal(token: str) -> str:
    """Who holds ``token``, as jobs record it: a digest of its digest (never the token)."""
    return hashlib.sha256(b"modelaas-job-submitter\0" + digest(token)).hexdigest()[:32]


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def grants(scopes: Iterable[str], need: str) -> bool:
    """Whether a token with ``scopes`` may do what needs ``need`` (``admin`` may do anything)."""
    held = set(scopes)
    return ADMIN in held or need in held


class TokenTable:
    """The configured tokens, as digests. Empty: access control is off."""

    def __init__(self, entries: Iterable[TokenEntry] = ()) -> None:
        self.entries = tuple(entries)
        self._digests = frozenset(e.digest for e in self.entries)

    @property
    def enabled(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def scopes_for(self, token: str) -> frozenset[str] | None:
        """The scopes of ``token``, or None if it is unknown. Every entry is compared."""
        given = digest(token)
        found: set[str] = set()
        matched = False
        for entry in self.entries:  # no early exit: the time does not depend on the match
            if hmac.compare_digest(entry.digest, given):
                matched = True
                found |= entry.scopes
        return frozenset(found) if matched else None

    def redact(self, text: str) -> str:
        """``text`` with every configured token in it replaced by ``<redacted>``."""
        if not self.entries:
            return text
        return _WORD.sub(lambda m: REDACTED if digest(m.group()) in self._digests else m.group(), text)


def parse_entries(text: str, *, source: str) -> list[TokenEntry]:
    """Entries of ``text``: one per line or ``;``-separated part; ``#`` starts a comment line."""
    entries = []
    for number, line in enumerate(re.split(r"[;\n]", text), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        entries.append(_parse_entry(line, where=f"{source}, entry {number}"))
    return entries


def _parse_entry(line: str, *, where: str) -> TokenEntry:
    parts = line.split()
    if len(parts) != 2:
        raise ConfigError(
            f"Access tokens ({where}): write '<scopes> <token>' or '<scopes> sha256:<hex>', "
            "e.g. 'predict,train sha256:9f86d0...'."
        )
    scope_text, secret = parts
    scopes = frozenset(s.strip().lower() for s in scope_text.split(",") if s.strip())
    unknown = scopes - set(SCOPES)
    if not scopes or unknown:
        raise ConfigError(
            f"Access tokens ({where}): unknown scope {', '.join(sorted(unknown)) or scope_text!r}; "
            f"scopes are {', '.join(SCOPES)}."
        )
    hashed = _HASHED.match(secret)
    if hashed:
        return TokenEntry(bytes.fromhex(hashed.group(1)), scopes)
    if secret.lower().startswith("sha256:"):
        raise ConfigError(f"Access tokens ({where}): a sha256: entry needs exactly 64 hex digits.")
    if not _TOKEN.match(secret) or len(secret) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"Access tokens ({where}): a token needs at least {MIN_TOKEN_LENGTH} characters among "
            "A-Z a-z 0-9 - . _ ~ + / (then = padding); make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'."
        )
    return TokenEntry(digest(secret), scopes)


def load_tokens(settings: Settings) -> TokenTable:
    """The tokens of the ``tokens`` and ``tokens_file`` settings (raises :class:`ConfigError`)."""
    entries: list[TokenEntry] = []
    if settings.tokens:
        entries += parse_entries(settings.tokens, source="the tokens setting (MODELAAS_TOKENS)")
    if settings.tokens_file is not None:
        path = Path(settings.tokens_file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(f"Cannot read the tokens file {path}: {reason}") from None
        file_entries = parse_entries(text, source=f"tokens file {path}")
        if not file_entries:
            raise ConfigError(f"The tokens file {path} has no token; access control would be off.")
        entries += file_entries
    return TokenTable(entries)
