"""generateContent (non-streaming), in process (functions-framework's app through its test client):
the Gemini answer the client gets, and the OpenAI request the upstream gets."""

import pytest

from fake_upstream import Json, completion, tool_call, usage
from helpers import KEY, error_of, hello

PATH = "/v1beta/models/qwen-turbo:generateContent"


def _choice(index, text, finish="stop"):
    return {"index": index, "message": {"role": "assistant", "content": text}, "logprobs": None,
            "finish_reason": finish}


# --- the answer ---------------------------------------------------------------------------------

def test_text_answer_has_exactly_the_gemini_shape(post, upstream):
    upstream.reply(Json(completion(
        "Hi there!", model="qwen-turbo-2025-04-28",
        usage_=usage(prompt=11, completion=30, reasoning=12, cached=4),
    )))

    response = post(PATH, hello("Say hi"))

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {
        "candidates": [{
            "content": {"parts": [{"text": "Hi there!"}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }],
        "usageMetadata": {
            "promptTokenCount": 11,
            "candidatesTokenCount": 18,  # completion 30 - reasoning 12: Gemini counts thoughts apart
            "totalTokenCount": 41,
            "thoughtsTokenCount": 12,
            "cachedContentTokenCount": 4,
        },
        "modelVersion": "qwen-turbo-2025-04-28",  # what the upstream says it ran, not the requested id
        "responseId": "chatcmpl-test123",
    }
    [request] = upstream.chat_requests
    assert request["method"] == "POST"
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["json"] == {"model": "qwen-turbo", "messages": [{"role": "user", "content": "Say hi"}]}


def test_plain_usage_has_no_thought_or_cache_counts(post, upstream):
    upstream.reply(Json(completion("ok", usage_=usage(prompt=3, completion=2))))

    body = post(PATH, hello()).json()

    assert body["usageMetadata"] == {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}


def test_deepseek_cache_hit_tokens_are_cached_content(post, upstream):
    upstream.reply(Json(completion("ok", usage_={"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
                                               "prompt_cache_hit_tokens": 6, "prompt_cache_miss_tokens": 4})))

    body = post(PATH, hello()).json()

    assert body["usageMetadata"]["cachedContentTokenCount"] == 6


def test_total_tokens_computed_when_the_upstream_leaves_it_out(post, upstream):
    upstream.reply(Json(completion("ok", usage_={"prompt_tokens": 4, "completion_tokens": 6})))

    assert post(PATH, hello()).json()["usageMetadata"]["totalTokenCount"] == 10


def test_no_usage_means_no_usage_metadata(post, upstream):
    answer = completion("ok")
    del answer["usage"]
    upstream.reply(Json(answer))

    body = post(PATH, hello()).json()

    assert "usageMetadata" not in body
    assert body["candidates"][0]["content"]["parts"] == [{"text": "ok"}]


def test_content_as_a_list_of_text_parts(post, upstream):
    upstream.reply(Json(completion([{"type": "text", "text": "two "}, {"type": "text", "text": "pieces"}])))

    assert post(PATH, hello()).json()["candidates"][0]["content"]["parts"] == [{"text": "two pieces"}]


def test_refusal_is_safety_with_its_text(post, upstream):
    upstream.reply(Json(completion(None, refusal="I can't help with that.")))

    candidate = post(PATH, hello()).json()["candidates"][0]

    assert candidate["finishReason"] == "SAFETY"
    assert candidate["content"]["parts"] == [{"text": "I can't help with that."}]


def test_no_choices_is_a_prompt_block_not_an_error(post, upstream):
    answer = completion()
    answer["choices"] = []
    upstream.reply(Json(answer))

    response = post(PATH, hello())

    assert response.status_code == 200
    assert response.json()["candidates"] == []
    assert response.json()["promptFeedback"] == {"blockReason": "OTHER"}


@pytest.mark.parametrize("version", ["v1", "v1beta", "v1alpha"])
def test_every_api_version_and_owner_model_ids_reach_the_upstream(post, upstream, version):
    upstream.reply(Json(completion("fine", model="Qwen/Qwen3-8B")))

    response = post(f"/{version}/models/Qwen/Qwen3-8B:generateContent", hello())

    assert response.status_code == 200
    assert response.json()["candidates"][0]["content"]["parts"] == [{"text": "fine"}]
    assert upstream.last["model"] == "Qwen/Qwen3-8B"


def test_model_version_falls_back_to_the_requested_model(post, upstream):
    answer = completion("ok")
    del answer["model"]
    upstream.reply(Json(answer))

    assert post(PATH, hello()).json()["modelVersion"] == "qwen-turbo"


@pytest.mark.parametrize("upstream_reason, gemini_reason", [
    ("stop", "STOP"),
    ("length", "MAX_TOKENS"),
    ("content_filter", "SAFETY"),
    ("tool_calls", "STOP"),
    ("function_call", "STOP"),
    ("abort", "OTHER"),
    ("error", "OTHER"),
    ("repetition", "OTHER"),
    ("weird_new_reason", "OTHER"),
    (None, "STOP"),  # vLLM's default when a server leaves it out
])
def test_finish_reason_table(post, upstream, upstream_reason, gemini_reason):
    upstream.reply(Json(completion("some text", finish=upstream_reason)))

    response = post(PATH, hello())

    assert response.status_code == 200
    candidate = response.json()["candidates"][0]
    assert candidate["finishReason"] == gemini_reason
    assert candidate["content"]["parts"] == [{"text": "some text"}]


CUT_WEATHER = ("The function call get_weather was cut off by the output token limit before its arguments were "
               "complete, and was dropped")


@pytest.mark.parametrize("upstream_reason, gemini_reason, message", [
    # llama.cpp when max_tokens falls inside a call: the token limit wins, the cut call is dropped
    ("length", "MAX_TOKENS", CUT_WEATHER),
    ("tool_calls", "MALFORMED_FUNCTION_CALL",
     'Malformed function call get_weather: arguments are not a JSON object: {"city": "Par'),
])
def test_a_call_with_truncated_arguments(post, upstream, upstream_reason, gemini_reason, message):
    upstream.reply(Json(completion("Let me check.", finish=upstream_reason,
                                   tool_calls=[tool_call("get_weather", '{"city": "Par', "call_1")])))

    response = post(PATH, {**hello("Weather in Paris?"), "generationConfig": {"maxOutputTokens": 20}})

    assert response.status_code == 200
    assert response.json()["candidates"] == [{
        "content": {"parts": [{"text": "Let me check."}], "role": "model"},
        "finishReason": gemini_reason,
        "finishMessage": message,
        "index": 0,
    }]


def test_several_choices_become_indexed_candidates(post, upstream):
    answer = completion()
    answer["choices"] = [_choice(0, "first"), _choice(1, "second", "length"), _choice(2, "third")]
    upstream.reply(Json(answer))

    body = post(PATH, {**hello(), "generationConfig": {"candidateCount": 3}}).json()

    assert upstream.last["n"] == 3
    assert [(c["index"], c["content"]["parts"], c["finishReason"]) for c in body["candidates"]] == [
        (0, [{"text": "first"}], "STOP"),
        (1, [{"text": "second"}], "MAX_TOKENS"),
        (2, [{"text": "third"}], "STOP"),
    ]
    assert all(c["content"]["role"] == "model" for c in body["candidates"])


def test_thoughts_are_parts_marked_thought_only_when_asked(post, upstream):
    upstream.reply(Json(completion("42", reasoning_content="Let me think.")),
                   Json(completion("42", reasoning_content="Let me think.")))

    shown = post(PATH, {**hello(), "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}).json()
    hidden = post(PATH, hello()).json()

    assert shown["candidates"][0]["content"]["parts"] == [{"text": "Let me think.", "thought": True}, {"text": "42"}]
    assert hidden["candidates"][0]["content"]["parts"] == [{"text": "42"}]


@pytest.mark.parametrize("content", ["<think>\nLet me think.\n</think>\n\n42", "Let me think.\n</think>\n\n42"])
def test_a_think_block_in_content_is_thoughts_only_when_asked(post, upstream, content):
    upstream.reply(Json(completion(content)), Json(completion(content)))

    shown = post(PATH, {**hello(), "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}).json()
    hidden = post(PATH, hello()).json()

    assert shown["candidates"][0]["content"]["parts"] == [{"text": "Let me think.\n", "thought": True}, {"text": "42"}]
    assert hidden["candidates"][0]["content"]["parts"] == [{"text": "42"}]


# --- the upstream request -----------------------------------------------------------------------

@pytest.mark.parametrize("field, value, openai_field, expected", [
    ("temperature", 0.3, "temperature", 0.3),
    ("temperature", 0, "temperature", 0),
    ("topP", 0.9, "top_p", 0.9),
    ("topK", 3.0, "top_k", 3),  # the Python SDK sends integral floats
    ("topK", 40, "top_k", 40),
    ("maxOutputTokens", 256, "max_tokens", 256),
    ("maxOutputTokens", 256.0, "max_tokens", 256),
    ("stopSequences", ["END", "\n\n"], "stop", ["END", "\n\n"]),
    ("candidateCount", 2, "n", 2),
    ("seed", 42, "seed", 42),
    ("presencePenalty", 0.5, "presence_penalty", 0.5),
    ("frequencyPenalty", -0.25, "frequency_penalty", -0.25),
    ("responseMimeType", "application/json", "response_format", {"type": "json_object"}),
])
def test_generation_config_maps_to_one_openai_field(post, upstream, field, value, openai_field, expected):
    response = post(PATH, {**hello(), "generationConfig": {field: value}})

    assert response.status_code == 200, response.text
    sent = upstream.last
    assert set(sent) == {"model", "messages", openai_field}  # nothing unset is sent
    assert sent[openai_field] == expected
    assert type(sent[openai_field]) is type(expected)  # 3 stays an int on the wire, never 3.0


def test_full_generation_config_request(post, upstream):
    config = {"temperature": 0.7, "topP": 0.8, "topK": 20, "maxOutputTokens": 100, "stopSequences": ["##"],
              "candidateCount": 1, "seed": 7, "presencePenalty": 0.1, "frequencyPenalty": 0.2,
              "responseMimeType": "application/json"}

    post(PATH, {**hello("Give JSON"), "generationConfig": config})

    assert upstream.last == {
        "model": "qwen-turbo",
        "messages": [{"role": "user", "content": "Give JSON"}],
        "temperature": 0.7, "top_p": 0.8, "top_k": 20, "max_tokens": 100, "stop": ["##"], "n": 1, "seed": 7,
        "presence_penalty": 0.1, "frequency_penalty": 0.2, "response_format": {"type": "json_object"},
    }


@pytest.mark.parametrize("config", [{}, {"responseMimeType": "text/plain"}, {"stopSequences": []}])
def test_neutral_config_sends_nothing_extra(post, upstream, config):
    post(PATH, {**hello(), "generationConfig": config})

    assert upstream.last == {"model": "qwen-turbo", "messages": [{"role": "user", "content": "Hello"}]}


def test_snake_case_config_keys_map_too(post, upstream):
    post(PATH, {**hello(), "generation_config": {"max_output_tokens": 9, "top_k": 2.0, "stop_sequences": ["x"]}})

    sent = upstream.last
    assert (sent["max_tokens"], sent["top_k"], sent["stop"]) == (9, 2, ["x"])
    assert type(sent["top_k"]) is int


def test_system_instruction_and_turns(post, upstream):
    body = {
        "systemInstruction": {"role": "user", "parts": [{"text": "Be terse."}, {"text": "Answer in French."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Bonjour"}]},
            {"role": "user", "parts": [{"text": "Two"}, {"text": "parts"}]},
            {"parts": [{"text": "no role means user"}]},
        ],
    }

    response = post(PATH, body)

    assert response.status_code == 200
    messages = upstream.last["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0] == {"role": "system", "content": "Be terse.\nAnswer in French."}
    assert messages[1] == {"role": "user", "content": "Hi"}
    assert messages[2] == {"role": "assistant", "content": "Bonjour"}
    # consecutive user turns are one message; every text part of them is in it, in order
    assert messages[3]["role"] == "user"
    content = messages[3]["content"]
    assert content.index("Two") < content.index("parts") < content.index("no role means user")
    assert "stream" not in upstream.last and "stream_options" not in upstream.last


def test_no_stream_fields_for_generate_content(post, upstream):
    post(PATH, hello())

    sent = upstream.last
    assert "stream" not in sent
    assert "stream_options" not in sent
    assert upstream.chat_requests[-1]["headers"].get("Accept") != "text/event-stream"


def test_invalid_request_never_reaches_the_upstream(post, upstream):
    response = post(PATH, {**hello(), "generationConfig": {"temperature": 5}})

    error = error_of(response)
    assert response.status_code == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert "generationConfig.temperature" in error["message"]
    assert upstream.chat_requests == []


# --- fields with an OpenAI equivalent ------------------------------------------------------------

PNG = "iVBORw0KGgo="


@pytest.mark.parametrize("tier,expected", [("flex", "flex"), ("priority", "priority"), ("standard", "default")])
def test_service_tier_reaches_the_upstream(post, upstream, tier, expected):
    response = post(PATH, {**hello(), "serviceTier": tier})

    assert response.status_code == 200, response.text
    assert upstream.last == {"model": "qwen-turbo", "messages": [{"role": "user", "content": "Hello"}],
                             "service_tier": expected}


def test_unknown_service_tier_is_refused_before_the_upstream(post, upstream):
    response = post(PATH, {**hello(), "serviceTier": "turbo"})

    assert response.status_code == 400
    assert error_of(response)["message"].startswith("serviceTier: ")
    assert upstream.chat_requests == []


def test_media_resolution_becomes_image_detail(post, upstream):
    image = {"inlineData": {"mimeType": "image/png", "data": PNG}}
    body = {"contents": [{"role": "user", "parts": [
        {"text": "Compare"}, image, {**image, "mediaResolution": {"level": "MEDIA_RESOLUTION_HIGH", "numTokens": 280}}]}],
        "generationConfig": {"mediaResolution": "MEDIA_RESOLUTION_LOW"}}

    response = post(PATH, body)

    assert response.status_code == 200, response.text
    assert upstream.last["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"}},
    ]}]


@pytest.mark.parametrize("mime_type", ["video/mp4", "audio/ogg"])
def test_inline_media_openai_cannot_take_is_a_400_naming_the_field(post, upstream, mime_type):
    body = {"contents": [{"role": "user", "parts": [{"text": "What is this?"},
                                                     {"inlineData": {"mimeType": mime_type, "data": "AAAA"}}]}]}

    response = post(PATH, body)

    assert response.status_code == 400
    error = error_of(response)
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"].startswith(
        f"contents[0].parts[1].inlineData.mimeType: {mime_type} cannot be passed to this endpoint's "
        "OpenAI-compatible upstream")
    assert upstream.chat_requests == []


def test_code_execution_history_keeps_its_fence_closed(post, upstream):
    body = {"contents": [
        {"role": "user", "parts": [{"text": "What is 1?"}]},
        {"role": "model", "parts": [{"text": "Running:"}, {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
                                    {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}},
                                    {"text": "It is 1."}]},
        {"role": "user", "parts": [{"text": "Thanks"}]}]}

    post(PATH, body)

    assert upstream.last["messages"][1] == {
        "role": "assistant",
        "content": "Running:\n```python\nprint(1)\n```\nCode execution result (OUTCOME_OK):\n1\nIt is 1."}
