"""Every property declared in schemas/ is translated, refused with a 400 naming it, or in the one table
of fields accepted and ignored (request_translation.ACCEPTED_AND_IGNORED), and README's list is that
table. A property added to a schema without a decision fails here instead of being dropped silently."""

import copy
import pathlib
import re

import pytest

from gemini_compat import validation
from gemini_compat.embeddings import embedding_batches
from gemini_compat.errors import InvalidArgument
from gemini_compat.request_translation import ACCEPTED_AND_IGNORED, chat_request

README = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()


def declared_properties():
    """``Definition.property`` for every property of every schema (inline objects: ``Part.mediaResolution.level``)."""
    found = []

    def walk(node, name):
        if isinstance(node, dict):
            for prop, child in node.get("properties", {}).items():
                found.append(f"{name}.{prop}")
                walk(child, f"{name}.{prop}")
            walk(node.get("items"), name + "[]")
            for definition, child in node.get("$defs", {}).items():
                walk(child, definition)

    for uri, document in sorted(validation._SCHEMAS.items()):
        stem = uri.rsplit("/", 1)[1].removesuffix(".json")
        walk(document, "".join(word.capitalize() for word in stem.split("_")))
    return found


TRANSLATED = set("""
BatchEmbedContentsRequest.requests Content.role Content.parts SystemInstruction.parts Part.text
Part.inlineData Part.fileData Part.functionCall Part.functionResponse Part.executableCode
Part.codeExecutionResult Part.thought Part.mediaResolution Part.mediaResolution.level Blob.mimeType Blob.data
Blob.displayName FileData.mimeType FileData.fileUri FunctionCall.id FunctionCall.name FunctionCall.args
FunctionResponse.id FunctionResponse.name FunctionResponse.response FunctionResponse.parts
FunctionResponse.parts[].inlineData FunctionResponse.parts[].fileData ExecutableCode.language
ExecutableCode.code CodeExecutionResult.outcome CodeExecutionResult.output CountTokensRequest.contents
CountTokensRequest.generateContentRequest EmbedContentRequest.model EmbedContentRequest.content
EmbedContentRequest.outputDimensionality Schema.type Schema.format Schema.title Schema.description
Schema.nullable Schema.enum Schema.items Schema.minItems Schema.maxItems Schema.minLength Schema.maxLength
Schema.minProperties Schema.maxProperties Schema.minimum Schema.maximum Schema.pattern Schema.properties
Schema.required Schema.propertyOrdering Schema.anyOf Schema.additionalProperties Schema.defs Schema.ref
Schema.$defs Schema.$ref Schema.example Schema.default GenerateContentRequest.contents
GenerateContentRequest.systemInstruction GenerateContentRequest.tools GenerateContentRequest.toolConfig
GenerateContentRequest.generationConfig GenerateContentRequest.serviceTier GenerationConfig.candidateCount
GenerationConfig.stopSequences GenerationConfig.maxOutputTokens GenerationConfig.temperature
GenerationConfig.topP GenerationConfig.topK GenerationConfig.seed GenerationConfig.presencePenalty
GenerationConfig.frequencyPenalty GenerationConfig.responseLogprobs GenerationConfig.logprobs
GenerationConfig.responseMimeType GenerationConfig.responseSchema GenerationConfig.responseJsonSchema
GenerationConfig.thinkingConfig GenerationConfig.mediaResolution ThinkingConfig.includeThoughts
ThinkingConfig.thinkingBudget ThinkingConfig.thinkingLevel Tool.functionDeclarations FunctionDeclaration.name
FunctionDeclaration.description FunctionDeclaration.parameters FunctionDeclaration.parametersJsonSchema
ToolConfig.functionCallingConfig ToolConfig.functionCallingConfig.mode
ToolConfig.functionCallingConfig.allowedFunctionNames Part.thoughtSignature
GenerateContentRequest.cachedContent CachedContent.model CachedContent.displayName CachedContent.contents
CachedContent.systemInstruction CachedContent.tools CachedContent.toolConfig CachedContent.ttl
CachedContent.expireTime CachedContentUpdate.ttl CachedContentUpdate.expireTime
""".split())

