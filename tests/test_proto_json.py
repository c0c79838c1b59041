"""Bodies read as Google reads them (proto3 JSON): enum numbers, numbers as strings, null as absent."""

import copy
import json

import pytest
from google.ai import generativelanguage_v1beta as glm

from gemini_compat import validation
from gemini_compat.errors import InvalidArgument
from helpers import error_of


def content(**extra):
    return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], **extra}


READ = [
    ("enum numbers", content(safetySettings=[{"category": 10, "threshold": 4}]),
     content(safetySettings=[{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_NONE"}])),
    ("enum numbers in arrays", content(generationConfig={"responseModalities": [1]}),
     content(generationConfig={"responseModalities": ["TEXT"]})),
    ("Schema type numbers, all the way down",
     content(tools=[{"functionDeclarations": [{"name": "f", "parameters": {"type": 6, "properties": {
         "a": {"type": 5, "items": {"type": 3}}}}}]}]),
     content(tools=[{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT", "properties": {
         "a": {"type": "ARRAY", "items": {"type": "INTEGER"}}}}}]}])),
    ("a Schema inside additionalProperties is read whole",
     content(generationConfig={"responseMimeType": "application/json", "responseSchema": {
         "type": 6, "additionalProperties": {"type": 6, "additional_properties": {"type": 1, "example": None},
                                             "$defs": {"X": {"type": 1, "nullable": None}}}}}),
     content(generationConfig={"responseMimeType": "application/json", "responseSchema": {
         "type": "OBJECT", "additionalProperties": {"type": "OBJECT",
                                                    "additionalProperties": {"type": "STRING", "example": None},
                                                    "$defs": {"X": {"type": "STRING"}}}}})),
    ("mode and behaviour", content(toolConfig={"functionCallingConfig": {"mode": 2}},
                                   tools=[{"functionDeclarations": [{"name": "f", "behavior": 1}]}]),
     content(toolConfig={"functionCallingConfig": {"mode": "ANY"}},
             tools=[{"functionDeclarations": [{"name": "f", "behavior": "BLOCKING"}]}])),
    ("numbers as strings", content(generationConfig={"maxOutputTokens": "64", "temperature": "0.5", "topP": ".9",
                                                     "seed": "-7", "frequencyPenalty": "1e-1"}),
     content(generationConfig={"maxOutputTokens": 64, "temperature": 0.5, "topP": 0.9, "seed": -7,
                               "frequencyPenalty": 0.1})),
    ("int64 counts as strings", content(generationConfig={"responseMimeType": "application/json",
                                                          "responseSchema": {"type": "ARRAY", "maxItems": "3"}}),
     content(generationConfig={"responseMimeType": "application/json",
                               "responseSchema": {"type": "ARRAY", "maxItems": 3}})),
    ("integral floats in integer fields", content(generationConfig={"topK": 3.0, "candidateCount": 1.0}),
     content(generationConfig={"topK": 3, "candidateCount": 1})),
    ("null is absent", content(systemInstruction=None, generationConfig={"temperature": None, "topK": 2},
                               toolConfig=None),
     content(generationConfig={"topK": 2})),
    ("null beside a part's one field", {"contents": [{"parts": [{"text": "hi", "inlineData": None}], "role": None}]},
     {"contents": [{"parts": [{"text": "hi"}]}]}),
    ("free-form payloads keep null, numbers and strings as sent",
     {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"n": "5", "x": None, "t": 6}}}]},
                   {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"v": None, "type": 1}}}]}],
      "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object", "default": None},
                                            "parameters": None}]}]},
     {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"n": "5", "x": None, "t": 6}}}]},
                   {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"v": None, "type": 1}}}]}],
      "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object", "default": None}}]}]}),
    ("a Schema's example and default are values: null stays",
     content(generationConfig={"responseMimeType": "application/json",
                               "responseSchema": {"type": 1, "example": None, "default": None, "nullable": None}}),
     content(generationConfig={"responseMimeType": "application/json",
                               "responseSchema": {"type": "STRING", "example": None, "default": None}})),
    ("snake_case with all of it", content(generation_config={"max_output_tokens": "8", "thinking_config": None}),
     content(generationConfig={"maxOutputTokens": 8})),
    ("the empty role (proto3's default)", {"contents": [{"role": "", "parts": [{"text": "hi"}]}]},
     {"contents": [{"role": "", "parts": [{"text": "hi"}]}]}),
]


