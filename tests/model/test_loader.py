"""Finding models: entry-point groups, priorities, --model-name, --model, the demo fallback."""

from pathlib import Path

import pytest

from modelaas.errors import ModelLoadError
from modelaas.model import loader
from modelaas.model.loader import ModelRef, installed_models, load, select_models
from modelaas.settings import Settings


def install_fake_distribution(root: Path, name: str, entry_points: str) -> None:
    """What pip leaves behind: a .dist-info with entry_points.txt, on sys.path."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def fake_models(tmp_path, monkeypatch):
    install_fake_distribution(
        tmp_path,
        "fake_models",
        "[deepaas.model]\nseed = v1_seed\nboth = v1_seed\n\n"
        "[deepaas.v2.model]\nbasic = v2_basic\nboth = v2_basic\nklass = v2_class:Model\n\n"
        "[modelaas.model]\ntyped = typed_basic:Classifier\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_entry_points_of_all_groups_are_found_strongest_group_first(fake_models):
    refs = {r.name: r for r in installed_models()}
    assert {"seed", "both", "basic", "klass", "typed"} <= set(refs)
    assert (refs["seed"].interface, refs["basic"].interface, refs["typed"].interface) == ("v1", "v2", "typed")
    assert refs["both"].interface == "v2" and refs["both"].distribution == "fake_models"


def test_each_interface_loads(fake_models):
    refs = {r.name: r for r in installed_models()}
    assert load(refs["seed"]).interface == "v1"
    assert load(refs["klass"]).interface == "v2"
    typed = load(refs["typed"])
    assert typed.interface == "typed" and typed.predict_params is not None


def test_model_name_selects_one_or_lists_the_installed(fake_models):
    assert [r.name for r in select_models(Settings(model_name="basic"))] == ["basic"]
    with pytest.raises(ModelLoadError, match=r"No installed model is named 'nope'\. Installed models: .*basic"):
        select_models(Settings(model_name="nope"))


def test_model_reference_needs_no_entry_point():
    (ref,) = select_models(Settings(model="typed_basic:Classifier"))
    assert (ref.name, ref.source) == ("typed-basic", "--model")
    assert load(ref).interface == "typed"
    (named,) = select_models(Settings(model="v2_basic", model_name="mine"))
    assert named.name == "mine" and load(named).interface == "v2"


def test_demo_model_only_when_nothing_is_installed(monkeypatch):
    monkeypatch.setattr(loader.metadata, "entry_points", lambda group: [])
    (ref,) = select_models(Settings())
    assert (ref.name, ref.source) == ("modelaas-demo", "builtin")
    adapter = load(ref)
    assert adapter.metadata()["demo"] is True and "not a real model" in adapter.metadata()["description"]


def test_import_errors_carry_the_real_traceback():
    with pytest.raises(ModelLoadError) as err:
        load(ModelRef("broken", "broken_import", None, "test"))
    assert "ModuleNotFoundError" in err.value.message
    assert "a_module_that_does_not_exist_anywhere" in (err.value.traceback_text or "")


def test_failing_argument_description_names_model_and_method():
    with pytest.raises(ModelLoadError, match="'broken' failed in get_predict_args"):
        load(ModelRef("broken", "broken_args", "v2", "test"))


def test_not_a_model():
    with pytest.raises(ModelLoadError, match="is not a model"):
        load(ModelRef("x", "json:JSONDecoder", None, "test"))
