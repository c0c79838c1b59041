"""streamGenerateContent over real HTTP: both framings, no buffering, and the upstream quirks of the
quirks reference (§5, §6), each shown to give the client the right answer."""

import json
import threading

import pytest
import requests

from fake_upstream import Disconnect, Json, Pause, Stream, chunk, completion, text_stream, usage
from helpers import KEY, error_of, hello

STREAM = "/v1beta/models/qwen-turbo:streamGenerateContent"
SSE = STREAM + "?alt=sse"
ROLE = chunk({"role": "assistant", "content": ""})


# --- strict readers of what the client got ------------------------------------------------------

def sse_events(raw):
    """The JSON events of a Gemini SSE body, read strictly: nothing but ``data: <one-line JSON>\\r\\n\\r\\n``."""
    assert raw.endswith(b"\r\n\r\n"), raw[-80:]
    frames = raw.split(b"\r\n\r\n")
    assert frames.pop() == b""
    events = []
    for frame in frames:
        assert frame.startswith(b"data: "), frame[:80]  # no comments, no event:/id:, no "data:" without space
        payload = frame[len(b"data: "):]
        assert b"\n" not in payload and b"\r" not in payload, frame
        value = json.loads(payload)  # "[DONE]" would fail here
        assert isinstance(value, dict), value
        events.append(value)
    return events


def post_stream(function, path, body, **kwargs):
    kwargs.setdefault("timeout", 30)
    return requests.post(function.url + path, json=body, headers={"x-goog-api-key": KEY}, **kwargs)


def sse(function, body=None):
    response = post_stream(function, SSE, body or hello())
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].split(";")[0] == "text/event-stream"
    return sse_events(response.content)


def array(function, body=None, alt=""):
    response = post_stream(function, STREAM + alt, body or hello())
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    value = json.loads(response.content)
    assert isinstance(value, list)
    return value


def read(function, framing, body=None):
    return sse(function, body) if framing == "sse" else array(function, body)


def text_of(events, thoughts=False):
    return "".join(part.get("text", "") for event in events for candidate in event.get("candidates", [])
                   for part in candidate["content"]["parts"] if bool(part.get("thought")) == thoughts)


def finishes(events):
    return [c["finishReason"] for e in events for c in e.get("candidates", []) if "finishReason" in c]


def assert_clean_answer(events, text, finish="STOP"):
    """A successful stream: the text, one finishReason on the last event only, no error anywhere."""
    assert not any("error" in event for event in events), events
    assert text_of(events) == text
    assert finishes(events) == [finish]
    assert "finishReason" in events[-1]["candidates"][0]


# google.rpc.Code's HTTP mapping, for the codes the streams here end with.
GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
                 504: "DEADLINE_EXCEEDED"}


def assert_error_last(events, code, text_before=None, message=None):
    """A failed stream: an error event last, after the text; never a finishReason."""
    error = events[-1]
    assert list(error) == ["error"], error
    assert error["error"]["code"] == code
    assert isinstance(error["error"]["code"], int)
    assert error["error"]["status"] == GOOGLE_STATUS[code]
    if message:
        assert message in error["error"]["message"]
    assert finishes(events) == []
    assert not any("error" in event for event in events[:-1])
    if text_before is not None:
        assert text_of(events[:-1]) == text_before


# --- both framings ------------------------------------------------------------------------------

