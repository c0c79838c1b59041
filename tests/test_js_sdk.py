"""The official JS SDK (@google/genai 3.x, on Node) pointed at the function: each test runs
tests/clients/genai.mjs, which prints the SDK's results (and the URLs it fetched) as JSON.

Needs ``npm ci --prefix tests/clients``; the module is skipped without tests/clients/node_modules."""

import json
import pathlib
import shutil
import subprocess
import urllib.parse

import pytest

from fake_upstream import Json, Stream, completion, text_stream, tool_call, usage
from helpers import KEY, client_env

CLIENTS = pathlib.Path(__file__).resolve().parent / "clients"
MODEL = "qwen-turbo"

if not (CLIENTS / "node_modules" / "@google" / "genai").is_dir() or shutil.which("node") is None:
    pytest.skip("the JS SDK is not installed: run `npm ci --prefix tests/clients` (needs node)",
                allow_module_level=True)


def run_sdk(server, operation, timeout=60, **args):
    """Runs one SDK operation; returns the script's JSON ({"result", "error", "requests"})."""
    env = client_env(GENAI_BASE_URL=server.url, GENAI_API_KEY=KEY, NO_COLOR="1")
    done = subprocess.run(["node", str(CLIENTS / "genai.mjs"), operation, json.dumps(args)], cwd=CLIENTS, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"node exited {done.returncode}:\n{done.stderr}\n{done.stdout}"
    output = json.loads(done.stdout.strip().splitlines()[-1])
    output["paths"] = [_path(r["url"]) for r in output["requests"]]
    return output


def _path(url):
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def ok(output):
    assert output["error"] is None, output["error"]
    return output["result"]


# --- generateContent ----------------------------------------------------------------------------

@pytest.mark.parametrize("api_version,expected", [(None, "v1"), ("v1", "v1"), ("v1beta", "v1beta")],
                         ids=["sdk-default", "v1", "v1beta"])
def test_generate_content_text(function, upstream, api_version, expected):
    upstream.reply(Json(completion("Hi from upstream", model="qwen-turbo-0919", usage_=usage(prompt=3, completion=4))))

    output = run_sdk(function, "generate", apiVersion=api_version, text="Hello there")

    result = ok(output)
    assert result["text"] == "Hi from upstream"
    assert result["finishReason"] == "STOP"
    assert result["role"] == "model"
    assert result["usage"] == {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}
    assert result["modelVersion"] == "qwen-turbo-0919"
    assert result["responseId"] == "chatcmpl-test123"
    assert output["paths"] == [f"/{expected}/models/{MODEL}:generateContent"]
    [request] = upstream.chat_requests
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["json"] == {"model": MODEL, "messages": [{"role": "user", "content": "Hello there"}]}


def test_generate_content_config_reaches_the_upstream(function, upstream):
    output = run_sdk(function, "generate", text="Be brief", config={
        "systemInstruction": "You are terse.", "temperature": 0.3, "maxOutputTokens": 20, "stopSequences": ["END"]})

    assert ok(output)["text"] == "echo: Be brief"
    assert upstream.last == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Be brief"}],
        "temperature": 0.3, "max_tokens": 20, "stop": ["END"],
    }


# --- streamGenerateContent ----------------------------------------------------------------------

def test_generate_content_stream(function, upstream):
    output = run_sdk(function, "stream", text="one two three four")

    chunks = ok(output)["chunks"]
    assert len(chunks) >= 2  # really streamed, word by word
    assert "".join(c["text"] or "" for c in chunks) == "echo: one two three four"
    assert chunks[-1]["finishReason"] == "STOP"
    assert all(c["finishReason"] is None for c in chunks[:-1])
    assert chunks[-1]["usage"]["totalTokenCount"] == 12
    assert output["paths"] == [f"/v1/models/{MODEL}:streamGenerateContent?alt=sse"]
    assert upstream.last["stream"] is True
    assert upstream.last["messages"] == [{"role": "user", "content": "one two three four"}]


