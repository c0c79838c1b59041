"""The upstream SSE reader: events come out whole, whatever the framing and however the bytes are split."""

import pytest

from gemini_compat.sse import read_events

LIMIT = 1024 * 1024


def events(*blocks):
    return [(kind, data.decode()) for kind, data in read_events(list(blocks), LIMIT)]


@pytest.mark.parametrize("raw,expected", [
    (b"data: {}\n\n", [("message", "{}")]),
    (b"data:{}\n\n", [("message", "{}")]),
    (b"data: {}\r\n\r\n", [("message", "{}")]),
    (b"data: {}\r\rdata: []\r\r", [("message", "{}"), ("message", "[]")]),
    (b": keepalive\n\ndata: {}\n\n", [("message", "{}")]),
    (b": OPENROUTER PROCESSING\ndata: {}\n\n", [("message", "{}")]),
    (b"data:\n\ndata: {}\n\n", [("message", "{}")]),
    (b"event: message\nid: 3\nretry: 10\ndata: {}\n\n", [("message", "{}")]),
    (b"data: {\ndata: }\n\n", [("message", "{\n}")]),
    (b"error: {\"code\":400}\n\ndata: [DONE]\n\n", [("error", "{\"code\":400}"), ("message", "[DONE]")]),
    (b"event: error\ndata: {\"e\":1}\n\n", [("error", "{\"e\":1}")]),
    (b"{\"error\": {\"message\": \"raw\"}}\n\n", [("message", "{\"error\": {\"message\": \"raw\"}}")]),
    (b"data: {}", [("message", "{}")]),
    (b"data: {}\n", [("message", "{}")]),
    (b"no colon line\ndata: {}\n\n", [("message", "{}")]),
    (b"\xef\xbb\xbfdata: {}\n\n", [("message", "{}")]),
])
def test_framings(raw, expected):
    assert events(raw) == expected


def test_every_split_of_the_bytes_gives_the_same_events():
    raw = b": ping\r\ndata: {\"a\": 1}\r\n\r\ndata: {\"b\": 2}\r\n\r\ndata: [DONE]\r\n\r\n"
    expected = [("message", '{"a": 1}'), ("message", '{"b": 2}'), ("message", "[DONE]")]
    for cut in range(1, len(raw)):
        assert events(raw[:cut], raw[cut:]) == expected, cut
    assert events(*[raw[i:i + 1] for i in range(len(raw))]) == expected


def test_an_event_is_yielded_before_the_next_block_is_read():
    def blocks():
        yield b"data: 1\n\n"
        raise AssertionError("read ahead")

    reader = read_events(blocks(), LIMIT)
    assert next(reader) == ("message", b"1")

