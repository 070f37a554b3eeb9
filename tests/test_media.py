import pytest

from modelaas.errors import NotAcceptable
from modelaas.runtime.media import negotiate

OFFERED = ["application/json", "image/png"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/json, text/plain, */*", "application/json"),  # what browsers' fetch sends
        ("image/png", "image/png"),
        ("image/*", "image/png"),
        ("image/png;q=0.5, application/json;q=0.9", "application/json"),
        ("application/json;q=0.1, */*;q=0.5", "image/png"),
        ("text/html, */*;q=0.8", "application/json"),
        ("IMAGE/PNG", "image/png"),
        ("*/*, image/png", "image/png"),
    ],
)
def test_negotiation(header, expected):
    assert negotiate(header, OFFERED) == expected


def test_nothing_acceptable_names_the_offer():
    with pytest.raises(NotAcceptable, match="image/png"):
        negotiate("text/html, application/json;q=0", OFFERED)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("image/png", "image/*"),  # the offered range that covers the requested type
        ("image/jpeg;q=0.9, application/json;q=0.5", "image/*"),
        ("audio/wav", "audio/*"),
        ("*/*", "application/json"),
        ("image/png, audio/*", "image/*"),
    ],
)
def test_an_offered_range_covers_concrete_requests(header, expected):
    assert negotiate(header, ["application/json", "image/*", "audio/*"]) == expected
