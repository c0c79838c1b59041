"""Request validation, in process (functions-framework's app through its test client).

Bad bodies: every one is a 400 INVALID_ARGUMENT in the Gemini envelope whose message names the
offending field (``generationConfig.temperature: ...``), and nothing is sent upstream, whether the
schema or the translation refuses it. Good bodies: snake_case and camelCase spellings reach the
upstream as the same request, free-form payloads are passed on untouched, and the fields that are
accepted and ignored are not forwarded."""

import copy
import json
import re

import pytest

from helpers import error_of, hello

GENERATE = "/v1beta/models/qwen-turbo:generateContent"
STREAM = "/v1beta/models/qwen-turbo:streamGenerateContent?alt=sse"
ACTIONS = [pytest.param(GENERATE, id="generate"), pytest.param(STREAM, id="stream")]

PNG = "iVBORw0KGgo="  # the PNG signature, standard padded base64
USER = {"role": "user", "parts": [{"text": "hi"}]}
INVALID_JSON = "Invalid JSON payload"


def body(**fields):
    return {"contents": [copy.deepcopy(USER)], **fields}


def config(**fields):
    return body(generationConfig=fields)


def part(value, role="user"):
    return {"contents": [{"role": role, "parts": [value]}]}


def declaration(value):
    return body(tools=[{"functionDeclarations": [value]}])


def params(schema):
    return declaration({"name": "f", "parameters": schema})


def response_schema(schema):
    return config(responseMimeType="application/json", responseSchema=schema)


def nested(depth, open_, close, inner=""):
    return open_ * depth + inner + close * depth


