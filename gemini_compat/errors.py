"""Errors as the Gemini API reports them: ``{"error": {"code", "message", "status"}}``.

Every failure the layer reports, whether the client's fault or the upstream's, is a ``GeminiError``.
The subclasses only fix the HTTP code; the status name follows from the code (google.rpc.Code's
HTTP mapping), so the two can never disagree.
"""

# google/rpc/code.proto HTTP mapping, as the Gemini API uses it.
STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",  # what grpc-gateway answers for a known path with the wrong method
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_for(code):
    """The google.rpc status name for an HTTP code, with a sensible family default."""
    if code in STATUS_BY_CODE:
        return STATUS_BY_CODE[code]
    return "FAILED_PRECONDITION" if 400 <= code < 500 else "INTERNAL"


class GeminiError(Exception):
    """An error to report to the client in the Gemini envelope. ``retryable`` marks upstream
    failures worth another attempt (before any byte of the answer has reached the client), and
    ``retry_after`` the seconds the upstream asked to wait, if it did."""

    code = 500

    def __init__(self, message, code=None, headers=None, details=None, retryable=False, from_upstream=False,
                 retry_after=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = headers or {}
        self.details = details
        self.retryable = retryable
        self.from_upstream = from_upstream
        self.retry_after = retry_after

    @property
    def status(self):
        return status_for(self.code)

    def body(self):
        # "error" must be the first (and only) top-level key and "code" an int: the Python SDK
        # recognises a mid-stream error only by json.dumps(chunk).startswith('{"error":').
        error = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class InvalidArgument(GeminiError):
    code = 400


class PermissionDenied(GeminiError):
    code = 403


class NotFound(GeminiError):
    code = 404


class MethodNotAllowed(GeminiError):
    code = 405


class RequestTimeout(GeminiError):
    code = 408


class PayloadTooLarge(GeminiError):
    code = 413


class UnsupportedMediaType(GeminiError):
    code = 415


class Unavailable(GeminiError):
    code = 503


class UpstreamError(GeminiError):
    """The upstream failed or answered something that cannot be translated."""

    code = 502


class UpstreamUnavailable(UpstreamError):
    code = 503


class UpstreamTimeout(UpstreamError):
    code = 504


class UpstreamTooLarge(UpstreamError):
    """An upstream answer, stream line or event, or accumulated streamed value past the cap."""

    def __init__(self, limit, what="The upstream answer"):
        super().__init__(f"{what} exceeds MAX_UPSTREAM_RESPONSE_BYTES ({limit} bytes).")