@pytest.mark.parametrize("case,body,expected", READ, ids=[case for case, _, _ in READ])
def test_bodies_are_read_as_google_reads_them(case, body, expected):
    assert validation.GENERATE_CONTENT.validate(copy.deepcopy(body)) == expected


REFUSED = [
    ("an enum number we refuse", content(safetySettings=[{"category": 1, "threshold": 4}]),
     'safetySettings[0].category: "HARM_CATEGORY_DEROGATORY" is not one of'),
    ("an enum number out of range", content(safetySettings=[{"category": 7, "threshold": 9}]),
     "safetySettings[0].threshold: 9 is not one of"),
    ("an enum without published numbers", content(generationConfig={"thinkingConfig": {"thinkingLevel": 2}}),
     "generationConfig.thinkingConfig.thinkingLevel: 2 is not one of"),
    ("role is a string, not an enum", {"contents": [{"role": 1, "parts": [{"text": "hi"}]}]},
     'contents[0].role: 1 is not one of "", user'),
    ("not a number", content(generationConfig={"maxOutputTokens": "64 tokens"}),
     'generationConfig.maxOutputTokens: "64 tokens" is not of type integer'),
    ("a fraction in an integer field", content(generationConfig={"topK": "2.5"}),
     'generationConfig.topK: "2.5" is not of type integer'),
    ("not a finite number", content(generationConfig={"temperature": "NaN"}),
     'generationConfig.temperature: "NaN" is not of type number'),
    ("a number too big for a float", content(generationConfig={"temperature": "1e999"}),
     'generationConfig.temperature: "1e999" is not of type number'),
    ("a read number still meets the bounds", content(generationConfig={"temperature": "5"}),
     "generationConfig.temperature: 5.0 is greater than the maximum of 2"),
    ("null contents", {"contents": None}, "contents: required field is missing"),
]


@pytest.mark.parametrize("case,body,message", REFUSED, ids=[case for case, _, _ in REFUSED])
def test_what_is_still_wrong_is_refused_naming_the_field(case, body, message):
    with pytest.raises(InvalidArgument) as caught:
        validation.GENERATE_CONTENT.validate(body)
    assert caught.value.message.startswith(message), caught.value.message