# (id, body, where the message must name the problem, an extra word the message must hold)
# "where" is a field path (matched as "<path>:"), or INVALID_JSON for bodies that are not JSON objects;
# a tuple means any one of them.
BAD_BODIES = [
    # --- not a JSON object at all
    ("malformed-json", b'{"contents": [', INVALID_JSON, ""),
    ("single-quotes", b"{'contents': []}", INVALID_JSON, ""),
    ("trailing-comma", b'{"contents": [{"parts": [{"text": "hi"}]}],}', INVALID_JSON, ""),
    ("trailing-garbage", b'{"contents": [{"parts": [{"text": "hi"}]}]} x', INVALID_JSON, ""),
    ("empty-body", b"", INVALID_JSON, "empty"),
    ("blank-body", b"  \r\n\t ", INVALID_JSON, "empty"),
    ("not-utf8", b'{"contents": [{"parts": [{"text": "\xff\xfe"}]}]}', INVALID_JSON, ""),
    ("array-body", b"[]", INVALID_JSON, "object"),
    ("string-body", b'"x"', INVALID_JSON, "object"),
    ("number-body", b"1", INVALID_JSON, "object"),
    ("null-body", b"null", INVALID_JSON, "object"),
    ("true-body", b"true", INVALID_JSON, "object"),
    ("nested-arrays-100000", nested(100000, "[", "]").encode(), INVALID_JSON, ""),
    ("nested-objects-100000", nested(100000, '{"a":', "}", "1").encode(), INVALID_JSON, ""),
    ("nested-arrays-in-labels", b'{"contents": [{"parts": [{"text": "hi"}]}], "labels": '
     + nested(100000, "[", "]").encode() + b"}", INVALID_JSON, ""),
    ("nested-args-100000", b'{"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": '
     + nested(100000, '{"a":', "}", "1").encode() + b"}}]}]}", INVALID_JSON, ""),
    # --- contents and parts
    ("missing-contents", {}, "contents", "required"),
    ("missing-contents-with-config", {"generationConfig": {"temperature": 1}}, "contents", "required"),
    ("empty-contents", {"contents": []}, "contents", ""),
    ("contents-not-array", {"contents": {"parts": [{"text": "hi"}]}}, "contents", "array"),
    ("content-not-object", {"contents": ["hi"]}, "contents[0]", "object"),
    ("content-without-parts", {"contents": [{"role": "user"}]}, "contents[0].parts", "required"),
    ("empty-parts", {"contents": [{"role": "user", "parts": []}]}, "contents[0].parts", ""),
    ("parts-not-array", {"contents": [{"parts": {"text": "hi"}}]}, "contents[0].parts", "array"),
    ("part-without-data", part({}), "contents[0].parts[0]", "none"),
    ("part-only-thought", part({"thought": True}), "contents[0].parts[0]", "none"),
    ("part-two-data-fields", part({"text": "a", "inlineData": {"mimeType": "image/png", "data": PNG}}),
     "contents[0].parts[0]", "inlineData"),
    ("second-content-bad", {"contents": [USER, {"role": "user", "parts": [{"text": True}]}]},
     "contents[1].parts[0].text", "string"),
    # --- wrong types
    ("text-not-string", part({"text": 5}), "contents[0].parts[0].text", "string"),
    ("role-bogus", {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "contents[0].role", "assistant"),
    ("role-number", {"contents": [{"role": 1, "parts": [{"text": "x"}]}]}, "contents[0].role", ""),
    # A number written as a string is a number (proto3 JSON, like Google); a word is not.
    ("temperature-string", config(temperature="hot"), "generationConfig.temperature", "number"),
    ("max-output-tokens-float", config(maxOutputTokens=1.5), "generationConfig.maxOutputTokens", "integer"),
    ("seed-float", config(seed=1.5), "generationConfig.seed", "integer"),
    ("include-thoughts-string", config(thinkingConfig={"includeThoughts": "yes"}),
     "generationConfig.thinkingConfig.includeThoughts", "boolean"),
    ("generation-config-array", body(generationConfig=[]), "generationConfig", "object"),
    ("stop-sequence-not-string", config(stopSequences=[1]), "generationConfig.stopSequences[0]", "string"),
    ("tools-not-array", body(tools={}), "tools", "array"),
    ("function-call-args-array", part({"functionCall": {"name": "f", "args": [1]}}, role="model"),
     "contents[0].parts[0].functionCall.args", "object"),
    ("function-response-string", part({"functionResponse": {"name": "f", "response": "x"}}),
     "contents[0].parts[0].functionResponse.response", "object"),
    ("label-not-string", body(labels={"team": 1}), "labels.team", "string"),
    # --- out of range
    ("temperature-5", config(temperature=5), "generationConfig.temperature", "maximum"),
    ("temperature-minus-1", config(temperature=-1), "generationConfig.temperature", "minimum"),
    ("temperature-infinity", b'{"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"temperature": '
     b"Infinity}}", INVALID_JSON, "Infinity is not a JSON value"),
    ("top-p-1.5", config(topP=1.5), "generationConfig.topP", "maximum"),
    ("top-k-0", config(topK=0), "generationConfig.topK", "minimum"),
    ("max-output-tokens-0", config(maxOutputTokens=0), "generationConfig.maxOutputTokens", "minimum"),
    ("max-output-tokens-1e400", b'{"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": '
     b'{"maxOutputTokens": 1e400}}', INVALID_JSON, "1e400 is out of range"),
    ("candidate-count-0", config(candidateCount=0), "generationConfig.candidateCount", "minimum"),
    ("candidate-count-9", config(candidateCount=9), "generationConfig.candidateCount", "maximum"),
    ("presence-penalty-3", config(presencePenalty=3), "generationConfig.presencePenalty", "maximum"),
    ("frequency-penalty-minus-3", config(frequencyPenalty=-3), "generationConfig.frequencyPenalty", "minimum"),
    ("logprobs-21", config(responseLogprobs=True, logprobs=21), "generationConfig.logprobs", "maximum"),
    ("thinking-budget-minus-2", config(thinkingConfig={"thinkingBudget": -2}),
     "generationConfig.thinkingConfig.thinkingBudget", "minimum"),
    ("stop-sequences-6", config(stopSequences=["a", "b", "c", "d", "e", "f"]), "generationConfig.stopSequences", ""),
    ("schema-min-items-negative", response_schema({"type": "ARRAY", "minItems": -1}),
     "generationConfig.responseSchema.minItems", "minimum"),
    ("schema-max-items-not-digits", response_schema({"type": "ARRAY", "maxItems": "3x"}),
     "generationConfig.responseSchema.maxItems", ""),
    ("video-fps-0", part({"fileData": {"fileUri": "https://example.invalid/a.png"}, "videoMetadata": {"fps": 0}}),
     "contents[0].parts[0].videoMetadata.fps", ""),
    # --- unknown fields, at every level
    ("unknown-top-level", body(foo=1), "foo", "unknown"),
    ("unknown-content-field", {"contents": [{"role": "user", "parts": [{"text": "x"}], "name": "n"}]},
     "contents[0].name", "unknown"),
    ("unknown-generation-config", config(temprature=1), "generationConfig.temprature", "temperature"),
    ("unknown-thinking-config", config(thinkingConfig={"budget": 5}), "generationConfig.thinkingConfig.budget",
     "unknown"),
    ("unknown-part-field", part({"text": "x", "bogus": 1}), "contents[0].parts[0].bogus", "unknown"),
    ("unknown-inline-data-field", part({"inlineData": {"mimeType": "image/png", "data": PNG, "extra": 1}}),
     "contents[0].parts[0].inlineData.extra", "unknown"),
    ("unknown-function-call-field", part({"functionCall": {"name": "f", "arguments": "{}"}}, role="model"),
     "contents[0].parts[0].functionCall.arguments", "unknown"),
    ("unknown-function-declaration-field", declaration({"name": "f", "bogus": 1}),
     "tools[0].functionDeclarations[0].bogus", "unknown"),
    ("unknown-tool-field", body(tools=[{"functions": []}]), "tools[0].functions", "unknown"),
    ("unknown-tool-config-field", body(toolConfig={"functionCallingConfig": {"mode": "AUTO", "modes": []}}),
     "toolConfig.functionCallingConfig.modes", "unknown"),
    ("unknown-safety-setting-field", body(safetySettings=[{"category": "HARM_CATEGORY_HARASSMENT",
                                                           "threshold": "BLOCK_NONE", "method": "SEVERITY"}]),
     "safetySettings[0].method", "unknown"),
    ("unknown-system-instruction-field", body(systemInstruction={"parts": [{"text": "x"}], "name": "s"}),
     "systemInstruction.name", "unknown"),
    ("schema-const-in-parameters", params({"type": "OBJECT", "properties": {"a": {"type": "STRING", "const": "x"}}}),
     "tools[0].functionDeclarations[0].parameters.properties.a.const", "unknown"),
    ("schema-one-of-deep-in-parameters",
     params({"type": "OBJECT", "properties": {"a": {"type": "ARRAY", "items": {"type": "STRING", "oneOf": []}}}}),
     "tools[0].functionDeclarations[0].parameters.properties.a.items.oneOf", "anyOf"),
    ("schema-unknown-in-response-schema", response_schema({"type": "OBJECT", "additional_items": False}),
     "generationConfig.responseSchema.additional_items", "unknown"),
    # --- the same field twice, camelCase and snake_case
    ("duplicate-system-instruction", body(systemInstruction={"parts": [{"text": "a"}]},
                                          system_instruction={"parts": [{"text": "b"}]}),
     "systemInstruction", "twice"),
    ("duplicate-max-output-tokens", config(maxOutputTokens=5, max_output_tokens=6),
     "generationConfig.maxOutputTokens", "twice"),
    ("duplicate-mime-type", part({"inlineData": {"mimeType": "image/png", "mime_type": "image/png", "data": PNG}}),
     "contents[0].parts[0].inlineData.mimeType", "twice"),
    ("duplicate-response-json-schema", config(responseMimeType="application/json", responseJsonSchema={},
                                              _responseJsonSchema={}),
     "generationConfig.responseJsonSchema", "twice"),
    ("duplicate-property-ordering", response_schema({"type": "OBJECT", "propertyOrdering": [],
                                                     "property_ordering": []}),
     "generationConfig.responseSchema.propertyOrdering", "twice"),
    ("duplicate-function-declarations", body(tools=[{"functionDeclarations": [], "function_declarations": []}]),
     "tools[0].functionDeclarations", "twice"),
    # --- bad enum values
    ("safety-threshold", body(safetySettings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ALL"}]),
     "safetySettings[0].threshold", "BLOCK_ALL"),
    ("safety-category", body(safetySettings=[{"category": "HARM_X", "threshold": "BLOCK_NONE"}]),
     "safetySettings[0].category", "HARM_X"),
    ("safety-setting-missing-threshold", body(safetySettings=[{"category": "HARM_CATEGORY_HARASSMENT"}]),
     "safetySettings[0].threshold", "required"),
    ("tool-config-mode", body(toolConfig={"functionCallingConfig": {"mode": "SOMETIMES"}}),
     "toolConfig.functionCallingConfig.mode", "SOMETIMES"),
    ("thinking-level", config(thinkingConfig={"thinkingLevel": "ULTRA"}),
     "generationConfig.thinkingConfig.thinkingLevel", "ULTRA"),
    ("schema-type-strin", response_schema({"type": "strin"}), "generationConfig.responseSchema.type", "strin"),
    ("parameters-type-strin", params({"type": "OBJECT", "properties": {"a": {"type": "strin"}}}),
     "tools[0].functionDeclarations[0].parameters.properties.a.type", "strin"),
    ("response-modality", config(responseModalities=["SMELL"]), "generationConfig.responseModalities[0]", "SMELL"),
    ("media-resolution", config(mediaResolution="MEDIA_RESOLUTION_HUGE"), "generationConfig.mediaResolution", ""),
    # --- function declarations
    ("function-name-space", declaration({"name": "my func"}), "tools[0].functionDeclarations[0].name", ""),
    ("function-name-digit-first", declaration({"name": "1abc"}), "tools[0].functionDeclarations[0].name", ""),
    ("function-name-empty", declaration({"name": ""}), "tools[0].functionDeclarations[0].name", ""),
    ("function-name-slash", declaration({"name": "a/b"}), "tools[0].functionDeclarations[0].name", ""),
    ("function-name-129-chars", declaration({"name": "a" * 129}), "tools[0].functionDeclarations[0].name", ""),
    ("function-name-missing", declaration({"description": "x"}), "tools[0].functionDeclarations[0].name",
     "required"),
    ("function-parameters-twice", declaration({"name": "f", "parameters": {"type": "OBJECT"},
                                               "parametersJsonSchema": {"type": "object"}}),
     "tools[0].functionDeclarations[0]", "parametersJsonSchema"),
    ("allowed-function-not-declared", body(tools=[{"functionDeclarations": [{"name": "f"}]}],
                                           toolConfig={"functionCallingConfig": {"allowedFunctionNames": ["g"]}}),
     "toolConfig.functionCallingConfig.allowedFunctionNames", "'g'"),
    # --- media
    ("inline-data-without-mime-type", part({"inlineData": {"data": PNG}}),
     "contents[0].parts[0].inlineData.mimeType", "required"),
    ("inline-data-empty-mime-type", part({"inlineData": {"mimeType": "", "data": PNG}}),
     "contents[0].parts[0].inlineData.mimeType", ""),
    ("inline-data-without-data", part({"inlineData": {"mimeType": "image/png"}}),
     "contents[0].parts[0].inlineData.data", "required"),
    ("inline-data-bad-base64", part({"inlineData": {"mimeType": "image/png", "data": "@@@"}}),
     "contents[0].parts[0].inlineData.data", "base64"),
    ("inline-data-empty-base64", part({"inlineData": {"mimeType": "image/png", "data": ""}}),
     "contents[0].parts[0].inlineData.data", "base64"),
    ("inline-text-not-utf8", part({"inlineData": {"mimeType": "text/plain", "data": "/w=="}}),
     "contents[0].parts[0].inlineData.data", "UTF-8"),
    ("file-data-pdf-by-uri", part({"fileData": {"fileUri": "https://example.invalid/a.pdf",
                                                "mimeType": "application/pdf"}}),
     "contents[0].parts[0].fileData", "application/pdf"),
    ("system-instruction-image", body(systemInstruction={"parts": [{"inlineData": {"mimeType": "image/png",
                                                                                   "data": PNG}}]}),
     "systemInstruction.parts[0]", "text"),
    ("model-turn-inline-data", part({"inlineData": {"mimeType": "image/png", "data": PNG}}, role="model"),
     "contents[0].parts[0].inlineData", "model"),
    # --- turns
    ("function-call-in-user-turn", part({"functionCall": {"name": "f", "args": {}}}),
     "contents[0].parts[0].functionCall", "model turn"),
    ("function-response-without-call", part({"functionResponse": {"name": "f", "response": {}}}),
     "contents[0].parts[0].functionResponse", "'f'"),
    # --- features this endpoint cannot serve
    ("google-search", body(tools=[{"googleSearch": {}}]), "tools[0].googleSearch", ""),
    ("google-search-retrieval", body(tools=[{"googleSearchRetrieval": {}}]), "tools[0].googleSearchRetrieval", ""),
    ("code-execution-second-tool", body(tools=[{"functionDeclarations": [{"name": "f"}]}, {"codeExecution": {}}]),
     "tools[1].codeExecution", ""),
    ("url-context-next-to-functions", body(tools=[{"functionDeclarations": [{"name": "f"}], "urlContext": {}}]),
     "tools[0].urlContext", ""),
    ("cached-content-name", body(cachedContent="cachedContents/Not_An_Id"), "cachedContent", ""),
    ("response-schema-text-plain", config(responseSchema={"type": "STRING"}), "generationConfig.responseMimeType",
     "schema"),
    ("response-json-schema-text-plain", config(responseMimeType="text/plain", responseJsonSchema={"type": "string"}),
     "generationConfig.responseMimeType", "schema"),
    ("response-mime-type-html", config(responseMimeType="text/html"), "generationConfig.responseMimeType",
     "text/html"),
    ("enum-mime-without-enum", config(responseMimeType="text/x.enum", responseSchema={"type": "STRING"}),
     "generationConfig.responseSchema", "enum"),
    ("both-response-schemas", config(responseMimeType="application/json", responseSchema={"type": "STRING"},
                                     responseJsonSchema={"type": "string"}), "generationConfig", "responseJsonSchema"),
    ("logprobs-without-response-logprobs", config(logprobs=3), "generationConfig.logprobs", "responseLogprobs"),
    ("logprobs-with-response-logprobs-false", config(responseLogprobs=False, logprobs=3), "generationConfig.logprobs",
     "responseLogprobs"),
    ("speech-config", config(speechConfig={"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}}),
     "generationConfig.speechConfig", ""),
    ("response-modalities-audio", config(responseModalities=["AUDIO"]), "generationConfig.responseModalities",
     "AUDIO"),
    ("response-modalities-text-and-image", config(responseModalities=["TEXT", "IMAGE"]),
     "generationConfig.responseModalities", "IMAGE"),
    ("thinking-level-and-budget", config(thinkingConfig={"thinkingLevel": "LOW", "thinkingBudget": 100}),
     "generationConfig.thinkingConfig", "thinkingBudget"),
    # --- snake_case input is reported under the field's camelCase name
    ("snake-case-max-output-tokens-0", body(generation_config={"max_output_tokens": 0}),
     "generationConfig.maxOutputTokens", "minimum"),
    ("snake-case-inline-data-bad-base64", part({"inline_data": {"mime_type": "image/png", "data": "@@@"}}),
     "contents[0].parts[0].inlineData.data", "base64"),
]


def assert_rejected(response, upstream, where, word=""):
    error = error_of(response)  # envelope, JSON content type, code == HTTP status
    assert response.status_code == 400, response.text
    assert error["status"] == "INVALID_ARGUMENT"
    message = error["message"]
    choices = where if isinstance(where, tuple) else (where,)
    assert any(
        choice in message if choice == INVALID_JSON else re.search(rf"(?:^|\s){re.escape(choice)}:", message)
        for choice in choices
    ), f"{message!r} does not name {choices}"
    assert word in message, f"{message!r} does not mention {word!r}"
    assert upstream.chat_requests == []


def send(post, path, value):
    return post(path, value if isinstance(value, bytes) else json.dumps(value).encode(),
                  headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("path", ACTIONS)
@pytest.mark.parametrize("value, where, word", [pytest.param(*case[1:], id=case[0]) for case in BAD_BODIES])
def test_bad_body_is_400_naming_the_field_and_nothing_goes_upstream(post, upstream, path, value, where, word):
    assert_rejected(send(post, path, value), upstream, where, word)


def test_the_battery_is_big_enough():
    assert len(BAD_BODIES) >= 40
    assert len({case[0] for case in BAD_BODIES}) == len(BAD_BODIES)


def test_numbers_as_strings_and_nulls_are_read_as_proto3_json(post, upstream):
    """The valid neighbours of temperature-string: proto3 JSON numbers may be strings, and null is absent."""
    sent = forwarded(post, upstream, config(temperature="0.5", maxOutputTokens="64", topP=None))
    assert sent["temperature"] == 0.5 and sent["max_tokens"] == 64 and "top_p" not in sent


# JSON that Python's parser accepts but that is not JSON, and strings that cannot be sent on.
ODD_BODIES = [
    pytest.param(b'{"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"temperature": NaN}}',
                 ("generationConfig.temperature", INVALID_JSON), id="temperature-nan"),
    pytest.param(b'{"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"frequencyPenalty": NaN}}',
                 ("generationConfig.frequencyPenalty", INVALID_JSON), id="frequency-penalty-nan"),
    pytest.param(b'{"contents": [{"parts": [{"text": "\\ud800"}]}]}',
                 ("contents[0].parts[0].text", INVALID_JSON), id="text-lone-surrogate"),
    pytest.param(b'{"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": '
                 b'{"k": "\\udfff"}}}]}]}',
                 ("contents[0].parts[0].functionCall.args", INVALID_JSON), id="args-lone-surrogate"),
]


@pytest.mark.parametrize("path", ACTIONS)
@pytest.mark.parametrize("value, where", ODD_BODIES)
def test_nan_and_lone_surrogates_are_400(post, upstream, path, value, where):
    assert_rejected(send(post, path, value), upstream, where)


def test_huge_integer_is_not_reported_as_not_utf8(post, upstream):
    value = b'{"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"seed": ' + b"9" * 5000 + b"}}"
    response = send(post, GENERATE, value)
    assert_rejected(response, upstream, ("generationConfig.seed", INVALID_JSON))
    assert "UTF-8" not in error_of(response)["message"]


# --- snake_case and camelCase reach the upstream as the same request ---------------------------

RESPONSE_JSON_SCHEMA = {
    "type": "object",
    "properties": {"city_name": {"type": "string"}, "max_items": {"type": "integer"}},
    "required": ["city_name"],
    "additionalProperties": False,
}
PARAMETERS_JSON_SCHEMA = {
    "type": "object",
    "properties": {"user_name": {"type": "string"}, "tags": {"type": "array", "max_items": 3}},
    "required": ["user_name"],
    "additionalProperties": False,
}
GEMINI_SCHEMA = {
    "type": "OBJECT",
    "properties": {
        "first_name": {"type": "STRING", "maxLength": "20"},
        "tag_list": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 3, "minItems": 1},
        "max_items": {"type": "INTEGER", "nullable": True},
    },
    "propertyOrdering": ["tag_list", "first_name", "max_items"],
    "required": ["first_name"],
}
GEMINI_SCHEMA_SNAKE = {
    "type": "OBJECT",
    "properties": {
        "first_name": {"type": "STRING", "max_length": "20"},
        "tag_list": {"type": "ARRAY", "items": {"type": "STRING"}, "max_items": 3, "min_items": 1},
        "max_items": {"type": "INTEGER", "nullable": True},
    },
    "property_ordering": ["tag_list", "first_name", "max_items"],
    "required": ["first_name"],
}

CAMEL = {
    "contents": [{"role": "user", "parts": [{"text": "Describe"}, {"inlineData": {"mimeType": "image/png",
                                                                                 "data": PNG}}]}],
    "systemInstruction": {"parts": [{"text": "Be brief."}]},
    "generationConfig": {
        "maxOutputTokens": 64, "topP": 0.5, "topK": 7, "stopSequences": ["END"], "candidateCount": 1,
        "presencePenalty": 0.25, "frequencyPenalty": 0.5, "seed": 42,
        "responseMimeType": "application/json", "responseJsonSchema": RESPONSE_JSON_SCHEMA,
        "responseLogprobs": True, "logprobs": 3,
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 2048},
    },
    "tools": [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather now", "parametersJsonSchema": PARAMETERS_JSON_SCHEMA},
        {"name": "lookup_user", "parameters": GEMINI_SCHEMA},
    ]}],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather", "lookup_user"]}},
}
SNAKE = {
    "contents": [{"role": "user", "parts": [{"text": "Describe"}, {"inline_data": {"mime_type": "image/png",
                                                                                  "data": PNG}}]}],
    "system_instruction": {"parts": [{"text": "Be brief."}]},
    "generation_config": {
        "max_output_tokens": 64, "top_p": 0.5, "top_k": 7, "stop_sequences": ["END"], "candidate_count": 1,
        "presence_penalty": 0.25, "frequency_penalty": 0.5, "seed": 42,
        "response_mime_type": "application/json", "response_json_schema": RESPONSE_JSON_SCHEMA,
        "response_logprobs": True, "logprobs": 3,
        "thinking_config": {"include_thoughts": True, "thinking_budget": 2048},
    },
    "tools": [{"function_declarations": [
        {"name": "get_weather", "description": "Weather now", "parameters_json_schema": PARAMETERS_JSON_SCHEMA},
        {"name": "lookup_user", "parameters": GEMINI_SCHEMA_SNAKE},
    ]}],
    "tool_config": {"function_calling_config": {"mode": "ANY",
                                                "allowed_function_names": ["get_weather", "lookup_user"]}},
}
MIXED = {
    "contents": [{"role": "user", "parts": [{"text": "Describe"}, {"inlineData": {"mime_type": "image/png",
                                                                                 "data": PNG}}]}],
    "systemInstruction": {"parts": [{"text": "Be brief."}]},
    "generation_config": {
        "maxOutputTokens": 64, "top_p": 0.5, "topK": 7, "stop_sequences": ["END"], "candidateCount": 1,
        "presence_penalty": 0.25, "frequencyPenalty": 0.5, "seed": 42,
        "responseMimeType": "application/json", "_responseJsonSchema": RESPONSE_JSON_SCHEMA,
        "response_logprobs": True, "logprobs": 3,
        "thinkingConfig": {"include_thoughts": True, "thinkingBudget": 2048},
    },
    "tools": [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather now", "parameters_json_schema": PARAMETERS_JSON_SCHEMA},
        {"name": "lookup_user", "parameters": {
            "type": "OBJECT",
            "properties": {
                "first_name": {"type": "STRING", "max_length": "20"},
                "tag_list": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 3, "min_items": 1},
                "max_items": {"type": "INTEGER", "nullable": True},
            },
            "property_ordering": ["tag_list", "first_name", "max_items"],
            "required": ["first_name"],
        }},
    ]}],
    "tool_config": {"functionCallingConfig": {"mode": "ANY", "allowed_function_names": ["get_weather", "lookup_user"]}},
}


