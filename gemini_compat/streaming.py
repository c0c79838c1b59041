"""The client's side of a stream: Gemini chunks in, the bytes of a streamed response out.

Two framings, as Google's API has them: with ``?alt=sse``, server-sent events; without it, one JSON
array written element by element. The stream's first bytes are produced before the response's
headers go out, so that a failure before any output is still a real HTTP error (and worth a retry).
A failure after that can only be the stream's last element, ``{"error": ...}``, in either framing:
the SDKs raise it. The source is closed however the stream ends, also when the client goes away.
"""

import flask

from .errors import GeminiError
from .json_wire import JSON_CONTENT_TYPE, dumps
from .logs import internal_error


class SSE:
    """Each chunk one event: ``{"a": 1}`` -> ``data: {"a":1}\\r\\n\\r\\n`` (Google's CRLF framing)."""

    content_type = "text/event-stream"

    @staticmethod
    def element(value, first):
        return b"data: " + dumps(value) + b"\r\n\r\n"

    @staticmethod
    def end(sent):
        return b""


class JSONArray:
    """Chunks ``{"a": 1}``, ``{"b": 2}`` -> ``[{"a":1},\\r\\n{"b":2}]``; no chunks -> ``[]``."""

    content_type = JSON_CONTENT_TYPE

    @staticmethod
    def element(value, first):
        return (b"[" if first else b",\r\n") + dumps(value)

    @staticmethod
    def end(sent):
        return b"]" if sent else b"[]"


def started(chunks, sse, close, ended):
    """The client's bytes for ``chunks`` (Gemini chunks, as an iterator that may raise), run up to
    the first bytes: a failure before them is raised here, for the caller to answer as an HTTP error.

    ``close()`` is called once the stream is over, however it ends (the source's upstream);
    ``ended(status, error)`` then, unless the failure was raised here: 200, the error sent as the
    last element, or 499 when the client went away."""
    body = _body(chunks, _framing(sse), close, ended)
    first = next(body, None)
    return body if first is None else _prepend(first, body)  # None: an SSE stream without chunks, over


def response(body, sse):
    """The 200 response that sends ``body`` (from ``started``) as it comes."""
    return flask.Response(body, 200, content_type=_framing(sse).content_type,
                          headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _framing(sse):
    return SSE if sse else JSONArray


def _body(chunks, framing, close, ended):
    sent, status, failure = False, 200, None
    try:
        for chunk in chunks:
            data = framing.element(chunk, not sent)
            sent = True
            yield data
        data = framing.end(sent)
        if data:
            yield data
    except GeneratorExit:
        status = 499  # the client went away
        raise
    except Exception as error:  # noqa: BLE001 - after the first byte, every failure becomes the last element
        if not sent:
            status = None  # raised: the caller answers it, and logs it
            raise
        failure = error if isinstance(error, GeminiError) else internal_error("unexpected error in a stream")
        status = failure.code
        yield framing.element(failure.body(), False) + framing.end(True)
    finally:
        close()
        if status is not None:
            ended(status, failure)


def _prepend(first, rest):
    # A generator, not itertools.chain: closing it must close ``rest`` (and so the source).
    try:
        yield first
        yield from rest
    finally:
        rest.close()
