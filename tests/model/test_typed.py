"""Typed signatures -> the parameter IR, validated by pydantic."""

from typing import Annotated, Literal

import pytest

from modelaas import File, Input, Model, TrainingContext
from modelaas.errors import ModelLoadError, ValidationError
from modelaas.model.params import Kind
from modelaas.model.typed import context_parameter, params_from_signature


class M(Model):
    def predict(
        self,
        image: File,
        name: str = Input("x", description="a name", min_length=1, max_length=5),
        k: int = Input(3, ge=1, le=10),
        ratio: Annotated[float, Input(gt=0, lt=1)] = 0.5,
        mode: Literal["a", "b"] = "a",
        level: Literal[1, 2] = 1,
        tags: list[str] = Input(default=[]),
        maybe: int | None = None,
        dashed: str = Input("d", alias="dashed-name"),
        choice: str = Input("p", choices=["p", "q"]),
    ) -> dict:
        return {}

    def train(self, ctx: TrainingContext, epochs: int = 1) -> dict:
        return {}


def test_signature_is_described():
    ps = params_from_signature(M().predict, model="m", method="predict")
    by = {p.wire_name: p for p in ps}
    assert by["image"].kind is Kind.FILE and by["image"].required
    assert by["name"].description == "a name" and (by["name"].min_length, by["name"].max_length) == (1, 5)
    assert (by["k"].minimum, by["k"].maximum, by["k"].default) == (1, 10, 3)
    assert by["ratio"].exclusive_minimum and by["ratio"].exclusive_maximum
    assert by["mode"].choices == ("a", "b") and by["level"].kind is Kind.INTEGER
    assert (by["tags"].kind, by["tags"].item) == (Kind.ARRAY, Kind.STRING)
    assert not by["maybe"].required and by["maybe"].default is None
    assert by["dashed-name"].name == "dashed"
    assert by["choice"].choices == ("p", "q")


def test_text_values_are_coerced_and_checked():
    ps = params_from_signature(M().predict, model="m", method="predict")
    f = File("image", "/tmp/x", "image/png", "x.png")
    out = ps.validate({"image": f, "k": "4", "level": "2", "tags": ["a", "b"], "dashed-name": "z", "ratio": "0.2"})
    assert out["k"] == 4 and out["level"] == 2 and out["tags"] == ["a", "b"] and out["dashed"] == "z"
    with pytest.raises(ValidationError) as err:
        ps.validate({"k": "11", "level": "3", "mode": "c", "choice": "r", "name": ""})
    body = err.value.body()
    assert body["image"] == ["Missing data for required field."]
    assert set(body) == {"image", "k", "level", "mode", "choice", "name"}
    assert "1 or 2" in body["level"][0] or "one of" in body["level"][0].lower()


def test_context_parameter_is_not_an_argument():
    ps = params_from_signature(M().train, model="m", method="train")
    assert [p.name for p in ps] == ["epochs"]
    assert context_parameter(M().train) == "ctx"


def test_unsupported_annotation_is_a_load_error():
    class Bad(Model):
        def predict(self, x: complex = 1j) -> dict:
            return {}

    with pytest.raises(ModelLoadError, match="unsupported type"):
        params_from_signature(Bad().predict, model="bad", method="predict")


def test_choices_of_a_list_apply_to_each_item():
    class Tags(Model):
        def predict(
            self,
            tags: list[str] = Input(["a"], choices=["a", "b", "c"]),
            levels: list[Literal[1, 2]] = Input([1]),
        ) -> dict:
            return {}

    ps = params_from_signature(Tags().predict, model="m", method="predict")
    by = {p.wire_name: p for p in ps}
    assert by["tags"].choices == ("a", "b", "c") and by["levels"].choices == (1, 2)
    assert ps.validate({"tags": ["a", "c"], "levels": ["2", "1"]}) == {"tags": ["a", "c"], "levels": [2, 1]}
    with pytest.raises(ValidationError) as err:
        ps.validate({"tags": ["a", "z"], "levels": ["3"]})
    assert set(err.value.body()) == {"tags", "levels"}