def forwarded(post, upstream, value, path=GENERATE):
    """What the upstream got for ``value`` (which must be answered 200)."""
    upstream.reset()
    response = post(path, value)
    assert response.status_code == 200, response.text
    assert len(upstream.chat_requests) == 1
    return upstream.last


def test_camel_case_request_is_translated(post, upstream):
    sent = forwarded(post, upstream, CAMEL)
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Describe"},
                                     {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
    ]
    assert (sent["max_tokens"], sent["top_p"], sent["top_k"], sent["stop"], sent["n"]) == (64, 0.5, 7, ["END"], 1)
    assert (sent["presence_penalty"], sent["frequency_penalty"], sent["seed"]) == (0.25, 0.5, 42)
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == RESPONSE_JSON_SCHEMA
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 3)
    assert (sent["enable_thinking"], sent["thinking_budget"]) == (True, 2048)  # qwen-turbo: DashScope's fields
    assert sent["tool_choice"] == "required"
    tools = {tool["function"]["name"]: tool["function"] for tool in sent["tools"]}
    assert set(tools) == {"get_weather", "lookup_user"}
    assert tools["get_weather"]["description"] == "Weather now"
    assert json.dumps(tools["get_weather"]["parameters"]) == json.dumps(PARAMETERS_JSON_SCHEMA)
    lookup = tools["lookup_user"]["parameters"]
    assert list(lookup["properties"]) == ["tag_list", "first_name", "max_items"]
    assert lookup["properties"]["tag_list"]["maxItems"] == 3 and lookup["properties"]["tag_list"]["minItems"] == 1
    assert lookup["properties"]["first_name"]["maxLength"] == 20
    assert lookup["required"] == ["first_name"]


