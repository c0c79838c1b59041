"""The upstream module against a broken or hostile upstream: bounded reading (caps, compression,
linear SSE and tool-call accumulation), the total deadline, odd statuses, keys redacted from
everything the upstream says, and upstream error bodies of every shape."""

import gzip
import io
import json
import time
import zlib

import pytest
import requests
import urllib3

from fake_upstream import Json, Pause, Raw, Stream, chunk, completion, text_stream, tool_call
from gemini_compat.config import Settings
from gemini_compat.errors import GeminiError, UpstreamTooLarge
from gemini_compat.response_options import ResponseOptions
from gemini_compat.response_translation import StreamTranslator
from gemini_compat.sse import read_events
from gemini_compat.upstream import EventStream, redacted, shortened, upstream_error
from helpers import KEY, error_of, hello, sse_chunks

GENERATE = "/v1beta/models/qwen-turbo:generateContent"
SSE = "/v1beta/models/qwen-turbo:streamGenerateContent?alt=sse"
# 56 characters, like an OpenAI project key.
SECRET = "sk-proj-Zq7XwV3pLm9TfR2bYk8NcD4hGs6JuA1eWo5iPq0tKx9MbV2c"
MiB = 1024 * 1024


def post(server, path=GENERATE, key=KEY, **kwargs):
    return requests.post(server.url + path, json=hello(), headers={"x-goog-api-key": key}, timeout=30, **kwargs)


# --- redaction: a pure function --------------------------------------------------------------------

def test_the_whole_key_is_redacted_everywhere_it_appears():
    text = f"Incorrect API key provided: {SECRET}. You passed {SECRET}!"
    assert redacted(text, SECRET) == "Incorrect API key provided: [redacted]. You passed [redacted]!"


@pytest.mark.parametrize("quoted", [SECRET[:40], SECRET[-12:], SECRET[10:18], SECRET[:40] + "****"])
def test_runs_of_8_or_more_characters_of_the_key_are_redacted(quoted):
    # OpenAI quotes a key cut to its first characters; HTML pages quote pieces mid-text.
    text = f"<p>key {quoted} refused</p>"
    shown = redacted(text, SECRET)
    assert shown.startswith("<p>key [redacted]") and shown.endswith(" refused</p>")
    assert all(SECRET[i:i + 8] not in shown for i in range(len(SECRET) - 7))


def test_fewer_than_8_characters_of_the_key_and_short_keys_are_left_alone():
    assert redacted(f"ends with {SECRET[:7]}", SECRET) == f"ends with {SECRET[:7]}"
    assert redacted("x marks the spot, xxxxxxxx", "x") == "x marks the spot, xxxxxxxx"
    assert redacted("key abcdefg is short", "abcdefg") == "key abcdefg is short"


def test_cutting_after_redaction_never_splits_the_marker():
    text = redacted("a" * 95 + SECRET + " tail", SECRET)
    for limit in range(90, 110):
        cut = shortened(text, limit)
        assert cut.count("[redacted]") == (1 if limit > 95 else 0) and "[reda" not in cut.replace("[redacted]", "")


def test_an_error_message_is_redacted_before_it_is_cut():
    # The old order (cut, then replace the whole key) left the key's first characters at the cut.
    payload = {"error": {"code": "invalid_key", "detail": ["x" * 940 + SECRET]}}  # no message: the JSON is shown
    message = upstream_error(401, payload, key=SECRET).message
    assert SECRET[:8] not in message and "[redacted]" in message


# --- upstream error bodies, whatever their shape ---------------------------------------------------
# The client gets the code Google would answer (google.rpc.Code's HTTP mapping), never another.