def test_sse_framing_sends_deltas_then_finish_and_usage(function, upstream):
    upstream.reply(Stream(text_stream(["Hel", "lo", " world"], usage_=usage(prompt=3, completion=4))))

    response = post_stream(function, SSE, hello("Greet"))

    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == "text/event-stream"
    events = sse_events(response.content)
    meta = {"modelVersion": "qwen-turbo", "responseId": "chatcmpl-stream1"}
    assert events == [
        {"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "index": 0}], **meta},
        {"candidates": [{"content": {"parts": [{"text": "lo"}], "role": "model"}, "index": 0}], **meta},
        {"candidates": [{"content": {"parts": [{"text": " world"}], "role": "model"}, "index": 0}], **meta},
        {"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}],
         "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}, **meta},
    ]
    [request] = upstream.chat_requests
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["json"] == {"model": "qwen-turbo", "messages": [{"role": "user", "content": "Greet"}],
                               "stream": True, "stream_options": {"include_usage": True}}


@pytest.mark.parametrize("alt", ["", "?alt=json"])
def test_json_array_framing_has_the_same_chunks(function, upstream, alt):
    items = text_stream(["One", ", two"], usage_=usage(prompt=2, completion=2))
    upstream.reply(Stream(items), Stream(items))

    events = sse(function)
    response = post_stream(function, STREAM + alt, hello())

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.content.startswith(b"[") and response.content.endswith(b"]")
    assert json.loads(response.content) == events
    assert text_of(events) == "One, two"
    assert len(events) == 3
    for request in upstream.chat_requests:
        assert request["json"]["stream"] is True
        assert request["json"]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("framing", ["sse", "array"])
def test_chunks_are_sent_as_they_come_not_buffered(function, upstream, framing):
    resume = threading.Event()
    upstream.reply(Stream([ROLE, chunk({"content": "first"}), Pause(until=resume, timeout=30),
                           chunk({"content": " second"}), chunk({}, finish="stop"), chunk(choices=[], usage_=usage()),
                           "[DONE]"]))
    path = SSE if framing == "sse" else STREAM
    try:
        # A read timeout of 5 s: if the function held the first chunk back until the upstream resumes
        # (which it does only when told, 30 s at most), this read fails.
        response = post_stream(function, path, hello(), stream=True, timeout=(5, 5))
        assert response.status_code == 200
        pieces = response.iter_content(chunk_size=None)
        received = b""
        while b"first" not in received:
            received += next(pieces)
        assert not resume.is_set()
        assert b"second" not in received
    finally:
        resume.set()
    received += b"".join(pieces)
    events = sse_events(received) if framing == "sse" else json.loads(received)
    assert_clean_answer(events, "first second")


# --- upstream framing quirks --------------------------------------------------------------------

def _event(value, line_end="\n", space=" "):
    return f"data:{space}{json.dumps(value, ensure_ascii=False)}{line_end}{line_end}"


@pytest.mark.parametrize("framing", ["sse", "array"])
def test_keepalive_comments_are_skipped(function, upstream, framing):
    upstream.reply(Stream([": OPENROUTER PROCESSING\n\n", ROLE, ": ping\n\n", chunk({"content": "Hello"}),
                           ":keepalive\n", chunk({"content": " world"}), chunk({}, finish="stop"),
                           ": keepalive\n\n", chunk(choices=[], usage_=usage()), "[DONE]"]))

    events = read(function, framing)

    assert_clean_answer(events, "Hello world")


def test_other_sse_fields_are_ignored(function, upstream):
    upstream.reply(Stream(["retry: 3000\n\n", "id: 1\nevent: message\n" + _event(ROLE),
                           "id: 2\n" + _event(chunk({"content": "fields"})), _event(chunk({}, finish="stop")),
                           "[DONE]"]))

    assert_clean_answer(sse(function), "fields")


def test_data_without_space(function, upstream):
    upstream.reply(Stream([_event(ROLE, space=""), _event(chunk({"content": "no"}), space=""),
                           _event(chunk({"content": " space"}), space=""), _event(chunk({}, finish="stop"), space=""),
                           "data:[DONE]\n\n"]))

    assert_clean_answer(sse(function), "no space")


@pytest.mark.parametrize("line_end", ["\r\n", "\r"])
def test_crlf_and_cr_framing(function, upstream, line_end):
    upstream.reply(Stream([_event(ROLE, line_end), _event(chunk({"content": "line"}), line_end),
                           _event(chunk({"content": " ends"}), line_end), _event(chunk({}, finish="stop"), line_end),
                           _event(chunk(choices=[], usage_=usage(prompt=1, completion=2)), line_end),
                           f"data: [DONE]{line_end}{line_end}"]))

    events = sse(function)

    assert_clean_answer(events, "line ends")
    assert events[-1]["usageMetadata"]["totalTokenCount"] == 3


def test_event_split_across_writes_and_inside_a_utf8_character(function, upstream):
    encoded = _event(chunk({"content": "héllo wörld"})).encode()
    cut = encoded.index("é".encode()) + 1  # in the middle of the two bytes of é
    upstream.reply(Stream([ROLE, encoded[:cut], Pause(seconds=0.05), encoded[cut:-1], Pause(seconds=0.05),
                           encoded[-1:], chunk({}, finish="stop"), "[DONE]"]))

    assert_clean_answer(sse(function), "héllo wörld")


def test_multi_line_data_event(function, upstream):
    lines = json.dumps(chunk({"content": "joined"}), indent=1).split("\n")
    upstream.reply(Stream([ROLE, "".join(f"data: {line}\n" for line in lines) + "\n", chunk({}, finish="stop"),
                           "[DONE]"]))

    assert_clean_answer(sse(function), "joined")


def test_empty_data_frames_are_keepalives(function, upstream):
    upstream.reply(Stream(["data:\n\n", ROLE, "data: \n\n", chunk({"content": "still"}), "data:\n\n",
                           chunk({"content": " fine"}), chunk({}, finish="stop"), "data:\n\n", "[DONE]"]))

    assert_clean_answer(sse(function), "still fine")


def test_azure_empty_choices_first_chunk(function, upstream):
    azure_first = {"id": "", "object": "", "created": 0, "model": "", "choices": [],
                   "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {
                       "hate": {"filtered": False, "severity": "safe"}}}]}
    upstream.reply(Stream([azure_first, ROLE, chunk({"content": "Azure"}), chunk({}, finish="stop"),
                           chunk(choices=[], usage_=usage()), "[DONE]"]))

    events = sse(function)

    assert_clean_answer(events, "Azure")
    assert {e["responseId"] for e in events} == {"chatcmpl-stream1"}
    assert {e["modelVersion"] for e in events} == {"qwen-turbo"}


