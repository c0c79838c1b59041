"""Upstream failures, whatever their shape, reach the client as Gemini errors with the upstream's message
and the code Google would answer for the upstream's (google.rpc.Code's HTTP mapping: a 402 is a 400, a
502 a 503, the caller's key refused a 400 API_KEY_INVALID): HTTP errors, unreachable and slow upstreams,
and 200 answers that are not answers (500 INTERNAL, as Google reports an unusable backend)."""

import json
import pathlib
import socket
import threading

import functions_framework
import pytest
import requests

from fake_upstream import Disconnect, Json, Pause, Raw, Stream, chunk, completion
from gemini_compat import gateway, response_translation
from helpers import KEY, error_of, hello

REPO = pathlib.Path(__file__).resolve().parent.parent

GENERATE = "/v1beta/models/qwen-turbo:generateContent"
STREAM_SSE = "/v1beta/models/qwen-turbo:streamGenerateContent?alt=sse"
STREAM_JSON = "/v1beta/models/qwen-turbo:streamGenerateContent"
PATHS = {"generate": GENERATE, "stream-sse": STREAM_SSE, "stream-json": STREAM_JSON}
METHODS = list(PATHS)

CLOUDFLARE = """<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<html class="no-js" lang="en-US"> <head>
<title>api.openai.com | 502: Bad gateway</title>
<meta charset="UTF-8" /><style>body{margin:0}</style>
</head><body><div id="cf-wrapper"><h1>Bad gateway <span>Error code 502</span></h1>
<p>Visit <a href="https://www.cloudflare.com/5xx-error-landing">cloudflare.com</a> for more information.</p>
</div></body></html>"""


def post(function, path, body=None, **kwargs):
    kwargs.setdefault("timeout", 30)
    return requests.post(function.url + path, json=body or hello(), headers={"x-goog-api-key": KEY}, **kwargs)


@pytest.fixture
def no_retry(serve):
    """The function with upstream retries off (UPSTREAM_RETRIES=0): what the client gets is what the one
    upstream answer said. The default configuration retries 429/502/503 before any output."""
    return serve(UPSTREAM_RETRIES="0")


def assert_clean(response):
    """Whatever went wrong, the client gets the JSON envelope: no HTML page, no traceback."""
    text = response.text
    assert "<html" not in text.lower() and "<!doctype" not in text.lower()
    assert "Traceback" not in text and 'File "' not in text
    return error_of(response)


# --- upstream HTTP errors -----------------------------------------------------------------------

