"""The docs run as written: every command block of README.md and docs/*.md is run.

How a block of a page is treated (the same rules are told to doc writers in docs/README.md):

* ```` ```bash ````, ```` ```sh ```` and ```` ```shell ```` blocks are scripts: run with
  ``bash -e -o pipefail``; the block fails if it exits non-zero.
* ```` ```console ```` blocks are terminal sessions: each ``$ `` line is a command (a line
  ending in ``\\`` goes on), and the lines after it, up to the next ``$ `` line, are what it
  prints on stdout. ``...`` alone on a line stands for any number of lines, inside a line
  for any text. A command that fails, or prints something else, fails the block.
* ```` ```python ```` blocks are run as a script by this interpreter.
* Other blocks (``json``, ``toml``, output, untagged ones) are not run.
* An HTML comment on a line right above a block, ``<!-- doc-test: skip REASON -->``, keeps
  it from running (it needs the network, a GPU, root, a long run...): it is reported as a
  skipped test with its reason (``-rs``).

Each block runs alone (any order) in a fresh temporary directory holding ``photo.jpg`` (a
few bytes), with a fresh data dir (``MODELAAS_DATA_DIR``) and this interpreter's ``bin``
first on ``PATH`` (``modelaas`` and ``python`` are the ones under test), each command
within ``BLOCK_TIMEOUT`` seconds. A block that says ``http://127.0.0.1:5000`` (or
``localhost:5000``) talks to a real ``modelaas serve`` of the demo model, started once on a
free loopback port; the block's port is rewritten to it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest

from modelaas.model.adapters import TypedAdapter
from support import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
SCRIPT_LANGUAGES = {"bash", "sh", "shell"}
BLOCK_TIMEOUT = 120
DOC_SERVER = re.compile(r"https?://(?:127\.0\.0\.1|localhost):5000")
PHOTO = b"\xff\xd8\xff\xe0 not really a photo"


# -------------------------------------------------------------------- reading the pages
@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    text: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in SCRIPT_LANGUAGES | {"console", "python"}


_FENCE = re.compile(r"^(\s*)```\s*([\w+-]*)")
_SKIP = re.compile(r"<!--\s*doc-test:\s*skip\b\s*(.*?)\s*-->")


def blocks(page: Path, text: str | None = None) -> Iterator[Block]:
    """The fenced blocks of a page (its ``text``), with the doc-test marks on the lines right above them."""
    lines = (page.read_text() if text is None else text).splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        language = opening.group(2).lower()
        marks = []
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("<!--"):
            marks.append(lines[j])
            j -= 1
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith("```"):
            end += 1
        body = dedent("\n".join(lines[i + 1 : end]))
        skips = [m.group(1) or "no reason given" for m in map(_SKIP.search, marks) if m]
        yield Block(page, i + 1, language, body + "\n", skips[0] if skips else None)
        i = end + 1


ALL_BLOCKS = [b for page in PAGES for b in blocks(page) if b.runs]


# -------------------------------------------------------------------- running them
@pytest.fixture(scope="module")
def doc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    """The demo model's server, started when a block first needs it."""
    started: dict[str, ServerProcess] = {}
    yield started
    for srv in started.values():
        srv.stop()


def server_url(started: dict[str, ServerProcess], data_dir: Path) -> str:
    if "demo" not in started:
        srv = ServerProcess([], data_dir=data_dir)
        started["demo"] = srv
        srv.wait_ready()
    return started["demo"].url


