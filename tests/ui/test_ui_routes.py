"""The UI's routes, without a browser: the page, its assets, and ``GET /`` negotiation."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from modelaas.web.ui import ASSETS, prefers_html

DEMO = "modelaas.model.demo:DemoModel"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
STATIC = resources.files("modelaas.web").joinpath("static").joinpath("ui")


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("application/json, text/plain, */*", False),
        ("text/html, application/json", False),  # a tie: JSON, as DEEPaaS clients expect
        ("text/html;q=0.5, application/json", False),
        ("image/png", False),  # neither: the versions document, as before
        ("text/html", True),
        (BROWSER_ACCEPT, True),
        ("text/*, application/json;q=0.5", True),
    ],
)
def test_prefers_html(accept, html):
    assert prefers_html(accept) is html


def test_root_answers_html_to_browsers_and_json_to_the_rest(make_client):
    c = make_client(DEMO, model_name="modelaas-demo")
    for accept in (None, "*/*", "application/json"):
        r = c.get("/", headers={"Accept": accept} if accept else {})
        assert r.headers["content-type"] == "application/json", accept
        assert [v["id"] for v in r.json()["versions"]] == ["v2"]
        assert r.headers["vary"] == "Accept"
    r = c.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["vary"] == "Accept"
    assert '<script type="module" src="/ui/static/ui.js">' in r.text


def test_ui_page(make_client):
    c = make_client(DEMO, model_name="modelaas-demo")
    r = c.get("/ui")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<meta name="modelaas-base" content="">' in r.text
    assert "<title>modelaas-demo - modelaas</title>" in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "<script>" not in r.text and " style=" not in r.text  # nothing inline: the policy allows none
    assert not re.search(r"(src|href)=\"(https?:)?//", r.text)  # nothing from elsewhere
    r = c.get("/ui/", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (308, "/ui")


def test_assets(make_client):
    c = make_client(DEMO, model_name="modelaas-demo")
    for name, media_type in ASSETS.items():
        r = c.get(f"/ui/static/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"] == media_type
        assert r.headers["x-content-type-options"] == "nosniff"
        assert b"http://" not in r.content.replace(b"http://www.w3.org/2000/svg", b"")
        assert b"https://" not in r.content
    for name in ("index.html", "nope.js", "..%2Fui.py", "%2e%2e%2f%2e%2e%2fui.py"):
        r = c.get(f"/ui/static/{name}")
        assert r.status_code == 404, name
        assert r.json()["message"]


def test_every_shipped_file_is_served_and_every_import_is_shipped():
    shipped = {p.name for p in STATIC.iterdir()}
    assert shipped == {*ASSETS, "index.html"}
    for name in ASSETS:
        if name.endswith(".js"):
            text = STATIC.joinpath(name).read_text(encoding="utf-8")
            for imported in re.findall(r"""from\s+["']\./([^"']+)["']""", text):
                assert imported in ASSETS, f"{name} imports {imported}, which is not served"


def test_base_path(make_client):
    c = make_client(DEMO, model_name="modelaas-demo", base_path="/foo/")
    r = c.get("/foo/ui")
    assert '<meta name="modelaas-base" content="/foo">' in r.text
    assert 'src="/foo/ui/static/ui.js"' in r.text and 'href="/foo/ui/static/ui.css"' in r.text
    assert c.get("/foo/ui/static/ui.js").status_code == 200
    assert c.get("/foo/", headers={"Accept": BROWSER_ACCEPT}).text == r.text
    assert c.get("/ui").status_code == 404


def test_base_path_is_escaped_in_the_page():
    from modelaas.web.ui import render_page

    page = render_page('/a"b<c>', "x<y>")
    assert 'content="/a&quot;b&lt;c&gt;"' in page and "<title>x&lt;y&gt;</title>" in page


def test_without_the_doc_endpoint_there_is_no_ui(make_client):
    c = make_client(DEMO, model_name="modelaas-demo", doc_endpoint=False)
    assert c.get("/ui").status_code == 404
    assert c.get("/ui/static/ui.js").status_code == 404
    r = c.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert r.headers["content-type"] == "application/json"
