"""The official google-genai SDK pointed at the function, on both API versions it may use (v1, the
3.x default, and v1beta): answers, config, streams, chats, the async client and error classes."""

import asyncio
import urllib.parse

import pytest
from google import genai
from google.genai import errors, types

from fake_upstream import Json, Stream, chunk, completion, text_stream, usage
from helpers import KEY

MODEL = "qwen-turbo"


@pytest.fixture(params=[None, "v1beta"], ids=["default-v1", "v1beta"])
def api_version(request):
    return request.param


class Sdk:
    """A genai.Client on a function server, recording the paths the SDK requested (sync and async)."""

    def __init__(self, server, api_version):
        self.paths = []
        self.version = api_version or "v1"

        def record(request):
            url = urllib.parse.urlsplit(str(request.url))
            self.paths.append(url.path + (f"?{url.query}" if url.query else ""))

        async def record_async(request):
            record(request)

        options = {"base_url": server.url, "client_args": {"event_hooks": {"request": [record]}},
                   "async_client_args": {"event_hooks": {"request": [record_async]}}}
        if api_version:
            options["api_version"] = api_version
        self.client = genai.Client(api_key=KEY, http_options=types.HttpOptions(**options))

    def path(self, action):
        return f"/{self.version}/models/{MODEL}:{action}"


@pytest.fixture
def sdk(function, upstream, api_version):
    return Sdk(function, api_version)


@pytest.fixture
def sdk_no_retry(serve, upstream, api_version):
    """On a function with upstream retries off: one upstream answer decides the outcome."""
    return Sdk(serve(UPSTREAM_RETRIES="0"), api_version)


# --- generate_content ---------------------------------------------------------------------------

def test_generate_content_text(sdk, upstream):
    upstream.reply(Json(completion("Hi from upstream", model="qwen-turbo-0919", usage_=usage(prompt=3, completion=4))))

    response = sdk.client.models.generate_content(model=MODEL, contents="Hello there")

    assert response.text == "Hi from upstream"
    candidate = response.candidates[0]
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content.role == "model"
    assert response.usage_metadata.prompt_token_count == 3
    assert response.usage_metadata.candidates_token_count == 4
    assert response.usage_metadata.total_token_count == 7
    assert response.model_version == "qwen-turbo-0919"
    assert response.response_id == "chatcmpl-test123"
    assert sdk.paths == [sdk.path("generateContent")]
    [request] = upstream.chat_requests
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["json"] == {"model": MODEL, "messages": [{"role": "user", "content": "Hello there"}]}


def test_generate_content_config_reaches_the_upstream(sdk, upstream):
    upstream.reply(Json(completion('{"ok": true}')))
    config = types.GenerateContentConfig(
        temperature=0.2, max_output_tokens=64, stop_sequences=["END"], system_instruction="Be terse.",
        top_p=0.5, top_k=3, seed=7, presence_penalty=0.25, frequency_penalty=0.5,
        response_mime_type="application/json",
    )

    response = sdk.client.models.generate_content(model=MODEL, contents="Give JSON", config=config)

    assert response.text == '{"ok": true}'
    sent = upstream.last
    assert sent["messages"] == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Give JSON"}]
    assert sent["temperature"] == 0.2
    assert sent["max_tokens"] == 64 and type(sent["max_tokens"]) is int
    assert sent["top_k"] == 3 and type(sent["top_k"]) is int  # the SDK sends 3.0
    assert sent["stop"] == ["END"]
    assert (sent["top_p"], sent["seed"], sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, 7, 0.25, 0.5)
    assert sent["response_format"] == {"type": "json_object"}
    assert "stream" not in sent


def test_thoughts_reach_the_sdk_as_thought_parts(sdk, upstream):
    upstream.reply(Json(completion("42", reasoning_content="Six times seven.",
                                   usage_=usage(prompt=2, completion=10, reasoning=8))))
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))

    response = sdk.client.models.generate_content(model=MODEL, contents="Answer?", config=config)

    parts = response.candidates[0].content.parts
    assert [(p.text, bool(p.thought)) for p in parts] == [("Six times seven.", True), ("42", False)]
    assert response.text == "42"
    assert response.usage_metadata.thoughts_token_count == 8
    assert response.usage_metadata.candidates_token_count == 2


# --- generate_content_stream --------------------------------------------------------------------

