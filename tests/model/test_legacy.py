"""v1 dicts and marshmallow fields -> the parameter IR, validated like DEEPaaS."""

import datetime as dt

import pytest
from marshmallow import fields, validate

from modelaas.errors import ModelLoadError, ValidationError
from modelaas.model.legacy import describe_field, params_from_fields, params_from_v1
from modelaas.model.params import MISSING, Kind

V1_ARGS = {
    "num_classes": {"default": "null", "help": "Classes", "required": False},
    "lr_step_schedule": {"default": "[0.7, 0.9]", "help": "", "required": False},
    "epochs": {"default": 3, "help": "", "required": True},
}


def test_v1_dicts_become_string_params():
    ps = params_from_v1(V1_ARGS, model="m", method="get_train_args")
    by = {p.name: p for p in ps}
    assert by["num_classes"].kind is Kind.STRING and by["num_classes"].default == "null"
    assert by["num_classes"].description == "Classes"
    assert by["epochs"].required and by["epochs"].default == "3"  # non-string default JSON-encoded


def test_v1_values_reach_the_model_as_strings():
    ps = params_from_v1(V1_ARGS, model="m", method="get_train_args")
    out = ps.validate({"epochs": 5, "lr_step_schedule": "[0.1]"})
    assert out == {"num_classes": "null", "lr_step_schedule": "[0.1]", "epochs": "5"}
    with pytest.raises(ValidationError) as err:
        ps.validate({})
    assert err.value.body() == {"epochs": ["Missing data for required field."]}


def test_v1_choices_are_checked():
    ps = params_from_v1({"mode": {"default": "a", "choices": ["a", "b"]}}, model="m", method="get_test_args")
    assert ps.validate({"mode": "b"}) == {"mode": "b"}
    with pytest.raises(ValidationError):
        ps.validate({"mode": "c"})


def test_v1_bad_shapes_are_load_errors_naming_the_model():
    with pytest.raises(ModelLoadError, match=r"'m'.*get_train_args"):
        params_from_v1(["epochs"], model="m", method="get_train_args")
    with pytest.raises(ModelLoadError, match="epochs"):
        params_from_v1({"epochs": "3"}, model="m", method="get_train_args")


def demo_args():
    return {
        "demo-str": fields.Str(load_default="some-string"),
        "demo-str-choice": fields.Str(
            load_default="choice2",
            validate=validate.OneOf(["choice1", "choice2"]),
            metadata={"enum": ["choice1", "choice2"]},
        ),
        "demo-int": fields.Int(required=True, metadata={"description": "An integer"}),
        "demo-int-range": fields.Int(load_default=50, validate=[validate.Range(min=1, max=100)]),
        "demo-float": fields.Float(load_default=0.1),
        "demo-bool": fields.Bool(load_default=True),
        "demo-list-of-floats": fields.List(fields.Float(), load_default=[0.1, 0.2]),
        "demo-date": fields.Date(load_default=dt.date(2024, 1, 2)),
        "demo-dt": fields.DateTime(required=False),
        "demo-length": fields.Str(validate=validate.Length(min=2, max=4)),
        "demo-image": fields.Field(required=True, metadata={"type": "file", "location": "form"}),
        "demo-files": fields.List(fields.Field(metadata={"type": "file"})),
        "renamed": fields.Int(data_key="renamed-int", load_default=1),
        "raw": fields.Raw(),
    }


