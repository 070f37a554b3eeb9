"""An argument declared with an alias (``top-k``) is found under the model's keyword for it
(``top_k``) too, on the predict and train routes; both at once is refused; undeclared
arguments are ignored, as DEEPaaS ignores them."""

from __future__ import annotations

PREDICT = "/v2/models/aliased/predict/"
TRAIN = "/v2/models/aliased/train/"


def test_predict_takes_the_alias_or_the_keyword(make_client):
    c = make_client("aliased:Aliased")
    for data in ({"top-k": "5"}, {"top_k": "5"}):
        for where in ("data", "params"):  # a form field or the query string
            r = c.post(PREDICT, **{where: data})
            assert r.status_code == 200, r.text
            assert r.json()["predictions"]["top_k"] == 5
    r = c.post(PREDICT, json={"top_k": 6})
    assert r.json()["predictions"]["top_k"] == 6
    r = c.post(PREDICT, files={"upload_file": ("a.bin", b"1234")})
    assert r.json()["predictions"]["size"] == 4
    r = c.post(PREDICT, data={"top_k": "11"})
    assert r.status_code == 422 and list(r.json()) == ["top-k"]  # errors name what the model declared


def test_both_names_at_once_is_400_naming_both(make_client):
    c = make_client("aliased:Aliased")
    r = c.post(PREDICT, data={"top-k": "5", "top_k": "6"})
    assert r.status_code == 400
    assert r.json()["message"] == "Arguments 'top-k' and 'top_k' are the same argument: give it once."


def test_a_keyword_that_is_another_arguments_alias_is_that_argument(make_client):
    c = make_client("aliased:Aliased")
    answer = c.post(PREDICT, data={"shadow": "7"}).json()["predictions"]
    assert (answer["shadow"], answer["other"]) == (1, 7)


def test_train_takes_the_keyword(make_client):
    c = make_client("aliased:Aliased")
    for data in ({"num-epochs": "4"}, {"num_epochs": "4"}):
        r = c.post(TRAIN, data=data)
        assert r.status_code == 200, r.text
        assert r.json()["args"] == {"num_epochs": 4}
    assert c.post(TRAIN, data={"num_epochs": "9"}).status_code == 422


def test_undeclared_arguments_are_ignored(make_client):
    c = make_client("aliased:Aliased")
    r = c.post(PREDICT, data={"top-k": "2", "no_such": "x"})
    assert r.status_code == 200 and r.json()["predictions"]["top_k"] == 2