def test_role_chunk_with_null_content_sends_no_empty_chunk(function, upstream):
    upstream.reply(Stream([chunk({"role": "assistant", "content": None}), chunk({"content": "A"}),
                           chunk({"content": "B"}), chunk({}, finish="stop"), "[DONE]"]))

    events = sse(function)

    assert_clean_answer(events, "AB")
    assert [e["candidates"][0]["content"]["parts"] for e in events[:-1]] == [[{"text": "A"}], [{"text": "B"}]]
    assert all(isinstance(p.get("text"), str) for e in events for c in e["candidates"] for p in c["content"]["parts"])


@pytest.mark.parametrize("framing", ["sse", "array"])
def test_content_and_finish_in_one_chunk(function, upstream, framing):
    upstream.reply(Stream([ROLE, chunk({"content": "Hello"}), chunk({"content": " there"}, finish="length"),
                           chunk(choices=[], usage_=usage()), "[DONE]"]))

    events = read(function, framing)

    assert_clean_answer(events, "Hello there", finish="MAX_TOKENS")


def test_vllm_finish_chunk_with_empty_content_and_stop_reason(function, upstream):
    finish = chunk({"content": ""}, finish="stop")
    finish["choices"][0]["stop_reason"] = None
    upstream.reply(Stream([ROLE, chunk({"content": "vLLM"}), finish, chunk(choices=[], usage_=usage()), "[DONE]"]))

    assert_clean_answer(sse(function), "vLLM")


def test_duplicate_finish_chunks_finish_once(function, upstream):
    upstream.reply(Stream([ROLE, chunk({"content": "once"}),
                           chunk({"role": "assistant", "content": ""}, finish="stop"),
                           chunk({"role": "assistant", "content": ""}, finish="stop"),
                           chunk({"content": " late"}, finish="length"),
                           chunk(choices=[], usage_=usage(prompt=1, completion=1)), "[DONE]"]))

    events = sse(function)

    assert_clean_answer(events, "once")
    assert events[-1]["usageMetadata"]["totalTokenCount"] == 2