def test_marshmallow_fields_are_described():
    ps = params_from_fields(demo_args(), model="demo", method="get_predict_args")
    by = {p.wire_name: p for p in ps}
    assert by["demo-str"].kind is Kind.STRING and by["demo-str"].default == "some-string"
    assert by["demo-str-choice"].choices == ("choice1", "choice2")
    assert by["demo-int"].required and by["demo-int"].description == "An integer"
    assert (by["demo-int-range"].minimum, by["demo-int-range"].maximum) == (1, 100)
    assert by["demo-float"].kind is Kind.NUMBER and by["demo-bool"].kind is Kind.BOOLEAN
    assert (by["demo-list-of-floats"].kind, by["demo-list-of-floats"].item) == (Kind.ARRAY, Kind.NUMBER)
    assert by["demo-date"].kind is Kind.DATE and by["demo-date"].default == "2024-01-02"
    assert by["demo-dt"].kind is Kind.DATETIME and by["demo-dt"].default is MISSING
    assert (by["demo-length"].min_length, by["demo-length"].max_length) == (2, 4)
    assert by["demo-image"].kind is Kind.FILE and by["demo-image"].location == "form"
    assert by["demo-files"].is_file and by["demo-files"].is_array
    assert by["renamed-int"].name == "renamed"
    assert by["raw"].kind is Kind.ANY


def test_marshmallow_validation_matches_deepaas_messages():
    ps = params_from_fields(demo_args(), model="demo", method="get_predict_args")
    with pytest.raises(ValidationError) as err:
        ps.validate({"demo-int": "x", "demo-int-range": "500", "demo-str-choice": "nope"})
    body = err.value.body()
    assert body["demo-int"] == ["Not a valid integer."]
    assert body["demo-image"] == ["Missing data for required field."]
    assert body["demo-int-range"] == ["Must be greater than or equal to 1 and less than or equal to 100."]
    assert body["demo-str-choice"] == ["Must be one of: choice1, choice2."]


def test_marshmallow_loads_text_and_applies_defaults_and_data_keys():
    ps = params_from_fields(demo_args(), model="demo", method="get_predict_args")
    upload = object()
    out = ps.validate(
        {
            "demo-int": "7",
            "demo-image": upload,
            "demo-bool": "0",
            "demo-list-of-floats": ["1", "2.5"],
            "renamed-int": "4",
        }
    )
    assert out["demo-int"] == 7 and out["demo-image"] is upload and out["demo-bool"] is False
    assert out["demo-list-of-floats"] == [1.0, 2.5] and out["renamed"] == 4
    assert out["demo-str"] == "some-string" and out["demo-date"] == dt.date(2024, 1, 2)


def test_nested_list_errors_keep_json_keys():
    ps = params_from_fields({"xs": fields.List(fields.Int())}, model="m", method="get_predict_args")
    with pytest.raises(ValidationError) as err:
        ps.validate({"xs": ["1", "b"]})
    assert err.value.body() == {"xs": {"1": ["Not a valid integer."]}}


def test_a_non_field_is_a_load_error():
    with pytest.raises(ModelLoadError, match="'x' is a str"):
        params_from_fields({"x": "Int"}, model="m", method="get_predict_args")


def test_list_item_choices_are_described():
    ps = params_from_fields(
        {"tags": fields.List(fields.Str(validate=validate.OneOf(["a", "b"])))}, model="m", method="get_predict_args"
    )
    (tags,) = ps.params
    assert tags.is_array and tags.choices == ("a", "b")


def test_v1_json_values_reach_the_model_as_their_json_text():
    ps = params_from_v1(V1_ARGS, model="m", method="get_train_args")
    out = ps.validate({"epochs": 5, "lr_step_schedule": [0.1, 0.2], "num_classes": None})
    assert out == {"num_classes": "null", "lr_step_schedule": "[0.1, 0.2]", "epochs": "5"}


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (fields.UUID(), {"type": "string", "format": "uuid"}),
        (fields.Url(), {"type": "string", "format": "uri"}),
        (fields.Email(), {"type": "string", "format": "email"}),
        (fields.Str(metadata={"format": "password"}), {"type": "string", "format": "password"}),
        (
            fields.List(fields.Str(), metadata={"format": "password"}),
            {"type": "array", "items": {"type": "string", "format": "password"}},
        ),
    ],
)
def test_string_like_fields_keep_their_format(field, expected):
    from modelaas.model.schema import param_schema

    assert param_schema(describe_field("x", field)) == expected
