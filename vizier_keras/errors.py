"""The errors of vizier_keras: one root, and leaves that also inherit the builtin they resemble.

Everything this package raises on purpose is a :class:`VizierError`:

* :class:`ValidationError` (a ``ValueError``): input rejected *before* anything was sent.
* :class:`ApiError` and its leaves: the service answered with an error status. There is one leaf
  per ``google.rpc.Code`` (``NotFoundError`` is also a ``LookupError``, ``InvalidArgumentError``
  a ``ValueError``, ...). The same classes serve both sides of the wire: the client maps an HTTP
  error body or an operation's ``error`` to them, the embedded server maps them back to JSON.
* :class:`TransportError` (a ``ConnectionError``): the service could not be reached, or the
  connection broke; :class:`RequestTimeoutError` when it did not answer in time.
* :class:`OperationTimeoutError`: a long-running operation was not done by its deadline.
* :class:`ProtocolError`: the service answered something that does not follow the v1 contract.
* :class:`MissingExtraError` (an ``ImportError``): a feature needs an extra that is not
  installed (the embedded service needs ``[local]``); raised before anything is started.

Example::

    try:
        client.get_study("projects/p/locations/us-central1/studies/7")
    except vizier_keras.errors.NotFoundError as e:
        print(e.status, e.http_status, e.message)
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "ApiError",
    "CancelledError",
    "DataLossError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "MissingExtraError",
    "NotFoundError",
    "OperationTimeoutError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ProtocolError",
    "RequestTimeoutError",
    "ResourceExhaustedError",
    "StartupError",
    "TransportError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "ValidationError",
    "VizierError",
    "error_from_http",
    "error_from_status",
]


class VizierError(Exception):
    """Root of every error that vizier_keras raises on purpose."""


class ValidationError(VizierError, ValueError):
    """Input rejected before anything was sent to the service.

    Attributes:
        field: The path of the offending field, e.g. ``studySpec.parameters[2].doubleValueSpec``.
        value: The offending value.
    """

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value!r}: {reason}")


class MissingExtraError(VizierError, ImportError):
    """A feature needs an optional extra of the package that is not installed here.

    Attributes:
        extra: The extra, e.g. ``"local"``.
        missing: The top-level modules of it that cannot be imported.
    """

    def __init__(self, feature: str, extra: str, missing: list[str], instead: str = "") -> None:
        self.extra = extra
        self.missing = list(missing)
        names = ", ".join(repr(m) for m in self.missing)
        super().__init__(f"{feature} needs the [{extra}] extra, which is not installed in this "
                         f"Python ({sys.executable}: no module {names}): "
                         f"pip install 'vizier-keras[{extra}]'" + (f"; {instead}" if instead
                                                                    else ""))


class StartupError(VizierError, RuntimeError):
    """A server cannot start as asked; the message is one sentence naming the problem and the
    fix (``vizier-keras serve`` prints it and exits 2)."""


class ProtocolError(VizierError):
    """The service answered something that does not follow the Vertex AI v1 contract."""


class TransportError(VizierError, ConnectionError):
    """The service could not be reached, or the connection broke before an answer came.

    Attributes:
        method: The HTTP method.
        url: The URL.
        request_sent: False when the request surely never reached the service (the connection
            could not be opened), so that even a non-idempotent call may be repeated.
    """

    def __init__(
        self, message: str, *, method: str = "", url: str = "", request_sent: bool = True
    ) -> None:
        self.method = method
        self.url = url
        self.request_sent = request_sent
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        where = f" on {self.method} {self.url}" if self.method else ""
        return f"{type(self).__name__}{where}: {self.message}"


class RequestTimeoutError(TransportError, TimeoutError):
    """The service did not answer within the request's timeout."""


class OperationTimeoutError(VizierError, TimeoutError):
    """A long-running operation was not done by its deadline.

    Attributes:
        operation: The operation's resource name.
        timeout: The deadline, in seconds.
    """

    def __init__(self, operation: str, timeout: float) -> None:
        self.operation = operation
        self.timeout = timeout
        super().__init__(f"operation {operation} was not done after {timeout:g} s")


class ApiError(VizierError):
    """The service answered with an error status.

    Class attributes give the ``google.rpc.Code`` of each leaf: ``status`` (its name), ``code``
    (its number, as an operation's ``error.code`` carries it) and ``http_status`` (as an HTTP
    error body's ``error.code`` carries it).

    Attributes:
        message: The service's message.
        method: The HTTP method of the call that failed ("" when not known).
        url: The URL of the call that failed.
        details: The ``error.details`` list, as sent.
        operation: The operation's name when the error came from a finished operation.
        response: The ``requests.Response``, when there was one.
    """

    status = "UNKNOWN"
    code = 2
    http_status = 500

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        http_status: int | None = None,
        details: list[Any] | None = None,
        operation: str | None = None,
        response: Any = None,
    ) -> None:
        self.message = message
        self.method = method
        self.url = url
        if http_status is not None:
            self.http_status = http_status
        self.details = list(details or [])
        self.operation = operation
        self.response = response
        super().__init__(message)

    def __str__(self) -> str:
        where = f" on {self.method} {self.url}" if self.method else ""
        if self.operation:
            where += f" (operation {self.operation})"
        return f"{self.status} ({self.http_status}){where}: {self.message}"

    def __reduce__(self) -> Any:  # keep pickling (multiprocessing) working with keyword fields
        return (
            _rebuild,
            (type(self), self.message, self.method, self.url, self.http_status, self.details,
             self.operation),
        )

    def to_json(self) -> dict[str, Any]:
        """The error as an HTTP error body, ``{"error": {"code", "message", "status"}}``."""
        body: dict[str, Any] = {
            "code": self.http_status, "message": self.message, "status": self.status}
        if self.details:
            body["details"] = self.details
        return {"error": body}

    def to_status(self) -> dict[str, Any]:
        """The error as a ``google.rpc.Status`` (numeric code), as an operation carries it."""
        status: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            status["details"] = self.details
        return status