@pytest.mark.parametrize("path", ACTIONS)
@pytest.mark.parametrize("variant", [SNAKE, MIXED], ids=["snake_case", "mixed"])
def test_snake_case_and_mixed_spellings_reach_upstream_like_camel_case(post, upstream, path, variant):
    expected = forwarded(post, upstream, CAMEL, path)
    assert "max_tokens" in expected and "tools" in expected  # the camelCase request was not reduced to nothing
    assert forwarded(post, upstream, variant, path) == expected


@pytest.mark.parametrize("spelling", ["responseJsonSchema", "response_json_schema", "_responseJsonSchema"])
def test_every_spelling_of_response_json_schema_is_forwarded(post, upstream, spelling):
    sent = forwarded(post, upstream, body(generationConfig={"responseMimeType": "application/json",
                                                              spelling: RESPONSE_JSON_SCHEMA}))
    assert sent["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "response", "schema": RESPONSE_JSON_SCHEMA}}


@pytest.mark.parametrize("spelling", [
    {"tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["only_me"]}}},
    {"toolConfig": {"function_calling_config": {"mode": "ANY", "allowedFunctionNames": ["only_me"]}}},
    {"tool_config": {"functionCallingConfig": {"mode": "ANY", "allowed_function_names": ["only_me"]}}},
], ids=["snake", "mixed-1", "mixed-2"])
def test_allowed_function_names_in_any_spelling_narrow_the_tools(post, upstream, spelling):
    value = body(tools=[{"function_declarations": [{"name": "only_me"}, {"name": "not_me"}]}], **spelling)
    sent = forwarded(post, upstream, value)
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["only_me"]
    assert sent["tool_choice"] == "required"


# --- free-form payloads are never rewritten ----------------------------------------------------

ARGS = {
    "user_id": 1,
    "nested": {"snake_key": 2, "camelKey": 3, "max_output_tokens": 4},
    "inline_data": {"mime_type": "text/plain", "data": "x"},
    "list_items": [{"item_id": 5, "display_name": "Ann"}],
    "functionCall": {"name": "not-a-part"},
}
RESULT = {
    "result_value": {"display_name": "Ann", "mime_type": "text/plain", "function_call": None},
    "total_count": 2,
    "generation_config": {"top_k": 1},
}


@pytest.mark.parametrize("call_key, response_key", [
    ("functionCall", "functionResponse"),
    ("function_call", "function_response"),
])
def test_function_call_args_and_response_reach_upstream_untouched(post, upstream, call_key, response_key):
    value = {"contents": [
        {"role": "user", "parts": [{"text": "Who is user 1?"}]},
        {"role": "model", "parts": [{call_key: {"id": "call_1", "name": "lookup_user", "args": ARGS}}]},
        {"role": "user", "parts": [{response_key: {"id": "call_1", "name": "lookup_user", "response": RESULT}}]},
    ]}
    sent = forwarded(post, upstream, value)
    assistant, tool = sent["messages"][1], sent["messages"][2]
    assert assistant["role"] == "assistant"
    arguments = assistant["tool_calls"][0]["function"]["arguments"]
    assert assistant["tool_calls"][0]["function"]["name"] == "lookup_user"
    # same keys, same order, same values; no key renamed
    assert json.dumps(json.loads(arguments)) == json.dumps(ARGS)
    for key in ("user_id", "snake_key", "camelKey", "max_output_tokens", "inline_data", "mime_type", "item_id",
                "functionCall"):
        assert f'"{key}"' in arguments
    assert "userId" not in arguments and "maxOutputTokens" not in arguments and "inlineData" not in arguments
    assert tool["role"] == "tool" and tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert json.dumps(json.loads(tool["content"])) == json.dumps(RESULT)
    assert "displayName" not in tool["content"] and "generationConfig" not in tool["content"]


ANY_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "user_name": {"type": "string", "const": "x", "min_length": 1},
        "tags": {"type": "array", "max_items": 3, "items": {"type": "string"}, "uniqueItems": True},
        "property_ordering": {"type": "boolean"},
    },
    "required": ["user_name"],
    "additionalProperties": False,
    "property_ordering": ["user_name"],
    "x-vendor_ext": {"snake_key": 1, "camelKey": 2},
    "$defs": {"some_def": {"type": "integer", "exclusive_minimum": 0}},
}


