"""Function calling, structured output, media and thinking through the official google-genai SDK."""

import enum
import json

import pydantic
import pytest
from google import genai
from google.genai import types

from fake_upstream import Json, Stream, chunk, completion, tool_call, usage
from helpers import KEY

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xfb\xff\xfe"

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Current weather in a city",
    parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]),
)


@pytest.fixture(params=["v1", "v1beta"])
def client(request, function):
    options = types.HttpOptions(base_url=function.url, api_version=request.param)
    return genai.Client(api_key=KEY, http_options=options)


def weather_config(**extra):
    return types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True), **extra)


def test_function_call(client, upstream):
    upstream.reply(Json(completion(None, finish="tool_calls",
                                   tool_calls=[tool_call("get_weather", {"city": "Paris"}, "call_1")])))
    response = client.models.generate_content(model="qwen-turbo", contents="Weather in Paris?", config=weather_config())
    assert [(c.id, c.name, c.args) for c in response.function_calls] == [("call_1", "get_weather", {"city": "Paris"})]
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    sent = upstream.last
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def test_two_parallel_calls_and_their_results_round_trip(client, upstream):
    upstream.reply(Json(completion("Checking both.", finish="tool_calls", tool_calls=[
        tool_call("get_weather", {"city": "Paris"}, "call_a"), tool_call("get_weather", {"city": "Oslo"}, "call_b")])))
    config = weather_config()
    first = client.models.generate_content(model="qwen-turbo", contents="Paris and Oslo?", config=config)
    assert [c.args["city"] for c in first.function_calls] == ["Paris", "Oslo"]
    assert first.text == "Checking both."

    results = types.Content(role="user", parts=[
        types.Part.from_function_response(name=c.name, response={"temp": t})
        for c, t in zip(first.function_calls, (18, 3), strict=True)])
    for part, call in zip(results.parts, first.function_calls, strict=True):
        part.function_response.id = call.id
    history = [types.Content(role="user", parts=[types.Part(text="Paris and Oslo?")]), first.candidates[0].content, results]
    second = client.models.generate_content(model="qwen-turbo", contents=history, config=config)
    assert second.text.startswith("echo:")
    messages = upstream.last["messages"]
    assert messages[1] == {"role": "assistant", "content": "Checking both.", "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]}
    assert messages[2:] == [{"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 18}'},
                            {"role": "tool", "tool_call_id": "call_b", "content": '{"temp": 3}'}]


def test_history_without_ids_matches_by_name_in_order(client, upstream):
    history = [
        types.Content(role="user", parts=[types.Part(text="Paris and Oslo?")]),
        types.Content(role="model", parts=[types.Part.from_function_call(name="get_weather", args={"city": "Paris"}),
                                           types.Part.from_function_call(name="get_weather", args={"city": "Oslo"})]),
        types.Content(role="user", parts=[types.Part.from_function_response(name="get_weather", response={"temp": 18}),
                                          types.Part.from_function_response(name="get_weather", response={"temp": 3})]),
    ]
    client.models.generate_content(model="qwen-turbo", contents=history, config=weather_config())
    messages = upstream.last["messages"]
    ids = [c["id"] for c in messages[1]["tool_calls"]]
    assert len(set(ids)) == 2 and "get_weather" not in ids
    assert [(m["tool_call_id"], json.loads(m["content"])) for m in messages[2:]] == [(ids[0], {"temp": 18}),
                                                                                      (ids[1], {"temp": 3})]


def test_streamed_function_call(client, upstream):
    upstream.reply(Stream([
        chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                               "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]}),
        chunk({}, finish="tool_calls"), chunk(choices=[], usage_=usage()), "[DONE]"]))
    chunks = list(client.models.generate_content_stream(model="qwen-turbo", contents="Weather?", config=weather_config()))
    calls = [c for ch in chunks for c in (ch.function_calls or [])]
    assert [(c.id, c.args) for c in calls] == [("call_1", {"city": "Paris"}), ("call_2", {"city": "Oslo"})]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert upstream.last["stream"] is True


def test_automatic_function_calling_with_a_python_function(client, upstream):
    seen = []

    def get_weather(city: str) -> dict:
        """Current weather in a city."""
        seen.append(city)
        return {"temp_c": 21}

    upstream.reply(Json(completion(None, finish="tool_calls",
                                   tool_calls=[tool_call("get_weather", {"city": "Rome"}, "c9")])),
                   Json(completion("It is 21 °C in Rome.")))
    response = client.models.generate_content(model="qwen-turbo", contents="Weather in Rome?",
                                              config=types.GenerateContentConfig(tools=[get_weather]))
    assert seen == ["Rome"]
    assert response.text == "It is 21 °C in Rome."
    first, second = upstream.chat_requests[-2]["json"], upstream.chat_requests[-1]["json"]
    assert first["tools"][0]["function"]["parameters"]["properties"] == {"city": {"type": "string"}}
    assert second["messages"][-2]["tool_calls"][0]["id"] == "c9"
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "c9", "content": '{"result": {"temp_c": 21}}'}


def test_chat_with_automatic_function_calling_streamed(client, upstream):
    def get_weather(city: str) -> dict:
        """Current weather in a city."""
        return {"temp_c": 5}

    upstream.reply(
        Stream([chunk({"role": "assistant", "tool_calls": [{
                    "index": 0, "id": "s1", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]}),
                chunk({}, finish="tool_calls"), chunk(choices=[], usage_=usage()), "[DONE]"]),
        Stream([chunk({"content": "Cold: "}), chunk({"content": "5 °C."}), chunk({}, finish="stop"),
                chunk(choices=[], usage_=usage()), "[DONE]"]))
    chat = client.chats.create(model="qwen-turbo", config=types.GenerateContentConfig(tools=[get_weather]))
    text = "".join(c.text or "" for c in chat.send_message_stream("Weather in Oslo?"))
    assert text == "Cold: 5 °C."
    chat.send_message("Thanks")
    messages = upstream.last["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "user"]
    assert messages[3]["content"] == "Cold: 5 °C."


class Recipe(pydantic.BaseModel):
    name: str
    minutes: int
    tags: list[str]


def test_response_parsed_with_a_pydantic_schema(client, upstream):
    upstream.reply(Json(completion('{"name": "Soup", "minutes": 20, "tags": ["warm"]}')))
    response = client.models.generate_content(
        model="qwen-turbo", contents="A recipe",
        config=types.GenerateContentConfig(response_mime_type="application/json", response_schema=Recipe))
    assert response.parsed == Recipe(name="Soup", minutes=20, tags=["warm"])
    response_format = upstream.last["response_format"]
    assert response_format["type"] == "json_schema"
    schema = response_format["json_schema"]["schema"]
    assert schema["properties"]["minutes"]["type"] == "integer"
    assert set(schema["required"]) == {"name", "minutes", "tags"}
    assert "STRING" not in json.dumps(schema) and "property_ordering" not in json.dumps(schema)


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


def test_text_enum_answers(client, upstream):
    upstream.reply(Json(completion('{"value": "sad"}')))
    response = client.models.generate_content(
        model="qwen-turbo", contents="How do I feel?",
        config=types.GenerateContentConfig(response_mime_type="text/x.enum", response_schema=Mood))
    assert response.text == "sad" and response.parsed == Mood.SAD


def test_inline_image(client, upstream):
    client.models.generate_content(model="qwen-turbo", contents=[
        types.Part.from_bytes(data=PNG, mime_type="image/png"), "What is this?"])
    content = upstream.last["messages"][0]["content"]
    import base64
    assert content[0] == {"type": "image_url",
                          "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}}
    assert content[1] == {"type": "text", "text": "What is this?"}


def test_thoughts_with_include_thoughts(client, upstream):
    upstream.reply(Json(completion("42", reasoning_content="Six times seven.",
                                   usage_=usage(10, 30, reasoning=20))))
    response = client.models.generate_content(
        model="qwen-turbo", contents="6*7?",
        config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=2048)))
    parts = response.candidates[0].content.parts
    assert (parts[0].thought, parts[0].text) == (True, "Six times seven.")
    assert response.text == "42"
    assert response.usage_metadata.thoughts_token_count == 20
    assert response.usage_metadata.candidates_token_count == 10
    # qwen-turbo: the DashScope dialect, whose budget field is thinking_budget
    assert (upstream.last["enable_thinking"], upstream.last["thinking_budget"]) == (True, 2048)


DEEPSEEK_REASONING = "The user wants Rome's weather: call get_weather with city Rome. 思考中…"


def deepseek_thinking(body):
    """DeepSeek in thinking mode: an assistant tool-call turn without its reasoning_content is a 400;
    otherwise reasoning and a tool call first, and a final answer once the tool result is in."""
    messages = body["messages"]
    for message in messages:
        if message["role"] == "assistant" and message.get("tool_calls") and "reasoning_content" not in message:
            return Json({"error": {"message": "The reasoning_content in the thinking mode must be passed back to the API",
                                   "type": "invalid_request_error", "param": None, "code": "invalid_request_error"}},
                        status=400)
    if messages[-1]["role"] == "tool":
        reasoning, content, calls, finish = "The tool says 21 °C.", "It is 21 °C in Rome.", None, "stop"
    else:
        calls = [tool_call("get_weather", {"city": "Rome"}, "call_0")]
        reasoning, content, finish = DEEPSEEK_REASONING, "", "tool_calls"
    if not body.get("stream"):
        return Json(completion(content, finish=finish, tool_calls=calls, model="deepseek-reasoner",
                               reasoning_content=reasoning, usage_=usage(10, 30, reasoning=20)))
    items = [chunk({"role": "assistant", "content": None, "reasoning_content": ""}, model="deepseek-reasoner")]
    items += [chunk({"reasoning_content": reasoning[i:i + 9]}, model="deepseek-reasoner")
              for i in range(0, len(reasoning), 9)]
    if calls:
        items.append(chunk({"tool_calls": [{"index": 0, **calls[0], "function": {"name": "get_weather", "arguments": ""}}]}))
        items += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                  for piece in ('{"city"', ': "Rome"}')]
    else:
        items.append(chunk({"content": content}, model="deepseek-reasoner"))
    items += [chunk({}, finish=finish), chunk(choices=[], usage_=usage(10, 30, reasoning=20)), "[DONE]"]
    return Stream(items)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_deepseek_thinking_tool_loop_keeps_its_reasoning_without_the_client_seeing_it(client, upstream, stream):
    seen = []

    def get_weather(city: str) -> dict:
        """Current weather in a city."""
        seen.append(city)
        return {"temp_c": 21}

    upstream.reply(deepseek_thinking, deepseek_thinking)
    config = types.GenerateContentConfig(tools=[get_weather],
                                         thinking_config=types.ThinkingConfig(include_thoughts=False))
    if stream:
        chunks = list(client.models.generate_content_stream(model="deepseek-reasoner", contents="Weather in Rome?",
                                                            config=config))
        text = "".join(c.text or "" for c in chunks)
        parts = [p for c in chunks if c.candidates and c.candidates[0].content for p in c.candidates[0].content.parts or ()]
    else:
        response = client.models.generate_content(model="deepseek-reasoner", contents="Weather in Rome?", config=config)
        text, parts = response.text, response.candidates[0].content.parts
        call_turn = response.automatic_function_calling_history[1]
        assert call_turn.parts[0].function_call.name == "get_weather" and call_turn.parts[0].thought_signature
    assert text == "It is 21 °C in Rome." and seen == ["Rome"]
    assert not any(p.thought for p in parts)  # includeThoughts false: no thought reaches the client
    first, second = (r["json"] for r in upstream.chat_requests[-2:])
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "tool"]
    assert second["messages"][1]["reasoning_content"] == DEEPSEEK_REASONING
    assert "reasoning_content" not in first["messages"][0]
