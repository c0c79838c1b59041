"""The client's side of a stream (gemini_compat.streaming), in process: a fake source of chunks and
failures in, the exact bytes out, in both framings, piece by piece as they would be written."""

import json

import pytest

from gemini_compat import streaming
from gemini_compat.errors import UpstreamError

A, B = {"a": 1}, {"b": 2}
BROKE = UpstreamError("The upstream broke off.")
BROKE_ELEMENT = b'{"error":{"code":500,"message":"The upstream broke off.","status":"INTERNAL"}}'
OURS_ELEMENT = b'{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}'


class Source:
    """Gemini chunks as the gateway hands them over; an exception in ``items`` is raised when reached."""

    def __init__(self, items):
        self.items, self.taken, self.closed, self.ended = items, 0, 0, []

    def chunks(self):
        for item in self.items:
            self.taken += 1
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self):
        self.closed += 1

    def end(self, status, error):
        self.ended.append((status, error.body() if error else None))

    def started(self, sse):
        return streaming.started(self.chunks(), sse, self.close, self.end)


# name: (source, SSE pieces, JSON array pieces, (status, error element) the stream ended with)
CASES = {
    "two chunks": ([A, B], [b'data: {"a":1}\r\n\r\n', b'data: {"b":2}\r\n\r\n'],
                   [b'[{"a":1}', b',\r\n{"b":2}', b"]"], (200, None)),
    "one line, escaped": ([{"text": "a\nb\u2028", "é": 1}], ['data: {"text":"a\\nb\\u2028","é":1}\r\n\r\n'.encode()],
                          ['[{"text":"a\\nb\\u2028","é":1}'.encode(), b"]"], (200, None)),
    "no chunks": ([], [], [b"[]"], (200, None)),
    "an error after a chunk": ([A, BROKE, B], [b'data: {"a":1}\r\n\r\n', b"data: " + BROKE_ELEMENT + b"\r\n\r\n"],
                               [b'[{"a":1}', b",\r\n" + BROKE_ELEMENT + b"]"], (500, json.loads(BROKE_ELEMENT))),
    "a bug of ours after a chunk": ([A, KeyError("x")], [b'data: {"a":1}\r\n\r\n', b"data: " + OURS_ELEMENT + b"\r\n\r\n"],
                                    [b'[{"a":1}', b",\r\n" + OURS_ELEMENT + b"]"], (500, json.loads(OURS_ELEMENT))),
}


@pytest.mark.parametrize("sse", [True, False], ids=["sse", "json-array"])
@pytest.mark.parametrize("name", list(CASES))
def test_framing(name, sse, capsys):
    items, sse_pieces, array_pieces, ended = CASES[name]
    source = Source(items)
    assert list(source.started(sse)) == (sse_pieces if sse else array_pieces)
    assert (source.closed, source.ended) == (1, [ended])
    logged = capsys.readouterr().out
    traceback_logged = '"severity":"ERROR"' in logged and "Traceback" in logged and "KeyError" in logged
    assert traceback_logged == (name == "a bug of ours after a chunk")


@pytest.mark.parametrize("sse", [True, False], ids=["sse", "json-array"])
def test_the_first_chunk_is_ready_before_the_headers_and_a_failure_before_it_is_raised(sse):
    source = Source([A, B])
    body = source.started(sse)
    assert source.taken == 1 and source.ended == []  # read up to the first chunk, not beyond
    assert next(body).startswith((b"data: ", b"["))
    failing = Source([BROKE, A])
    with pytest.raises(UpstreamError) as raised:
        failing.started(sse)
    assert raised.value is BROKE
    # Closed, but not logged: the caller answers the error with its HTTP status and logs that.
    assert (failing.taken, failing.closed, failing.ended) == (1, 1, [])


@pytest.mark.parametrize("after", [1, 2], ids=["first-chunk", "second-chunk"])
@pytest.mark.parametrize("sse", [True, False], ids=["sse", "json-array"])
def test_a_client_that_goes_away_closes_the_source(sse, after):
    source = Source([A, B, A])
    body = source.started(sse)
    for _ in range(after):
        next(body)
    body.close()  # what the server does when the client has gone
    assert (source.taken, source.closed, source.ended) == (after, 1, [(499, None)])


@pytest.mark.parametrize("sse,content_type", [(True, "text/event-stream"), (False, "application/json; charset=utf-8")])
def test_the_response_streams_with_the_framing_s_content_type(sse, content_type):
    response = streaming.response(Source([A]).started(sse), sse)
    assert (response.status_code, response.content_type, response.is_streamed) == (200, content_type, True)
    assert response.headers["Cache-Control"] == "no-cache" and response.headers["X-Accel-Buffering"] == "no"