@pytest.mark.parametrize("status,payload,message,code,status_name", [
    (429, {"error": {"message": "Quota!", "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}},
     "Quota!", 429, "RESOURCE_EXHAUSTED"),
    (400, {"object": "error", "message": "Too long", "type": "BadRequestError", "code": 400}, "Too long", 400,
     "INVALID_ARGUMENT"),
    (401, {"error": "bad key"}, "API key not valid. Please pass a valid API key. (The upstream said: bad key)", 400,
     "INVALID_ARGUMENT"),
    (404, {"detail": "Not Found"}, "Not Found", 404, "NOT_FOUND"),
    (400, {"error": {"code": 400, "message": "Provider returned error", "metadata": {"raw": "ERROR"}}},
     "Provider returned error: ERROR", 400, "INVALID_ARGUMENT"),
    (503, "Loading model", "Loading model", 503, "UNAVAILABLE"),
    (402, {"error": {"message": "Insufficient credits"}}, "Insufficient credits", 400, "INVALID_ARGUMENT"),
    (422, {"detail": "field required"}, "field required", 400, "INVALID_ARGUMENT"),
    (408, "Request Timeout", "Request Timeout", 504, "DEADLINE_EXCEEDED"),
    (502, "Bad gateway", "Bad gateway", 503, "UNAVAILABLE"),
    (522, "Connection timed out", "Connection timed out", 503, "UNAVAILABLE"),
    (505, "HTTP Version Not Supported", "HTTP Version Not Supported", 500, "INTERNAL"),
    (500, "", "INTERNAL", 500, "INTERNAL"),
    (None, {"error": {"message": "boom", "type": "InternalServerError", "code": 500}}, "boom", 500, "INTERNAL"),
    # In a 200 answer: the error's own HTTP code, else a gateway failure (502); a 502 is answered 503 UNAVAILABLE.
    (None, {"error": {"message": "lost", "code": "502"}}, "lost", 503, "UNAVAILABLE"),
    (None, {"error": {"message": "server had an error", "type": "server_error"}}, "server had an error", 503, "UNAVAILABLE"),
    (None, {"error": {"code": "server_error", "message": "Provider disconnected"}}, "Provider disconnected", 503,
     "UNAVAILABLE"),
])
def test_upstream_error_shapes(status, payload, message, code, status_name):
    error = upstream_error(status, payload)
    assert isinstance(error, GeminiError)
    assert (error.code, error.status) == (code, status_name)
    assert message in error.message
    assert list(error.body()) == ["error"] and list(error.body()["error"])[:3] == ["code", "message", "status"]


def test_an_upstream_401_is_the_callers_key_or_the_endpoints():
    caller = upstream_error(401, {"error": {"message": "Invalid API key."}})
    assert caller.body() == {"error": {
        "code": 400, "message": "API key not valid. Please pass a valid API key. (The upstream said: Invalid API key.)",
        "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                   "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}
    endpoint = upstream_error(401, {"error": {"message": "Invalid API key."}}, team_mode=True)
    assert endpoint.body() == {"error": {
        "code": 500, "message": "The upstream refused this endpoint's UPSTREAM_API_KEY: Invalid API key.",
        "status": "INTERNAL"}}
    assert not caller.retryable and not endpoint.retryable


@pytest.mark.parametrize("status", [429, 502, 503])
def test_retries_follow_the_upstreams_own_status(status):
    assert upstream_error(status, {"error": {"message": "again"}}).retryable


def test_retry_after_is_passed_on_with_retry_info():
    error = upstream_error(429, {"error": {"message": "slow down"}}, {"Retry-After": "7"})
    assert error.headers == {"Retry-After": "7"}
    assert error.body()["error"]["details"] == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]


@pytest.mark.parametrize("headers,expected", [
    ({"Retry-After": "nan"}, None), ({"retry-after-ms": "nan"}, None), ({"retry-after-ms": "inf"}, None),
    ({"Retry-After": "\u00b2"}, None), ({"Retry-After": "1.5"}, "2"), ({"retry-after-ms": "1200"}, "2"),
    ({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, "Wed, 21 Oct 2026 07:28:00 GMT"),
])
def test_odd_retry_after_headers(headers, expected):
    assert upstream_error(429, {"error": {"message": "slow"}}, headers).headers.get("Retry-After") == expected


# --- the SSE reader: capped and linear -------------------------------------------------------------

def test_a_data_line_that_never_ends_stops_at_the_cap_quickly():
    def blocks():
        yield b"data: "
        for _ in range(16 * 16 + 2):  # 16 MiB + 128 KiB, in 64 KiB blocks
            yield b"x" * 65536

    started = time.process_time()
    with pytest.raises(UpstreamTooLarge, match=r"exceeds MAX_UPSTREAM_RESPONSE_BYTES \(16777216 bytes\)"):
        list(read_events(blocks(), 16 * MiB))
    assert time.process_time() - started < 2


def test_an_event_of_many_lines_stops_at_the_cap():
    with pytest.raises(UpstreamTooLarge, match="stream event"):
        list(read_events([b"data: " + b"y" * 1000 + b"\n"] * 100, 50_000))


def test_one_byte_blocks_of_a_1_mb_event_are_read_in_linear_time():
    raw = b"data: " + json.dumps({"text": "z" * MiB}).encode() + b"\n\n"
    started = time.process_time()
    [(kind, data)] = read_events((raw[i:i + 1] for i in range(len(raw))), 2 * MiB)
    assert time.process_time() - started < 5  # quadratic re-joining: hours
    assert kind == "message" and len(json.loads(data)["text"]) == MiB


# --- tool-call fragments: incremental, capped ------------------------------------------------------

OPTIONS = ResponseOptions(model="m")


def test_8_mb_of_tool_call_fragments_that_never_close_cost_little_and_hit_the_cap():
    translator = StreamTranslator(OPTIONS, 1, limit=8 * MiB)
    translator.translate(chunk({"tool_calls": [tool_call("f", '{"a": "', index=0)]}))
    piece = chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'b\\"c}{' * 100}}]})
    started = time.process_time()
    with pytest.raises(UpstreamTooLarge) as raised:
        for _ in range(8 * MiB // 600 + 10):
            translator.translate(piece)
    assert time.process_time() - started < 2.5  # re-parsing every fragment: over a minute
    assert (raised.value.code, raised.value.status) == (500, "INTERNAL") and "tool call" in raised.value.message


ARGUMENTS = '{"a": "x}\\\\\\"{", "b": [1, {"c": "]\\u00e9"}], "d": {}}'


@pytest.mark.parametrize("cut", range(1, len(ARGUMENTS)))
def test_a_call_is_emitted_at_the_fragment_that_completes_it_whatever_the_cut(cut):
    translator = StreamTranslator(OPTIONS)
    first = translator.translate(chunk({"tool_calls": [tool_call("f", ARGUMENTS[:cut], index=0)]}))
    second = translator.translate(chunk({"tool_calls": [{"index": 0, "function": {"arguments": ARGUMENTS[cut:]}}]}))
    assert first == []
    [part] = second[0]["candidates"][0]["content"]["parts"]
    assert part["functionCall"]["args"] == json.loads(ARGUMENTS)


def test_arguments_that_close_but_do_not_parse_wait_for_the_finish():
    translator = StreamTranslator(OPTIONS)
    assert translator.translate(chunk({"tool_calls": [tool_call("f", "{not json}", index=0)]})) == []
    assert translator.translate(chunk({"tool_calls": [{"index": 0, "function": {"arguments": " more"}}]})) == []
    [final] = translator.translate(chunk({}, finish="tool_calls")) + translator.done()
    assert final["candidates"][0]["finishReason"] == "MALFORMED_FUNCTION_CALL"
    assert "{not json} more" in final["candidates"][0]["finishMessage"]


def test_a_text_enum_answer_is_capped():
    translator = StreamTranslator(ResponseOptions(model="m", enum_answer=True), 1, limit=1000)
    with pytest.raises(UpstreamTooLarge):
        for _ in range(20):
            translator.translate(chunk({"content": "v" * 100}))


# --- the event stream, over an in-memory body ------------------------------------------------------

class _Body(io.RawIOBase):
    def __init__(self, blocks):
        self._blocks = iter(blocks)

    def readable(self):
        return True

    def readinto(self, buffer):
        data = next(self._blocks, b"")
        buffer[:len(data)] = data
        return len(data)

    def read1(self, size=-1):
        return next(self._blocks, b"")


def event_stream(*blocks, key=KEY, headers=None, limit=MiB):
    response = urllib3.HTTPResponse(body=_Body(blocks), headers=headers or {"Content-Type": "text/event-stream"},
                                    status=200, preload_content=False, decode_content=False)
    return EventStream(response, key, Settings(max_upstream_response_bytes=limit))


def test_chunks_then_done():
    stream = event_stream(b'data: {"choices": []}\n\n', b"data: [DONE]\n\n")
    assert list(stream) == [{"choices": []}] and stream.done and not stream.whole


def test_the_end_of_the_body_without_done():
    stream = event_stream(b'data: {"choices": []}\n\n')
    assert list(stream) == [{"choices": []}] and not stream.done


@pytest.mark.parametrize("raw,code,message", [
    (b'data: {"error": {"message": "boom", "code": 503}}\n\n', 503, "boom"),
    (b'error: {"code": 400, "message": "too long"}\n\n', 400, "too long"),
    (b'event: error\ndata: {"message": "overloaded"}\n\n', 503, "overloaded"),  # no code: a gateway failure
    (b'data: "just a string"\n\n', 503, "just a string"),
    (b'data: {"id": ' + SECRET.encode() + b"\n\n", 500, "invalid stream event"),  # untranslatable: INTERNAL
])
def test_errors_in_the_stream_are_raised_redacted(raw, code, message):
    with pytest.raises(GeminiError) as raised:
        list(event_stream(b'data: {"choices": []}\n\n', raw, key=SECRET))
    assert raised.value.code == code and message in raised.value.message
    assert SECRET[:8] not in raised.value.message


def test_the_model_is_redacted_once_for_all_chunks():
    events = [b'data: {"model": "echo-' + SECRET[:30].encode() + b'", "choices": []}\n\n'] * 3
    assert [item["model"] for item in event_stream(*events, key=SECRET)] == ["echo-[redacted]"] * 3


def test_a_whole_json_answer_is_the_one_item():
    stream = event_stream(json.dumps(completion("whole")).encode(), headers={"Content-Type": "application/json"})
    [answer] = list(stream)
    assert stream.whole and answer["choices"][0]["message"]["content"] == "whole"


# --- over HTTP: compression, caps, statuses, the deadline, keys -------------------------------------

@pytest.fixture(scope="module")
def capped(serve):
    return serve(MAX_UPSTREAM_RESPONSE_BYTES="65536", UPSTREAM_RETRIES="0")


def test_we_ask_for_no_compression(capped, upstream):
    post(capped)
    assert upstream.chat_requests[0]["headers"]["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("encoding,compress", [("gzip", gzip.compress), ("deflate", zlib.compress)])
def test_a_compressed_answer_is_decoded_anyway(capped, upstream, encoding, compress):
    upstream.reply(Raw(compress(json.dumps(completion("squeezed")).encode()), content_type="application/json",
                       headers={"Content-Encoding": encoding}))
    response = post(capped)
    assert response.status_code == 200 and response.json()["candidates"][0]["content"]["parts"] == [{"text": "squeezed"}]


def test_a_gzip_bomb_stops_at_the_cap(capped, upstream):
    bomb = gzip.compress(b'{"pad": "' + b" " * (50 * MiB))  # 50 KB that inflate to 50 MB
    upstream.reply(Raw(bomb, content_type="application/json", headers={"Content-Encoding": "gzip"}))
    started = time.monotonic()
    response = post(capped)
    assert time.monotonic() - started < 2
    assert (response.status_code, error_of(response)["status"]) == (500, "INTERNAL")
    assert error_of(response)["message"] == "The upstream answer exceeds MAX_UPSTREAM_RESPONSE_BYTES (65536 bytes)."


def test_a_gzip_stream_is_decoded_and_its_events_capped(capped, upstream):
    events = "".join(f"data: {json.dumps(item)}\n\n" if item != "[DONE]" else "data: [DONE]\n\n"
                     for item in text_stream(["small ", "answer"]))
    upstream.reply(Raw(gzip.compress(events.encode()), content_type="text/event-stream",
                       headers={"Content-Encoding": "gzip"}))
    chunks = sse_chunks(post(capped, SSE))
    assert "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]) == "small answer"

    upstream.reply(Raw(gzip.compress(b"data: " + b"[" * MiB), content_type="text/event-stream",
                       headers={"Content-Encoding": "gzip"}))
    response = post(capped, SSE)
    assert response.status_code == 500 and "stream line exceeds" in error_of(response)["message"]


def test_a_gzip_error_page_is_read_to_64_kib_at_most(capped, upstream):
    page = b"<html><head><title>Bad gateway</title></head><body>" + b"x" * (20 * MiB) + b"</body></html>"
    upstream.reply(Raw(gzip.compress(page), 502, "text/html", headers={"Content-Encoding": "gzip"}))
    response = post(capped)
    # The upstream's 502 is passed on as Google answers a gateway's failure: 503 UNAVAILABLE.
    assert (response.status_code, error_of(response)["status"]) == (503, "UNAVAILABLE")
    assert error_of(response)["message"] == "Bad gateway"


def test_an_encoding_we_cannot_decode_is_named(capped, upstream):
    upstream.reply(Raw(b"\x8b\x00", content_type="application/json", headers={"Content-Encoding": "br"}))
    response = post(capped)
    assert response.status_code == 500 and "Content-Encoding br" in error_of(response)["message"]


def test_an_answer_over_the_cap_is_a_500(capped, upstream):
    upstream.reply(Json(completion("w" * 70_000)))
    response = post(capped)
    assert response.status_code == 500 and "MAX_UPSTREAM_RESPONSE_BYTES" in error_of(response)["message"]


def test_a_stream_line_over_the_cap_after_output_is_an_error_event(capped, upstream):
    upstream.reply(Stream([chunk({"content": "begun"}), "data: " + "q" * 100_000]))
    events = sse_chunks(post(capped, SSE))
    assert events[0]["candidates"][0]["content"]["parts"] == [{"text": "begun"}]
    assert events[-1]["error"]["code"] == 500 and "exceeds MAX_UPSTREAM_RESPONSE_BYTES" in events[-1]["error"]["message"]


@pytest.mark.parametrize("status,fragment", [
    (201, "unexpected status 201"), (204, "unexpected status 204 No Content."), (299, "unexpected status 299"),
    (304, "unexpected status 304 Not Modified."), (600, "unexpected status 600."),
])
@pytest.mark.parametrize("path", [GENERATE, SSE])
def test_statuses_that_are_not_answers_are_500(function, upstream, status, fragment, path):
    upstream.reply(*[Json(completion("not for you"), status)] * 3)
    response = post(function, path)
    error = error_of(response)
    assert (response.status_code, error["status"]) == (500, "INTERNAL") and fragment in error["message"]
    assert len(upstream.chat_requests) == 1  # not retried


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_says_where_it_went(function, upstream, status):
    location = f"https://elsewhere.example/v1/chat?key={SECRET}"
    upstream.reply(Json({}, status, headers={"Location": location}))
    message = error_of(post(function, key=SECRET))["message"]
    assert message.startswith(f"The upstream answered {status} ")
    assert "a redirect to https://elsewhere.example/v1/chat?key=[redacted]: check UPSTREAM_BASE_URL" in message
    assert [r["path"] for r in upstream.requests] == ["/v1/chat/completions"]


@pytest.fixture(scope="module")
def quick(serve):
    return serve(UPSTREAM_TIMEOUT="1")


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_a_trickled_answer_is_cut_at_the_total_deadline(quick, upstream, chunked):
    body = json.dumps(completion("slow"))
    items = [item for byte in body for item in (byte, Pause(seconds=0.1))]  # 0.1 s per byte, 30 s in all
    upstream.reply(Stream(items, chunked=chunked, content_type="application/json"))
    started = time.monotonic()
    response = post(quick)
    assert time.monotonic() - started < 2
    assert response.status_code == 504
    assert error_of(response)["message"] == "The upstream did not answer within UPSTREAM_TIMEOUT (1 s)."


def test_a_stream_may_outlast_the_timeout_while_it_keeps_talking(quick, upstream):
    items = [chunk({"role": "assistant", "content": ""})]
    for _ in range(5):
        items += [Pause(seconds=0.4), chunk({"content": "tick "})]
    upstream.reply(Stream(items + [chunk({}, finish="stop"), "[DONE]"]))
    events = sse_chunks(post(quick, SSE))
    assert events[-1]["candidates"][0]["finishReason"] == "STOP" and len(events) == 6


@pytest.fixture(scope="module")
def team(serve):
    return serve(UPSTREAM_API_KEY=SECRET, ACCESS_KEYS="team-access-key")


@pytest.mark.parametrize("path", [GENERATE, SSE])
def test_the_team_key_quoted_or_echoed_by_the_upstream_never_reaches_the_client_or_the_log(team, upstream, path):
    upstream.reply(Json({"error": {"message": f"Incorrect API key provided: {SECRET[:40]}", "code": "invalid"}}, 401))
    response = post(team, path, key="team-access-key")
    # The upstream refused the team's own key: the endpoint's fault, 500, not the caller's API_KEY_INVALID.
    assert (response.status_code, error_of(response)["message"]) == (
        500, "The upstream refused this endpoint's UPSTREAM_API_KEY: Incorrect API key provided: [redacted]")

    echo = completion("hi", model=f"served-for-{SECRET}")
    stream = [chunk({"content": "hi"}, model=f"served-for-{SECRET}"), chunk({}, finish="stop"), "[DONE]"]
    upstream.reply(Json(echo) if path == GENERATE else Stream(stream))
    response = post(team, path, key="team-access-key")
    versions = [response.json()["modelVersion"]] if path == GENERATE else [e["modelVersion"] for e in sse_chunks(response)]
    assert set(versions) == {"served-for-[redacted]"}

    upstream.reply(Raw(f"<html><body>forbidden for {SECRET[5:30]} today</body></html>", 403, "text/html"))
    assert error_of(post(team, path, key="team-access-key"))["message"] == "forbidden for [redacted] today"
    assert SECRET[:8] not in team.logs() and SECRET[-8:] not in team.logs()


# --- found in review: what follows the end of an answer ----------------------------------------------

def test_gzip_members_one_after_another_are_one_answer(capped, upstream):
    whole = json.dumps(completion("two members")).encode()
    upstream.reply(Raw(gzip.compress(whole[:20]) + gzip.compress(whole[20:]), content_type="application/json",
                       headers={"Content-Encoding": "gzip"}))
    response = post(capped)
    assert response.status_code == 200, response.text
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"] == "two members"


def test_bytes_after_the_end_of_a_compressed_answer_are_a_500(capped, upstream):
    # zlib keeps what follows the end of the data undecoded: it piled up without limit.
    upstream.reply(Raw(gzip.compress(json.dumps(completion()).encode()) + b"junk" * 50_000,
                       content_type="application/json", headers={"Content-Encoding": "gzip"}))
    started = time.monotonic()
    response = post(capped)
    assert time.monotonic() - started < 2
    assert response.status_code == 500
    assert error_of(response)["message"] == "The upstream sent bytes after the end of its compressed answer."


def test_an_upstream_that_goes_on_after_done_does_not_hold_the_stream(capped, upstream):
    # The rest of the connection is drained only a little, briefly: draining it all grew the worker by 600 MB.
    upstream.reply(Stream(text_stream(["all ", "there"]) + [b"data: x\n" * 200_000, Pause(seconds=3)]))
    started = time.monotonic()
    response = post(capped, SSE)
    assert time.monotonic() - started < 1.5
    events = sse_chunks(response)
    assert events[-1]["candidates"][0]["finishReason"] == "STOP" and "error" not in events[-1]
    assert post(capped).status_code == 200  # the connection was not reused with junk on it