# case: (the code the client gets, the upstream's reply, the status, fragments of the message)
UPSTREAM_ERRORS = {
    "openai-nested-quota": (
        429, Json({"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                             "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}, 429),
        "RESOURCE_EXHAUSTED", ["You exceeded your current quota"]),
    "openai-401-string-code": (  # the caller's own key (pass-through): Google's answer to a wrong key
        400, Json({"error": {"message": "Incorrect API key provided: sk-abc.", "type": "invalid_request_error",
                             "param": None, "code": "invalid_api_key"}}, 401),
        "INVALID_ARGUMENT", ["API key not valid. Please pass a valid API key.", "Incorrect API key provided"]),
    "vllm-int-code-404": (
        404, Json({"error": {"message": "The model `gpt-x` does not exist.", "type": "NotFoundError",
                             "param": "model", "code": 404}}, 404),
        "NOT_FOUND", ["The model `gpt-x` does not exist."]),
    "vllm-flat-400": (
        400, Json({"object": "error", "message": "This model's maximum context length is 2048 tokens.",
                   "type": "BadRequestError", "param": None, "code": 400}, 400),
        "INVALID_ARGUMENT", ["maximum context length is 2048 tokens"]),
    "dashscope-string-code-400": (
        400, Json({"error": {"code": "invalid_parameter_error", "param": None,
                             "message": "Range of input length should be [1, 30720]", "type": "invalid_request_error"}},
                  400),
        "INVALID_ARGUMENT", ["Range of input length should be [1, 30720]"]),
    "litellm-numeric-string-code": (
        400, Json({"error": {"message": "litellm.BadRequestError: bad tools", "type": None, "param": None,
                             "code": "400"}}, 400),
        "INVALID_ARGUMENT", ["litellm.BadRequestError: bad tools"]),
    "mistral-flat-null-code": (
        400, Json({"object": "error", "message": "Tool call id was abc123 but must be a-z, A-Z, 0-9, with a length of 9.",
                   "type": "invalid_request_error", "param": None, "code": None}, 400),
        "INVALID_ARGUMENT", ["Tool call id was abc123"]),
    "openrouter-metadata-raw": (
        400, Json({"error": {"code": 400, "message": "Provider returned error",
                             "metadata": {"raw": "context too long", "provider_name": "Stealth"}},
                   "user_id": "user_xxx"}, 400),
        "INVALID_ARGUMENT", ["Provider returned error", "context too long"]),
    "string-error-403": (
        403, Json({"error": "just a string"}, 403), "PERMISSION_DENIED", ["just a string"]),
    "llama.cpp-loading-503": (
        503, Json({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}, 503),
        "UNAVAILABLE", ["Loading model"]),
    "plain-text-500": (
        500, Raw("Internal Server Error: worker crashed", 500, "text/plain"), "INTERNAL", ["worker crashed"]),
    "cloudflare-html-502": (
        503, Raw(CLOUDFLARE, 502, "text/html"), "UNAVAILABLE", ["502: Bad gateway"]),
    "cloudflare-522": (
        503, Raw("<html><head><title>522: Connection timed out</title></head></html>", 522, "text/html"),
        "UNAVAILABLE", ["522: Connection timed out"]),
    "html-without-title-500": (
        500, Raw("<html><body><h1>Oops</h1><p>Something <b>broke</b></p></body></html>", 500, "text/html"),
        "INTERNAL", ["Oops", "Something", "broke"]),
    "openrouter-credits-402": (
        400, Json({"error": {"code": 402, "message": "Insufficient credits. Add more using https://openrouter.ai/credits"}},
                  402),
        "INVALID_ARGUMENT", ["Insufficient credits"]),
    "fastapi-422": (
        400, Json({"detail": "Field required: messages"}, 422), "INVALID_ARGUMENT", ["Field required: messages"]),
    "proxy-408": (
        504, Raw("Request Timeout", 408, "text/plain"), "DEADLINE_EXCEEDED", ["Request Timeout"]),
    "empty-body-400": (400, Raw(b"", 400, "application/json"), "INVALID_ARGUMENT", []),
    "empty-body-503": (503, Raw(b"", 503, "text/plain"), "UNAVAILABLE", []),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(UPSTREAM_ERRORS))
def test_upstream_http_error_keeps_its_message_with_googles_code(no_retry, upstream, case, method):
    code, reply, status, fragments = UPSTREAM_ERRORS[case]
    upstream.reply(reply)

    response = post(no_retry, PATHS[method])

    assert response.status_code == code  # also for a stream: the error comes before any output
    error = assert_clean(response)
    assert error["status"] == status
    for fragment in fragments:
        assert fragment in error["message"]
    assert "<" not in error["message"]  # HTML reduced to its text
    assert len(error["message"]) < 600
    [request] = upstream.chat_requests
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["json"].get("stream", False) is (method != "generate")