def test_generate_content_stream_yields_deltas_then_finish_and_usage(sdk, upstream):
    upstream.reply(Stream(text_stream(["Hel", "lo", " there"], usage_=usage(prompt=2, completion=3))))

    chunks = list(sdk.client.models.generate_content_stream(model=MODEL, contents="Greet me"))

    assert [c.text for c in chunks[:-1]] == ["Hel", "lo", " there"]
    assert "".join(c.text or "" for c in chunks) == "Hello there"
    assert [c.candidates[0].finish_reason for c in chunks[:-1]] == [None, None, None]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.total_token_count == 5
    assert chunks[-1].usage_metadata.prompt_token_count == 2
    assert sdk.paths == [sdk.path("streamGenerateContent") + "?alt=sse"]
    sent = upstream.last
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == [{"role": "user", "content": "Greet me"}]


@pytest.mark.parametrize("include", [True, False])
def test_a_think_block_in_streamed_content_reaches_the_sdk_as_thoughts(sdk, upstream, include):
    upstream.reply(Stream(text_stream(["<think>", "Six times", " seven.</thi", "nk>\n\n", "4", "2"])))
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=include))

    chunks = list(sdk.client.models.generate_content_stream(model=MODEL, contents="Answer?", config=config))

    parts = [(p.text, bool(p.thought)) for c in chunks for p in c.candidates[0].content.parts if p.text]
    thoughts = [("Six times", True), (" seven.", True)] if include else []
    assert parts == thoughts + [("4", False), ("2", False)]
    assert "".join(c.text or "" for c in chunks) == "42"


def test_a_json_answer_after_a_think_block_parses_in_the_sdk(sdk, upstream):
    upstream.reply(Json(completion('<think>They want JSON.</think>\n\n{"answer": 42}')))
    config = types.GenerateContentConfig(response_mime_type="application/json",
                                         response_schema={"type": "OBJECT", "properties": {"answer": {"type": "INTEGER"}}})

    response = sdk.client.models.generate_content(model=MODEL, contents="Answer?", config=config)

    assert response.parsed == {"answer": 42}
    assert response.text == '{"answer": 42}'


def test_line_separators_stream_through_whole(sdk, upstream):
    pieces = ["one\u2028two", "\u2029three\u0085", "four"]
    upstream.reply(Stream(text_stream(pieces)))

    chunks = list(sdk.client.models.generate_content_stream(model=MODEL, contents="Separate"))

    assert [c.text for c in chunks[:-1]] == pieces
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


# --- chats --------------------------------------------------------------------------------------

def test_chat_send_message_twice_sends_the_history(sdk, upstream):
    upstream.reply(Json(completion("First answer")), Json(completion("Second answer")))
    chat = sdk.client.chats.create(model=MODEL, config=types.GenerateContentConfig(system_instruction="Be kind."))

    first = chat.send_message("Hi")
    second = chat.send_message("And then?")

    assert (first.text, second.text) == ("First answer", "Second answer")
    system = {"role": "system", "content": "Be kind."}
    assert upstream.chat_requests[0]["json"]["messages"] == [system, {"role": "user", "content": "Hi"}]
    assert upstream.chat_requests[1]["json"]["messages"] == [
        system,
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "And then?"},
    ]


def test_chat_send_message_stream_twice_sends_one_assistant_message_per_turn(sdk, upstream):
    upstream.reply(Stream(text_stream(["Str", "eamed", " answer"])), Stream(text_stream(["Fine", "."])))
    chat = sdk.client.chats.create(model=MODEL)

    first = "".join(c.text or "" for c in chat.send_message_stream("Tell me"))
    second = "".join(c.text or "" for c in chat.send_message_stream("More"))

    assert (first, second) == ("Streamed answer", "Fine.")
    history = chat.get_history()
    # The premise: the SDK records a streamed turn as one model Content per chunk.
    assert len([c for c in history if c.role == "model"]) > 2, history
    assert upstream.chat_requests[1]["json"]["messages"] == [
        {"role": "user", "content": "Tell me"},
        {"role": "assistant", "content": "Streamed answer"},
        {"role": "user", "content": "More"},
    ]


# --- async --------------------------------------------------------------------------------------

