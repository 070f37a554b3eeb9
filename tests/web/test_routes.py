"""The REST surface: literal DEEPaaS JSON shapes, redirects, base path, switched-off routes."""

import pytest
from starlette.routing import Route


def test_versions_document_is_literal(make_client):
    c = make_client("v2_basic")
    assert c.get("/").json() == {
        "versions": [
            {"version": "stable", "id": "v2", "links": [{"rel": "self", "type": "application/json", "href": "/v2/"}]}
        ],
        "links": [
            {"rel": "help", "type": "text/html", "href": "/api"},
            {"rel": "describedby", "type": "application/json", "href": "/swagger.json"},
        ],
    }
    assert c.get("/v2/").json() == {
        "version": "stable",
        "id": "v2",
        "links": [{"rel": "self", "type": "application/json", "href": "/v2/"}],
    }


def test_model_list_and_entry_merge_metadata(make_client):
    c = make_client("v2_basic")
    entry = {
        "id": "v2-basic",
        "name": "v2-basic",
        "links": [{"rel": "self", "href": "/v2/models/v2-basic"}],
        "Name": "v2-basic",
        "Version": "1.0",
        "description": "echoes its arguments",
    }
    assert c.get("/v2/models/").json() == {"models": [entry]}
    assert c.get("/v2/models/v2-basic/").json() == entry


def test_unknown_model_is_a_json_404_listing_models(make_client):
    c = make_client("v2_basic")
    for method, path in [("GET", "/v2/models/nope/"), ("POST", "/v2/models/nope/predict/")]:
        r = c.request(method, path)
        assert r.status_code == 404
        body = r.json()
        assert body.pop("request_id") == r.headers["x-request-id"]
        assert body == {"message": "No model named 'nope'. Installed models: v2-basic."}


def test_unknown_path_and_method_answer_json(make_client):
    c = make_client("v2_basic")
    r = c.get("/nowhere")
    assert r.status_code == 404 and r.json()["message"] == "Not Found" and r.json()["request_id"]
    r = c.put("/v2/models/")
    assert r.status_code == 405 and "message" in r.json()


