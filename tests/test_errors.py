from aiohttp import web

from modelaas.errors import ModelError, NotImplementedByModel, ValidationError, from_model_exception


def test_aiohttp_http_errors_keep_status_and_reason():
    err = from_model_exception(web.HTTPBadRequest(reason="bad"), model="m", method="predict")
    assert (err.status, err.body()) == (400, {"message": "bad"})
    err = from_model_exception(web.HTTPServiceUnavailable(reason="later"), model="m", method="predict")
    assert err.status == 503


def test_status_code_attribute_and_plain_exceptions():
    exc = RuntimeError("teapot")
    exc.status_code = 418  # type: ignore[attr-defined]
    assert from_model_exception(exc, model="m", method="predict").status == 418
    plain = from_model_exception(KeyError("x"), model="m", method="predict")
    assert isinstance(plain, ModelError) and plain.status == 500 and "'x'" in plain.message
    assert isinstance(from_model_exception(NotImplementedError(), model="m", method="train"), NotImplementedByModel)


def test_out_of_range_status_is_not_trusted():
    exc = RuntimeError("weird")
    exc.status = 200  # type: ignore[attr-defined]
    assert from_model_exception(exc, model="m", method="predict").status == 500


def test_validation_error_body_is_the_field_map():
    err = ValidationError({"a": "Missing data for required field.", "b": ["x", "y"]})
    assert err.status == 422
    assert err.body() == {"a": ["Missing data for required field."], "b": ["x", "y"]}
