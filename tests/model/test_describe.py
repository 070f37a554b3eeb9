"""Argument descriptions are read in another process: get_*_args() side effects never reach the model."""

from __future__ import annotations

import logging
import os
import sys
import threading

import pytest

from modelaas.errors import ModelLoadError
from modelaas.model.describe import read_descriptions
from support import load_fixture


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.pid = os.getpid()

    def get_predict_args(self):
        self.calls.append("get_predict_args")
        return {"x": {"default": "1"}}

    def get_train_args(self):
        raise NotImplementedError


def test_the_methods_run_elsewhere_and_their_values_come_back():
    rec = Recorder()
    out = read_descriptions(rec, ["get_predict_args", "get_train_args", "get_test_args"], model="rec")
    assert rec.calls == []  # the side effect happened in the child only
    assert out["get_predict_args"].value == {"x": {"default": "1"}}
    assert out["get_train_args"].not_implemented
    assert "get_test_args" not in out  # the target has no such method


def test_the_probe_model_sees_only_warm(make_client):
    import probe_calls

    probe_calls.CALLS.clear()
    client = make_client("probe_calls")
    answer = client.post("/v2/models/probe-calls/predict/", data={"n": "3"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"]["calls"] == ["warm"]
    assert answer.json()["predictions"]["args"] == {"n": 3, "box": {"w": 2}}
    # the copied description still validates: the lambda and the nested schema work
    assert client.post("/v2/models/probe-calls/predict/", data={"n": "0"}).status_code == 422


def test_a_failing_description_names_model_method_and_traceback():
    with pytest.raises(ModelLoadError, match="'broken' failed in get_predict_args") as err:
        load_fixture("broken_args", "broken", "v2")
    assert "Traceback" in (err.value.traceback_text or "")


def test_what_cannot_be_copied_runs_here_with_a_warning(caplog):
    class Unsendable:
        calls: list[str] = []

        def get_predict_args(self):
            self.calls.append("get_predict_args")
            return {"lock": threading.Lock()}

    target = Unsendable()
    with caplog.at_level(logging.WARNING, logger="modelaas.model"):
        out = read_descriptions(target, ["get_predict_args"], model="unsendable")
    assert target.calls == ["get_predict_args"]  # ran here, the second time
    assert isinstance(out["get_predict_args"].value["lock"], type(threading.Lock()))
    assert "cannot be copied from a separate process" in caplog.text


def test_a_child_that_dies_is_a_load_error():
    class Dies:
        def get_predict_args(self):
            os._exit(7)

    with pytest.raises(ModelLoadError, match=r"'dies'.*ended \(exit code 7\) without an answer"):
        read_descriptions(Dies(), ["get_predict_args"], model="dies")


def test_what_the_child_prints_is_printed_once(capfd):
    class Talks:
        def get_predict_args(self):
            print("found 3 checkpoints")
            return {}

    print("before", end=" ")
    sys.stdout.flush()
    read_descriptions(Talks(), ["get_predict_args"], model="talks")
    out = capfd.readouterr().out
    assert out.count("before") == 1 and out.count("found 3 checkpoints") == 1


def test_without_cloudpickle_plain_values_still_come_back(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "cloudpickle", None)  # as in an environment without it

    class Model:
        def get_predict_args(self):
            return {"x": {"default": "1"}}

        def get_train_args(self):
            return {"f": lambda: 1}  # only cloudpickle copies a lambda

    with caplog.at_level(logging.WARNING, logger="modelaas.model"):
        out = read_descriptions(Model(), ["get_predict_args", "get_train_args"], model="m")
    assert out["get_predict_args"].value == {"x": {"default": "1"}}
    assert out["get_train_args"].value["f"]() == 1  # ran here instead, and said so
    assert "what get_train_args() returned cannot be copied" in caplog.text