@pytest.mark.parametrize(
    ("method", "path", "target"),
    [
        # /v2 and /v2/models/<m> (no slash) are Open Inference Protocol routes (tests/oip/test_rest.py)
        ("GET", "/v2/models", "/v2/models/"),
        ("POST", "/v2/models/v2-basic/predict?count=1", "/v2/models/v2-basic/predict/?count=1"),
        ("GET", "/v2/debug", "/v2/debug/"),
    ],
)
def test_missing_trailing_slash_redirects_308(make_client, method, path, target):
    c = make_client("v2_basic")
    r = c.request(method, path, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (308, target)


@pytest.mark.parametrize("path", ["/healthz/", "/openapi.json/?x=1", "/v2/models/v2-basic/train/abc/", "/v2/models"])
def test_redirects_never_reflect_the_host_header(make_client, path):
    """Finding: the Host header was reflected into slash redirects (an open redirect for
    anyone who can poison a cache or a proxy's Host)."""
    c = make_client("v2_basic")
    r = c.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code in (307, 308), r.text
    location = r.headers["location"]
    assert location.startswith("/") and not location.startswith("//") and "evil" not in location


def test_post_follows_308_keeping_method_and_body(make_client):
    c = make_client("v2_basic")
    r = c.post("/v2/models/v2-basic/predict", data={"count": "3"})
    assert r.status_code == 200 and r.json()["predictions"]["args"]["count"] == 3


def test_base_path_prefixes_everything(make_client):
    c = make_client("v2_basic", base_path="/foo/")
    assert c.get("/foo/").json()["versions"][0]["links"][0]["href"] == "/foo/v2/"
    assert c.get("/foo/").json()["links"][0]["href"] == "/foo/api"
    assert c.get("/foo/v2/models/").json()["models"][0]["links"][0]["href"] == "/foo/v2/models/v2-basic"
    assert c.post("/foo/v2/models/v2-basic/predict/", data={"count": "1"}).status_code == 200
    assert c.get("/foo/healthz").status_code == 200
    assert c.get("/v2/models/").status_code == 404


def test_switched_off_endpoints_do_not_exist(make_client):
    c = make_client("v2_basic", predict_endpoint=False, doc_endpoint=False)
    assert c.post("/v2/models/v2-basic/predict/", data={"count": "1"}).status_code == 404
    assert c.post("/v2/models/v2-basic/predict", data={"count": "1"}, follow_redirects=False).status_code == 404
    for path in ("/api", "/openapi.json", "/swagger.json", "/ui"):
        assert c.get(path).status_code == 404, path
    assert c.get("/").json()["links"] == []


def test_debug_endpoint(make_client):
    assert make_client("v2_basic").get("/v2/debug/").status_code == 204
    c = make_client("v2_raises", debug_endpoint=True)
    c.post("/v2/models/v2-raises/predict/")
    r = c.get("/v2/debug/")
    assert r.status_code == 200 and "the model broke on purpose" in r.text


def test_health_and_readiness(make_client):
    c = make_client("v2_basic")
    assert c.get("/healthz").json() == {"status": "ok"}
    assert c.get("/readyz").json() == {"status": "ready", "models": ["v2-basic"]}


def test_docs_pages(make_client):
    c = make_client("v2_basic")
    assert c.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert c.get("/swagger.json").json()["swagger"] == "2.0"  # what DEEPaaS tooling reads there
    assert "swagger-ui-bundle.js" in c.get("/api").text
    r = c.get("/ui")
    assert r.status_code == 200 and "/ui/static/ui.js" in r.text


def test_v1_routes_serve_v1_models(make_client):
    c = make_client("v1_seed", "v2_basic", pass_unresolved_urls=True)  # no DNS here: the model resolves
    versions = c.get("/").json()["versions"]
    assert [v["id"] for v in versions] == ["v2", "v1"]
    assert c.get("/v1/").json() == {
        "version": "deprecated",
        "id": "v1",
        "links": [{"rel": "self", "type": "application/json", "href": "/v1/"}],
    }
    listing = c.get("/v1/models/").json()
    assert [m["id"] for m in listing["models"]] == ["v1-seed"]
    assert listing["models"][0]["links"] == [{"rel": "self", "href": "/v1/models/v1-seed"}]
    assert c.get("/v1/models/v1-seed").json()["Summary"] == "a v1 model"
    assert c.get("/v1/models/v2-basic").status_code == 404
    r = c.post("/v1/models/v1-seed/predict", files={"data": ("a.txt", b"12345")})
    assert r.status_code == 200 and r.json() == {"size": 10, "kwargs": {"scale": "2"}}
    r = c.post("/v1/models/v1-seed/predict?url=http://example.org/x&scale=3")
    assert r.json() == {"url": "http://example.org/x", "kwargs": {"scale": "3"}}


def test_no_v1_routes_without_v1_models(make_client):
    c = make_client("v2_basic")
    assert c.get("/v1/").status_code == 404
    assert [v["id"] for v in c.get("/").json()["versions"]] == ["v2"]


def _concrete(template):
    """A request path for a route template (the model is the trainer; any job, asset or file name)."""
    for name, value in (("{model}", "trainer"), ("{job}", "j1"), ("{path:path}", "a/b.txt"), ("{asset}", "x.js")):
        template = template.replace(name, value)
    return template


def test_405_allow_lists_every_method_of_the_path(make_client):
    c = make_client("trainer", "v1_seed", debug_endpoint=True)
    served, route_of = {}, {}
    for route in c.app.routes:
        if isinstance(route, Route):
            served.setdefault(route.path, set()).update(route.methods or ())
            route_of.setdefault(route.path, route)
    assert {"GET", "HEAD", "POST"} <= served["/v2/models/{model}/train/"]
    for template, methods in served.items():
        path = _concrete(template)
        for method in {"GET", "POST", "PUT", "DELETE", "PATCH"} - methods:
            r = c.request(method, path, follow_redirects=False)
            assert r.status_code == 405, (method, path, r.status_code)
            assert set(r.headers["allow"].split(", ")) == methods, (method, path)
            key = "error" if getattr(route_of[template], "oip", False) else "message"  # OIP paths: their shape
            assert r.json()[key] == "Method Not Allowed", (method, path)


def test_repeated_slashes_redirect_to_the_served_path(make_client):
    c = make_client("v2_basic")
    base = "http://testserver"  # absolute URLs: the client sends these paths as they are
    # the DEEPaaS web UI asks for f"{api_url}/{model path}/" with api_url ending in a slash
    for method, path, target in [
        ("GET", "///v2/models/v2-basic/", "/v2/models/v2-basic/"),
        ("GET", "/v2//models/v2-basic/?x=1", "/v2/models/v2-basic/?x=1"),
        ("POST", "//v2/models/v2-basic//predict/", "/v2/models/v2-basic/predict/"),
        ("POST", "/v2/models/v2-basic//predict", "/v2/models/v2-basic/predict"),  # then 308 to .../predict/
    ]:
        r = c.request(method, base + path, follow_redirects=False)
        assert r.status_code == 308, (path, r.status_code)
        assert r.headers["location"] == target
    assert c.get(base + "///v2/models/v2-basic/").json()["name"] == "v2-basic"
    assert c.get(base + "//nowhere//", follow_redirects=False).status_code == 404  # nothing is served there