def test_duplicate_finish_chunks_with_usage_on_each(function, upstream):
    """OpenRouter: usage always on, and the finish chunk sent twice."""
    upstream.reply(Stream([ROLE, chunk({"content": "twice"}),
                           chunk({"content": ""}, finish="stop", usage_=usage(prompt=4, completion=1)),
                           chunk({"content": ""}, finish="stop", usage_=usage(prompt=4, completion=1)),
                           "[DONE]"]))

    events = sse(function)

    assert_clean_answer(events, "twice")
    assert events[-1]["usageMetadata"] == {"promptTokenCount": 4, "candidatesTokenCount": 1, "totalTokenCount": 5}


def test_moonshot_usage_inside_the_choice(function, upstream):
    finish = chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop",
                             "usage": {"prompt_tokens": 19, "completion_tokens": 13, "total_tokens": 32}}])
    upstream.reply(Stream([ROLE, chunk({"content": "Kimi"}), finish, "[DONE]"]))

    events = sse(function)

    assert_clean_answer(events, "Kimi")
    assert events[-1]["usageMetadata"] == {"promptTokenCount": 19, "candidatesTokenCount": 13, "totalTokenCount": 32}


def test_usage_on_every_chunk_keeps_the_last(function, upstream):
    upstream.reply(Stream([chunk({"role": "assistant", "content": ""}, usage_=usage(prompt=6, completion=0)),
                           chunk({"content": "a"}, usage_=usage(prompt=6, completion=1)),
                           chunk({"content": "b"}, usage_=usage(prompt=6, completion=2)),
                           chunk({}, finish="stop", usage_=usage(prompt=6, completion=3)),
                           "[DONE]"]))

    events = sse(function)

    assert_clean_answer(events, "ab")
    assert events[-1]["usageMetadata"] == {"promptTokenCount": 6, "candidatesTokenCount": 3, "totalTokenCount": 9}


@pytest.mark.parametrize("framing", ["sse", "array"])
@pytest.mark.parametrize("tail", [
    [chunk({}, finish="stop"), chunk(choices=[], usage_=usage())],
    [chunk({}, finish="stop")],
    [chunk({"content": "!"}, finish="stop")],
], ids=["finish+usage", "finish", "content+finish"])
def test_no_done_after_a_finish_is_success(function, upstream, framing, tail):
    upstream.reply(Stream([ROLE, chunk({"content": "done"})] + tail))

    events = read(function, framing)

    assert_clean_answer(events, "done!" if tail[0]["choices"][0]["delta"] else "done")


@pytest.mark.parametrize("chunked", [True, False])
def test_eof_without_finish_or_done_is_an_error_event_sse(function, upstream, chunked):
    upstream.reply(Stream([ROLE, chunk({"content": "cut"}), chunk({"content": " off"})], chunked=chunked))

    response = post_stream(function, SSE, hello())

    assert response.status_code == 200
    events = sse_events(response.content)
    assert_error_last(events, 500, text_before="cut off")
    # The Python SDK recognises a mid-stream error only when the event starts exactly like this.
    assert response.content.split(b"\r\n\r\n")[-2].startswith(b'data: {"error":{"code":500,')


def test_eof_without_finish_or_done_is_a_last_array_element(function, upstream):
    upstream.reply(Stream([ROLE, chunk({"content": "cut"}), chunk({"content": " off"})]))

    events = array(function)  # still valid JSON

    assert_error_last(events, 500, text_before="cut off")
    assert events[-1]["error"]["status"] == "INTERNAL"


# --- errors in the stream -----------------------------------------------------------------------

