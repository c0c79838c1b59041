"""Google's generated REST client (google-ai-generativelanguage, transport "rest") against the function.

It is what the legacy google-generativeai SDK and REST integrations use, and it speaks proto3 JSON
the strict way: every enum as its number (``$alt=json;enum-encoding=int``), int64 as strings.
"""

import json

import pytest
from google.ai import generativelanguage_v1beta as glm
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.protobuf import json_format

from fake_upstream import Json, completion, tool_call, usage
from helpers import KEY

METADATA = [("x-goog-api-key", KEY)]
WEATHER = glm.FunctionDeclaration(
    name="get_weather", description="The weather in a city",
    parameters=glm.Schema(type=glm.Type.OBJECT, properties={
        "city": glm.Schema(type=glm.Type.STRING),
        "days": glm.Schema(type=glm.Type.INTEGER, format="int32"),
        "units": glm.Schema(type=glm.Type.STRING, enum=["C", "F"]),
    }, required=["city"]),
)


@pytest.fixture
def client(function):
    return glm.GenerativeServiceClient(transport="rest", credentials=AnonymousCredentials(),
                                       client_options={"api_endpoint": function.url})


def request(**replaced):
    fields = dict(
        model="models/qwen-turbo",
        contents=[glm.Content(role="user", parts=[glm.Part(text="Weather in Paris?")])],
        safety_settings=[glm.SafetySetting(category=glm.HarmCategory.HARM_CATEGORY_HARASSMENT,
                                           threshold=glm.SafetySetting.HarmBlockThreshold.BLOCK_NONE)],
        tools=[glm.Tool(function_declarations=[WEATHER])],
        tool_config=glm.ToolConfig(function_calling_config=glm.FunctionCallingConfig(
            mode=glm.FunctionCallingConfig.Mode.AUTO)),
        generation_config=glm.GenerationConfig(max_output_tokens=64, temperature=0.5, top_k=3),
    )
    return glm.GenerateContentRequest(**{**fields, **replaced})


UPSTREAM_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string"}, "days": {"type": "integer", "format": "int32"},
        "units": {"type": "string", "enum": ["C", "F"]}}}}}


def test_the_client_really_sends_enums_as_numbers():
    # What the rest transport puts on the wire (its own serialisation call), so the tests below test that.
    body = json.loads(json_format.MessageToJson(glm.GenerateContentRequest.pb(request()), use_integers_for_enums=True))
    assert body["safetySettings"] == [{"category": 7, "threshold": 4}]
    assert body["tools"][0]["functionDeclarations"][0]["parameters"]["type"] == 6
    assert body["toolConfig"]["functionCallingConfig"]["mode"] == 1


def test_generate_with_safety_settings_and_a_function_declaration(client, upstream):
    upstream.reply(Json(completion(None, finish="tool_calls", tool_calls=[tool_call("get_weather", '{"city": "Paris"}')],
                                   usage_=usage(prompt=20, completion=5))))
    response = client.generate_content(request=request(), metadata=METADATA)
    candidate = response.candidates[0]
    assert candidate.finish_reason == glm.Candidate.FinishReason.STOP
    call = candidate.content.parts[0].function_call
    assert (call.name, dict(call.args)) == ("get_weather", {"city": "Paris"})
    assert response.usage_metadata.prompt_token_count == 20
    sent = upstream.last
    assert sent["tools"] == [UPSTREAM_TOOL] and sent["tool_choice"] == "auto"
    assert (sent["max_tokens"], sent["temperature"], sent["top_k"]) == (64, 0.5, 3)
    assert sent["messages"] == [{"role": "user", "content": "Weather in Paris?"}]


def test_the_json_array_stream(client, upstream):
    chunks = list(client.stream_generate_content(request=request(), metadata=METADATA))
    assert "".join(part.text for chunk in chunks for part in chunk.candidates[0].content.parts) == "echo: Weather in Paris?"
    assert chunks[-1].candidates[0].finish_reason == glm.Candidate.FinishReason.STOP
    assert upstream.last["stream"] is True and upstream.last["tools"] == [UPSTREAM_TOOL]


def test_count_tokens_both_ways(client, upstream):
    upstream.reply(Json(completion("x", usage_=usage(prompt=11, completion=1))),
                   Json(completion("x", usage_=usage(prompt=23, completion=1))))
    contents = [glm.Content(role="user", parts=[glm.Part(text="How many?")])]
    assert client.count_tokens(model="models/qwen-turbo", contents=contents, metadata=METADATA).total_tokens == 11
    counted = client.count_tokens(request=glm.CountTokensRequest(model="models/qwen-turbo",
                                                                 generate_content_request=request()), metadata=METADATA)
    assert counted.total_tokens == 23 and upstream.last["tools"] == [UPSTREAM_TOOL]


def test_embed_content_with_a_task_type(client, upstream):
    answer = client.embed_content(request=glm.EmbedContentRequest(
        model="models/text-embedding-v3", content=glm.Content(parts=[glm.Part(text="alpha")]),
        task_type=glm.TaskType.RETRIEVAL_DOCUMENT, title="A", output_dimensionality=3), metadata=METADATA)
    assert len(answer.embedding.values) == 3
    [call] = [r for r in upstream.requests if r["path"].endswith("/embeddings")]
    assert call["json"] == {"model": "text-embedding-v3", "input": ["alpha"], "dimensions": 3}


def test_a_bad_request_is_a_bad_request_naming_the_field(client, upstream):
    with pytest.raises(exceptions.BadRequest) as caught:
        client.generate_content(request=request(generation_config=glm.GenerationConfig(candidate_count=9)),
                                metadata=METADATA)
    assert "generationConfig.candidateCount" in caught.value.message
    [violation] = caught.value.response.json()["error"]["details"][0]["fieldViolations"]
    assert violation["field"] == "generationConfig.candidateCount"
    assert upstream.requests == []


def test_a_key_the_upstream_rejects_is_api_key_invalid(client, upstream):
    upstream.reply(Json({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                   "code": "invalid_api_key"}}, status=401))
    with pytest.raises(exceptions.BadRequest) as caught:
        client.generate_content(request=request(), metadata=METADATA)
    assert caught.value.reason == "API_KEY_INVALID" and caught.value.domain == "googleapis.com"
    assert "API key not valid" in caught.value.message
