"""Models whose ``get_predict_args()``/``get_train_args()`` change module state (corpus package compat-arg-effects).

DEEPaaS 2.6.0 calls ``get_*_args()`` in its main process only (to build its routes), and
``warm()``, ``predict`` and ``train`` in a worker process that never calls them. Real models
rely on it without knowing.

* compat-saved-config fills the ``choices`` of its configuration with the checkpoint folders
  found on disk in ``get_*_args()``; ``warm()`` checks the configuration saved beside the
  checkpoint against those choices: the name it was trained under is a shipped choice but not
  a folder on disk (the folder was renamed), so ``warm()`` works only in a process that never
  called ``get_*_args()``. Equal under both servers: predict answers 200 with the whole JSON
  answer expected below; a training ends ``done`` with that state as its output.
* compat-call-probe records which of its functions ran in its process; predict and train
  answer the ones that ran before them, predict and train left out. Equal under both: predict
  answers 200 with exactly ``["warm"]``; a training ends ``done`` with exactly ``["warm"]``.
"""

from __future__ import annotations

import httpx
import pytest

from support_deepaas import ask_both, outcome, predict_url, train_both

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SAVED_CONFIG = "compat-saved-config"
PROBE = "compat-call-probe"
STATE = {
    "asked": "downloaded-model",  # the folder on disk, the default of the checkpoint argument
    "loaded": {"folder": "downloaded-model", "config": {"checkpoint": "cat-dog-v1", "threshold": 0.7}},
    "threshold": 0.7,
}


CASES = [pytest.param(SAVED_CONFIG, STATE, id="saved-config"), pytest.param(PROBE, ["warm"], id="call-probe")]


@pytest.mark.parametrize(("model", "expected"), CASES)
def test_predict_runs_where_get_args_did_not(serve, model, expected):
    answers = ask_both(serve(model), lambda base: httpx.post(predict_url(base, model), timeout=60))
    for server, answer in zip(("deepaas", "modelaas"), answers, strict=True):
        assert answer.status_code == 200, f"{server}: {answer.text}"
        assert answer.json() == {"status": "OK", "predictions": expected}, server


@pytest.mark.parametrize(("model", "expected"), CASES)
def test_train_runs_where_get_args_did_not(serve, model, expected):
    for server, record in zip(("deepaas", "modelaas"), train_both(serve(model), model, timeout=60), strict=True):
        assert record["status"] == "done", f"{server}: {outcome(record)}"
        assert record["result"]["output"] == expected, server