# An upstream error without an HTTP code of its own counts as a gateway failure (502), which Google
# answers 503 UNAVAILABLE; a finish_reason "error" with no error at all is untranslatable, 500 INTERNAL.
MID_STREAM_ERRORS = {
    "openai": ([{"error": {"message": "The server had an error while processing your request. Sorry about that!",
                           "type": "server_error"}}],
               503, "The server had an error"),
    "vllm": ([{"error": {"message": "EngineCore died", "type": "InternalServerError", "param": None, "code": 500}},
              "[DONE]"],
             500, "EngineCore died"),
    "openrouter": ([{"id": "cmpl-abc123", "object": "chat.completion.chunk", "created": 1234567890,
                     "model": "gpt-3.5-turbo", "provider": "openai",
                     "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
                     "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}],
                   503, "Provider disconnected unexpectedly"),
    "openrouter-numeric-empty-choices": ([{"id": "gen-1", "object": "chat.completion.chunk", "choices": [],
                                           "error": {"code": 502, "message": "Network connection lost.",
                                                     "metadata": {"error_type": "provider_unavailable"}}}],
                                         503, "Network connection lost."),
    "openrouter-finish-error-only": ([chunk({"content": ""}, finish="error")], 500, None),
    "llama.cpp-error-field": (['error: {"code":400,"message":"the request exceeds the available context size. '
                               'try increasing the context size or enable context shift",'
                               '"type":"invalid_request_error"}\n\n', "[DONE]"],
                              400, "exceeds the available context size"),
    "gateway-bare-json": (['{"error":{"message":"quota gone","code":429}}\n\n'], 429, "quota gone"),
    "sse-event-error": (['event: error\ndata: {"message":"overloaded","code":503}\n\n'], 503, "overloaded"),
}


@pytest.mark.parametrize("framing", ["sse", "array"])
@pytest.mark.parametrize("shape", list(MID_STREAM_ERRORS))
def test_mid_stream_error_is_an_error_event_never_a_clean_stop(function, upstream, framing, shape):
    error_items, code, message = MID_STREAM_ERRORS[shape]
    upstream.reply(Stream([ROLE, chunk({"content": "partial"})] + error_items))

    events = read(function, framing)

    assert_error_last(events, code, text_before="partial", message=message)


@pytest.fixture
def no_retry(serve):
    """The function with upstream retries off: one upstream request per client request."""
    return serve(UPSTREAM_RETRIES="0")


@pytest.mark.parametrize("framing", ["sse", "array"])
@pytest.mark.parametrize("prefix", [[], [ROLE], [": ping\n\n", ROLE, chunk({"content": ""})]],
                         ids=["first", "after-role", "after-empty-output"])
@pytest.mark.parametrize("shape", ["openai", "vllm", "llama.cpp-error-field", "openrouter-numeric-empty-choices"])
def test_error_before_any_output_is_a_real_http_error(no_retry, upstream, framing, prefix, shape):
    error_items, code, message = MID_STREAM_ERRORS[shape]
    upstream.reply(Stream(prefix + error_items))

    response = post_stream(no_retry, SSE if framing == "sse" else STREAM, hello())

    assert response.status_code == code
    error = error_of(response)
    assert message in error["message"]
    assert len(upstream.chat_requests) == 1


@pytest.mark.parametrize("framing", ["sse", "array"])
def test_retryable_error_before_output_is_retried_without_leaking_the_first_attempt(function, upstream, framing):
    """Default configuration: a 502-class error as the first event is retried, since nothing reached the
    client yet; the client sees only the second attempt's answer."""
    error_items, _, _ = MID_STREAM_ERRORS["openrouter-numeric-empty-choices"]
    upstream.reply(Stream([ROLE, chunk({"content": ""})] + error_items),
                   Stream(text_stream(["second", " try"])))

    events = read(function, framing)

    assert_clean_answer(events, "second try")
    assert len(upstream.chat_requests) == 2
    assert upstream.chat_requests[0]["json"] == upstream.chat_requests[1]["json"]


def test_error_after_output_is_never_retried(function, upstream):
    error_items, _, _ = MID_STREAM_ERRORS["openrouter-numeric-empty-choices"]
    upstream.reply(Stream([ROLE, chunk({"content": "partial"})] + error_items), Stream(text_stream(["again"])))

    events = sse(function)

    assert_error_last(events, 503, text_before="partial")
    assert len(upstream.chat_requests) == 1


@pytest.mark.parametrize("chunked", [True, False])
@pytest.mark.parametrize("framing", ["sse", "array"])
def test_upstream_dropped_mid_stream_is_an_error_event(function, upstream, framing, chunked):
    upstream.reply(Stream([ROLE, chunk({"content": "half"}), Disconnect()], chunked=chunked))

    events = read(function, framing)

    assert_error_last(events, 500, text_before="half")
    assert events[-1]["error"]["status"] == "INTERNAL"


def test_upstream_dropped_before_output_is_http_500(function, upstream):
    upstream.reply(Stream([ROLE, Disconnect()]))

    response = post_stream(function, SSE, hello())

    assert response.status_code == 500
    assert error_of(response)["status"] == "INTERNAL"


# --- other upstream behaviours ------------------------------------------------------------------

@pytest.mark.parametrize("framing", ["sse", "array"])
def test_close_delimited_upstream_stream(function, upstream, framing):
    upstream.reply(Stream(text_stream(["not", " chunked"], usage_=usage(prompt=2, completion=3)), chunked=False))

    events = read(function, framing)

    assert_clean_answer(events, "not chunked")
    assert events[-1]["usageMetadata"]["totalTokenCount"] == 5


@pytest.mark.parametrize("framing", ["sse", "array"])
def test_upstream_answering_json_instead_of_a_stream(function, upstream, framing):
    upstream.reply(Json(completion("Whole answer", usage_=usage(prompt=2, completion=2))))

    events = read(function, framing)

    assert len(events) == 1
    assert events[0]["candidates"][0]["content"]["parts"] == [{"text": "Whole answer"}]
    assert events[0]["candidates"][0]["finishReason"] == "STOP"
    assert events[0]["usageMetadata"] == {"promptTokenCount": 2, "candidatesTokenCount": 2, "totalTokenCount": 4}
    assert upstream.last["stream"] is True


@pytest.mark.parametrize("upstream_reason, gemini_reason", [
    ("abort", "OTHER"), ("repetition", "OTHER"), ("length", "MAX_TOKENS"), ("content_filter", "SAFETY"),
    ("tool_calls", "STOP"),
])
def test_stream_finish_reasons(function, upstream, upstream_reason, gemini_reason):
    upstream.reply(Stream([ROLE, chunk({"content": "x"}), chunk({}, finish=upstream_reason), "[DONE]"]))

    assert_clean_answer(sse(function), "x", finish=gemini_reason)


def _call_fragment(arguments, name=None):
    call = {"index": 0, "function": {"arguments": arguments}}
    if name:
        call.update(id="call_1", type="function")
        call["function"]["name"] = name
    return chunk({"tool_calls": [call]})


@pytest.mark.parametrize("upstream_reason, gemini_reason, message", [
    # llama.cpp when max_tokens falls inside a call: the token limit wins, the cut call is dropped
    ("length", "MAX_TOKENS", "The function call get_weather was cut off by the output token limit before its "
                             "arguments were complete, and was dropped"),
    ("tool_calls", "MALFORMED_FUNCTION_CALL",
     'Malformed function call get_weather: arguments are not a JSON object: {"city": "Par'),
])
def test_a_streamed_call_with_truncated_arguments(function, upstream, upstream_reason, gemini_reason, message):
    upstream.reply(Stream([ROLE, chunk({"content": "Let me check."}), _call_fragment("", "get_weather"),
                           _call_fragment('{"city": '), _call_fragment('"Par'), chunk({}, finish=upstream_reason),
                           chunk(choices=[], usage_=usage()), "[DONE]"]))

    events = sse(function)

    assert [event["candidates"] for event in events] == [
        [{"content": {"parts": [{"text": "Let me check."}], "role": "model"}, "index": 0}],
        [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": gemini_reason, "index": 0,
          "finishMessage": message}],
    ]


def test_done_without_finish_reason_is_stop(function, upstream):
    upstream.reply(Stream([ROLE, chunk({"content": "no finish"}), "[DONE]"]))

    assert_clean_answer(sse(function), "no finish")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
@pytest.mark.parametrize("include", [True, False, None])
def test_reasoning_deltas_are_thought_parts_only_when_asked(function, upstream, field, include):
    upstream.reply(Stream([ROLE, chunk({field: "Think"}), chunk({field: "ing."}), chunk({"content": "Answer"}),
                           chunk({}, finish="stop"), chunk(choices=[], usage_=usage(completion=9, reasoning=5)),
                           "[DONE]"]))
    body = hello()
    if include is not None:
        body["generationConfig"] = {"thinkingConfig": {"includeThoughts": include}}

    events = sse(function, body)

    assert_clean_answer(events, "Answer")
    thought_parts = [p for e in events for c in e["candidates"] for p in c["content"]["parts"] if p.get("thought")]
    if include:
        assert thought_parts == [{"text": "Think", "thought": True}, {"text": "ing.", "thought": True}]
    else:
        assert thought_parts == []
        assert "Think" not in json.dumps(events)
    assert events[-1]["usageMetadata"]["thoughtsTokenCount"] == 5
    assert events[-1]["usageMetadata"]["candidatesTokenCount"] == 4


@pytest.mark.parametrize("include", [True, False])
def test_a_think_block_in_streamed_content_is_thoughts_not_answer(function, upstream, include):
    # vLLM without a reasoning parser, llama.cpp --reasoning-format none: the tags cut anywhere
    resume = threading.Event()
    if not include:
        resume.set()  # nothing is sent before the answer: the function's answer starts with it
    upstream.reply(Stream([ROLE, chunk({"content": "\n<thi"}), chunk({"content": "nk>\nLet me"}),
                           Pause(until=resume, timeout=30), chunk({"content": " think.</th"}),
                           chunk({"content": "ink>\n\nAn"}), chunk({"content": "swer <think> stays"}),
                           chunk({}, finish="stop"), chunk(choices=[], usage_=usage()), "[DONE]"]))
    body = {**hello(), "generationConfig": {"thinkingConfig": {"includeThoughts": include}}}
    try:
        response = post_stream(function, SSE, body, stream=True, timeout=(5, 5))
        assert response.status_code == 200
        pieces = response.iter_content(chunk_size=None)
        received = b""
        if include:  # the thoughts leave as they come, before the upstream goes on
            while b"Let me" not in received:
                received += next(pieces)
            assert not resume.is_set()
    finally:
        resume.set()
    events = sse_events(received + b"".join(pieces))
    assert_clean_answer(events, "Answer <think> stays")
    assert text_of(events, thoughts=True) == ("Let me think." if include else "")
    assert include or "Let me" not in json.dumps(events)


def test_several_candidates_stream_with_their_index(function, upstream):
    def both(delta0, delta1, finish=None):
        return chunk(choices=[{"index": 0, "delta": delta0, "finish_reason": finish},
                              {"index": 1, "delta": delta1, "finish_reason": finish}])
    upstream.reply(Stream([both({"role": "assistant", "content": ""}, {"role": "assistant", "content": ""}),
                           both({"content": "zero"}, {"content": "one"}), both({}, {}, finish="stop"),
                           chunk(choices=[], usage_=usage()), "[DONE]"]))

    events = sse(function, {**hello(), "generationConfig": {"candidateCount": 2}})

    assert upstream.last["n"] == 2
    texts = {0: "", 1: ""}
    for event in events:
        for candidate in event["candidates"]:
            texts[candidate["index"]] += "".join(p["text"] for p in candidate["content"]["parts"])
    assert texts == {0: "zero", 1: "one"}
    assert sorted((c["index"], c["finishReason"]) for c in events[-1]["candidates"]) == [(0, "STOP"), (1, "STOP")]
    assert not any("finishReason" in c for e in events[:-1] for c in e["candidates"])


def test_line_separators_in_an_answer_are_written_escaped(gemini, upstream):
    # U+2028, U+2029 and U+0085 are valid raw in JSON, but the Gemini CLI 0.61 and google-genai 2.x
    # split stream lines on them.
    text = "one\u2028two\u2029three\x85four"
    upstream.reply(Stream(text_stream([text])))
    response = gemini("/v1beta/models/qwen-turbo:streamGenerateContent?alt=sse", hello())
    raw = response.content
    assert all(char.encode() not in raw for char in "\u2028\u2029\x85")
    assert b"one\\u2028two\\u2029three\\u0085four" in raw
    chunks = sse_events(raw)
    assert "".join(part.get("text", "") for c in chunks for part in c["candidates"][0]["content"]["parts"]) == text
