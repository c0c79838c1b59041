"""Gemini request -> OpenAI request: pure, table-driven."""

import base64
import zlib

import pytest

from gemini_compat import request_translation
from gemini_compat.errors import InvalidArgument
from gemini_compat.request_translation import CallIds, chat_request, count_tokens_request, standard_base64
from gemini_compat.thought_signature import encode as encode_signature
from gemini_compat.validation import COUNT_TOKENS, GENERATE_CONTENT


def translate(body, stream=False):
    request, options = chat_request(GENERATE_CONTENT.validate(body), "qwen-turbo", stream)
    return request, options


def user(*parts):
    return {"role": "user", "parts": [p if isinstance(p, dict) else {"text": p} for p in parts]}


def model(*parts):
    return {"role": "model", "parts": [p if isinstance(p, dict) else {"text": p} for p in parts]}


def call(name, args=None, id=None):
    value = {"name": name, "args": args or {}}
    if id:
        value["id"] = id
    return {"functionCall": value}


def reply(name, response, id=None):
    value = {"name": name, "response": response}
    if id:
        value["id"] = id
    return {"functionResponse": value}


CODE = {"executableCode": {"language": "PYTHON", "code": "print(1)"}}
RESULT = {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}}


MESSAGES = [
    ("single user turn, no role", [{"parts": [{"text": "hi"}]}], [{"role": "user", "content": "hi"}]),
    ("text parts of a user turn join with newlines", [user("a", "b")], [{"role": "user", "content": "a\nb"}]),
    ("model becomes assistant", [user("q"), model("a"), user("q2")],
     [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "q2"}]),
    ("a streamed model turn (one content per chunk) is one assistant message, deltas joined as is",
     [user("q"), model("Hel"), model("lo wor"), model("ld", ""), user("next")],
     [{"role": "user", "content": "q"}, {"role": "assistant", "content": "Hello world"},
      {"role": "user", "content": "next"}]),
    ("consecutive user turns merge", [user("a"), user("b")], [{"role": "user", "content": "a\nb"}]),
    ("thought parts are not answer text", [user("q"), model({"text": "hmm", "thought": True}, "a")],
     [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]),
    ("thoughtSignature is accepted and dropped",
     [user("q"), model({"text": "a", "thoughtSignature": "c2ln"})],
     [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]),
    ("code execution history becomes text, the fence closed on its own line before the result",
     [user("q"), model(CODE, RESULT)],
     [{"role": "user", "content": "q"},
      {"role": "assistant", "content": "```python\nprint(1)\n```\nCode execution result (OUTCOME_OK):\n1"}]),
    ("code and its result stand on lines of their own between the text of a model turn",
     [user("q"), model("Let me run it:", CODE, RESULT, "So it prints 1.")],
     [{"role": "user", "content": "q"},
      {"role": "assistant", "content": "Let me run it:\n```python\nprint(1)\n```\nCode execution result (OUTCOME_OK):\n1\n"
                                       "So it prints 1."}]),
    ("no newline is added where the text already has one",
     [user("q"), model("Run:\n", CODE, {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1\n"}}, "Done.")],
     [{"role": "user", "content": "q"},
      {"role": "assistant", "content": "Run:\n```python\nprint(1)\n```\nCode execution result (OUTCOME_OK):\n1\nDone."}]),
    ("streamed deltas around code still join exactly; empty deltas add nothing",
     [user("q"), model("Ru"), model("n", ""), model(CODE), model("", "Do"), model("ne.")],
     [{"role": "user", "content": "q"},
      {"role": "assistant", "content": "Run\n```python\nprint(1)\n```\nDone."}]),
    ("code in a user turn is a line of its own too", [user("see", CODE, RESULT, "ok?")],
     [{"role": "user", "content": "see\n```python\nprint(1)\n```\nCode execution result (OUTCOME_OK):\n1\nok?"}]),
]


@pytest.mark.parametrize("name,contents,expected", MESSAGES, ids=[m[0] for m in MESSAGES])
def test_messages(name, contents, expected):
    request, _ = translate({"contents": contents})
    assert request["messages"] == expected


def test_system_instruction_is_a_leading_system_message_of_all_its_text():
    request, _ = translate({"systemInstruction": {"role": "user", "parts": [{"text": "Be terse."}, {"text": "Be kind."}]},
                            "contents": [user("hi")]})
    assert request["messages"][0] == {"role": "system", "content": "Be terse.\nBe kind."}


GENERATION_CONFIG = [
    ({"temperature": 0.5}, {"temperature": 0.5}),
    ({"topP": 0.9}, {"top_p": 0.9}),
    ({"topK": 3.0}, {"top_k": 3}),
    ({"maxOutputTokens": 10}, {"max_tokens": 10}),
    ({"stopSequences": ["x", "y"]}, {"stop": ["x", "y"]}),
    ({"stopSequences": []}, {}),
    ({"candidateCount": 2}, {"n": 2}),
    ({"seed": 7}, {"seed": 7}),
    ({"presencePenalty": 0.1, "frequencyPenalty": -0.2}, {"presence_penalty": 0.1, "frequency_penalty": -0.2}),
    ({"responseMimeType": "application/json"}, {"response_format": {"type": "json_object"}}),
    ({"responseMimeType": "text/plain"}, {}),
    ({"responseLogprobs": True, "logprobs": 3}, {"logprobs": True, "top_logprobs": 3}),
    ({"responseLogprobs": True}, {"logprobs": True}),
    # thinkingConfig in each upstream family's fields: tests/test_thinking.py. Without a dialect, none.
    ({"thinkingConfig": {"thinkingBudget": 0}}, {}),
    ({"thinkingConfig": {"thinkingLevel": "HIGH", "includeThoughts": True}}, {}),
    ({"mediaResolution": "MEDIA_RESOLUTION_LOW", "enableEnhancedCivicAnswers": True, "responseModalities": ["TEXT"]}, {}),
]


@pytest.mark.parametrize("config,expected", GENERATION_CONFIG)
def test_generation_config(config, expected):
    request, _ = translate({"contents": [user("hi")], "generationConfig": config})
    assert {k: v for k, v in request.items() if k not in ("model", "messages")} == expected


SERVICE_TIER = [
    ("flex", {"service_tier": "flex"}),
    ("priority", {"service_tier": "priority"}),
    ("standard", {"service_tier": "default"}),
    ("unspecified", {}),
    ("SERVICE_TIER_FLEX", {"service_tier": "flex"}),  # what Java and .NET SDKs sent before
    ("SERVICE_TIER_PRIORITY", {"service_tier": "priority"}),
    ("SERVICE_TIER_STANDARD", {"service_tier": "default"}),
    ("SERVICE_TIER_UNSPECIFIED", {}),
]


@pytest.mark.parametrize("tier,expected", SERVICE_TIER)
def test_service_tier(tier, expected):
    request, _ = translate({"contents": [user("hi")], "serviceTier": tier})
    assert {k: v for k, v in request.items() if k not in ("model", "messages")} == expected


def test_service_tier_in_snake_case_from_the_python_sdk():
    assert translate({"contents": [user("hi")], "service_tier": "flex"})[0]["service_tier"] == "flex"


@pytest.mark.parametrize("tier", ["FLEX", "default", "auto", "", 2])
def test_service_tiers_google_does_not_have_are_refused(tier):
    with pytest.raises(InvalidArgument) as caught:
        translate({"contents": [user("hi")], "serviceTier": tier})
    assert caught.value.message.startswith("serviceTier: ")


def test_only_stream_requests_ask_for_a_stream_with_usage():
    assert "stream" not in translate({"contents": [user("hi")]})[0]
    request, _ = translate({"contents": [user("hi")]}, stream=True)
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}


def test_include_thoughts_reaches_the_response_options():
    assert translate({"contents": [user("hi")]})[1].include_thoughts is False
    config = {"thinkingConfig": {"includeThoughts": True}}
    assert translate({"contents": [user("hi")], "generationConfig": config})[1].include_thoughts is True


REFUSED = [
    ({"generationConfig": {"logprobs": 2}}, "generationConfig.logprobs"),
    ({"generationConfig": {"responseModalities": ["AUDIO"]}}, "generationConfig.responseModalities"),
    ({"generationConfig": {"speechConfig": {}}}, "generationConfig.speechConfig"),
    ({"generationConfig": {"responseMimeType": "text/csv"}}, "generationConfig.responseMimeType"),
    ({"generationConfig": {"responseSchema": {"type": "STRING"}}}, "generationConfig.responseMimeType"),
    ({"generationConfig": {"responseMimeType": "text/x.enum", "responseSchema": {"type": "STRING"}}},
     "generationConfig.responseSchema"),
    ({"generationConfig": {"thinkingConfig": {"thinkingBudget": 10, "thinkingLevel": "LOW"}}},
     "generationConfig.thinkingConfig"),
    ({"tools": [{"googleSearch": {}}]}, "tools[0].googleSearch"),
    ({"tools": [{"functionDeclarations": [{"name": "f"}]}, {"codeExecution": {}}]}, "tools[1].codeExecution"),
    ({"tools": [{"urlContext": {}}]}, "tools[0].urlContext"),
    ({"systemInstruction": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}},
     "systemInstruction.parts[0]"),
]


