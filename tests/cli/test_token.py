"""``modelaas token``: tokens that a server then accepts."""

import os
import stat
import subprocess
import sys

import httpx
import pytest


def run(*args, stdin=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "modelaas", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_hash_reads_stdin_and_matches_the_servers_digest():
    from modelaas.tokens import hash_token

    r = run("token", "hash", stdin="a-very-long-secret-token\n")
    assert r.returncode == 0 and r.stdout.strip() == hash_token("a-very-long-secret-token")
    assert run("token", "hash", stdin="").returncode == 2


def test_new_token_in_a_private_file_is_accepted_by_a_server(server, tmp_path):
    tokens = tmp_path / "tokens"
    r = run("token", "new", "--scopes", "predict", "--file", str(tokens))
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret not in tokens.read_text() and tokens.read_text().startswith("predict sha256:")
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert run("token", "new", "--scopes", "root").returncode == 2
    srv = server("--model", "v2_basic", "--tokens-file", str(tokens))
    url = srv.url + "/v2/models/v2-basic/predict/"
    assert httpx.post(url, data={"count": "1"}).status_code == 401
    assert httpx.post(url, data={"count": "1"}, headers={"Authorization": f"Bearer {secret}"}).status_code == 200


pytestmark = pytest.mark.slow
