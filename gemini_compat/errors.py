"""Errors as the Gemini API reports them: ``{"error": {"code", "message", "status"}}``.

Every failure the layer reports, whether the client's fault or the upstream's, is a ``GeminiError``.
Its HTTP code is always one Google's API answers with, and its status the google.rpc.Code that
code stands for (google/rpc/code.proto gives each code its HTTP mapping), so the two never
disagree. HTTP codes outside that mapping are not sent: Google answers an oversized body
``400 INVALID_ARGUMENT "Request payload size exceeds the limit"``, and its front end a method a
path does not take ``404 NOT_FOUND``; Cloud Endpoints reports an unusable backend as code 13,
INTERNAL (https://cloud.google.com/endpoints/docs/openapi/troubleshoot-response-errors).
"""

import json

# google/rpc/code.proto: the HTTP code of each status (the first status of a shared code).
STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def google_code(code):
    """The code Google would answer for another server's HTTP error ``code``: itself if Google uses
    it; a timeout (408) as DEADLINE_EXCEEDED; other 4xx (405, 413, 422...) as INVALID_ARGUMENT;
    a gateway's failure (502, Cloudflare's 52x...) as UNAVAILABLE; any other as INTERNAL."""
    if code in STATUS_BY_CODE:
        return code
    if code == 408:
        return 504
    if 400 <= code < 500:
        return 400
    return 503 if code == 502 or 520 <= code <= 530 else 500


def status_for(code):
    """The google.rpc status name for an HTTP code."""
    return STATUS_BY_CODE[google_code(code)]


class GeminiError(Exception):
    """An error to report to the client in the Gemini envelope. ``retryable`` marks upstream
    failures worth another attempt (before any byte of the answer has reached the client), and
    ``retry_after`` the seconds the upstream asked to wait, if it did."""

    code = 500
    # A google.rpc status other than the first of its HTTP code (FAILED_PRECONDITION for 400, say).
    status_name = None

    def __init__(self, message, code=None, headers=None, details=None, retryable=False, from_upstream=False,
                 retry_after=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = google_code(code)
        self.headers = headers or {}
        self.details = details
        self.retryable = retryable
        self.from_upstream = from_upstream
        self.retry_after = retry_after

    @property
    def status(self):
        return self.status_name or status_for(self.code)

    def body(self):
        # "error" must be the first (and only) top-level key and "code" an int: the Python SDK
        # recognises a mid-stream error only by json.dumps(chunk).startswith('{"error":').
        error = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class InvalidArgument(GeminiError):
    """400. With ``field`` (a path: ``contents[0].parts``), the message leads with the field, and the
    details carry it as Google's BadRequest field violation, where clients look for it:
    ``InvalidArgument("unknown field", field="contents[0].role")`` ->
    ``{"message": "contents[0].role: unknown field", "details": [{"@type": "….BadRequest",
    "fieldViolations": [{"field": "contents[0].role", "description": "unknown field"}]}]}``."""

    code = 400

    def __init__(self, message, field=None, **kwargs):
        if field:
            violation = {"field": field, "description": message}
            kwargs["details"] = [*(kwargs.get("details") or ()),
                                 {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}]
            message = f"{field}: {message}"
        super().__init__(message, **kwargs)


def field_path(parts):
    """``["contents", 0, "parts"]`` -> ``contents[0].parts``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier() or part.startswith("$"):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def api_key_invalid(message="API key not valid. Please pass a valid API key.", **kwargs):
    """What Google answers for a wrong key: 400 with reason API_KEY_INVALID, which clients read to
    ask for another key."""
    return InvalidArgument(message, details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                              "reason": "API_KEY_INVALID", "domain": "googleapis.com"}], **kwargs)


class PermissionDenied(GeminiError):
    code = 403


class NotFound(GeminiError):
    code = 404


class AlreadyExists(GeminiError):
    """409 ALREADY_EXISTS (google.rpc.Code 6 shares its HTTP code with ABORTED)."""

    code = 409
    status_name = "ALREADY_EXISTS"


class FailedPrecondition(GeminiError):
    """400 FAILED_PRECONDITION: the request is valid, the resource's state does not allow it."""

    code = 400
    status_name = "FAILED_PRECONDITION"


class ResourceExhausted(GeminiError):
    code = 429


class Unimplemented(GeminiError):
    code = 501


class Unavailable(GeminiError):
    code = 503


class DeadlineExceeded(GeminiError):
    code = 504


class UpstreamError(GeminiError):
    """The upstream failed or answered something that cannot be translated."""

    code = 500


class UpstreamUnavailable(UpstreamError):
    code = 503


class UpstreamTimeout(UpstreamError):
    code = 504


class UpstreamTooLarge(UpstreamError):
    """An upstream answer, stream line or event, or accumulated streamed value past the cap."""

    def __init__(self, limit, what="The upstream answer"):
        super().__init__(f"{what} exceeds MAX_UPSTREAM_RESPONSE_BYTES ({limit} bytes).")
