"""The error tree: one root, leaves that are also the builtins they resemble, both directions."""

from __future__ import annotations

import pytest

from vizier_keras import errors


def test_every_google_rpc_code_has_a_leaf_and_maps_both_ways():
    for code in range(1, 17):
        e = errors.error_from_status(code, "m")
        assert type(e) is not errors.ApiError and e.code == code
        assert type(errors.error_from_status(e.status, "m")) is type(e)
        body = e.to_json()
        assert body == {"error": {"code": e.http_status, "message": "m", "status": e.status}}
        assert type(errors.error_from_http(e.http_status, body)) is type(e)
        assert e.to_status() == {"code": code, "message": "m"}


def test_unknown_codes_keep_the_original():
    e = errors.error_from_status(99, "odd")
    assert isinstance(e, errors.UnknownError) and "99" in e.message
    assert isinstance(errors.error_from_http(418, {}), errors.InvalidArgumentError)
    assert isinstance(errors.error_from_http(507, "<html>"), errors.InternalError)


@pytest.mark.parametrize(("cls", "builtin"), [
    (errors.InvalidArgumentError, ValueError), (errors.NotFoundError, LookupError),
    (errors.PermissionDeniedError, PermissionError), (errors.DeadlineExceededError, TimeoutError),
    (errors.UnimplementedError, NotImplementedError), (errors.FailedPreconditionError,
                                                       RuntimeError),
    (errors.ValidationError, ValueError), (errors.TransportError, ConnectionError),
    (errors.RequestTimeoutError, TimeoutError), (errors.OperationTimeoutError, TimeoutError),
])
def test_leaves_are_the_builtins_they_resemble(cls, builtin):
    assert issubclass(cls, builtin) and issubclass(cls, errors.VizierError)


def test_messages_name_what_failed():
    e = errors.ValidationError("studySpec.metrics[0].goal", "BIGGER", "must be one of ...")
    assert str(e).startswith("studySpec.metrics[0].goal='BIGGER'")
    assert (e.field, e.value) == ("studySpec.metrics[0].goal", "BIGGER")
    t = errors.TransportError("reset", method="POST", url="http://h/v1/x")
    assert str(t) == "TransportError on POST http://h/v1/x: reset"
    assert "op/1" in str(errors.OperationTimeoutError("op/1", 5))