def _rebuild(cls: type[ApiError], message: str, method: str, url: str, http_status: int,
             details: list[Any], operation: str | None) -> ApiError:
    return cls(message, method=method, url=url, http_status=http_status, details=details,
               operation=operation)


class CancelledError(ApiError):
    status, code, http_status = "CANCELLED", 1, 499


class UnknownError(ApiError):
    status, code, http_status = "UNKNOWN", 2, 500


class InvalidArgumentError(ApiError, ValueError):
    status, code, http_status = "INVALID_ARGUMENT", 3, 400


class DeadlineExceededError(ApiError, TimeoutError):
    status, code, http_status = "DEADLINE_EXCEEDED", 4, 504


class NotFoundError(ApiError, LookupError):
    status, code, http_status = "NOT_FOUND", 5, 404


class AlreadyExistsError(ApiError):
    status, code, http_status = "ALREADY_EXISTS", 6, 409


class PermissionDeniedError(ApiError, PermissionError):
    status, code, http_status = "PERMISSION_DENIED", 7, 403


class ResourceExhaustedError(ApiError):
    status, code, http_status = "RESOURCE_EXHAUSTED", 8, 429


class FailedPreconditionError(ApiError, RuntimeError):
    status, code, http_status = "FAILED_PRECONDITION", 9, 400


class AbortedError(ApiError):
    status, code, http_status = "ABORTED", 10, 409


class OutOfRangeError(ApiError, ValueError):
    status, code, http_status = "OUT_OF_RANGE", 11, 400


class UnimplementedError(ApiError, NotImplementedError):
    status, code, http_status = "UNIMPLEMENTED", 12, 501


class InternalError(ApiError):
    status, code, http_status = "INTERNAL", 13, 500


class UnavailableError(ApiError):
    status, code, http_status = "UNAVAILABLE", 14, 503


class DataLossError(ApiError):
    status, code, http_status = "DATA_LOSS", 15, 500


class UnauthenticatedError(ApiError):
    status, code, http_status = "UNAUTHENTICATED", 16, 401


_LEAVES: tuple[type[ApiError], ...] = (
    CancelledError, UnknownError, InvalidArgumentError, DeadlineExceededError, NotFoundError,
    AlreadyExistsError, PermissionDeniedError, ResourceExhaustedError, FailedPreconditionError,
    AbortedError, OutOfRangeError, UnimplementedError, InternalError, UnavailableError,
    DataLossError, UnauthenticatedError,
)
_BY_NAME = {cls.status: cls for cls in _LEAVES}
_BY_CODE = {cls.code: cls for cls in _LEAVES}
# The status an HTTP code stands for when a body names none (a proxy's HTML page, say).
_BY_HTTP = {
    400: InvalidArgumentError, 401: UnauthenticatedError, 403: PermissionDeniedError,
    404: NotFoundError, 409: AbortedError, 429: ResourceExhaustedError, 499: CancelledError,
    500: InternalError, 501: UnimplementedError, 502: UnavailableError, 503: UnavailableError,
    504: DeadlineExceededError,
}


def error_from_status(status: str | int, message: str, **kwargs: Any) -> ApiError:
    """The error for a ``google.rpc.Code``, given by name ("NOT_FOUND") or number (5).

    An unknown name or number gives an :class:`UnknownError` that keeps the original in its
    message.
    """
    cls = _BY_NAME.get(status) if isinstance(status, str) else _BY_CODE.get(status)
    if cls is None:
        return UnknownError(f"[status {status}] {message}", **kwargs)
    return cls(message, **kwargs)


def error_from_http(http_status: int, body: Any, **kwargs: Any) -> ApiError:
    """The error for an HTTP error response: its JSON body when it has one, else its code."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message", ""))
        details = error.get("details") if isinstance(error.get("details"), list) else None
        status = error.get("status")
        if isinstance(status, str) and status in _BY_NAME:
            return _BY_NAME[status](message, http_status=http_status, details=details, **kwargs)
    else:
        message = body if isinstance(body, str) else ""
        details = None
    if http_status >= 400:
        fallback = InternalError if http_status >= 500 else InvalidArgumentError
        cls = _BY_HTTP.get(http_status, fallback)
    else:
        cls = UnknownError
    return cls(message[:2000], http_status=http_status, details=details, **kwargs)
