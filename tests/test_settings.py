from pathlib import Path

import pytest

from modelaas.errors import ConfigError
from modelaas.settings import GIB, Settings


def test_defaults_bind_loopback_and_cap_bodies():
    s = Settings.load(environ={})
    assert (s.listen_ip, s.listen_port, s.workers, s.client_max_size) == ("127.0.0.1", 5000, 1, GIB)
    assert s.warm and s.predict_endpoint and s.train_endpoint and s.doc_endpoint and not s.debug_endpoint


def test_precedence_defaults_file_env_flags(tmp_path: Path):
    cfg = tmp_path / "deepaas.conf"
    cfg.write_text("[DEFAULT]\nlisten_port = 6000\nworkers = 3\nwarm = false\nunknown_option = 1\n")
    env = {"MODELAAS_CONFIG_FILE": str(cfg), "MODELAAS_WORKERS": "4"}
    s = Settings.load({"listen_ip": "0.0.0.0"}, environ=env)
    assert (s.listen_port, s.workers, s.warm, s.listen_ip) == (6000, 4, False, "0.0.0.0")
    s = Settings.load({"workers": 2, "listen_port": None}, environ=env)
    assert (s.workers, s.listen_port) == (2, 6000)


def test_deepaas_environment_names():
    env = {"DEEPAAS_V2_MODEL": "demo-app", "OS_DEFAULT__LISTEN_PORT": "5001"}
    s = Settings.load(environ=env)
    assert (s.model_name, s.listen_port) == ("demo-app", 5001)
    env["MODELAAS_MODEL_NAME"] = "other"
    assert Settings.load(environ=env).model_name == "other"


def test_modelaas_section_of_config_file(tmp_path: Path):
    cfg = tmp_path / "m.ini"
    cfg.write_text("[modelaas]\nbase-path = api/\npredict_timeout = 2.5\n")
    s = Settings.load({"config_file": cfg}, environ={})
    assert (s.base_path, s.predict_timeout) == ("/api", 2.5)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"MODELAAS_LISTEN_PORT": "http"}, "listen_port"),
        ({"MODELAAS_WARM": "maybe"}, "warm"),
        ({"MODELAAS_WORKERS": "0"}, "workers"),
        ({"MODELAAS_CONFIG_FILE": "/nonexistent/file.ini"}, "Cannot read config file"),
    ],
)
def test_bad_values_are_config_errors(env, needle):
    with pytest.raises(ConfigError, match=needle):
        Settings.load(environ=env)


def test_to_env_round_trips(tmp_path: Path):
    s = Settings(listen_port=5123, predict_timeout=1.5, data_dir=tmp_path, warm=False)
    assert Settings.load(environ=s.to_env()) == s


def test_tokens_stay_out_of_child_environments_flags_and_reprs(tmp_path: Path):
    from modelaas.cli.serve import serve
    from modelaas.jobs.backends.process import child_env

    s = Settings(data_dir=tmp_path, tokens="predict a-very-long-secret-token")
    assert "MODELAAS_TOKENS" not in s.to_env() and "a-very-long-secret-token" not in repr(s)
    assert "a-very-long-secret-token" not in child_env(s).values()
    assert "--tokens" not in {opt for p in serve.params for opt in p.opts}


def test_settings_with_choices_are_choices_on_the_command_line_and_checked_everywhere():
    from click.testing import CliRunner

    from modelaas.cli.serve import serve

    r = CliRunner().invoke(serve, ["--predict-inline", "sometimes"])
    assert r.exit_code == 2 and "'sometimes' is not one of 'never', 'always', 'auto'" in r.output
    r = CliRunner().invoke(serve, ["--jobs-backend", "slurm"])
    assert r.exit_code == 2 and "'slurm' is not one of 'process', 'ray'" in r.output
    with pytest.raises(ConfigError, match="jobs_backend must be 'process' or 'ray', not 'slurm'"):
        Settings.load(environ={"MODELAAS_JOBS_BACKEND": "slurm"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"workers": 0}, "workers must be at least 1, not 0"),
        ({"listen_port": 70000}, "listen_port must be between 1 and 65535, not 70000"),
        ({"predict_timeout": 0.0}, "predict_timeout must be more than 0, not 0.0"),
        ({"max_header_size": 100}, "max_header_size must be at least 1024, not 100"),
        ({"predict_queue": -1}, "predict_queue must be at least 0, not -1"),
    ],
)
def test_ranges_come_from_the_fields_metadata(overrides, message):
    with pytest.raises(ConfigError, match=message):
        Settings(**overrides)


def test_serve_flags_are_held_to_the_same_ranges_before_start():
    from click.testing import CliRunner

    from modelaas.cli.serve import serve

    result = CliRunner().invoke(serve, ["--listen-port", "0"])
    assert result.exit_code == 2 and "0 is not in the range 1<=x<=65535" in result.output


def test_serve_help_shows_every_flags_default_and_choices():
    """Each flag's help names its default (shown by click, or said in its doc) and a choice
    flag lists its choices; the defaults shown are the settings' own."""
    import dataclasses

    import click
    from click.testing import CliRunner

    from modelaas.cli.serve import serve

    text = CliRunner().invoke(serve, ["--help"], terminal_width=200).output
    entries = {}
    for option in serve.params:
        if isinstance(option, click.Option) and option.name in {f.name for f in dataclasses.fields(Settings)}:
            record = option.get_help_record(click.Context(serve))
            assert record is not None
            entries[option.name] = record[1]
    assert len(entries) == len([f for f in dataclasses.fields(Settings) if not f.metadata.get("secret")])
    for name, help_text in entries.items():
        assert "default" in help_text.lower(), name
    assert "[default: 5000; 1<=x<=65535]" in entries["listen_port"]
    assert "[default: --warm]" in entries["warm"] and "[default: --nodebug-endpoint]" in entries["debug_endpoint"]
    assert "[default: every installed model]" in entries["model_name"]
    assert "/ui" in entries["doc_endpoint"]  # turning the docs off turns the web UI off too
    assert "--log-level [debug|info|warning|warn|error|critical]" in text
    assert "--jobs-backend [process|ray]" in text and "[default: process]" in entries["jobs_backend"]


def test_log_level_is_a_choice_in_any_case():
    assert Settings.load(environ={"MODELAAS_LOG_LEVEL": "WARNING"}).log_level == "warning"
    with pytest.raises(ConfigError, match="log_level must be"):
        Settings.load(environ={"MODELAAS_LOG_LEVEL": "loud"})


def test_a_jobs_db_path_is_made_absolute_for_every_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.load(environ={"MODELAAS_JOBS_DB": "sub/jobs.db"})
    assert s.jobs_db == str(tmp_path / "sub" / "jobs.db")
    assert s.to_env()["MODELAAS_JOBS_DB"] == str(tmp_path / "sub" / "jobs.db")  # what trainings get
    assert Settings(jobs_db="postgresql://u@h/db").jobs_db == "postgresql://u@h/db"