@pytest.mark.parametrize("method", METHODS)
def test_429_retry_after_seconds_is_passed_on_with_retry_info(no_retry, upstream, method):
    upstream.reply(Json({"error": {"message": "Rate limit reached. Please try again in 7s.", "type": "requests",
                                   "code": "rate_limit_exceeded"}}, 429, headers={"Retry-After": "7"}))

    response = post(no_retry, PATHS[method])

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    error = assert_clean(response)
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert "Rate limit reached" in error["message"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in error["details"]
    assert len(upstream.chat_requests) == 1


@pytest.mark.parametrize("method", METHODS)
def test_429_retry_after_date_is_passed_on_without_retry_info(no_retry, upstream, method):
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    upstream.reply(Json({"error": {"message": "slow down", "code": 429}}, 429, headers={"Retry-After": date}))

    response = post(no_retry, PATHS[method])

    assert response.status_code == 429
    assert response.headers["Retry-After"] == date
    error = assert_clean(response)
    assert "RetryInfo" not in json.dumps(error.get("details", []))


def test_no_retry_after_header_without_one_upstream(no_retry, upstream):
    upstream.reply(Json({"error": {"message": "busy", "code": 429}}, 429))

    response = post(no_retry, GENERATE)

    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert "details" not in assert_clean(response)


def test_persistent_retryable_error_still_reaches_the_client_with_the_default_config(function, upstream):
    reply = Json({"error": {"message": "The model is overloaded.", "type": "unavailable_error", "code": 503}}, 503)
    upstream.reply(*[reply] * 10)

    response = post(function, STREAM_SSE)

    assert response.status_code == 503
    error = assert_clean(response)
    assert error["status"] == "UNAVAILABLE"
    assert "The model is overloaded." in error["message"]
    requests_sent = upstream.chat_requests
    assert 1 <= len(requests_sent) < 10
    assert all(r["json"] == requests_sent[0]["json"] for r in requests_sent)


# --- transport failures -------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_unreachable_upstream_is_503(serve, upstream, method):
    with socket.socket() as probe:  # the premise: nothing listens on port 9
        assert probe.connect_ex(("127.0.0.1", 9)) != 0
    function = serve(UPSTREAM_BASE_URL="http://127.0.0.1:9/v1")

    response = post(function, PATHS[method])

    assert response.status_code == 503
    error = assert_clean(response)
    assert error["status"] == "UNAVAILABLE"
    assert upstream.chat_requests == []


@pytest.fixture
def slow_function(serve):
    return serve(UPSTREAM_TIMEOUT="0.5")


@pytest.fixture
def release():
    """An event the slow upstream waits for; set once the test has its answer (or failed)."""
    event = threading.Event()
    yield event
    event.set()


def _after(event, reply):
    def answer(body):
        event.wait(30)
        return reply
    return answer


def test_slow_upstream_generate_is_504(slow_function, upstream, release):
    upstream.reply(_after(release, Json(completion("too late"))))

    response = post(slow_function, GENERATE)

    assert not release.is_set()  # the answer came while the upstream was still silent
    assert response.status_code == 504
    error = assert_clean(response)
    assert error["status"] == "DEADLINE_EXCEEDED"
    assert len(upstream.chat_requests) == 1


@pytest.mark.parametrize("method", ["stream-sse", "stream-json"])
def test_slow_upstream_headers_stream_is_504(slow_function, upstream, release, method):
    upstream.reply(_after(release, Stream([chunk({"content": "too late"}), "[DONE]"])))

    response = post(slow_function, PATHS[method])

    assert not release.is_set()
    assert response.status_code == 504
    assert assert_clean(response)["status"] == "DEADLINE_EXCEEDED"


@pytest.mark.parametrize("method", ["stream-sse", "stream-json"])
def test_slow_upstream_first_event_stream_is_504(slow_function, upstream, release, method):
    upstream.reply(Stream([Pause(until=release, timeout=30), chunk({"content": "too late"}), "[DONE]"]))

    response = post(slow_function, PATHS[method])

    assert not release.is_set()
    assert response.status_code == 504
    assert assert_clean(response)["status"] == "DEADLINE_EXCEEDED"


@pytest.mark.parametrize("method", ["stream-sse", "stream-json"])
def test_upstream_silent_mid_stream_is_a_504_error_event(slow_function, upstream, release, method):
    upstream.reply(Stream([chunk({"role": "assistant", "content": "started"}), Pause(until=release, timeout=30),
                           chunk({"content": " too late"}, finish="stop"), "[DONE]"]))

    response = post(slow_function, PATHS[method])

    assert not release.is_set()
    assert response.status_code == 200
    if method == "stream-sse":
        frames = response.content.split(b"\r\n\r\n")
        assert frames[-1] == b""
        events = [json.loads(frame[len(b"data: "):]) for frame in frames[:-1]]
    else:
        events = json.loads(response.content)
    assert events[0]["candidates"][0]["content"]["parts"] == [{"text": "started"}]
    assert events[-1]["error"]["code"] == 504
    assert events[-1]["error"]["status"] == "DEADLINE_EXCEEDED"
    assert "too late" not in response.text


# --- 200 answers that are not answers -----------------------------------------------------------

@pytest.mark.parametrize("reply", [
    Raw("<html><body>Welcome to nginx!</body></html>", 200, "text/html"),
    Raw("this is not json", 200, "application/json"),
    Raw(b"", 200, "application/json"),
    Raw('{"id": "chatcmpl-1", "choices": [{"message": ', 200, "application/json"),
], ids=["html", "text-as-json", "empty", "truncated-json"])
def test_non_json_200_is_500(no_retry, upstream, reply):
    upstream.reply(reply)

    response = post(no_retry, GENERATE)

    assert response.status_code == 500
    error = assert_clean(response)
    assert error["status"] == "INTERNAL"
    assert "<" not in error["message"]


@pytest.mark.parametrize("method", ["stream-sse", "stream-json"])
@pytest.mark.parametrize("reply", [
    Raw("<html><body>Welcome to nginx!</body></html>", 200, "text/html"),
    Raw("event: ping\n\n", 200, "text/event-stream"),
    Raw("data: {not json}\n\n", 200, "text/event-stream"),
], ids=["html", "no-data-events", "bad-event-json"])
def test_non_sse_200_stream_is_500(no_retry, upstream, reply, method):
    upstream.reply(reply)

    response = post(no_retry, PATHS[method])

    assert response.status_code == 500
    assert assert_clean(response)["status"] == "INTERNAL"


@pytest.mark.parametrize("method", ["stream-sse", "stream-json"])
@pytest.mark.parametrize("reply", [
    Raw("this is not json", 200, "application/json"),
    Stream(['{"id": "chatcmpl-1", "choices": [', Disconnect()], content_type="application/json"),
], ids=["not-json", "dropped-mid-body"])
def test_broken_json_answer_to_a_stream_request_is_500(no_retry, upstream, method, reply):
    upstream.reply(reply)

    response = post(no_retry, PATHS[method])

    assert response.status_code == 500
    assert assert_clean(response)["status"] == "INTERNAL"


def test_dropped_json_body_generate_is_500(no_retry, upstream):
    upstream.reply(Stream(['{"id": "chatcmpl-1", "choices": [', Disconnect()], content_type="application/json"))

    response = post(no_retry, GENERATE)

    assert response.status_code == 500
    assert assert_clean(response)["status"] == "INTERNAL"


def test_slow_body_after_headers_generate_is_504(slow_function, upstream, release):
    upstream.reply(Stream([Pause(until=release, timeout=30), json.dumps(completion("too late"))],
                          content_type="application/json"))

    response = post(slow_function, GENERATE)

    assert not release.is_set()
    assert response.status_code == 504
    assert assert_clean(response)["status"] == "DEADLINE_EXCEEDED"


@pytest.mark.parametrize("method", ["stream-sse", "stream-json"])
def test_slow_json_body_to_a_stream_request_is_504(slow_function, upstream, release, method):
    upstream.reply(Stream([Pause(until=release, timeout=30), json.dumps(completion("too late"))],
                          content_type="application/json"))

    response = post(slow_function, PATHS[method])

    assert not release.is_set()
    assert response.status_code == 504
    assert assert_clean(response)["status"] == "DEADLINE_EXCEEDED"


@pytest.mark.parametrize("method", METHODS)
# An error without an HTTP code of its own counts as a gateway failure (502): 503 UNAVAILABLE.
@pytest.mark.parametrize("body, code, status, fragment", [
    ({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": 429}}, 429,
     "RESOURCE_EXHAUSTED", "You exceeded your current quota"),
    ({"error": {"message": "overloaded", "code": "503"}}, 503, "UNAVAILABLE", "overloaded"),
    ({"error": {"message": "no code here", "type": "server_error"}}, 503, "UNAVAILABLE", "no code here"),
    ({"error": {"message": "odd code", "code": "insufficient_quota"}}, 503, "UNAVAILABLE", "odd code"),
    ({"error": "a bare string"}, 503, "UNAVAILABLE", "a bare string"),
], ids=["int-429", "string-503", "no-code", "string-code", "string-error"])
def test_200_with_an_error_body_is_that_error(no_retry, upstream, method, body, code, status, fragment):
    upstream.reply(Json(body, 200))

    response = post(no_retry, PATHS[method])

    assert response.status_code == code
    error = assert_clean(response)
    assert error["status"] == status
    assert fragment in error["message"]
    assert len(upstream.chat_requests) == 1


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("body", [{"id": "x", "object": "chat.completion"}, [1, 2], "just a string"],
                         ids=["no-choices", "array", "string"])
def test_200_json_that_is_not_a_completion_is_500(no_retry, upstream, method, body):
    upstream.reply(Json(body, 200))

    response = post(no_retry, PATHS[method])

    assert response.status_code == 500
    assert assert_clean(response)["status"] == "INTERNAL"


# --- answers of a shape the translation does not expect: the upstream's fault, a 500 that says so --

ODD_ANSWERS = [
    ({"id": "x", "choices": [{"index": 0, "message": "just a string", "finish_reason": "stop"}]},
     "The upstream answer's choices[].message is not a JSON object."),
    ({"id": "x", "choices": [{"index": 0, "message": {"content": "a", "tool_calls": [{"function": "f"}]}}]},
     "The upstream answer's choices[].message.tool_calls[].function is not a JSON object."),
    ({"id": "x", "choices": [{"index": 0, "message": {"content": "a"}}], "usage": {"completion_tokens_details": [1]}},
     "The upstream answer's usage.completion_tokens_details is not a JSON object."),
    ({"id": "x", "choices": [{"index": 0, "message": {"content": "a"}, "logprobs": {"content": [{"logprob": None}]}}]},
     "The upstream answer's choices[].logprobs.content[].logprob is not a number."),
]


@pytest.mark.parametrize("answer,message", ODD_ANSWERS)
def test_an_answer_of_an_odd_shape_is_a_500_that_blames_the_upstream_not_a_crash(no_retry, upstream, answer, message):
    upstream.reply(Json(answer))
    response = post(no_retry, GENERATE)
    error = assert_clean(response)
    assert (response.status_code, error["status"], error["message"]) == (500, "INTERNAL", message)


@pytest.mark.parametrize("odd,message", [
    ({"choices": [{"index": 0, "delta": "oops"}]}, "The upstream answer's choices[].delta is not a JSON object."),
    ({"choices": [{"index": {"a": 1}, "delta": {"content": "x"}}]},
     "The upstream answer's choices[].index is not an integer."),
    ({"choices": [{"index": 0, "delta": {"tool_calls": [{"function": "f"}]}}]},
     "The upstream answer's choices[].delta.tool_calls[].function is not a JSON object.")])
def test_an_odd_chunk_after_output_ends_the_stream_with_an_error_event(no_retry, upstream, odd, message):
    upstream.reply(Stream([chunk({"content": "a"}), odd, chunk({}, finish="stop"), "[DONE]"]))
    response = post(no_retry, STREAM_SSE)
    events = [json.loads(e[len("data: "):]) for e in response.text.split("\r\n\r\n") if e]
    assert events[0]["candidates"][0]["content"]["parts"] == [{"text": "a"}]
    assert list(events[-1]) == ["error"] and events[-1]["error"] == {"code": 500, "message": message,
                                                                      "status": "INTERNAL"}


# --- a bug of ours is our 500, logged with its traceback; the upstream's odd answer stays its error -----

@pytest.fixture
def in_process(upstream, monkeypatch, capsys):
    """The function as functions-framework serves it, in this process (a test client, no socket),
    over the loopback upstream; ``logs()`` gives the JSON lines it has written since the last call."""
    monkeypatch.setenv("UPSTREAM_BASE_URL", upstream.base_url)
    monkeypatch.setenv("UPSTREAM_RETRIES", "0")
    for name in ("UPSTREAM_API_KEY", "ACCESS_KEYS"):
        monkeypatch.delenv(name, raising=False)
    client = functions_framework.create_app(target="gemini", source=str(REPO / "main.py")).test_client()

    def logs():
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]

    client.logs = logs
    return client


@pytest.mark.parametrize("path", [GENERATE, STREAM_SSE, STREAM_JSON], ids=["generate", "stream-sse", "stream-json"])
def test_a_bug_of_ours_in_translation_is_our_500_logged_at_error_with_its_traceback(in_process, monkeypatch, path):
    def broken(*args, **kwargs):
        raise KeyError("a bug of ours")

    monkeypatch.setattr(response_translation.StreamTranslator, "translate", broken)
    monkeypatch.setattr(gateway, "gemini_response", broken)
    response = in_process.post(path, json=hello(), headers={"x-goog-api-key": KEY})
    assert (response.status_code, response.json["error"]) == (500, {
        "code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"})
    logged = in_process.logs()
    errors = [record for record in logged if record["severity"] == "ERROR" and "httpRequest" not in record]
    assert len(errors) == 1 and errors[0]["message"].startswith("unexpected error\nTraceback")
    assert "KeyError: 'a bug of ours'" in errors[0]["message"]
    assert [record["httpRequest"]["status"] for record in logged if "httpRequest" in record] == [500]


@pytest.mark.parametrize("path", [GENERATE, STREAM_SSE], ids=["generate", "stream"])
def test_an_odd_upstream_answer_in_process_is_the_upstream_s_error_and_no_traceback(in_process, upstream, path):
    answer, message = ODD_ANSWERS[0]
    upstream.reply(Json(answer) if path == GENERATE else Stream([{**answer, "choices": [{"index": 0, "delta": "x"}]}]))
    response = in_process.post(path, json=hello(), headers={"x-goog-api-key": KEY})
    expected = message if path == GENERATE else "The upstream answer's choices[].delta is not a JSON object."
    assert (response.status_code, response.json["error"]["message"]) == (500, expected)
    logged = in_process.logs()
    assert [record["httpRequest"]["status"] for record in logged if "httpRequest" in record] == [500]
    assert not any("Traceback" in record["message"] for record in logged), logged


@pytest.mark.parametrize("raw", [b'{"choices": [{"message": {"content": "a"}}], "usage": {"prompt_tokens": 1e400}}',
                                 b'{"choices": [{"message": {"content": NaN}}]}',
                                 b"[" * 100000 + b"]" * 100000])
def test_answers_that_are_not_strict_json_are_a_500(no_retry, upstream, raw):
    upstream.reply(Raw(raw, content_type="application/json"))
    response = post(no_retry, GENERATE)
    assert response.status_code == 500 and "not valid JSON" in assert_clean(response)["message"]


@pytest.mark.parametrize("headers", [{"Retry-After": "nan"}, {"retry-after-ms": "inf"}, {"Retry-After": "\u00b2"}])
def test_unusable_retry_after_headers_are_dropped(no_retry, upstream, headers):
    upstream.reply(Json({"error": {"message": "slow down"}}, 429, headers=headers))
    response = post(no_retry, STREAM_SSE)
    assert response.status_code == 429 and "Retry-After" not in response.headers
    assert assert_clean(response)["message"] == "slow down"
