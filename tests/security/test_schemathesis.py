"""Schemathesis over the served OpenAPI document: every operation, valid and invalid inputs.

For each model a real server runs on loopback; each operation gets at most ``EXAMPLES``
generated requests per mode (valid, then invalid input; ``derandomize`` makes the examples
a function of this file), and every answer is checked: no server error, status codes,
content types, headers and bodies as documented, documented-valid input accepted and
documented-invalid input refused.

A 5xx is allowed only when it is the model's own failure (``Model '<m>' failed in ...``) on
a fixture model whose code fails on some valid input; the built-in demo model must never
answer 5xx. ``KNOWN`` lists disagreements with the document that wait for a fix elsewhere;
each is reported when seen, and any other one fails the test.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.failures import Failure, FailureGroup  # noqa: E402
from schemathesis.specs.openapi import checks as openapi_checks  # noqa: E402

pytestmark = pytest.mark.slow

EXAMPLES = 25
ADMIN = "schemathesis-admin-token-0123456789"
DEMO = "modelaas-demo"
DOCUMENT_CHECKS = [
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.positive_data_acceptance,
    openapi_checks.negative_data_rejection,
]

# (model, "METHOD path", failure code) -> what is wrong and where it gets fixed
KNOWN: dict[tuple[str, str, str], str] = {}

def _oip_count_rule(key: tuple[str, str, str]) -> bool:
    """OIP infer requests the protocol refuses though JSON Schema cannot: ``data`` that does not hold
    the product of ``shape`` elements, an octet-stream body without a JSON inference header. They
    are answered 400 naming the problem, by the protocol's rules (the operation's description,
    docs/oip.md): not a disagreement with the document."""
    _, operation, code = key
    return operation.startswith("POST ") and operation.endswith("/infer") and code == "ST202"


_SERVED = {
    "demo": (DEMO, ()),
    "v2_basic": ("v2-basic", ("--model", "v2_basic", "--model-name", "v2-basic")),
    "typed": ("typed-basic", ("--model", "typed_basic:Classifier", "--model-name", "typed-basic")),
    "v1_seed": ("v1-seed", ("--model", "v1_seed", "--model-name", "v1-seed")),
    "trainer": ("trainer", ("--model", "trainer:Trainer", "--model-name", "trainer")),
}
# every model without tokens; the ones with train routes (and the v1 routes) with tokens on too (sending the
# admin token)
CASES = [pytest.param(*served, False, id=f"{key}-open") for key, served in _SERVED.items()] + [
    pytest.param(*_SERVED[key], True, id=f"{key}-tokens") for key in ("demo", "trainer", "v1_seed")
]


class Findings:
    def __init__(self, model: str) -> None:
        self.model = model
        self.requests = 0
        self.server_errors: list[str] = []
        self.model_errors = 0
        self.failures: dict[tuple[str, str, str], list[str]] = {}

    def model_failed(self, name: str, response: Any) -> bool:
        """A 500 that is the fixture model's own exception (never allowed for the demo).

        The DEEPaaS 1.x ``PUT .../train`` waits for the training and answers a failed one
        with 500 and the training's error.
        """
        if self.model == DEMO or response.status_code != 500:
            return False
        try:
            message = response.json().get("message", "")
        except ValueError:
            return False
        if name.startswith("PUT /v1/") and name.endswith("/train"):
            return isinstance(message, str)
        return isinstance(message, str) and message.startswith(f"Model {self.model!r} failed in ")


def _text(response: Any) -> str:
    try:
        return str(response.text[:300])
    except UnicodeDecodeError:
        return repr(response.content[:60])


def _wire_indistinguishable(case: Any, failure: Failure, sent_headers: dict[str, str]) -> bool:
    """An 'invalid input accepted' whose invalid part did not survive the trip to the server.

    * On the wire every form and query value is text, and one value of a list is a list of
      one: ``{"text": 123, "values": 7}`` is sent exactly like ``{"text": "123", "values": [7]}``;
      and every multipart part is bytes, so a ``format: binary`` file cannot be "not binary".
    * A header left out on purpose, that this test sends on every request (the token).
    * An undeclared query parameter: OpenAPI cannot forbid one, and modelaas ignores undeclared
      arguments wherever they come from (as DEEPaaS does), so it is not an invalid input.
    """
    if failure.code != "ST201":
        return False
    form = case.media_type in (None, "multipart/form-data", "application/x-www-form-urlencoded")
    violations = [line for line in failure.message.splitlines() if "violates `" in line]

    def harmless(line: str) -> bool:
        if "query: violates `additionalProperties`" in line:
            return True
        if "header: violates `required`" in line:
            return any(f"(was {name})" in line for name in sent_headers)
        if "violates `type`" in line:
            return form
        if "violates `format`" in line and form:
            return _schema_at(case, line).get("format") == "binary"
        return False

    return bool(violations) and all(harmless(line) for line in violations)


def _schema_at(case: Any, line: str) -> dict[str, Any]:
    """The request body schema at the JSON pointer a violation line names (``at /properties/x/items``)."""
    if " at /" not in line:
        return {}
    pointer = line.split(" at /", 1)[1].split(" ", 1)[0]
    for body in case.operation.body:
        if body.media_type == case.media_type:
            node: Any = body.definition.get("schema", {})
            for part in pointer.split("/"):
                node = node.get(part, {}) if isinstance(node, dict) else {}
            return node if isinstance(node, dict) else {}
    return {}


def _destination_refused(failure: Failure, response: Any) -> bool:
    """A valid URL refused for where it points (loopback, private...) or for a host that does not resolve
    (generated names): the document's 400, not a schema matter."""
    if failure.code != "ST202" or response.status_code != 400:
        return False
    message = response.json().get("message", "")
    pointed = message.startswith("Argument 'url': Refused to fetch") and " points to " in message
    return pointed or (message.startswith("Argument 'url': ") and "cannot resolve" in message)


