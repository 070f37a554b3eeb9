"""Content negotiation: pick what to answer from an ``Accept`` header (RFC 9110, q-values)."""

from __future__ import annotations

from collections.abc import Sequence

from modelaas.errors import NotAcceptable

JSON_MEDIA = "application/json"


def is_json_media(media_type: str, *, wildcard: bool = False) -> bool:
    """``application/json`` or a ``+json`` type (parameters ignored); ``*/*`` too when ``wildcard``."""
    base = media_type.split(";")[0].strip().lower()
    return base == JSON_MEDIA or base.endswith("+json") or (wildcard and base == "*/*")


def parse_accept(header: str) -> list[tuple[str, float, int]]:
    """``Accept`` -> [(media range, q, position)], best first (q, then specificity, then order)."""
    ranges: list[tuple[str, float, int, int]] = []
    for pos, item in enumerate(header.split(",")):
        parts = [p.strip() for p in item.split(";")]
        media = parts[0].lower()
        if not media:
            continue
        if "/" not in media:
            media = "*/*" if media == "*" else media + "/*"
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        specificity = 0 if media == "*/*" else 1 if media.endswith("/*") else 2
        ranges.append((media, q, specificity, pos))
    ranges.sort(key=lambda r: (-r[1], -r[2], r[3]))
    return [(m, q, pos) for m, q, _, pos in ranges]


def _matches(media_range: str, media_type: str) -> bool:
    """Whether a client's range accepts an offered type; an offered ``image/*`` covers ``image/png``."""
    if media_range == "*/*":
        return True
    major, _, minor = media_range.partition("/")
    t_major, _, t_minor = media_type.lower().partition("/")
    return major == t_major and (minor == "*" or t_minor in ("*", minor))


def negotiate(header: str | None, offered: Sequence[str]) -> str:
    """The offered type the client prefers; ``*/*`` or no header picks the first offered.

    Raises :class:`NotAcceptable` when the client accepts none of them.
    """
    if not offered:
        raise ValueError("nothing offered")
    if not header or not header.strip():
        return offered[0]
    ranges = parse_accept(header)
    if not ranges:
        return offered[0]
    best: tuple[float, int, int, str] | None = None  # (q, specificity, order of offer)
    for index, media_type in enumerate(offered):
        q, spec = _quality(ranges, media_type)
        if q <= 0:
            continue
        key = (q, spec, -index, media_type)
        if best is None or key[:3] > best[:3]:
            best = key
    if best is None:
        raise NotAcceptable(
            f"None of the accepted types ({header.strip()}) can be produced; this model answers "
            + ", ".join(offered)
            + "."
        )
    return best[3]


def _quality(ranges: list[tuple[str, float, int]], media_type: str) -> tuple[float, int]:
    """The q-value of the most specific range that matches ``media_type``."""
    matching = [(m, q) for m, q, _ in ranges if _matches(m, media_type)]
    if not matching:
        return 0.0, 0
    media, q = max(matching, key=lambda mq: 0 if mq[0] == "*/*" else 1 if mq[0].endswith("/*") else 2)
    specificity = 0 if media == "*/*" else 1 if media.endswith("/*") else 2
    return q, specificity
