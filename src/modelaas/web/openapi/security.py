"""Access control in the OpenAPI document, as :mod:`modelaas.web.middleware` enforces it.

Only when tokens are configured: the two security schemes (a bearer token; the
``access_token`` query argument, which the training events route alone accepts, for
EventSource), and on each operation the middleware guards (judged, as the middleware
judges, by what the route serving it declares: :func:`~modelaas.web.access.requirement`)
its ``security``, the 401 and (where a scope is needed) 403 answers, and a sentence
naming the scope. Public operations get nothing; without tokens the document has no
security at all.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from modelaas.runtime.media import JSON_MEDIA
from modelaas.tokens import ADMIN, ANY_TOKEN, PUBLIC, TokenTable
from modelaas.web.access import requirement
from modelaas.web.openapi.models import ref
from modelaas.web.state import AppState

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "accessTokenQuery": {"type": "apiKey", "in": "query", "name": "access_token"},
}
ACCESS_HEADERS: dict[str, Any] = {
    "WWW-Authenticate": {
        "description": 'The authentication scheme to use: `Bearer realm="modelaas"`.',
        "required": True,
        "schema": {"type": "string"},
    }
}
ACCESS_RESPONSES: dict[str, Any] = {
    "401": {
        "description": "No access token, an unknown one, or an Authorization header that is not 'Bearer <token>'.",
        "headers": {"WWW-Authenticate": {"$ref": "#/components/headers/WWW-Authenticate"}},
        "content": {JSON_MEDIA: {"schema": ref("Error")}},
    },
    "403": {
        "description": "The access token lacks the scope this operation needs.",
        "content": {JSON_MEDIA: {"schema": ref("Error")}},
    },
}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def tokens_of(st: AppState) -> TokenTable:
    """The app's token table."""
    return st.tokens


def secure(paths: dict[str, Any], *, routes: list[BaseRoute]) -> None:
    """Add security, 401/403 answers and the scope sentence to every guarded operation, in place."""
    for path, item in paths.items():
        need, events = requirement(path, routes)  # what the route serving it declares
        if need == PUBLIC:
            continue
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            op["security"] = [{"bearer": []}, *([{"accessTokenQuery": []}] if events else [])]
            responses = op["responses"]
            answers = {"401": {"$ref": "#/components/responses/401"}}
            if need != ANY_TOKEN:
                answers["403"] = {"$ref": "#/components/responses/403"}
            # after the success answers, before the error ones
            ok = {code: r for code, r in responses.items() if code.startswith("2")}
            rest = {code: r for code, r in responses.items() if code not in ok}
            op["responses"] = {**ok, **answers, **rest}
            sentence = access_sentence(need, events=events)
            op["description"] = f"{op['description']} {sentence}" if op.get("description") else sentence


def access_sentence(need: str, *, events: bool = False) -> str:
    """What a client must send to use an operation that needs ``need``."""
    how = "`Authorization: Bearer <token>`"
    if events:
        how += " or, for EventSource (which cannot send headers), the query argument `access_token=<token>`"
    if need == ANY_TOKEN:
        return f"Needs an access token (any scope): {how}."
    if need == ADMIN:
        return f"Needs an access token with the `{ADMIN}` scope: {how}; other tokens answer 403."
    return f"Needs an access token with the `{need}` scope (or `{ADMIN}`): {how}; other tokens answer 403."