def test_generate_content_stream_scripted_pieces(function, upstream):
    upstream.reply(Stream(text_stream(["Hel", "lo, ", "wor", "ld"])))

    output = run_sdk(function, "stream", apiVersion="v1beta", text="hi")

    chunks = ok(output)["chunks"]
    assert [c["text"] for c in chunks if c["text"]] == ["Hel", "lo, ", "wor", "ld"]
    assert chunks[-1]["finishReason"] == "STOP"
    assert output["paths"] == [f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"]
    assert upstream.last["stream"] is True and upstream.last["messages"] == [{"role": "user", "content": "hi"}]


# --- function calling ---------------------------------------------------------------------------

def test_function_call(function, upstream):
    call = tool_call("get_weather", {"city": "Paris", "unit": "C"}, call_id="call_w1")
    upstream.reply(Json(completion(None, finish="tool_calls", tool_calls=[call])))

    output = run_sdk(function, "functionCall", text="Weather in Paris?")

    result = ok(output)
    assert result["functionCalls"] == [{"id": "call_w1", "name": "get_weather", "args": {"city": "Paris", "unit": "C"}}]
    assert result["finishReason"] == "STOP"
    [tool] = upstream.last["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "get_weather"
    assert tool["function"]["description"] == "The weather in a city"
    assert tool["function"]["parameters"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
        "required": ["city"],
    }
    assert upstream.last["messages"] == [{"role": "user", "content": "Weather in Paris?"}]


# --- countTokens, embeddings, models ------------------------------------------------------------

def test_count_tokens(function, upstream):
    upstream.reply(Json(completion("x", usage_=usage(prompt=11, completion=1))))

    output = run_sdk(function, "countTokens", text="How many tokens is this?")

    assert ok(output) == {"totalTokens": 11}
    assert output["paths"] == [f"/v1/models/{MODEL}:countTokens"]
    assert upstream.last["max_tokens"] == 1
    assert upstream.last["messages"] == [{"role": "user", "content": "How many tokens is this?"}]


def test_embed_content(function, upstream):
    output = run_sdk(function, "embed", model="text-embedding-v3", contents=["hello", "good morning"],
                     config={"outputDimensionality": 3})

    result = ok(output)
    # The JS SDK (Gemini API, not Vertex) always uses the batch method, even for embedContent.
    assert output["paths"] == ["/v1/models/text-embedding-v3:batchEmbedContents"]
    assert result["embeddings"] == [[0.5, 0.6, 0.7], [0.5, 0.6, 0.7]]  # fake: len(text) % 7 + k, / 10
    [request] = [r for r in upstream.requests if r["path"].endswith("/embeddings")]
    assert request["json"] == {"model": "text-embedding-v3", "input": ["hello", "good morning"], "dimensions": 3}


@pytest.fixture
def seven_models(upstream):
    saved = upstream.models
    upstream.models = [{"id": f"model-{n}", "object": "model", "owned_by": "nexusflow"} for n in range(7)]
    yield upstream.models
    upstream.models = saved


def test_models_list_pager_terminates(function, upstream, seven_models):
    output = run_sdk(function, "listModels", pageSize=3)

    result = ok(output)
    assert result["runaway"] is False
    assert result["names"] == [f"models/model-{n}" for n in range(7)]
    assert len(output["paths"]) == 3  # 3 + 3 + 1
    assert output["paths"][0] == "/v1/models?pageSize=3"
    assert all(p.startswith("/v1/models?pageSize=3&pageToken=") for p in output["paths"][1:])
    assert [r["path"] for r in upstream.requests] == ["/v1/models"] * 3


def test_models_get(function, upstream):
    output = run_sdk(function, "getModel", apiVersion="v1beta")

    result = ok(output)
    assert result["name"] == f"models/{MODEL}"
    assert result["displayName"] == MODEL
    assert output["paths"] == [f"/v1beta/models/{MODEL}"]
    assert [(r["method"], r["path"]) for r in upstream.requests] == [("GET", "/v1/models")]
    assert upstream.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"


# --- errors -------------------------------------------------------------------------------------

def test_upstream_429_is_an_api_error(serve, upstream):
    no_retry = serve(UPSTREAM_RETRIES="0")
    upstream.reply(Json({"error": {"message": "Rate limit reached for requests", "type": "requests",
                                   "code": "rate_limit_exceeded"}}, 429))

    output = run_sdk(no_retry, "generate", text="hi")

    error = output["error"]
    assert error["isApiError"] and error["name"] == "ApiError"
    assert error["status"] == 429
    body = json.loads(error["message"])
    assert body["error"]["code"] == 429
    assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "Rate limit reached" in body["error"]["message"]
    assert len(upstream.chat_requests) == 1  # the SDK does not retry by default


def test_upstream_429_in_a_stream_is_an_api_error(serve, upstream):
    no_retry = serve(UPSTREAM_RETRIES="0")
    upstream.reply(Json({"error": {"message": "Rate limit reached for requests", "code": 429}}, 429))

    output = run_sdk(no_retry, "stream", text="hi")

    assert output["error"]["isApiError"] and output["error"]["status"] == 429
    assert len(upstream.chat_requests) == 1


def test_bad_temperature_is_a_400_naming_the_field(function, upstream):
    output = run_sdk(function, "generate", text="hi", config={"temperature": 5})

    error = output["error"]
    assert error["isApiError"] and error["status"] == 400
    body = json.loads(error["message"])
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    assert "generationConfig.temperature" in body["error"]["message"]
    assert upstream.chat_requests == []  # refused before the upstream
