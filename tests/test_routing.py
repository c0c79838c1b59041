"""Routing: which paths and methods reach the upstream, and the Gemini error every other path gets
(400 for a bad model ID, 404 for unknown paths and actions, and 404 with ``Allow`` for a wrong method,
as Google's front end answers it).

The battery runs in process: the test client hands the function the path as given, undecoded, in
RAW_URI, as gunicorn does. A few paths go over the wire too, byte for byte with http.client
(requests/urllib3 would normalise ``a/../b`` and re-encode some characters), to check that the
server hands them over as sent."""

import http.client
import json

import pytest

from helpers import KEY, Answer, error_of, hello

HELLO = json.dumps(hello("route me")).encode()


def send(app, method, path, body=HELLO, key=KEY, headers=None):
    """One request to the function in process, ``path`` as given."""
    return app.request(method, path, body, key=key, headers={"Content-Type": "application/json", **(headers or {})})


def send_raw(function, method, path, body=HELLO, key=KEY):
    """One request to the served function with ``path`` exactly as given (no normalisation, no re-encoding)."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["x-goog-api-key"] = key
    connection = http.client.HTTPConnection("127.0.0.1", function.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def assert_echo(response, text="route me"):
    assert response.status_code == 200, response.content
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["candidates"][0]["content"]["parts"] == [{"text": f"echo: {text}"}]


# --- paths that work ---------------------------------------------------------------------------

@pytest.mark.parametrize("path, model", [
    ("/v1/models/qwen-turbo:generateContent", "qwen-turbo"),
    ("/v1beta/models/qwen-turbo:generateContent", "qwen-turbo"),
    ("/v1alpha/models/qwen-turbo:generateContent", "qwen-turbo"),
    # a path prefix (Cloud Functions URLs carry the function name)
    ("/gemini/v1beta/models/qwen-turbo:generateContent", "qwen-turbo"),
    ("/a/b/v1/models/qwen-turbo:generateContent", "qwen-turbo"),
    ("/gemini/v1alpha/models/gemini-2.5-flash:generateContent", "gemini-2.5-flash"),
    # owner/model IDs
    ("/v1beta/models/Qwen/Qwen3-8B:generateContent", "Qwen/Qwen3-8B"),
    ("/gemini/v1/models/deepseek-ai/DeepSeek-V3.1:generateContent", "deepseek-ai/DeepSeek-V3.1"),
    # dots, underscores, dashes, digits
    ("/v1beta/models/qwen2.5-7b_instruct:generateContent", "qwen2.5-7b_instruct"),
    ("/v1beta/models/A_b.C-9:generateContent", "A_b.C-9"),
    # an encoded verb separator, either case
    ("/v1beta/models/qwen-turbo%3AgenerateContent", "qwen-turbo"),
    ("/v1beta/models/qwen-turbo%3agenerateContent", "qwen-turbo"),
    ("/gemini/v1/models/Qwen/Qwen3-8B%3AgenerateContent", "Qwen/Qwen3-8B"),
    # the query string is not part of the route
    ("/v1beta/models/qwen-turbo:generateContent?alt=json", "qwen-turbo"),
    # ':' inside model IDs: Ollama tags, OpenAI fine-tunes, OpenRouter variants
    ("/v1beta/models/qwen2.5:7b:generateContent", "qwen2.5:7b"),
    ("/v1beta/models/qwen2.5%3A7b%3AgenerateContent", "qwen2.5:7b"),
    ("/v1/models/ft:gpt-4o-mini:org:custom:A1b2:generateContent", "ft:gpt-4o-mini:org:custom:A1b2"),
    ("/v1beta/models/ft:gpt-4o-mini:org::A1b2:generateContent", "ft:gpt-4o-mini:org::A1b2"),
    ("/v1beta/models/meta-llama/llama-3-8b-instruct:free:generateContent", "meta-llama/llama-3-8b-instruct:free"),
    ("/v1beta/models/llama3:latest:generateContent", "llama3:latest"),
])
def test_generate_content_paths_reach_upstream_with_the_model(app, upstream, path, model):
    response = send(app, "POST", path)
    assert_echo(response)
    assert len(upstream.chat_requests) == 1
    request = upstream.chat_requests[0]
    assert request["method"] == "POST"
    assert request["path"] == "/v1/chat/completions"
    assert upstream.last["model"] == model
    assert upstream.last["messages"] == [{"role": "user", "content": "route me"}]


@pytest.mark.parametrize("path, model", [
    ("/v1beta/models/Qwen/Qwen3-8B:streamGenerateContent?alt=sse", "Qwen/Qwen3-8B"),
    ("/gemini/v1/models/qwen2.5-7b_instruct%3AstreamGenerateContent?alt=sse", "qwen2.5-7b_instruct"),
])
def test_stream_generate_content_paths_reach_upstream_with_the_model(app, upstream, path, model):
    response = send(app, "POST", path)
    assert response.status_code == 200, response.content
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert b"echo:" in response.content
    assert upstream.last["model"] == model
    assert upstream.last["stream"] is True


def test_model_in_the_path_wins_over_a_model_field_in_the_body(app, upstream):
    body = json.dumps({**hello("route me"), "model": "models/some-other-model"}).encode()
    response = send(app, "POST", "/v1beta/models/qwen-turbo:generateContent", body=body)
    assert_echo(response)
    assert upstream.last["model"] == "qwen-turbo"


# --- invalid model IDs: 400, before auth, action and method checks ----------------------------

LONG_JUNK = "junk!" * 400  # 2000 characters, none of them allowed

INVALID_MODELS = [
    pytest.param("", id="empty"),
    pytest.param("..", id="dotdot"),
    pytest.param("a/../b", id="dot-segment"),
    pytest.param("./x", id="dot-segment-first"),
    pytest.param(".hidden", id="leading-dot"),
    pytest.param("owner/.x", id="owner-leading-dot"),
    pytest.param("a..b", id="dotdot-inside"),
    pytest.param("a%20b", id="encoded-space"),
    pytest.param("a%2Fb", id="encoded-slash"),
    pytest.param("a%2fb", id="encoded-slash-lower"),
    pytest.param("a%2Eb", id="encoded-dot"),
    pytest.param("a/b/c", id="two-slashes"),
    pytest.param("/x", id="empty-owner"),
    pytest.param("owner/", id="empty-name"),
    pytest.param("%C3%A9t%C3%A9", id="unicode"),
    pytest.param("qwen%E2%80%8Bturbo", id="zero-width-space"),
    pytest.param("a%00b", id="nul"),
    pytest.param("a~b", id="tilde"),
    pytest.param("a+b", id="plus"),
    pytest.param(LONG_JUNK, id="long-junk"),
]


def assert_bad_model(response, model):
    error = error_of(response)
    assert response.status_code == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"].startswith("model:"), error["message"]
    # the ID as sent (long ones shortened)
    shown = repr(model) if len(model) <= 100 else model[:50]
    assert shown in error["message"], error["message"]


@pytest.mark.parametrize("model", INVALID_MODELS)
def test_invalid_model_id_is_400(app, upstream, model):
    response = send(app, "POST", f"/v1beta/models/{model}:generateContent")
    assert_bad_model(response, model)
    assert upstream.requests == []


@pytest.mark.parametrize("model", INVALID_MODELS)
@pytest.mark.parametrize("method, suffix, key", [
    pytest.param("POST", ":generateContent", None, id="no-key"),
    pytest.param("POST", ":fooBar", KEY, id="unknown-action"),
    pytest.param("POST", ":fooBar", None, id="unknown-action-no-key"),
    pytest.param("GET", ":generateContent", None, id="wrong-method-no-key"),
    pytest.param("POST", "%3AstreamGenerateContent", None, id="stream-encoded-colon-no-key"),
])
def test_invalid_model_id_is_checked_before_anything_else(app, upstream, model, method, suffix, key):
    response = send(app, method, f"/gemini/v1/models/{model}{suffix}", body=b"not json", key=key)
    assert_bad_model(response, model)
    assert upstream.requests == []


def test_long_model_id_is_shortened_in_the_message(app, upstream):
    response = send(app, "POST", f"/v1beta/models/{LONG_JUNK}:generateContent")
    error = error_of(response)
    assert response.status_code == 400
    assert LONG_JUNK not in error["message"]
    assert LONG_JUNK[:100] + "..." in error["message"]
    assert len(error["message"]) < 400
    assert upstream.requests == []


# --- unknown paths and actions: 404 ------------------------------------------------------------

@pytest.mark.parametrize("path, mentioned", [
    ("/v1beta/models/qwen-turbo:fooBar", "fooBar"),
    ("/v1/models/qwen-turbo:generatecontent", "generatecontent"),  # case matters
    ("/v1alpha/models/Qwen/Qwen3-8B:GenerateContent", "GenerateContent"),
    ("/gemini/v1beta/models/qwen-turbo%3AfooBar", "fooBar"),
    ("/v1beta/models/qwen-turbo:", "qwen-turbo:"),
    ("/v1beta/models/qwen-turbo:generateContent/", "generateContent/"),
])
@pytest.mark.parametrize("key", [KEY, None], ids=["key", "no-key"])
def test_unknown_action_is_404(app, upstream, path, mentioned, key):
    response = send(app, "POST", path, key=key)
    error = error_of(response)
    assert response.status_code == 404
    assert error["status"] == "NOT_FOUND"
    assert mentioned in error["message"]
    assert upstream.requests == []


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("path", [
    "/",
    "/v2/models/qwen-turbo:generateContent",
    "/v1/foo",
    "/v1beta",
    "/v1/model/qwen-turbo:generateContent",
    "/V1/models/qwen-turbo:generateContent",
    "/v1betax/models/qwen-turbo:generateContent",
    "/v1/tunedModels/x:generateContent",
])
def test_unknown_path_is_404_in_the_envelope(app, upstream, path, method):
    response = send(app, method, path, key=None)
    error = error_of(response)
    assert response.status_code == 404
    assert error["status"] == "NOT_FOUND"
    assert upstream.requests == []


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize("path", ["/favicon.ico", "/robots.txt"])
def test_framework_paths_answer_in_the_json_envelope_never_html(app, upstream, path, method):
    response = send(app, method, path, body=None if method == "GET" else b"{}", key=None)
    assert b"<html" not in response.content.lower() and b"<!doctype" not in response.content.lower()
    error = error_of(response)
    assert response.status_code == 404
    assert error["status"] == "NOT_FOUND"
    assert upstream.requests == []


# --- wrong method: 404 NOT_FOUND (as Google answers it) with Allow: POST ----------------------

@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path, action", [
    ("/v1beta/models/qwen-turbo:generateContent", "generateContent"),
    ("/gemini/v1/models/Qwen/Qwen3-8B%3AgenerateContent", "generateContent"),
    ("/v1alpha/models/qwen-turbo:streamGenerateContent?alt=sse", "streamGenerateContent"),
])
def test_wrong_method_is_404_not_found_with_allow_post(app, upstream, method, path, action):
    response = send(app, method, path, body=None if method == "GET" else HELLO)
    error = error_of(response)
    assert response.status_code == 404
    assert error["status"] == "NOT_FOUND"
    assert response.headers["Allow"] == "POST"
    assert action in error["message"] and error["message"].endswith(f" must be called with POST, not {method}.")
    assert upstream.requests == []


def test_head_on_generate_content_is_404_with_allow_post(app, upstream):
    response = send(app, "HEAD", "/v1beta/models/qwen-turbo:generateContent", body=None)
    assert response.status_code == 404
    assert response.headers["Allow"] == "POST"
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.content == b""
    assert upstream.requests == []


# --- over the wire: the server hands the function the path as sent -----------------------------

@pytest.mark.parametrize("method, path", [
    ("POST", "/gemini/v1/models/Qwen/Qwen3-8B%3AgenerateContent"),
    ("POST", "/v1beta/models/qwen2.5:7b:generateContent?alt=json"),
    ("POST", "/v1beta/models/a/../b:generateContent"),
    ("POST", "/v1beta/models/a%2Fb:generateContent"),
    ("POST", "/v1beta/models/%C3%A9t%C3%A9:generateContent"),
    ("POST", "/v1beta/models/a%00b:generateContent"),
    ("POST", "/v1beta/models/qwen-turbo%3AfooBar"),
    ("GET", "/gemini/v1/models/Qwen/Qwen3-8B%3AgenerateContent"),
])
def test_served_function_answers_a_raw_path_as_in_process(function, app, upstream, method, path):
    body = None if method == "GET" else HELLO
    served = send_raw(function, method, path, body=body)
    in_process = send(app, method, path, body=body)
    assert (served.status_code, served.json()) == (in_process.status_code, in_process.json())
    assert served.headers.get("Allow") == in_process.headers.get("Allow")