def environment(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELAAS_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MODELAAS_DATA_DIR"] = str(workdir / "data")
    env.pop("PYTHONPATH", None)  # as a user has it: only what is installed
    return env


def run(command: list[str], workdir: Path, block: Block, what: str) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            command,
            cwd=workdir,
            env=environment(workdir),
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"{block.where}: {what} ran longer than {BLOCK_TIMEOUT} s. A block that cannot run offline "
            "in seconds gets <!-- doc-test: skip REASON --> on the line above it."
        )
    if done.returncode != 0:
        pytest.fail(f"{block.where}: {what} exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done


def console_steps(text: str) -> list[tuple[str, list[str]]]:
    """``[(command, expected output lines)]`` of a console block."""
    steps: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            if steps:
                steps[-1][1].append(line)
            elif line.strip():
                raise AssertionError(f"a console block starts with a '$ ' command line, not {line!r}")
            i += 1
            continue
        command = line[2:]
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command = command[:-1] + "\n" + lines[i]
        steps.append((command, []))
        i += 1
    return steps


def output_matches(expected: list[str], actual: str) -> bool:
    """Whether ``actual`` is ``expected``, where ``...`` stands for any lines or any text
    (trailing spaces and blank lines aside)."""
    while expected and not expected[-1].strip():
        expected = expected[:-1]
    pattern = ""
    for line in expected:
        if line.strip() == "...":
            pattern += r"(?:[^\n]*\n)*?"
        else:
            pattern += re.escape(line.rstrip()).replace(re.escape("..."), r"[^\n]*") + r"\n"
    shown = "".join(line.rstrip() + "\n" for line in actual.rstrip().splitlines())
    return re.fullmatch(pattern, shown) is not None


@pytest.mark.slow
@pytest.mark.timeout(2 * BLOCK_TIMEOUT + 60)  # a server start, then the block's own limit
@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.where for b in ALL_BLOCKS])
def test_doc_block_runs(block: Block, tmp_path: Path, doc_server: dict[str, ServerProcess]) -> None:
    if block.skip is not None:
        pytest.skip(f"{block.where}: {block.skip}")
    text = block.text
    if DOC_SERVER.search(text):
        text = DOC_SERVER.sub(server_url(doc_server, tmp_path / "server-data"), text)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "photo.jpg").write_bytes(PHOTO)
    if block.language == "python":
        (workdir / "block.py").write_text(text)
        run([sys.executable, "block.py"], workdir, block, "the Python block")
    elif block.language in SCRIPT_LANGUAGES:
        run(["bash", "-e", "-o", "pipefail", "-c", text], workdir, block, "the script")
    else:
        steps = console_steps(text)
        assert steps, f"{block.where}: a console block without a '$ ' command"
        for command, expected in steps:
            done = run(["bash", "-e", "-o", "pipefail", "-c", command], workdir, block, f"$ {command}")
            if any(line.strip() for line in expected):
                assert output_matches(expected, done.stdout), (
                    f"{block.where}: $ {command}\nshown:\n" + "\n".join(expected) + f"\nprinted:\n{done.stdout}"
                )


def test_every_page_is_read_and_marks_are_understood() -> None:
    """The pages the test reads, and no mark it would not understand (a typo skips nothing)."""
    assert README in PAGES and (ROOT / "docs" / "jobs.md") in PAGES
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            if "doc-test" in line and "<!--" in line:
                assert _SKIP.search(line), f"{page.name}:{number}: unknown doc-test mark {line.strip()!r}"
    assert any(b.skip is None for b in ALL_BLOCKS if b.page == README)


def test_output_matching() -> None:
    assert output_matches(["a", "b"], "a\nb\n")
    assert not output_matches(["a", "b"], "a\nc\n")
    assert output_matches(["a", "...", "z"], "a\nb\nc\nz\n")
    assert output_matches(["a", "...", "z"], "a\nz\n")
    assert output_matches(['"sha256": "..."'], '"sha256": "8edd"\n')
    assert not output_matches(["a"], "a\nb\n")
    assert console_steps("$ echo a \\\n  b\na b\n$ true\n") == [("echo a \n  b", ["a b"]), ("true", [])]


def test_blocks_and_skip_marks_are_read() -> None:
    page = """Text.

<!-- doc-test: skip needs the network -->
```bash
pip install x
```

   ```python
   print(1)
   ```

```json
{}
```
"""
    found = list(blocks(ROOT / "docs" / "x.md", page))
    assert [(b.line, b.language, b.skip) for b in found] == [
        (4, "bash", "needs the network"),
        (8, "python", None),
        (12, "json", None),
    ]
    assert found[1].text == "print(1)\n" and [b.runs for b in found] == [True, True, False]


# -------------------------------------------------------------------- deeper checks of some examples
def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_typed_model_runs(make_client):
    (source,) = [b for b in python_blocks(README.read_text()) if "class Classifier(Model)" in b]
    namespace: dict = {}
    exec(compile(source, str(README), "exec"), namespace)
    client = make_client(TypedAdapter("classifier", namespace["Classifier"]()))
    r = client.post("/v2/models/classifier/predict/", files={"image": ("cat.jpg", b"\xff\xd8")}, data={"top_k": "2"})
    assert r.status_code == 200 and r.json() == {"label": "cat", "probability": 0.9}
    r = client.post("/v2/models/classifier/predict/", files={"image": ("cat.jpg", b"")}, data={"top_k": "11"})
    assert r.status_code == 422 and list(r.json()) == ["top_k"]


def test_readme_test_command_is_what_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "test-command" in ci
    block = README.read_text().split("<!-- test-command -->")[1].split("<!-- /test-command -->")[0]
    assert "pip install -e '.[dev,postgres,ray,mlflow]'" in block and "scripts/check" in block


def test_jobs_doc_training_example_runs(tmp_path):
    from modelaas import TrainingContext

    (source,) = python_blocks((README.parent / "docs" / "jobs.md").read_text())
    namespace: dict = {}
    exec(compile(source, "docs/jobs.md", "exec"), namespace)
    adapter = TypedAdapter("classifier", namespace["Classifier"]())
    context = TrainingContext(tmp_path)
    result = adapter.train(adapter.train_params.validate({"epochs": "4"}), context)
    assert result == {"loss": 0.25} and context.progress == 1.0 and context.metrics == {"loss": 0.25}
    assert (tmp_path / "weights.bin").read_bytes() == b"..."