def _fuzz(operation: Any, url: str, headers: dict[str, str], found: Findings, **fixed: Any) -> None:
    name = f"{operation.method.upper()} {operation.path}"
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=operation.as_strategy(generation_mode=mode, **fixed))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case: Any) -> None:
            response = case.call(base_url=url, headers=headers, timeout=30)
            found.requests += 1
            sent = f"{case.as_curl_command(headers=headers)[:800]}\n  -> {response.status_code} {_text(response)}"
            checks = list(DOCUMENT_CHECKS)
            if found.model_failed(name, response):
                found.model_errors += 1
            else:
                checks.append(not_a_server_error)
                if response.status_code >= 500:
                    found.server_errors.append(f"{name}: {sent}")
            try:
                case.validate_response(response, checks=checks, headers=headers)
            except (Failure, FailureGroup) as exc:
                for failure in exc.exceptions if isinstance(exc, FailureGroup) else [exc]:
                    if _wire_indistinguishable(case, failure, headers) or _destination_refused(failure, response):
                        continue
                    key = (found.model, name, failure.code)
                    found.failures.setdefault(key, []).append(f"{failure.title}: {failure.message.strip()}\n{sent}")

        try:
            run()
        except Unsatisfiable:  # e.g. no invalid input exists for an operation without parameters
            pass


def _finished_job(url: str, model: str, headers: dict[str, str]) -> str:
    r = httpx.post(f"{url}/v2/models/{model}/train/", data={"epochs": "1"}, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    job = str(r.json()["uuid"])
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}/v2/models/{model}/train/{job}", headers=headers, timeout=30).json()["status"] != "done":
        assert time.monotonic() < deadline, "the training did not finish"
        time.sleep(0.1)
    return job


@pytest.mark.parametrize(("model", "args", "tokens"), CASES)
def test_every_operation_keeps_to_the_document(server, model, args, tokens):
    env = {"MODELAAS_TOKENS": f"admin {ADMIN}"} if tokens else None
    headers = {"Authorization": f"Bearer {ADMIN}"} if tokens else {}
    srv = server(*args, "--train-workers", "1", "--train-queue", "4", env=env)
    schema = schemathesis.openapi.from_url(srv.url + "/openapi.json", headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    job = _finished_job(srv.url, model, headers) if any("{job}" in op.path for op in operations) else None

    found = Findings(model)
    started = time.monotonic()
    for operation in operations:
        _fuzz(operation, srv.url, headers, found)
        if job is not None and "{job}" in operation.path:  # once more on a real job
            _fuzz(operation, srv.url, headers, found, path_parameters={"job": job})

    print(
        f"\n{model} ({'tokens' if tokens else 'open'}): {len(operations)} operations, {found.requests} requests "
        f"in {time.monotonic() - started:.1f} s; model's own 500s: {found.model_errors}; "
        f"known disagreements seen: {sorted(k[2] for k in found.failures if k in KNOWN)}"
    )
    assert found.requests >= len(operations)
    assert not found.server_errors, "server errors:\n" + "\n".join(found.server_errors[:3])
    unexpected = {
        key: texts for key, texts in found.failures.items() if key not in KNOWN and not _oip_count_rule(key)
    }
    assert not unexpected, "answers that break the document:\n" + "\n\n".join(
        f"{op} ({code}):\n" + "\n".join(texts[:2]) for (_, op, code), texts in unexpected.items()
    )