def test_embedding_task_types_and_dimensions():
    body = {"content": {"parts": [{"text": "a"}]}, "taskType": 2, "outputDimensionality": "8", "title": None}
    assert validation.EMBED_CONTENT.validate(body) == {"content": {"parts": [{"text": "a"}]},
                                                      "taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 8}


# --- every enum number is the proto's ------------------------------------------------------------

def _enum_schemas(node, path=""):
    """(path, schema) of every schema in ``node`` that has an ``enum`` of names or ``x-proto-enum``."""
    if isinstance(node, dict):
        if "x-proto-enum" in node or isinstance(node.get("enum"), list) and not path.endswith("/properties/enum"):
            yield path, node
        for key, child in node.items():
            yield from _enum_schemas(child, f"{path}/{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _enum_schemas(child, f"{path}/{index}")


ENUMS = {path: schema for name, document in sorted(validation._SCHEMAS.items())
         for path, schema in _enum_schemas(document, name.rsplit("/", 1)[1])}

# Our enums -> the generated client's; None where Google's protos publish no numbers, or it is no proto enum.
PROTO_ENUMS = {
    "safety_setting.json/properties/category": glm.HarmCategory,
    "safety_setting.json/properties/threshold": glm.SafetySetting.HarmBlockThreshold,
    "gemini_schema.json/$defs/Schema/properties/type": glm.Type,
    "generation_config.json/$defs/GenerationConfig/properties/responseModalities/items": glm.GenerationConfig.Modality,
    "generation_config.json/$defs/GenerationConfig/properties/mediaResolution": glm.GenerationConfig.MediaResolution,
    "generation_config.json/$defs/ThinkingConfig/properties/thinkingLevel": None,
    "embed_content_request.json/$defs/EmbedContentRequest/properties/taskType": glm.TaskType,
    "tool.json/$defs/ToolConfig/properties/functionCallingConfig/properties/mode": glm.FunctionCallingConfig.Mode,
    "tool.json/$defs/FunctionDeclaration/properties/behavior": glm.FunctionDeclaration.Behavior,
    "content.json/$defs/FunctionResponse/properties/scheduling": glm.FunctionResponse.Scheduling,
    "content.json/$defs/ExecutableCode/properties/language": glm.ExecutableCode.Language,
    "content.json/$defs/CodeExecutionResult/properties/outcome": glm.CodeExecutionResult.Outcome,
    "content.json/$defs/Part/properties/mediaResolution/properties/level": None,
    "content.json/$defs/Content/properties/role": None,
    "content.json/$defs/SystemInstruction/properties/role": None,
    "generate_content_request.json/properties/serviceTier": None,
}


def test_every_enum_in_the_schemas_has_decided_about_numbers():
    assert sorted(ENUMS) == sorted(PROTO_ENUMS)


@pytest.mark.parametrize("path", sorted(PROTO_ENUMS))
def test_enum_numbers_are_the_generated_clients(path):
    schema, proto = ENUMS[path], PROTO_ENUMS[path]
    if proto is None:
        assert "x-proto-enum" not in schema
        return
    numbered = schema["enum"] if schema["x-proto-enum"] is True else schema["x-proto-enum"]
    assert numbered == [member.name for member in sorted(proto, key=int)]
    assert set(numbered) >= set(schema.get("enum", numbered)) - _NEWER_THAN_THE_PROTO.get(path, set())


# Names Google added after the generated client's protos (no numbers published for them yet).
_NEWER_THAN_THE_PROTO = {
    "safety_setting.json/properties/category": {
        "HARM_CATEGORY_JAILBREAK", "HARM_CATEGORY_IMAGE_HATE", "HARM_CATEGORY_IMAGE_DANGEROUS_CONTENT",
        "HARM_CATEGORY_IMAGE_HARASSMENT", "HARM_CATEGORY_IMAGE_SEXUALLY_EXPLICIT"},
    "generation_config.json/$defs/GenerationConfig/properties/responseModalities/items": {"VIDEO"},
}


# --- on the wire ---------------------------------------------------------------------------------

def test_integer_enums_numeric_strings_and_nulls_over_http(post, upstream):
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "systemInstruction": None,
            "safetySettings": [{"category": 8, "threshold": 2}],
            "tools": [{"functionDeclarations": [
                {"name": "f", "parameters": {"type": 6, "properties": {"a": {"type": 1}}}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": 3}},
            "generationConfig": {"maxOutputTokens": "64", "temperature": None, "topP": "0.25"}}
    response = post("/v1beta/models/qwen-turbo:generateContent", body)
    assert response.status_code == 200, response.text
    sent = upstream.last
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
    assert (sent["max_tokens"], sent["top_p"], "temperature" in sent) == (64, 0.25, False)
    assert sent["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {"a": {"type": "string"}}}
    assert sent["tool_choice"] == "none"


def test_a_refused_number_over_http_names_the_field_with_a_field_violation(post, upstream):
    response = post("/v1beta/models/qwen-turbo:generateContent",
                      content(generationConfig={"thinkingConfig": {"thinkingLevel": 3}}))
    error = error_of(response)
    assert (response.status_code, error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["details"] == [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
        {"field": "generationConfig.thinkingConfig.thinkingLevel",
         "description": "3 is not one of THINKING_LEVEL_UNSPECIFIED, MINIMAL, LOW, MEDIUM, HIGH, XHIGH"}]}]
    assert upstream.requests == []


def test_response_mime_type_parameters_are_accepted(post, upstream):
    response = post("/v1beta/models/qwen-turbo:generateContent",
                      content(generationConfig={"responseMimeType": "application/json; charset=utf-8"}))
    assert response.status_code == 200, response.text
    assert upstream.last["response_format"] == {"type": "json_object"}
    assert json.loads(json.dumps(upstream.last))  # a plain JSON request went out