BASE = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
DECLARED = {"functionDeclarations": [{"name": "f"}]}
BUILT_IN_TOOLS = ["googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "computerUse", "fileSearch",
                  "googleMaps", "enterpriseWebSearch", "retrieval", "parallelAiSearch", "exaAiSearch"]


def with_part(**fields):
    return {"contents": [{"role": "user", "parts": [{"text": "hi", **fields}]}]}


# A request that sets the field (for a refused one: in a way that is refused).
REFUSED = {
    "GenerationConfig.speechConfig": {**BASE, "generationConfig": {"speechConfig": {}}},
    "GenerationConfig.responseModalities": {**BASE, "generationConfig": {"responseModalities": ["IMAGE"]}},
    **{f"Tool.{name}": {**BASE, "tools": [{name: {}}]} for name in BUILT_IN_TOOLS},
    "Tool.mcpServers": {**BASE, "tools": [{"mcpServers": [{}]}]},
}
IGNORED_SAMPLES = {
    "GenerateContentRequest.model": {**BASE, "model": "models/other"},
    "GenerateContentRequest.safetySettings": {**BASE, "safetySettings": [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]},
    "SafetySetting.category": {**BASE, "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"}]},
    "SafetySetting.threshold": {**BASE, "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": 3}]},
    "GenerateContentRequest.labels": {**BASE, "labels": {"team": "a"}},
    "GenerateContentRequest.store": {**BASE, "store": True},
    "SystemInstruction.role": {**BASE, "systemInstruction": {"role": "user", "parts": [{"text": "s"}]}},
    "Part.partMetadata": with_part(partMetadata={"k": 1}),
    "Part.videoMetadata": with_part(videoMetadata={}),
    "VideoMetadata.startOffset": with_part(videoMetadata={"startOffset": "1s"}),
    "VideoMetadata.endOffset": with_part(videoMetadata={"endOffset": "2s"}),
    "VideoMetadata.fps": with_part(videoMetadata={"fps": 2}),
    "VideoMetadata.contentLayers": with_part(videoMetadata={"contentLayers": []}),
    "Part.mediaResolution.numTokens": with_part(mediaResolution={"numTokens": 70}),
    "FileData.displayName": {"contents": [{"role": "user", "parts": [
        {"fileData": {"fileUri": "https://x.test/a.png", "mimeType": "image/png", "displayName": "a"}}]}]},
    "FunctionResponse.willContinue": {"contents": [
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}, "willContinue": True}}]}]},
    "FunctionResponse.scheduling": {"contents": [
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}, "scheduling": "SILENT"}}]}]},
    "ExecutableCode.id": {"contents": [{"role": "model", "parts": [{"executableCode": {"code": "1", "id": "e"}}]}]},
    "CodeExecutionResult.id": {"contents": [{"role": "model", "parts": [
        {"codeExecutionResult": {"output": "1", "id": "e"}}]}]},
    "FunctionDeclaration.response": {**BASE, "tools": [{"functionDeclarations": [
        {"name": "f", "response": {"type": "STRING"}}]}]},
    "FunctionDeclaration.responseJsonSchema": {**BASE, "tools": [{"functionDeclarations": [
        {"name": "f", "responseJsonSchema": {"type": "string"}}]}]},
    "FunctionDeclaration.behavior": {**BASE, "tools": [{"functionDeclarations": [{"name": "f", "behavior": "BLOCKING"}]}]},
    "ToolConfig.retrievalConfig": {**BASE, "tools": [DECLARED], "toolConfig": {"retrievalConfig": {}}},
    "ToolConfig.includeServerSideToolInvocations": {**BASE, "tools": [DECLARED],
                                                    "toolConfig": {"includeServerSideToolInvocations": True}},
    "ToolConfig.functionCallingConfig.streamFunctionCallArguments": {
        **BASE, "tools": [DECLARED], "toolConfig": {"functionCallingConfig": {"streamFunctionCallArguments": True}}},
    "GenerationConfig.enableEnhancedCivicAnswers": {**BASE, "generationConfig": {"enableEnhancedCivicAnswers": True}},
    "GenerationConfig.imageConfig": {**BASE, "generationConfig": {"imageConfig": {"aspectRatio": "1:1"}}},
    "GenerationConfig.audioTranscriptionConfig": {**BASE, "generationConfig": {"audioTranscriptionConfig": {}}},
}
# The same request without the field: what an ignored field must not change.
UNSET = {
    "SafetySetting.category": BASE, "SafetySetting.threshold": BASE,
    "SystemInstruction.role": {**BASE, "systemInstruction": {"parts": [{"text": "s"}]}},
    "FileData.displayName": {"contents": [{"role": "user", "parts": [
        {"fileData": {"fileUri": "https://x.test/a.png", "mimeType": "image/png"}}]}]},
    "ExecutableCode.id": {"contents": [{"role": "model", "parts": [{"executableCode": {"code": "1"}}]}]},
    "CodeExecutionResult.id": {"contents": [{"role": "model", "parts": [{"codeExecutionResult": {"output": "1"}}]}]},
    "FunctionResponse.willContinue": {"contents": [
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
    "FunctionDeclaration.response": {**BASE, "tools": [DECLARED]},
    "FunctionDeclaration.responseJsonSchema": {**BASE, "tools": [DECLARED]},
    "FunctionDeclaration.behavior": {**BASE, "tools": [DECLARED]},
    "ToolConfig.retrievalConfig": {**BASE, "tools": [DECLARED]},
    "ToolConfig.includeServerSideToolInvocations": {**BASE, "tools": [DECLARED]},
    "ToolConfig.functionCallingConfig.streamFunctionCallArguments": {**BASE, "tools": [DECLARED]},
}
UNSET["FunctionResponse.scheduling"] = UNSET["FunctionResponse.willContinue"]


def translated(body):
    return chat_request(validation.GENERATE_CONTENT.validate(copy.deepcopy(body)), "m", stream=False)


def test_every_declared_property_is_translated_refused_or_ignored():
    declared = declared_properties()
    assert len(declared) == len(set(declared))
    decided = TRANSLATED | set(REFUSED) | set(ACCEPTED_AND_IGNORED)
    assert not TRANSLATED & set(REFUSED) and not TRANSLATED & set(ACCEPTED_AND_IGNORED)
    assert sorted(set(declared) - decided) == [], "declared in schemas/ but neither translated, refused nor ignored"
    assert sorted(decided - set(declared)) == [], "decided about, but not in schemas/"


@pytest.mark.parametrize("field", sorted(REFUSED))
def test_refused_fields_are_a_400_naming_them(field):
    with pytest.raises(InvalidArgument) as caught:
        translated(REFUSED[field])
    name = field.rsplit(".", 1)[1]
    assert name in caught.value.message.split(":", 1)[0], caught.value.message


@pytest.mark.parametrize("field", sorted(ACCEPTED_AND_IGNORED))
def test_ignored_fields_are_accepted_and_change_nothing_upstream(field):
    if field.startswith("EmbedContentRequest."):
        request = {"content": {"parts": [{"text": "a"}]}, field.rsplit(".", 1)[1]: "RETRIEVAL_QUERY"}
        batches = embedding_batches([validation.EMBED_CONTENT.validate(request)], "e", "e")
        assert batches == embedding_batches([{"content": {"parts": [{"text": "a"}]}}], "e", "e")
        return
    assert translated(IGNORED_SAMPLES[field]) == translated(UNSET.get(field, BASE))


def test_readme_lists_exactly_the_ignored_fields():
    paragraph = README.split("Accepted, validated, and not forwarded", 1)[1].split("Refused with a 400", 1)[0]
    listed = set(re.findall(r"`([^`]+)`", paragraph)) - {"ACCEPTED_AND_IGNORED", "gemini_compat/request_translation.py"}
    expected = {field.removeprefix("GenerateContentRequest.") for field, why in ACCEPTED_AND_IGNORED.items()
                if not why.startswith("part of")}
    assert listed == expected
