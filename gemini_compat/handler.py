"""The HTTP edge: a Flask request in, a Flask response out. Everything else is called from here."""

import json
import logging

import flask

from . import auth, routing
from .errors import GeminiError, InvalidArgument, UpstreamError
from .request_translation import chat_request
from .response_translation import StreamTranslator, gemini_response, upstream_error
from .sse import dumps, read_events, sse_event
from .upstream import Upstream, read_blocks
from .validation import GENERATE_CONTENT

log = logging.getLogger("gemini_compat")

JSON = "application/json; charset=utf-8"


class Gateway:
    """One per process: the settings and the upstream connection pool, shared by all requests."""

    def __init__(self, settings):
        self.settings = settings
        self.upstream = Upstream(settings)

    def handle(self, request):
        try:
            route = routing.parse_route(routing.raw_path(request.environ), request.method)
            key = auth.caller_key(request.headers, request.args)
            body = GENERATE_CONTENT.validate(json_body(request))
            if route.action == "streamGenerateContent":
                return self.stream(route, key, body, sse=request.args.get("alt") == "sse")
            return self.generate(route, key, body)
        except GeminiError as error:
            return error_response(error)
        except RecursionError:
            return error_response(InvalidArgument("Invalid JSON payload received. The body is nested too deeply."))
        except Exception:  # a bug of ours: still a Gemini error, never an HTML page or a traceback
            log.exception("unexpected error")
            return error_response(GeminiError("An internal error has occurred."))

    def generate(self, route, key, body):
        payload, options = chat_request(body, route.model, stream=False)
        completion = self.upstream.complete(payload, key)
        return flask.Response(dumps(gemini_response(completion, options)), 200, content_type=JSON)

    def stream(self, route, key, body, sse):
        payload, options = chat_request(body, route.model, stream=True)
        translator = StreamTranslator(options, payload.get("n", 1))
        upstream_response = self.upstream.open_stream(payload, key)
        chunks = stream_body(upstream_response, translator, sse)
        # Run up to the first chunk now, so that a failure before any output is a real HTTP error.
        first = next(chunks)
        return flask.Response(_prepend(first, chunks), 200,
                              content_type="text/event-stream" if sse else JSON,
                              headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def json_body(request):
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise InvalidArgument("Invalid JSON payload received. The request body is empty.")
    try:
        return json.loads(raw)
    except ValueError as error:
        reason = getattr(error, "msg", "not UTF-8")
        raise InvalidArgument(f"Invalid JSON payload received. {reason}.") from None


def error_response(error):
    return flask.Response(dumps(error.body()), error.code, headers=error.headers, content_type=JSON)


def stream_body(upstream_response, translator, sse):
    """The client's byte stream: SSE events, or a JSON array written element by element.

    A failure after output has begun is sent as a last ``{"error": ...}`` element; before that it
    is raised, for the caller to answer with an HTTP error. The upstream response is always closed,
    also when the client goes away (the server then closes this generator)."""
    started = False
    try:
        for chunk in gemini_chunks(upstream_response, translator):
            if sse:
                yield sse_event(chunk)
            else:
                yield (b",\r\n" if started else b"[") + dumps(chunk)
            started = True
        if not sse:
            yield b"]"
    except GeminiError as error:
        if not started:
            raise
        log.warning("stream failed after output began: %s %s", error.code, error.message)
        yield sse_event(error.body()) if sse else b",\r\n" + dumps(error.body()) + b"]"
    finally:
        upstream_response.close()


def gemini_chunks(upstream_response, translator):
    if upstream_response.headers.get("Content-Type", "").startswith("application/json"):
        # A server that ignored "stream": true and answered whole: one chunk with everything.
        yield gemini_response(json.loads(upstream_response.content), translator.options)
        return
    for event, data in read_events(read_blocks(upstream_response)):
        if data.strip() == b"[DONE]":
            yield from translator.done()
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            shown = data[:200].decode("utf-8", "replace")
            raise UpstreamError(f"The upstream sent an invalid stream event: {shown}") from None
        if event == "error" or not isinstance(chunk, dict):
            raise upstream_error(None, chunk)
        yield from translator.translate(chunk)
    yield from translator.end_of_stream()


def _prepend(first, rest):
    # A generator, not itertools.chain: closing it must close ``rest`` (and so the upstream).
    yield first
    yield from rest


def framework_error_response(error):
    """Errors the framework raises before the function runs (/favicon.ico, /robots.txt) in the envelope."""
    return error_response(GeminiError(error.description or error.name, code=error.code or 500))