@pytest.mark.parametrize("spelling", ["parametersJsonSchema", "parameters_json_schema"])
def test_parameters_json_schema_reaches_upstream_untouched(post, upstream, spelling):
    sent = forwarded(post, upstream, body(tools=[{"functionDeclarations": [{"name": "f", spelling: ANY_JSON_SCHEMA}]}]))
    assert json.dumps(sent["tools"][0]["function"]["parameters"]) == json.dumps(ANY_JSON_SCHEMA)


@pytest.mark.parametrize("spelling", ["responseJsonSchema", "response_json_schema", "_responseJsonSchema"])
def test_response_json_schema_reaches_upstream_untouched(post, upstream, spelling):
    sent = forwarded(post, upstream, config(responseMimeType="application/json", **{spelling: ANY_JSON_SCHEMA}))
    assert json.dumps(sent["response_format"]["json_schema"]["schema"]) == json.dumps(ANY_JSON_SCHEMA)


@pytest.mark.parametrize("where", ["parameters", "responseSchema"])
def test_gemini_schema_keeps_property_names_and_accepts_snake_case_keywords(post, upstream, where):
    schema = {
        "type": "OBJECT",
        "properties": {
            "first_name": {"type": "STRING", "max_length": 10},
            "max_items": {"type": "ARRAY", "items": {"type": "STRING"}, "max_items": "2", "min_items": 1},
            "property_ordering": {"type": "OBJECT", "properties": {"inner_key": {"type": "INTEGER"}},
                                  "property_ordering": ["inner_key"]},
        },
        "property_ordering": ["property_ordering", "max_items", "first_name"],
        "required": ["first_name"],
    }
    if where == "parameters":
        sent = forwarded(post, upstream, params(schema))
        converted = sent["tools"][0]["function"]["parameters"]
    else:
        sent = forwarded(post, upstream, response_schema(schema))
        converted = sent["response_format"]["json_schema"]["schema"]
    assert list(converted["properties"]) == ["property_ordering", "max_items", "first_name"]
    assert converted["properties"]["first_name"] == {"type": "string", "maxLength": 10}
    assert converted["properties"]["max_items"] == {"type": "array", "items": {"type": "string"},
                                                    "maxItems": 2, "minItems": 1}
    assert list(converted["properties"]["property_ordering"]["properties"]) == ["inner_key"]
    assert converted["required"] == ["first_name"]
    text = json.dumps(converted)
    assert "firstName" not in text and "innerKey" not in text and "propertyOrdering" not in text


