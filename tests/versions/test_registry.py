"""The registry on SQLite and PostgreSQL: numbering (under concurrency, never reused), reading,
activation, deletion, and what a failed registration leaves (nothing)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from modelaas.errors import Conflict, NotFound
from modelaas.jobs.database import store_url
from modelaas.versions.registry import VersionRegistry

MODEL = "m"


@pytest.fixture
def open_registry(jobs_db, tmp_path):
    opened: list[VersionRegistry] = []

    def make() -> VersionRegistry:
        registry = VersionRegistry(store_url(jobs_db, tmp_path), tmp_path / "data")
        registry.migrate()
        opened.append(registry)
        return registry

    yield make
    for registry in opened:
        registry.close()


def add(registry: VersionRegistry, content: str, model: str = MODEL, **kwargs):
    staged = registry.staging(model)
    (staged / "sub").mkdir()
    (staged / "sub" / "weights.txt").write_text(content)
    return registry.register(model, staged, source={"kind": "archive", "filename": f"{content}.zip"}, **kwargs)


def folder_names(registry: VersionRegistry, model: str = MODEL) -> list[str]:
    return sorted(p.name for p in (registry.data_dir / "versions" / model).iterdir())


def test_register_list_get_and_files(open_registry):
    r = open_registry()
    first = add(r, "one", args={"lr": 0.1}, metrics={"loss": 0.5}, description="first", by="alice")
    second = add(r, "two")
    other = add(r, "x", model="other")
    assert (first.version, second.version, other.version) == (1, 2, 1)  # numbered per model
    assert [v.version for v in r.list(MODEL)] == [2, 1]  # newest first
    got = r.get(MODEL, 1)
    assert (got.args, got.metrics, got.description, got.created_by) == ({"lr": 0.1}, {"loss": 0.5}, "first", "alice")
    assert got.files == [{"path": "sub/weights.txt", "size": 3}]
    assert got.source == {"kind": "archive", "filename": "one.zip"}
    assert (r.path(MODEL, 2) / "sub" / "weights.txt").read_text() == "two"
    assert folder_names(r) == ["1", "2"]  # no staging folder left
    with pytest.raises(NotFound):
        r.get(MODEL, 3)


def test_numbers_are_never_given_twice(open_registry):
    r = open_registry()
    for content in ("a", "b", "c"):
        add(r, content)
    r.delete(MODEL, 3)  # the newest
    r.delete(MODEL, 1)
    assert not r.path(MODEL, 3).exists() and folder_names(r) == ["2"]
    assert add(r, "d").version == 4
    assert [v.version for v in open_registry().list(MODEL)] == [4, 2]  # another connection sees the same


def test_activation_and_deletion_rules(open_registry):
    r = open_registry()
    add(r, "a")
    add(r, "b")
    with pytest.raises(NotFound):
        r.activate(MODEL, 9)
    assert r.state(MODEL).generation == 0  # a refused activation changes nothing
    state = r.activate(MODEL, 2, by="admin")
    assert (state.active_version, state.generation, state.updated_by) == (2, 1, "admin")
    with pytest.raises(Conflict):
        r.delete(MODEL, 2)
    assert r.path(MODEL, 2).is_dir()
    with pytest.raises(NotFound):
        r.delete(MODEL, 7)
    assert r.activate(MODEL, 1).generation == 2  # rolling back
    r.delete(MODEL, 2)
    assert [v.version for v in r.list(MODEL)] == [1]
    assert r.activate(MODEL, None).active_version is None  # the model as installed


def test_a_failed_registration_leaves_nothing(open_registry):
    r = open_registry()
    add(r, "a")
    staged = r.staging(MODEL)
    (staged / "w").write_text("x")
    with pytest.raises(Exception):  # noqa: B017  (the store refuses a source it cannot store)
        r.register(MODEL, staged, source={"kind": object()})
    assert folder_names(r) == ["1"] and not staged.exists()
    assert [v.version for v in r.list(MODEL)] == [1]
    assert add(r, "b").version == 2  # the failed one took no number


def test_concurrent_registrations_get_distinct_consecutive_numbers(open_registry):
    model = "fresh"
    threads, each = 6, 4
    registries = [open_registry() for _ in range(threads)]  # one engine each, as separate servers have
    got: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work(i: int) -> None:
        try:
            start.wait()
            for j in range(each):
                number = add(registries[i], f"{i}-{j}", model=model).version
                with lock:
                    got.append(number)
        except BaseException as exc:  # reported below
            errors.append(exc)

    runners = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in runners:
        t.start()
    for t in runners:
        t.join()
    assert errors == []
    assert sorted(got) == list(range(1, threads * each + 1))
    r = registries[0]
    assert folder_names(r, model) == sorted(str(n) for n in got)
    for v in r.list(model):  # each number's files are the ones registered under it
        content = (r.path(model, v.version) / "sub" / "weights.txt").read_text()
        assert v.source["filename"] == f"{content}.zip"


def test_concurrent_first_changes_each_raise_the_generation(open_registry):
    """The model's serving row does not exist yet: each thread's transaction may be the one creating it."""
    threads = 6
    registries = [open_registry() for _ in range(threads)]
    start = threading.Barrier(threads)
    generations: list[int] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            start.wait()
            change = registries[i].activate if i % 2 else registries[i].request_reload
            generations.append(change(MODEL, None).generation if i % 2 else change(MODEL).generation)
        except BaseException as exc:
            errors.append(exc)

    runners = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in runners:
        t.start()
    for t in runners:
        t.join()
    assert errors == [] and sorted(generations) == list(range(1, threads + 1))


def test_staging_folders_are_beside_the_versions(open_registry):
    r = open_registry()
    staged = r.staging(MODEL)
    assert staged.parent == Path(r.data_dir) / "versions" / MODEL and staged.name.startswith(".staging-")
