"""The CLI running models in its own process: options from the IR, JSON on stdout, exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import modelaas_in_a_terminal

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def run(*args: str, data_dir: Path, input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(MODELS), "MODELAAS_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "modelaas", *args], env=env, capture_output=True, timeout=120, input=input_bytes
    )


@pytest.fixture
def cli(tmp_path):
    return lambda *args: run(*args, data_dir=tmp_path / "data")


def test_help_lists_every_argument_with_type_choices_and_default(cli):
    r = cli("predict", "--model", "v2_basic", "v2-basic", "--help")
    assert r.returncode == 0
    text = r.stdout.decode()
    for needle in (
        "--count INT",
        "required",
        "--level INT",
        "1 <= value <= 10",
        "--color [red|green]",
        "default: red",
        "--values FLOAT",
        "repeat the option",
        "--renamed-arg",
        "Some text",
    ):
        assert needle in text, needle


@pytest.mark.parametrize(
    ("command", "model", "name"), [("predict", "v2_basic", "v2-basic"), ("train", "trainer:Trainer", "trainer")]
)
def test_help_lists_the_model_given_with_model_not_the_installed_ones(cli, command, model, name):
    for args in (["--model", model, "--help"], [f"--model={model}", "-h"]):
        r = cli(command, *args)
        assert r.returncode == 0, r.stderr
        models = r.stdout.decode().split("Models:", 1)[1]
        assert f"modelaas {command} {name} --help" in models and "modelaas-demo" not in models


def test_predict_prints_json_only_on_stdout(cli):
    r = cli("predict", "--model", "v2_basic", "v2-basic", "--count", "3", "--values", "1", "--values", "2.5")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["predictions"]["args"]["count"] == 3 and out["predictions"]["args"]["values"] == [1.0, 2.5]


def test_deepaas_cli_style_without_model_name_and_output_file(cli, tmp_path):
    target = tmp_path / "out.json"
    r = cli("predict", "--model", "v2_basic", "--count", "2", "--deepaas_method_output", str(target))
    assert r.returncode == 0, r.stderr
    assert json.loads(target.read_text())["predictions"]["args"]["count"] == 2 and r.stdout == b""


def test_bad_arguments_name_the_option_and_exit_2(cli):
    r = cli("predict", "--model", "v2_basic", "v2-basic", "--level", "11")
    assert r.returncode == 2
    err = r.stderr.decode()
    assert "--count: Missing data for required field." in err and "--level: Must be greater" in err
    r = cli("predict", "--model", "v2_basic", "v2-basic", "--count", "x")
    assert r.returncode == 2 and "'x' is not a valid integer" in r.stderr.decode()


def test_unknown_model_lists_installed_ones(cli):
    r = cli("predict", "--model", "v2_basic", "nope")
    assert r.returncode == 2 and "No model named 'nope'. Installed models: v2-basic." in r.stderr.decode()


def test_v1_predict_file_with_a_local_path(cli, tmp_path):
    f = tmp_path / "in.txt"
    f.write_bytes(b"12345")
    r = cli("predict", "--model", "v1_seed", "--data", str(f), "--scale", "3")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["predictions"] == {"size": 15, "kwargs": {"scale": "3"}}


def test_typed_file_argument_and_binary_answer(cli, tmp_path):
    r = cli("predict", "--model", "v2_accept", "--accept", "image/png", "--output", str(tmp_path / "a.png"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")
    f = tmp_path / "photo.jpg"
    f.write_bytes(b"\xff\xd8abc")
    r = cli("predict", "--model", "typed_basic:Classifier", "--features", "1", "--features", "2", "--upload", str(f))
    assert json.loads(r.stdout) == {"label": "fast-1-1", "score": 3.0, "size": 5}


def test_model_errors_exit_non_zero_with_the_message(cli):
    r = cli("predict", "--model", "v2_raises")
    assert r.returncode == 1 and "the model broke on purpose" in r.stderr.decode()


@pytest.mark.parametrize(
    ("args", "source", "summary"),
    [
        (["predict", "--model", "v2_raises"], "v2_raises.py", "Model 'v2-raises' failed in predict: the model broke"),
        (
            ["train", "--model", "trainer:Trainer", "--epochs", "1", "--fail", "true"],
            "trainer.py",
            "Model 'trainer' failed in train: training diverged",
        ),
    ],
)
def test_a_failing_model_shows_its_own_traceback_once_and_the_summary_last(cli, args, source, summary):
    r = cli(*args)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert err.count("Traceback (most recent call last)") == 1, err
    assert f'{source}", line' in err and "ValueError: " in err  # the model's frame and exception
    assert "modelaas/runtime" not in err and "modelaas/cli" not in err  # not modelaas's own frames
    assert err.rstrip().splitlines()[-1].startswith(f"Error: {summary}")


def test_train_in_process_keeps_stdout_clean(cli, tmp_path):
    out = tmp_path / "artefacts"
    r = cli("train", "--model", "trainer:Trainer", "--epochs", "2", "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["epochs"] == 2
    err = r.stderr.decode()
    assert "starting" in err and "from a subprocess" in err and "epoch 2" in err
    assert (out / "weights.txt").read_text() == "w=1\n"


def test_train_v1_gets_strings(cli):
    r = cli("train", "--model", "v1_seed", "--epochs", "5")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"lr_step_schedule": [0.7, 0.9], "use_early_stopping": False, "epochs": 5}


def test_a_training_without_artefacts_leaves_no_empty_run_folder(cli, tmp_path):
    r = cli("train", "--model", "v1_seed", "--epochs", "5")  # writes no file
    assert r.returncode == 0, r.stderr
    assert b"Artefacts are in" not in r.stderr
    runs = tmp_path / "data" / "runs"
    assert not runs.exists() or list(runs.iterdir()) == []
    r = cli("train", "--model", "trainer:Trainer", "--epochs", "1")  # writes weights.txt
    assert r.returncode == 0, r.stderr
    [folder] = runs.iterdir()
    assert f"Artefacts are in {folder}".encode() in r.stderr and (folder / "weights.txt").is_file()


def test_metadata_warm_and_models(cli):
    r = cli("get_metadata", "--model", "v2_basic")
    assert json.loads(r.stdout)["Version"] == "1.0"
    r = cli("warm", "--model", "v2_class:Model")
    assert r.returncode == 0 and "is warm" in r.stderr.decode()
    r = cli("models", "--json")
    assert r.returncode == 0 and isinstance(json.loads(r.stdout), list)
    r = cli("warm", "--model", "broken_import")
    assert r.returncode == 3 and "a_module_that_does_not_exist_anywhere" in r.stderr.decode()


def test_url_inputs_are_fetched_with_the_same_guards(cli, tmp_path):
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"\x89PNG fake image"
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/pics/cat.png"
    try:
        refused = cli("predict", "--model", "url_inputs:Image", "--image", url)
        assert refused.returncode == 2 and "loopback" in refused.stderr.decode()
        env = {
            **os.environ,
            "PYTHONPATH": str(MODELS),
            "MODELAAS_DATA_DIR": str(tmp_path / "d"),
            "MODELAAS_FETCH_ALLOW_NETWORKS": "127.0.0.1/32",
        }
        r = subprocess.run(
            [sys.executable, "-m", "modelaas", "predict", "--model", "url_inputs:Image", "--image", url],
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)["predictions"]
        assert (out["size"], out["content_type"], out["original_filename"]) == (15, "image/png", "cat.png")
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("command", [["predict"], ["train"], ["warm"]])
def test_a_failing_warm_is_the_models_traceback_one_error_line_and_exit_3(cli, command):
    args = [*command, "--model", "warm_fails:WarmFails"]
    if command != ["warm"]:
        args.append("warm-fails")
    r = cli(*args)
    err = r.stderr.decode()
    assert r.returncode == 3, err
    assert "Traceback" in err and "checkpoint file is corrupt" in err
    assert err.rstrip().splitlines()[-1] == "Error: Model 'warm-fails' failed in warm(): checkpoint file is corrupt"


def test_the_cli_checks_v1_url_destinations_as_the_server_does(cli):
    r = cli("predict", "--model", "url_v1", "url-v1", "--url", "http://127.0.0.1:9/")
    assert r.returncode == 2, r.stderr.decode()
    assert "Refused to fetch" in r.stderr.decode() and "loopback" in r.stderr.decode()


def test_stdout_holds_only_the_result_whatever_the_model_prints(cli):
    r = cli("predict", "--model", "talkative", "talkative", "--n", "3")
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout) == {"status": "OK", "predictions": {"n": 3}}  # pipes to jq unharmed
    err = r.stderr.decode()
    for line in ("imported", "describing", "warm", "predicting"):
        assert f"talkative: {line}" in err


def test_an_alias_option_takes_the_models_keyword_too(cli):
    for flag in ("--top-k", "--top_k"):
        r = cli("predict", "--model", "aliased:Aliased", "aliased", flag, "4")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["predictions"]["top_k"] == 4
    r = cli("predict", "--model", "aliased:Aliased", "aliased", "--help")
    assert "--top-k, --top_k INT" in r.stdout.decode()
    r = cli("predict", "--model", "aliased:Aliased", "aliased", "--no_such", "4")
    assert r.returncode == 2 and "--no_such" in r.stderr.decode()  # an unknown option is refused

def test_log_lines_of_a_local_training_at_a_terminal_go_above_the_progress_bar(tmp_path):
    """Each log line, and each line a subprocess of the model writes, starts a line of its own:
    none is written onto the bar's line."""
    import re

    env = {**os.environ, "PYTHONPATH": str(MODELS), "MODELAAS_DATA_DIR": str(tmp_path), "COLUMNS": "100"}
    args = ["train", "--model", "trainer:Trainer", "--epochs", "3", "--seconds", "0.3"]
    text = modelaas_in_a_terminal(args, env)
    assert "%" in text  # the bar was shown
    for needle in ("epoch 1", "epoch 2", "epoch 3", "from a subprocess"):  # logs, and a subprocess's output
        at = text.index(needle)
        line_start = max(text.rfind("\r", 0, at), text.rfind("\n", 0, at))
        before = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text[line_start + 1 : at])
        assert "%" not in before and "━" not in before, repr(text[line_start:at])
