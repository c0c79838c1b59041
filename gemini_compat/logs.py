"""One structured JSON line per request on stdout, the format Cloud Logging reads.

Never logged: keys, query strings (they may hold ?key=), headers, prompt or answer text.
"""

import json
import re
import sys
import time
import traceback

from .errors import GeminiError
from .json_wire import one_line

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?")


class RequestLog:
    """Filled in while a request is served, written once when it ends (for a stream: at its end)."""

    def __init__(self, request, project=""):
        self.started = time.monotonic()
        self.method = request.method
        self.path = request.path
        self.user_agent = request.headers.get("User-Agent", "")
        self.request_size = request.content_length or 0
        self.trace = trace_fields(request.headers, project)
        self.fields = {}  # model, upstreamModel, upstreamStatus, usage, stream
        self.written = False

    def write(self, status, error=None):
        if self.written:
            return
        self.written = True
        latency = time.monotonic() - self.started
        record = {
            "severity": "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO",
            "message": f"{self.method} {self.path} {status} {latency * 1000:.0f}ms"
                       + (f": {error_summary(error)}" if error is not None else ""),
            "httpRequest": {
                "requestMethod": self.method,
                "requestUrl": self.path,
                "status": status,
                "requestSize": str(self.request_size),
                "userAgent": self.user_agent,
                "latency": f"{latency:.6f}s",
            },
            **self.trace,
            **self.fields,
        }
        emit(record)


def internal_error(what):
    """For an exception of ours (a bug), while it is handled: its traceback logged at ERROR after
    ``what``, and the error the client gets, which says nothing of it."""
    emit({"severity": "ERROR", "message": f"{what}\n" + traceback.format_exc()})
    return GeminiError("An internal error has occurred.")


def error_summary(error):
    """What the log says of an error. The upstream's own error messages are logged whole. Ours may
    quote the client's input or the upstream's answer after a colon, so only what precedes it is:
    for a 400, the field path."""
    if error.from_upstream:
        return error.message
    head, colon, _ = error.message.partition(": ")
    if not colon:
        return f"{error.status}: {error.message}" if error.code >= 500 else error.status
    return f"{error.status} at {head}" if " " not in head else f"{error.status}: {head}"


def trace_fields(headers, project):
    """Cloud Logging's trace fields from W3C traceparent or X-Cloud-Trace-Context."""
    match = _TRACEPARENT.match(headers.get("traceparent", "").strip())
    if match:
        trace_id, span_id = match.group(1), match.group(2)
    else:
        match = _CLOUD_TRACE.match(headers.get("X-Cloud-Trace-Context", "").strip())
        if not match:
            return {}
        trace_id, span_id = match.group(1).lower(), match.group(2)
        span_id = f"{int(span_id):016x}" if span_id and int(span_id) < 2**64 else None
    fields = {"logging.googleapis.com/trace": f"projects/{project}/traces/{trace_id}" if project else trace_id}
    if span_id:
        fields["logging.googleapis.com/spanId"] = span_id
    return fields


def emit(record):
    """Write ``record`` as one JSON line. Never raises and never drops the line: a string the output
    cannot encode (a lone surrogate an upstream sent) is written escaped, a value JSON does not know
    as its repr()."""
    line = one_line(json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=repr))
    try:
        line.encode(sys.stdout.encoding or "utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record, separators=(",", ":"), default=repr)
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):  # stdout closed or gone: nowhere left to log to
        pass