@pytest.mark.parametrize("extra,path", REFUSED)
def test_refused_with_the_field_named(extra, path):
    with pytest.raises(InvalidArgument) as caught:
        translate({"contents": [user("hi")], **extra})
    assert caught.value.message.startswith(path)


# --- media -------------------------------------------------------------------------------------

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n\xfb\xff\xfe").decode()


@pytest.mark.parametrize("data", [PNG, PNG.rstrip("="), PNG.replace("+", "-").replace("/", "_"), PNG[:10] + "\n" + PNG[10:]])
def test_base64_is_normalised_to_standard_padded(data):
    assert standard_base64(data, ["d"]) == PNG


def test_url_safe_base64_from_the_python_sdk():
    assert standard_base64("-__-", ["d"]) == "+//+"
    assert standard_base64("-_8=", ["d"]) == "+/8="


@pytest.mark.parametrize("data", ["@@@", "A", "", "AAAA=AAA", "é"])
def test_invalid_base64_is_refused(data):
    with pytest.raises(InvalidArgument) as caught:
        standard_base64(data, ["contents", 0, "parts", 0, "inlineData", "data"])
    assert caught.value.message.startswith("contents[0].parts[0].inlineData.data")


MEDIA = [
    ({"inlineData": {"mimeType": "image/png", "data": PNG}},
     {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}),
    ({"inlineData": {"mimeType": "image/jpeg", "data": "-__-"}},
     {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,+//+"}}),
    ({"inlineData": {"mimeType": "audio/wav", "data": "AAAA"}},
     {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}),
    ({"inlineData": {"mimeType": "audio/mpeg", "data": "AAAA"}},
     {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "mp3"}}),
    ({"inlineData": {"mimeType": "application/pdf", "data": "JVBERg=="}},
     {"type": "file", "file": {"filename": "file.pdf", "file_data": "data:application/pdf;base64,JVBERg=="}}),
    ({"inlineData": {"mimeType": "application/pdf", "data": "JVBERg==", "displayName": "report.pdf"}},
     {"type": "file", "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERg=="}}),
    ({"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat"}},
     {"type": "image_url", "image_url": {"url": "https://example.com/cat"}}),
    ({"fileData": {"fileUri": "https://example.com/cat.jpg?x=1"}},
     {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg?x=1"}}),
]


IMAGE = {"inlineData": {"mimeType": "image/png", "data": PNG}}
IMAGE_URL = f"data:image/png;base64,{PNG}"
LOW, MEDIUM, HIGH = "MEDIA_RESOLUTION_LOW", "MEDIA_RESOLUTION_MEDIUM", "MEDIA_RESOLUTION_HIGH"


def level(name, **more):
    return {"mediaResolution": {"level": name, **more}}


# (generationConfig.mediaResolution, the part's own mediaResolution, the image_url sent)
MEDIA_RESOLUTION = [
    (LOW, {}, {"url": IMAGE_URL, "detail": "low"}),
    (HIGH, {}, {"url": IMAGE_URL, "detail": "high"}),
    (MEDIUM, {}, {"url": IMAGE_URL}),  # no OpenAI level between low and high: "auto"
    ("MEDIA_RESOLUTION_UNSPECIFIED", {}, {"url": IMAGE_URL}),
    (None, level(LOW), {"url": IMAGE_URL, "detail": "low"}),
    (None, level("MEDIA_RESOLUTION_ULTRA_HIGH"), {"url": IMAGE_URL, "detail": "high"}),
    (LOW, level(HIGH), {"url": IMAGE_URL, "detail": "high"}),  # the part's own level wins
    (LOW, level(MEDIUM), {"url": IMAGE_URL}),
    (LOW, level("MEDIA_RESOLUTION_UNSPECIFIED"), {"url": IMAGE_URL, "detail": "low"}),  # unset: the config's
    (HIGH, {"mediaResolution": {"numTokens": 64}}, {"url": IMAGE_URL, "detail": "high"}),  # numTokens: ignored
    (None, level(LOW, numTokens=64), {"url": IMAGE_URL, "detail": "low"}),
]


@pytest.mark.parametrize("config,own,expected", MEDIA_RESOLUTION)
def test_media_resolution_is_image_detail(config, own, expected):
    body = {"contents": [user("look", {**IMAGE, **own})]}
    if config:
        body["generationConfig"] = {"mediaResolution": config}
    request, _ = translate(body)
    assert request["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "image_url", "image_url": expected}]}]
    assert set(request) == {"model", "messages"}


def test_media_resolution_of_an_image_by_uri():
    part = {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat"}, **level(LOW)}
    request, _ = translate({"contents": [user(part)]})
    assert request["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat", "detail": "low"}}]


def test_media_resolution_of_function_response_images():
    response = {"functionResponse": {"name": "shot", "response": {}, "parts": [
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x/a.jpg"}}]}}
    contents = [user("q"), model(call("shot", id="c1")), user({**response, **level(HIGH)})]
    request, _ = translate({"contents": contents, "generationConfig": {"mediaResolution": LOW}})
    assert request["messages"][-1] == {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": IMAGE_URL, "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://x/a.jpg", "detail": "high"}}]}
    request, _ = translate({"contents": contents[:2] + [user(response)], "generationConfig": {"mediaResolution": LOW}})
    assert request["messages"][-1]["content"][0] == {"type": "image_url", "image_url": {"url": IMAGE_URL, "detail": "low"}}


def test_media_resolution_leaves_other_media_as_they_are():
    parts = [{"inlineData": {"mimeType": "application/pdf", "data": "JVBERg=="}, **level(LOW)},
             {"inlineData": {"mimeType": "audio/wav", "data": "AAAA"}}]
    request, _ = translate({"contents": [user(*parts)], "generationConfig": {"mediaResolution": HIGH}})
    assert request["messages"][0]["content"] == [
        {"type": "file", "file": {"filename": "file.pdf", "file_data": "data:application/pdf;base64,JVBERg=="}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]


def test_media_resolution_in_snake_case_from_the_python_sdk():
    part = {"inline_data": {"mime_type": "image/png", "data": PNG}, "media_resolution": {"level": LOW, "num_tokens": 8}}
    request, _ = translate({"contents": [{"role": "user", "parts": [part]}]})
    assert request["messages"][0]["content"] == [{"type": "image_url", "image_url": {"url": IMAGE_URL, "detail": "low"}}]


# (the part, the field the 400 names, words it says)
UNSUPPORTED_MEDIA = [
    ({"inlineData": {"mimeType": "video/mp4", "data": "AAAA"}}, "contents[0].parts[1].inlineData.mimeType",
     "video/mp4 cannot be passed to this endpoint's OpenAI-compatible upstream"),
    ({"inlineData": {"mimeType": "VIDEO/WEBM", "data": "AAAA"}}, "contents[0].parts[1].inlineData.mimeType", "video/webm"),
    ({"inlineData": {"mimeType": "audio/ogg", "data": "AAAA"}}, "contents[0].parts[1].inlineData.mimeType",
     "audio/ogg cannot be passed to this endpoint's OpenAI-compatible upstream"),
    ({"inlineData": {"mimeType": "audio/flac", "data": "AAAA"}}, "contents[0].parts[1].inlineData.mimeType", "WAV and MP3"),
    ({"inlineData": {"mimeType": "audio/L16;codec=pcm;rate=24000", "data": "AAAA"}},
     "contents[0].parts[1].inlineData.mimeType", "audio/l16"),
    ({"fileData": {"mimeType": "video/mp4", "fileUri": "https://x/v.mp4"}}, "contents[0].parts[1].fileData.mimeType",
     "video/mp4 cannot be passed to this endpoint's OpenAI-compatible upstream"),
    ({"fileData": {"fileUri": "https://x/song.ogg"}}, "contents[0].parts[1].fileData.fileUri", "audio/ogg cannot be passed"),
]


@pytest.mark.parametrize("part,path,words", UNSUPPORTED_MEDIA)
def test_video_and_audio_openai_cannot_take_are_refused(part, path, words):
    with pytest.raises(InvalidArgument) as caught:
        translate({"contents": [user("look", part)]})
    assert caught.value.message.startswith(path + ": ")
    assert words in caught.value.message


def test_function_response_video_is_refused_with_its_field_named():
    response = {"functionResponse": {"name": "rec", "response": {}, "parts": [
        {"inlineData": {"mimeType": "video/mp4", "data": "AAAA"}}]}}
    with pytest.raises(InvalidArgument) as caught:
        translate({"contents": [user("q"), model(call("rec", id="c1")), user(response)]})
    assert caught.value.message.startswith("contents[2].parts[0].functionResponse.parts[0].inlineData.mimeType: video/mp4")


@pytest.mark.parametrize("mime_type,data,expected", [
    ("audio/wav; rate=16000", "AAAA", [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]),
    ("Image/PNG; x=y", "AAAA", [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]),
    ("application/json; charset=utf-8", base64.b64encode(b'{"a": 1}').decode(), '{"a": 1}'),
], ids=["audio", "image", "json"])
def test_media_type_parameters_and_case_do_not_change_the_part(mime_type, data, expected):
    request, _ = translate({"contents": [user({"inlineData": {"mimeType": mime_type, "data": data}})]})
    assert request["messages"][0]["content"] == expected


def test_a_padded_video_type_is_still_refused():
    with pytest.raises(InvalidArgument, match="inlineData.mimeType: video/mp4 cannot be passed"):
        translate({"contents": [user({"inlineData": {"mimeType": " video/mp4", "data": "AAAA"}})]})


def test_text_documents_are_inlined_as_text():
    data = base64.b64encode("héllo".encode()).decode()
    request, _ = translate({"contents": [user("look", {"inlineData": {"mimeType": "text/plain", "data": data}})]})
    assert request["messages"] == [{"role": "user", "content": "look\nhéllo"}]


@pytest.mark.parametrize("part,expected", MEDIA)
def test_media_parts(part, expected):
    request, _ = translate({"contents": [user("look", part)]})
    assert request["messages"] == [{"role": "user", "content": [{"type": "text", "text": "look"}, expected]}]


def test_file_data_that_is_not_an_image_is_refused():
    with pytest.raises(InvalidArgument) as caught:
        translate({"contents": [user({"fileData": {"mimeType": "video/mp4", "fileUri": "https://x/v.mp4"}})]})
    assert caught.value.message.startswith("contents[0].parts[0].fileData")


def test_snake_case_media_from_the_python_sdk():
    body = {"contents": [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": "-__-"}}]}]}
    request, _ = translate(body)
    assert request["messages"][0]["content"] == [{"type": "image_url", "image_url": {"url": "data:image/png;base64,+//+"}}]


# --- function calling history ------------------------------------------------------------------

def test_function_call_history_with_ids():
    contents = [user("weather?"), model("Let me check.", call("get_weather", {"city": "Paris"}, id="c1")),
                user(reply("get_weather", {"temp": 18}, id="c1"))]
    request, _ = translate({"contents": contents})
    assert request["messages"] == [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 18}'},
    ]


def test_parallel_calls_without_ids_match_first_in_first_out_by_name():
    contents = [user("go"),
                model(call("f", {"n": 1}), call("g", {}), call("f", {"n": 2})),
                user(reply("f", {"r": 1}), reply("g", {"r": "g"}), reply("f", {"r": 2}))]
    request, _ = translate({"contents": contents})
    assistant, *tools = request["messages"][1:]
    ids = [c["id"] for c in assistant["tool_calls"]]
    assert len(set(ids)) == 3 and all(i.isalnum() and len(i) == 9 for i in ids)
    assert assistant["content"] is None
    assert [(t["tool_call_id"], t["content"]) for t in tools] == [
        (ids[0], '{"r": 1}'), (ids[1], '{"r": "g"}'), (ids[2], '{"r": 2}')]


def test_responses_in_another_order_match_by_id():
    contents = [user("go"), model(call("f", id="a"), call("f", id="b")),
                user(reply("f", {"x": "b"}, id="b"), reply("f", {"x": "a"}, id="a"))]
    request, _ = translate({"contents": contents})
    assert [(m["tool_call_id"], m["content"]) for m in request["messages"][2:]] == [("b", '{"x": "b"}'), ("a", '{"x": "a"}')]


def test_synthesized_ids_are_unique_across_turns_and_never_collide_with_client_ids():
    contents = [user("go"), model(call("f")), user(reply("f", {})),
                model(call("f", id="call00002")), user(reply("f", {}, id="call00002")),
                model(call("f")), user(reply("f", {}))]
    request, _ = translate({"contents": contents})
    ids = [c["id"] for m in request["messages"] if m["role"] == "assistant" for c in m["tool_calls"]]
    assert len(ids) == len(set(ids)) == 3
    answered = [m["tool_call_id"] for m in request["messages"] if m["role"] == "tool"]
    assert answered == ids


def test_tool_messages_come_before_text_of_the_same_turn():
    contents = [user("go"), model(call("f")), user("and then?", reply("f", {"ok": True}))]
    request, _ = translate({"contents": contents})
    assert [m["role"] for m in request["messages"]] == ["user", "assistant", "tool", "user"]
    assert request["messages"][3] == {"role": "user", "content": "and then?"}


def test_function_role_turns_are_accepted():
    contents = [user("go"), model(call("f")), {"role": "function", "parts": [reply("f", {"v": 1})]}]
    request, _ = translate({"contents": contents})
    assert request["messages"][2]["role"] == "tool"


def test_a_response_without_a_call_is_refused():
    with pytest.raises(InvalidArgument) as caught:
        translate({"contents": [user("go"), user(reply("f", {}))]})
    assert caught.value.message.startswith("contents[1].parts[0].functionResponse")


@pytest.mark.parametrize("contents, error", [
    # a response three turns after its call: strict servers refuse the tool message out of place
    ([user("go"), model(call("f")), user("wait"), model("ok"), user(reply("f", {}))],
     "contents[4].parts[0].functionResponse: the functionResponse for 'f' must come in the turn right after"),
    ([user("go"), model(call("f")), user("wait"), user(reply("f", {}))],
     "contents[3].parts[0].functionResponse: the functionResponse for 'f' must come in the turn right after"),
    ([user("go"), model(call("f")), user(reply("f", {})), user(reply("f", {}))],
     "contents[3].parts[0].functionResponse: no earlier functionCall named 'f' is waiting"),
], ids=["model-turn-between", "user-turn-between", "answered-twice"])
def test_a_response_out_of_its_place_is_refused_as_gemini_does(contents, error):
    with pytest.raises(InvalidArgument) as caught:
        translate({"contents": contents})
    assert caught.value.message.startswith(error)


@pytest.mark.parametrize("contents", [
    [user("go"), model(call("f"), call("g")), user(reply("f", {})), user(reply("g", {}))],  # one turn each
    [user("go"), model(call("f")), model(call("g")), user(reply("f", {}), reply("g", {}))],  # a streamed turn
    [user("go"), model(call("f")), user("never mind"), model("ok")],  # a call left unanswered
], ids=["responses-in-consecutive-turns", "calls-in-consecutive-model-turns", "unanswered"])
def test_responses_right_after_their_calls_are_matched(contents):
    request, _ = translate({"contents": contents})
    tools = [m for m in request["messages"] if m["role"] == "tool"]
    calls = [c["id"] for m in request["messages"] for c in m.get("tool_calls", [])]
    assert [m["tool_call_id"] for m in tools] == calls[:len(tools)]


def test_call_args_and_response_keys_are_never_rewritten():
    args = {"user_id": 1, "nested": {"snake_key": [1, {"deep_key": None}]}}
    contents = [{"role": "user", "parts": [{"text": "go"}]},
                {"role": "model", "parts": [{"function_call": {"name": "f", "args": args}}]},
                {"role": "user", "parts": [
                    {"function_response": {"name": "f", "response": {"result_value": 2}, "will_continue": False}}]}]
    request, _ = translate({"contents": contents})
    assert request["messages"][1]["tool_calls"][0]["function"]["arguments"] == (
        '{"user_id": 1, "nested": {"snake_key": [1, {"deep_key": null}]}}')
    assert request["messages"][2]["content"] == '{"result_value": 2}'


def test_reasoning_of_a_tool_call_turn_is_sent_back():
    contents = [user("go"), model({"text": "I should call f", "thought": True}, call("f")), user(reply("f", {}))]
    request, _ = translate({"contents": contents})
    assert request["messages"][1]["reasoning_content"] == "I should call f"


def signed_call(name, reasoning=None, signature=None, id=None):
    """A functionCall part carrying the signature the function gave it (or any ``signature``)."""
    return {**call(name, id=id), "thoughtSignature": signature if signature is not None else encode_signature(reasoning)}


def test_reasoning_kept_in_a_signature_comes_back_on_that_turn_only():
    contents = [user("go"), model(signed_call("f", "I should call f"), call("g")), user(reply("f", {}), reply("g", {})),
                model(call("h")), user(reply("h", {})),
                model(signed_call("k", "Now k")), user(reply("k", {}))]
    messages = translate({"contents": contents})[0]["messages"]
    assert [(m["role"], m.get("reasoning_content")) for m in messages] == [
        ("user", None), ("assistant", "I should call f"), ("tool", None), ("tool", None), ("assistant", None),
        ("tool", None), ("assistant", "Now k"), ("tool", None)]
    assert "thoughtSignature" not in str(messages)


def test_signed_reasoning_before_the_users_last_question_is_not_sent_back():
    # DeepSeek needs the reasoning of the tool calls since the last question only; a forged
    # signature elsewhere in a long history costs nothing.
    contents = [user("go"), model(signed_call("f", "Old reasoning")), user(reply("f", {})), model("done"),
                user("and now?"), model(signed_call("f", "New reasoning")), user(reply("f", {}))]
    messages = translate({"contents": contents})[0]["messages"]
    assert [m.get("reasoning_content") for m in messages if m["role"] == "assistant"] == [None, None, "New reasoning"]


def test_signed_reasoning_sent_back_is_bounded_per_request(monkeypatch):
    monkeypatch.setattr(request_translation, "MAX_RESTORED_REASONING", 10)
    contents = [user("go")]
    for text in ("first, 12 chars", "second 12 ch", "third"):
        contents += [model(signed_call("f", text)), user(reply("f", {}))]
    messages = translate({"contents": contents})[0]["messages"]
    # newest first, until the budget is spent
    assert [m.get("reasoning_content") for m in messages if m["role"] == "assistant"] == [None, "second 12 ch", "third"]


def test_thought_parts_sent_back_win_over_the_signature():
    contents = [user("go"), model({"text": "What the client kept", "thought": True}, signed_call("f", "Signed")),
                user(reply("f", {}))]
    assert translate({"contents": contents})[0]["messages"][1]["reasoning_content"] == "What the client kept"


def test_a_streamed_turn_recorded_chunk_by_chunk_keeps_its_signature():
    signature = base64.urlsafe_b64encode(base64.b64decode(encode_signature("Hmm, f."))).decode()  # as the SDK sends it
    contents = [user("go"), model("Let me check."), model(signed_call("f", signature=signature)), model(""),
                user(reply("f", {}))]
    assert translate({"contents": contents})[0]["messages"][1] == {
        "role": "assistant", "content": "Let me check.", "reasoning_content": "Hmm, f.",
        "tool_calls": [{"id": "call00001", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}


BOMB = base64.b64encode(b"gcR\x01" + zlib.compress(b"\0" * (16 * 1024 * 1024), 9)).decode()
FOREIGN_SIGNATURES = [
    "skip_thought_signature_validator", base64.b64encode(bytes(range(256))).decode(), "c2ln", "", "not base64!",
    "é", BOMB, "QUFB" * 20_000, base64.b64encode(b"gcR\x01" + zlib.compress(b"x" * 10_000_000)[:-4]).decode(),
]


@pytest.mark.parametrize("signature", FOREIGN_SIGNATURES, ids=lambda s: s[:20])
def test_signatures_not_ours_are_ignored(signature):
    contents = [user("go"), model(signed_call("f", signature=signature)), user(reply("f", {}))]
    message = translate({"contents": contents})[0]["messages"][1]
    assert "reasoning_content" not in message and message["tool_calls"][0]["function"]["name"] == "f"


def test_a_signature_only_counts_on_a_function_call_part():
    contents = [user("go"), model({"text": "a", "thoughtSignature": encode_signature("text part")}, call("f")),
                user(reply("f", {})), model({"text": "b", "thoughtSignature": encode_signature("no call")})]
    messages = translate({"contents": contents})[0]["messages"]
    assert "reasoning_content" not in messages[1] and messages[-1] == {"role": "assistant", "content": "b"}


def test_call_ids_unit():
    ids = CallIds([])
    first, second = ids.for_call(None, "f"), ids.for_call("given", "f")
    assert ids.for_response(None, "f", ["p"]) == first
    assert ids.for_response("unknown", "f", ["p"]) == second
    with pytest.raises(InvalidArgument):
        ids.for_response(None, "f", ["p"])


# --- tools -------------------------------------------------------------------------------------

WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}
TIME = {"name": "get_time", "parametersJsonSchema": {"type": "object", "properties": {"tz": {"type": "string"}}}}


def tools_of(tools, tool_config=None):
    body = {"contents": [user("hi")], "tools": tools}
    if tool_config:
        body["toolConfig"] = tool_config
    request, _ = translate(body)
    return {k: v for k, v in request.items() if k in ("tools", "tool_choice")}


def test_function_declarations_become_tools():
    assert tools_of([{"functionDeclarations": [WEATHER, TIME, {"name": "ping"}]}]) == {"tools": [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "parameters": TIME["parametersJsonSchema"]}},
        {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}},
    ]}


def test_declarations_from_several_tool_objects_are_all_sent():
    tools = tools_of([{"functionDeclarations": [WEATHER]}, {"functionDeclarations": [TIME]}])["tools"]
    assert [t["function"]["name"] for t in tools] == ["get_weather", "get_time"]


TOOL_CHOICE = [
    ({"mode": "AUTO"}, "auto", ["get_weather", "get_time"]),
    ({"mode": "NONE"}, "none", ["get_weather", "get_time"]),
    ({"mode": "ANY"}, "required", ["get_weather", "get_time"]),
    ({"mode": "VALIDATED"}, "auto", ["get_weather", "get_time"]),
    ({"mode": "ANY", "allowedFunctionNames": ["get_time"]}, "required", ["get_time"]),  # llama.cpp ignores the object form
    ({"mode": "AUTO", "allowedFunctionNames": ["get_time"]}, "auto", ["get_time"]),
    ({"mode": "ANY", "allowedFunctionNames": ["get_time", "get_weather"]}, "required", ["get_weather", "get_time"]),
    ({}, None, ["get_weather", "get_time"]),
]


@pytest.mark.parametrize("calling,choice,names", TOOL_CHOICE)
def test_function_calling_config(calling, choice, names):
    result = tools_of([{"functionDeclarations": [WEATHER, TIME]}], {"functionCallingConfig": calling})
    assert result.get("tool_choice") == choice
    assert [t["function"]["name"] for t in result["tools"]] == names


def test_allowed_names_must_be_declared():
    with pytest.raises(InvalidArgument) as caught:
        tools_of([{"functionDeclarations": [WEATHER]}],
                 {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["nope"]}})
    assert "allowedFunctionNames" in caught.value.message


def test_no_declarations_sends_no_tools_and_no_tool_choice():
    assert tools_of([], {"functionCallingConfig": {"mode": "ANY"}}) == {}
    assert tools_of([{"functionDeclarations": []}]) == {}


def test_parameters_and_parameters_json_schema_are_exclusive():
    with pytest.raises(InvalidArgument) as caught:
        tools_of([{"functionDeclarations": [{**WEATHER, "parametersJsonSchema": {}}]}])
    assert caught.value.message.startswith("tools[0].functionDeclarations[0]")


def test_snake_case_declarations_from_the_python_sdk():
    body = {"contents": [user("hi")], "tools": [{"function_declarations": [
        {"name": "f", "parameters_json_schema": {"type": "object", "properties": {"user_name": {"type": "string"}},
                                                 "additionalProperties": False}}]}],
            "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}}}
    request, _ = translate(body)
    assert request["tools"][0]["function"]["parameters"] == {
        "type": "object", "properties": {"user_name": {"type": "string"}}, "additionalProperties": False}
    assert request["tool_choice"] == "required"


# --- structured output -------------------------------------------------------------------------

def test_response_schema_becomes_json_schema_format():
    config = {"responseMimeType": "application/json", "response_schema": {
        "type": "OBJECT", "properties": {"b": {"type": "INTEGER"}, "a": {"type": "STRING", "nullable": True}},
        "property_ordering": ["a", "b"], "required": ["a"]}}
    request, options = translate({"contents": [user("hi")], "generationConfig": config})
    schema = request["response_format"]["json_schema"]["schema"]
    assert request["response_format"]["type"] == "json_schema"
    assert schema == {"type": "object", "required": ["a"],
                      "properties": {"a": {"type": ["string", "null"]}, "b": {"type": "integer"}}}
    assert list(schema["properties"]) == ["a", "b"]
    assert options.enum_answer is False


@pytest.mark.parametrize("key", ["responseJsonSchema", "response_json_schema", "_responseJsonSchema"])
def test_response_json_schema_is_passed_through(key):
    schema = {"type": "object", "properties": {"user_name": {"type": "string", "const": "x"}}, "$defs": {}}
    config = {"responseMimeType": "application/json", key: schema}
    request, _ = translate({"contents": [user("hi")], "generationConfig": config})
    assert request["response_format"] == {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


def test_text_enum_is_constrained_through_a_wrapper_and_flagged_for_unwrapping():
    config = {"responseMimeType": "text/x.enum", "responseSchema": {"type": "STRING", "enum": ["pos", "neg"]}}
    request, options = translate({"contents": [user("hi")], "generationConfig": config})
    assert request["response_format"]["json_schema"]["schema"]["properties"]["value"]["enum"] == ["pos", "neg"]
    assert options.enum_answer is True


def test_json_schemas_with_gemini_type_names_get_standard_ones():
    # What the Gemini CLI's model router sends: a responseJsonSchema with upper-case types.
    schema = {"type": "OBJECT", "properties": {"TYPE": {"type": "STRING", "enum": ["OBJECT"]},
                                               "score": {"type": ["INTEGER", "null"]},
                                               "list": {"type": "ARRAY", "items": {"type": "NUMBER"}}},
              "required": ["TYPE"], "additionalProperties": False}
    config = {"responseMimeType": "application/json", "responseJsonSchema": schema}
    request, _ = translate({"contents": [user("hi")], "generationConfig": config,
                            "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": schema}]}]})
    expected = {"type": "object", "properties": {"TYPE": {"type": "string", "enum": ["OBJECT"]},
                                                 "score": {"type": ["integer", "null"]},
                                                 "list": {"type": "array", "items": {"type": "number"}}},
                "required": ["TYPE"], "additionalProperties": False}
    assert request["response_format"]["json_schema"]["schema"] == expected
    assert request["tools"][0]["function"]["parameters"] == expected


COUNT_TOKENS_REQUESTS = [
    ("contents: a one-token generation", "none", {"contents": [user("hi")]},
     {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}),
    ("generateContentRequest wins over contents, its system instruction and tools counted", "none",
     {"contents": [user("ignored")],
      "generateContentRequest": {"contents": [user("counted")], "systemInstruction": {"parts": [{"text": "brief"}]},
                                 "tools": [{"functionDeclarations": [{"name": "f"}]}]}},
     {"model": "m", "messages": [{"role": "system", "content": "brief"}, {"role": "user", "content": "counted"}],
      "max_tokens": 1,
      "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]}),
    ("fields that would answer more than one token, or bill it at another tier, are left out", "none",
     {"generateContentRequest": {"contents": [user("hi")], "serviceTier": "priority", "generationConfig": {
         "candidateCount": 3, "maxOutputTokens": 500, "responseLogprobs": True, "logprobs": 2, "temperature": 0.5}}},
     {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5, "max_tokens": 1}),
    ("thinking off, whatever the request asked", "dashscope",
     {"generateContentRequest": {"contents": [user("hi")],
                                 "generationConfig": {"thinkingConfig": {"thinkingLevel": "HIGH"}}}},
     {"model": "m", "messages": [{"role": "user", "content": "hi"}], "enable_thinking": False, "max_tokens": 1}),
]


@pytest.mark.parametrize("name,dialect,body,expected", COUNT_TOKENS_REQUESTS, ids=[c[0] for c in COUNT_TOKENS_REQUESTS])
def test_count_tokens_request(name, dialect, body, expected):
    assert count_tokens_request(COUNT_TOKENS.validate(body), "m", dialect) == expected


def test_count_tokens_of_a_turn_whose_call_is_not_in_it():
    body = {"contents": [user(reply("read_file", {"output": "ok"}, id="x1"), "and this")]}
    request = count_tokens_request(COUNT_TOKENS.validate(body), "m")
    assert request["messages"] == [{"role": "user", "content": '{"functionResponse": {"name": "read_file", '
                                                               '"response": {"output": "ok"}, "id": "x1"}}\nand this'}]


@pytest.mark.parametrize("uri", ["file:///etc/passwd", "gs://bucket/cat.png", "/etc/passwd", "ftp://x/cat.png"])
def test_file_uris_other_than_http_are_refused(uri):
    with pytest.raises(InvalidArgument) as caught:
        translate({"contents": [user({"fileData": {"mimeType": "image/png", "fileUri": uri}})]})
    assert caught.value.message.startswith("contents[0].parts[0].fileData.fileUri")


def test_huge_int64_strings_in_a_schema_are_refused():
    body = {"contents": [user("hi")], "generationConfig": {
        "responseMimeType": "application/json", "responseSchema": {"type": "STRING", "maxLength": "1" * 5000}}}
    with pytest.raises(InvalidArgument) as caught:
        translate(body)
    assert caught.value.message.startswith("generationConfig.responseSchema.maxLength")