def test_async_client_generate_and_stream(sdk, upstream):
    upstream.reply(Json(completion("async whole")), Stream(text_stream(["async", " pieces"])))

    async def run():
        whole = await sdk.client.aio.models.generate_content(model=MODEL, contents="one")
        pieces = [c async for c in await sdk.client.aio.models.generate_content_stream(model=MODEL, contents="two")]
        return whole, pieces

    whole, pieces = asyncio.run(run())

    assert whole.text == "async whole"
    assert whole.candidates[0].finish_reason == types.FinishReason.STOP
    assert "".join(c.text or "" for c in pieces) == "async pieces"
    assert pieces[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert sdk.paths == [sdk.path("generateContent"), sdk.path("streamGenerateContent") + "?alt=sse"]
    assert [r["json"]["messages"][-1]["content"] for r in upstream.chat_requests] == ["one", "two"]
    assert [r["json"].get("stream", False) for r in upstream.chat_requests] == [False, True]


# --- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, body, error_class, status_name, fragment", [
    (400, {"error": {"message": "Invalid 'messages[0]': empty content", "type": "invalid_request_error",
                     "param": None, "code": None}},
     errors.ClientError, "INVALID_ARGUMENT", "Invalid 'messages[0]': empty content"),
    (429, {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "param": None,
                     "code": "insufficient_quota"}},
     errors.ClientError, "RESOURCE_EXHAUSTED", "You exceeded your current quota"),
    (503, {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}},
     errors.ServerError, "UNAVAILABLE", "Loading model"),
])
@pytest.mark.parametrize("call", ["generate", "stream"])
def test_upstream_errors_raise_the_sdk_error_classes(sdk_no_retry, upstream, status, body, error_class, status_name,
                                                     fragment, call):
    upstream.reply(Json(body, status))
    models = sdk_no_retry.client.models

    with pytest.raises(error_class) as raised:
        if call == "generate":
            models.generate_content(model=MODEL, contents="Hi")
        else:
            list(models.generate_content_stream(model=MODEL, contents="Hi"))

    assert raised.value.code == status
    assert raised.value.status == status_name
    assert fragment in raised.value.message
    assert len(upstream.chat_requests) == 1


def test_429_retry_info_reaches_the_sdk(sdk_no_retry, upstream):
    upstream.reply(Json({"error": {"message": "Rate limit reached", "code": 429}}, 429, headers={"Retry-After": "3"}))

    with pytest.raises(errors.ClientError) as raised:
        sdk_no_retry.client.models.generate_content(model=MODEL, contents="Hi")

    assert raised.value.code == 429
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"} in \
        raised.value.details["error"]["details"]


@pytest.mark.parametrize("error_event, code, error_class, fragment", [
    ({"error": {"message": "EngineCore died", "type": "InternalServerError", "param": None, "code": 500}}, 500,
     errors.ServerError, "EngineCore died"),
    # No HTTP code in the event: taken as a gateway failure (502), which Google answers 503 UNAVAILABLE.
    ({"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}, 503,
     errors.ServerError, "The server had an error"),
    ({"error": {"message": "context too long", "type": "invalid_request_error", "code": 400}}, 400,
     errors.ClientError, "context too long"),
])
def test_mid_stream_error_raises_while_iterating(sdk, upstream, error_event, code, error_class, fragment):
    upstream.reply(Stream([chunk({"role": "assistant", "content": ""}), chunk({"content": "partial"}), error_event,
                           "[DONE]"]))
    received = []

    with pytest.raises(errors.APIError) as raised:
        for piece in sdk.client.models.generate_content_stream(model=MODEL, contents="Hi"):
            received.append(piece.text)

    assert received == ["partial"]
    assert isinstance(raised.value, error_class)
    assert raised.value.code == code
    assert fragment in raised.value.message
    assert len(upstream.chat_requests) == 1


def test_mid_stream_error_raises_in_the_async_client(sdk, upstream):
    upstream.reply(Stream([chunk({"content": "partial"}), {"error": {"message": "boom", "code": 500}}]))

    async def run():
        received = []
        with pytest.raises(errors.APIError) as raised:
            async for piece in await sdk.client.aio.models.generate_content_stream(model=MODEL, contents="Hi"):
                received.append(piece.text)
        return received, raised.value

    received, error = asyncio.run(run())

    assert received == ["partial"]
    assert error.code == 500 and error.status == "INTERNAL"


def test_truncated_stream_raises_instead_of_ending_quietly(sdk, upstream):
    upstream.reply(Stream([chunk({"role": "assistant", "content": ""}), chunk({"content": "cut"})]))

    with pytest.raises(errors.APIError) as raised:
        list(sdk.client.models.generate_content_stream(model=MODEL, contents="Hi"))

    assert raised.value.code == 500 and raised.value.status == "INTERNAL"
    assert "ended before the answer was complete" in raised.value.message


def test_invalid_config_is_a_400_naming_the_field(sdk, upstream):
    with pytest.raises(errors.ClientError) as raised:
        sdk.client.models.generate_content(model=MODEL, contents="Hi",
                                           config=types.GenerateContentConfig(temperature=5))

    assert raised.value.code == 400
    assert raised.value.status == "INVALID_ARGUMENT"
    assert "generationConfig.temperature" in raised.value.message
    assert upstream.chat_requests == []