# --- accepted and ignored: 200, and nothing of it upstream -------------------------------------

IGNORED = [
    pytest.param({"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"},
                                     {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "OFF"}]},
                 id="safetySettings"),
    pytest.param({"safety_settings": [{"category": "HARM_CATEGORY_HATE_SPEECH",
                                       "threshold": "BLOCK_LOW_AND_ABOVE"}]}, id="safety_settings"),
    pytest.param({"labels": {"team": "ml", "cost_center": "42"}}, id="labels"),
    pytest.param({"generationConfig": {"mediaResolution": "MEDIA_RESOLUTION_LOW"}}, id="mediaResolution"),
    pytest.param({"generation_config": {"media_resolution": "MEDIA_RESOLUTION_HIGH"}}, id="media_resolution"),
    pytest.param({"generationConfig": {"enableEnhancedCivicAnswers": True}}, id="enableEnhancedCivicAnswers"),
    pytest.param({"generation_config": {"enable_enhanced_civic_answers": False}}, id="enable_enhanced_civic_answers"),
    pytest.param({"generationConfig": {"imageConfig": {"aspectRatio": "1:1"}}}, id="imageConfig"),
    pytest.param({"generationConfig": {"audioTranscriptionConfig": {}}}, id="audioTranscriptionConfig"),
    pytest.param({"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
                  "labels": {"team": "ml"},
                  "generationConfig": {"mediaResolution": "MEDIA_RESOLUTION_MEDIUM",
                                       "enableEnhancedCivicAnswers": True}}, id="all-together"),
]


@pytest.mark.parametrize("path", ACTIONS)
@pytest.mark.parametrize("extra", IGNORED)
def test_accepted_and_ignored_fields_are_not_forwarded(post, upstream, path, extra):
    plain = forwarded(post, upstream, hello(), path)
    sent = forwarded(post, upstream, {**hello(), **extra}, path)
    assert sent == plain
    text = json.dumps(sent)
    for word in ("HARM_", "BLOCK_", "safety", "labels", "cost_center", "MEDIA_RESOLUTION", "media", "civic",
                 "aspect"):
        assert word not in text
