"""Gemini ``GenerateContentRequest`` (validated, camelCase) to an OpenAI chat-completions request.

Pure functions: a dict in, a dict out. What cannot be expressed upstream is refused with a 400 that
names the field, never dropped silently (except the fields documented as accepted and ignored).
"""

import binascii
import json
import mimetypes
from collections import deque

from .errors import InvalidArgument, UpstreamError, field_path
from .json_schema import from_gemini_schema, standard_json_schema
from .proto_json import padded_base64
from .response_options import ENUM_FIELD, ResponseOptions
from .thinking import thinking_parameters
from .thought_signature import MAX_REASONING_BYTES
from .thought_signature import decode as decode_signature

MAX_RESTORED_REASONING = 4 * MAX_REASONING_BYTES  # characters of signed reasoning sent back, per request
BUILT_IN_TOOLS = (
    "googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "computerUse", "fileSearch",
    "googleMaps", "enterpriseWebSearch", "retrieval", "parallelAiSearch", "exaAiSearch", "mcpServers",
)
TOOL_CHOICE_BY_MODE = {"AUTO": "auto", "VALIDATED": "auto", "NONE": "none", "ANY": "required"}
AUDIO_FORMATS = {
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/vnd.wave": "wav",
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/mpeg3": "mp3", "audio/x-mp3": "mp3",
}
# OpenAI's image detail has only low, high and auto: MEDIUM has no level between them, and
# UNSPECIFIED is the model's own choice, so both leave detail out, which means "auto" (the server
# picks by image size). ULTRA_HIGH is as high as OpenAI goes.
IMAGE_DETAIL_BY_RESOLUTION = {
    "MEDIA_RESOLUTION_LOW": "low", "MEDIA_RESOLUTION_HIGH": "high", "MEDIA_RESOLUTION_ULTRA_HIGH": "high",
}
# Gemini serviceTier -> OpenAI service_tier. The SDKs send lower-case names; Java and .NET SDKs
# before them sent SERVICE_TIER_*. Unspecified means the default tier, so nothing is sent.
SERVICE_TIER = {
    "flex": "flex", "SERVICE_TIER_FLEX": "flex",
    "priority": "priority", "SERVICE_TIER_PRIORITY": "priority",
    "standard": "default", "SERVICE_TIER_STANDARD": "default",
}
# Fields accepted, validated and not forwarded, by schema definition: no OpenAI-compatible field means
# the same. Every other property in schemas/ is translated or refused with a 400 naming it
# (tests/test_field_coverage.py holds each one to that, and the README's list to this table).
ACCEPTED_AND_IGNORED = {
    "GenerateContentRequest.model": "the model is the one in the path",
    "GenerateContentRequest.safetySettings": "no safety thresholds upstream",
    "SafetySetting.category": "part of safetySettings",
    "SafetySetting.threshold": "part of safetySettings",
    "GenerateContentRequest.labels": "Google Cloud billing labels",
    "GenerateContentRequest.store": "Google's own logging of the request",
    "SystemInstruction.role": "a system instruction is always the system message",
    "Part.partMetadata": "metadata for the client",
    "Part.videoMetadata": "video cannot be sent upstream",
    "VideoMetadata.startOffset": "part of videoMetadata",
    "VideoMetadata.endOffset": "part of videoMetadata",
    "VideoMetadata.fps": "part of videoMetadata",
    "VideoMetadata.contentLayers": "part of videoMetadata",
    "Part.mediaResolution.numTokens": "no token budget per image upstream",
    "FileData.displayName": "a URI part has no name upstream",
    "FunctionResponse.willContinue": "Live API scheduling",
    "FunctionResponse.scheduling": "Live API scheduling",
    "ExecutableCode.id": "code execution runs at Google only",
    "CodeExecutionResult.id": "code execution runs at Google only",
    "FunctionDeclaration.response": "no declared result schema upstream",
    "FunctionDeclaration.responseJsonSchema": "no declared result schema upstream",
    "FunctionDeclaration.behavior": "Live API scheduling",
    "ToolConfig.retrievalConfig": "for Google's built-in tools, which are refused",
    "ToolConfig.includeServerSideToolInvocations": "for Google's built-in tools, which are refused",
    "ToolConfig.functionCallingConfig.streamFunctionCallArguments": "calls are streamed whole, as Gemini does by default",
    "GenerationConfig.enableEnhancedCivicAnswers": "a Gemini model setting",
    "GenerationConfig.imageConfig": "image output is refused, by responseModalities",
    "GenerationConfig.audioTranscriptionConfig": "Live API transcription",
    "EmbedContentRequest.taskType": "no task types upstream",
    "EmbedContentRequest.title": "no document titles upstream",
}

def chat_request(body: dict, model: str, stream: bool, partial_history: bool = False,
                 thinking_dialect: str = "none") -> tuple[dict, ResponseOptions]:
    """The OpenAI request for a Gemini request, and the options its answer is translated with.

    ``partial_history``: the contents may be a slice of a conversation (countTokens of one new
    turn), so a function response may come without its call; it is then sent as text.
    ``thinking_dialect``: how the upstream model takes thinkingConfig (see ``thinking``)."""
    config = body.get("generationConfig", {})
    if "cachedContent" in body:  # a bug of ours: caches.materialized puts the cache in its place first
        raise ValueError("a request reached translation with its cachedContent unmaterialized")
    request = {"model": model, "messages": messages(body, partial_history)}
    request.update(generation_parameters(config))
    check_text_output(config)
    format_params, enum_answer = response_format(config)
    request.update(format_params)
    request.update(thinking_parameters(thinking_dialect, model, config.get("thinkingConfig", {}), stream))
    request.update(tool_parameters(body.get("tools", []), body.get("toolConfig", {})))
    if body.get("serviceTier") in SERVICE_TIER:
        request["service_tier"] = SERVICE_TIER[body["serviceTier"]]
    if stream:
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    include_thoughts = config.get("thinkingConfig", {}).get("includeThoughts", False)
    return request, ResponseOptions(model=model, include_thoughts=include_thoughts, enum_answer=enum_answer)


def count_tokens_request(body: dict, model: str, thinking_dialect: str = "none") -> dict:
    """The OpenAI request that counts a Gemini ``CountTokensRequest``'s tokens: its contents (or its
    ``generateContentRequest``, which wins, as at Google) as a one-token generation, whose usage
    says how many prompt tokens it had. Exact for the model, at the price of one output token.

    ``{"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"candidateCount": 2}}``
    -> ``{"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}``
    """
    request = body.get("generateContentRequest") or {"contents": body["contents"]}
    # A one-token count need not think (and DashScope refuses a non-streamed call that does).
    config = {**request.get("generationConfig", {}), "thinkingConfig": {"thinkingBudget": 0}}
    payload, _ = chat_request({**request, "generationConfig": config}, model, stream=False, partial_history=True,
                              thinking_dialect=thinking_dialect)
    for name in ("n", "logprobs", "top_logprobs", "service_tier"):  # a priority tier would bill the count
        payload.pop(name, None)
    payload["max_tokens"] = 1
    return payload


def counted_tokens(completion: object) -> int:
    """The prompt tokens the upstream counted, from its answer to a ``count_tokens_request``:
    ``{"usage": {"prompt_tokens": 12, ...}, ...}`` -> ``12``."""
    usage = completion.get("usage") if isinstance(completion, dict) else None
    prompt_tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if not isinstance(prompt_tokens, int):
        raise UpstreamError("The upstream reported no prompt token count, so tokens cannot be counted.")
    return prompt_tokens


# --- messages ----------------------------------------------------------------------------------

def messages(body: dict, partial_history: bool = False) -> list[dict]:
    """``systemInstruction`` + ``contents`` as OpenAI messages, in order."""
    out = []
    system = body.get("systemInstruction")
    if system:
        texts = []
        for index, part in enumerate(system.get("parts", [])):
            if "text" not in part:
                raise InvalidArgument("a system instruction may hold only text", field=f"systemInstruction.parts[{index}]")
            if not part.get("thought"):
                texts.append(part["text"])
        if texts:
            out.append({"role": "system", "content": "\n".join(texts)})
    call_ids = CallIds(body["contents"], partial_history)
    media_resolution = body.get("generationConfig", {}).get("mediaResolution")
    for index, content in enumerate(body["contents"]):
        path = ["contents", index, "parts"]
        call_ids.start_turn(content)
        if content.get("role") == "model":
            _add_model_turn(out, content["parts"], call_ids, path)
        else:
            _add_user_turn(out, content["parts"], call_ids, path, media_resolution)
    _restore_signed_reasoning(out)
    return [_finish_message(message) for message in out]


def _restore_signed_reasoning(out):
    """Reasoning kept in signatures, for the tool-call turns since the user's last question (what
    DeepSeek needs back), newest first, at most MAX_RESTORED_REASONING characters in all: a client
    can forge signatures, and each may hold 128 KiB."""
    budget = MAX_RESTORED_REASONING
    for message in reversed(out):
        if message["role"] == "user":
            return  # a question: the turns before it need no reasoning back
        signature = message.pop("signature", None)
        if signature is not None and budget > 0:
            message["signed_reasoning"] = decode_signature(signature)
            budget -= len(message["signed_reasoning"] or "")


def _add_model_turn(out, parts, call_ids, path):
    """A model turn becomes one assistant message. Consecutive model turns (a streamed answer is
    recorded by the SDK as one turn per chunk, each holding a delta) merge into one. A functionCall
    part's thoughtSignature of ours (thought_signature) holds the turn's reasoning; any other
    signature is ignored."""
    if out and out[-1]["role"] == "assistant":
        message = out[-1]
    else:
        message = {"role": "assistant", "content": [], "tool_calls": [], "reasoning": [], "signed_reasoning": None,
                   "signature": None}
        out.append(message)
    for index, part in enumerate(parts):
        if part.get("thought"):
            message["reasoning"].append(part.get("text", ""))
        elif "text" in part:
            message["content"].append(part["text"])
        elif "functionCall" in part:
            call = part["functionCall"]
            message["tool_calls"].append({
                "id": call_ids.for_call(call.get("id"), call["name"]),
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call.get("args", {}), ensure_ascii=False)},
            })
            if message["signature"] is None and "thoughtSignature" in part:
                message["signature"] = part["thoughtSignature"]  # read by _restore_signed_reasoning
        elif "executableCode" in part or "codeExecutionResult" in part:
            message["content"].append(_Block(_code_text(part)))
        else:
            kind = next(iter(key for key in part if key not in ("thoughtSignature", "thought")), "part")
            raise InvalidArgument("not allowed in a model turn", field=field_path(path + [index, kind]))


def _add_user_turn(out, parts, call_ids, path, media_resolution=None):
    """A user (or function) turn: its functionResponse parts become tool messages, first (OpenAI
    needs them right after the assistant's tool calls); its other parts one user message.
    ``media_resolution``: generationConfig.mediaResolution, for images without a level of their own."""
    content = []
    tool_messages = []
    for index, part in enumerate(parts):
        part_path = path + [index]
        if part.get("thought"):
            continue
        detail = image_detail(part, media_resolution)
        if "text" in part:
            content.append({"type": "text", "text": part["text"]})
        elif (media := media_part(part, part_path, detail)) is not None:
            content.append(media)
        elif "functionResponse" in part:
            response = part["functionResponse"]
            call_id = call_ids.for_response(response.get("id"), response["name"], part_path + ["functionResponse"])
            if call_id is None:  # partial history: the call is not part of it
                content.append({"type": "text", "text": json.dumps({"functionResponse": response}, ensure_ascii=False)})
                continue
            tool_messages.append({
                "role": "tool",
                "tool_call_id": call_id,
                "content": json.dumps(response["response"], ensure_ascii=False),
            })
            for media_index, held in enumerate(response.get("parts", [])):
                # Media of a function response take the level of the part that holds them.
                media = media_part(held, part_path + ["functionResponse", "parts", media_index], detail)
                if media is not None:
                    content.append(media)
        elif "executableCode" in part or "codeExecutionResult" in part:
            content.append({"type": "text", "text": _code_text(part)})
        else:
            raise InvalidArgument("a function call must be in a model turn", field=field_path(part_path + ["functionCall"]))
    out.extend(tool_messages)
    if not content:
        return
    if out and out[-1]["role"] == "user" and not tool_messages:
        out[-1]["content"].extend(content)
    else:
        out.append({"role": "user", "content": content})


def _finish_message(message):
    """Settle a message's content into the plainest form servers accept."""
    if message["role"] == "user":
        parts = message["content"]
        if all(part["type"] == "text" for part in parts):
            # Plain strings: Ollama splits array contents into separate messages.
            return {"role": "user", "content": "\n".join(part["text"] for part in parts)}
        return message
    if message["role"] != "assistant":
        return message
    text = _joined(message["content"])
    finished = {"role": "assistant", "content": text}
    if message["tool_calls"]:
        finished["content"] = text or None
        finished["tool_calls"] = message["tool_calls"]
        if message["reasoning"] or message["signed_reasoning"]:
            # DeepSeek and Kimi thinking modes refuse a tool-call turn whose reasoning is not sent back:
            # the thoughts the client returned, else those kept in the turn's signature.
            finished["reasoning_content"] = "".join(message["reasoning"]) or message["signed_reasoning"]
    return finished


class _Block(str):
    """Text of an assistant message that must stand on lines of its own (code, its result)."""


def _joined(pieces):
    """An assistant message's text pieces joined as they are (a streamed answer's deltas), but each
    _Block on lines of its own, so a code fence closes before what follows it:

    ``["Run:", _Block("```python\\nx\\n```"), _Block("Code execution result (OUTCOME_OK):\\n1"), "Done."]``
    -> ``"Run:\\n```python\\nx\\n```\\nCode execution result (OUTCOME_OK):\\n1\\nDone."``
    """
    out = []
    block_before = False
    for piece in pieces:
        if not piece:
            continue  # an empty delta neither ends a line nor starts one
        block = isinstance(piece, _Block)
        if out and (block or block_before) and not out[-1].endswith("\n") and not piece.startswith("\n"):
            out.append("\n")
        out.append(piece)
        block_before = block
    return "".join(out)


def _code_text(part):
    if "executableCode" in part:
        code = part["executableCode"]
        return f"```{code.get('language', 'python').lower()}\n{code.get('code', '')}\n```"
    result = part["codeExecutionResult"]
    return f"Code execution result ({result.get('outcome', 'OUTCOME_UNSPECIFIED')}):\n{result.get('output', '')}"


class CallIds:
    """tool_call ids for one request: kept when the client sent them, otherwise synthesized, and
    function responses matched to their calls by id, or first-in-first-out by name. As Gemini
    requires, a call is answered in the turns right after its own: OpenAI servers want its tool
    message right after the assistant message, and the strict ones refuse any other order.

    model [call a], user [response a]                  ->  matched
    model [call a], user [text], user [response a]     ->  400 at the response (a user turn came between)
    model [call a], user [text], model [...], ...      ->  a is left unanswered, as the client chose
    """

    def __init__(self, contents, partial_history=False):
        self._contents = contents
        self._partial_history = partial_history
        self._taken = None
        self._count = 0
        self._unanswered = {}  # function name -> ids of its calls not yet answered, oldest first
        self._passed = set()  # names of calls whose turn to be answered has passed
        self._previous_role = None

    def start_turn(self, content):
        """Before each content: calls not answered by now stop waiting when a model turn follows a
        user turn (consecutive model turns are one turn), or a user turn answers nothing."""
        role = "model" if content.get("role") == "model" else "user"
        answers = role == "user" and any("functionResponse" in part for part in content["parts"])
        if (role == "model" and self._previous_role == "user") or (role == "user" and not answers):
            self._passed.update(name for name, waiting in self._unanswered.items() if waiting)
            self._unanswered.clear()
        self._previous_role = role

    def for_call(self, given, name):
        call_id = given or self._new_id()
        self._unanswered.setdefault(name, deque()).append(call_id)
        return call_id

    def for_response(self, given, name, path):
        waiting = self._unanswered.get(name)
        if given and waiting and given in waiting:
            waiting.remove(given)
            return given
        if waiting:
            return waiting.popleft()
        if self._partial_history:
            return None
        if name in self._passed:
            message = (f"the functionResponse for {name!r} must come in the turn right after the model's "
                       "functionCall turn, with no other turn between them")
        else:
            message = f"no earlier functionCall named {name!r} is waiting for this response"
        raise InvalidArgument(message, field=field_path(path))

    def _new_id(self):
        if self._taken is None:  # ids the client chose, so a synthesized one never collides
            self._taken = {
                (part.get("functionCall") or part.get("functionResponse") or {}).get("id")
                for content in self._contents for part in content["parts"]
            }
        while True:
            self._count += 1
            # Nine alphanumerics: the one id shape every server accepts (Mistral demands exactly it).
            call_id = f"call{self._count:05d}"
            if call_id not in self._taken:
                return call_id


# --- media -------------------------------------------------------------------------------------

def image_detail(part, media_resolution):
    """OpenAI ``image_url.detail`` for the images of ``part``: its own ``mediaResolution.level``,
    else generationConfig.mediaResolution; None for "auto". ``numTokens`` has no OpenAI equivalent.

    ``{"mediaResolution": {"level": "MEDIA_RESOLUTION_LOW"}}``, ``"MEDIA_RESOLUTION_HIGH"`` -> ``"low"``
    ``{"inlineData": ...}``, ``"MEDIA_RESOLUTION_HIGH"`` -> ``"high"``
    """
    level = part.get("mediaResolution", {}).get("level", "MEDIA_RESOLUTION_UNSPECIFIED")
    if level == "MEDIA_RESOLUTION_UNSPECIFIED":
        level = media_resolution
    return IMAGE_DETAIL_BY_RESOLUTION.get(level)


def _image_url(url, detail):
    """``{"url": "data:image/png;base64,..."}``, with ``"detail": "low"`` when a detail is given."""
    return {"type": "image_url", "image_url": {"url": url, "detail": detail} if detail else {"url": url}}


def check_media_supported(mime_type, path):
    """Refuses media an OpenAI chat upstream cannot take, whether inline or by URI: sent as an OpenAI
    ``file``, video and other audio would be refused or ignored upstream."""
    if mime_type.startswith("video/"):
        advice = "OpenAI chat completions take no video; send frames as images"
    elif mime_type.startswith("audio/") and mime_type not in AUDIO_FORMATS:
        advice = "its input_audio takes only WAV and MP3; send audio/wav or audio/mpeg"
    else:
        return
    raise InvalidArgument(f"{mime_type} cannot be passed to this endpoint's OpenAI-compatible upstream ({advice})",
                          field=field_path(path))


def media_type(mime_type):
    """The type without its parameters, lower-case: ``Audio/WAV; rate=16000`` -> ``audio/wav``."""
    return mime_type.partition(";")[0].strip().lower()


def media_part(part, path, detail=None):
    """The OpenAI content part for a part's ``inlineData`` or ``fileData``; None if it holds neither.

    ``{"fileData": {"fileUri": "https://x/cat.png"}}``
    -> ``{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}``
    """
    if "inlineData" in part:
        return inline_data_part(part["inlineData"], path + ["inlineData"], detail)
    if "fileData" in part:
        return file_data_part(part["fileData"], path + ["fileData"], detail)
    return None


def inline_data_part(blob, path, detail=None):
    mime_type = media_type(blob["mimeType"])
    check_media_supported(mime_type, path + ["mimeType"])
    data = standard_base64(blob["data"], path + ["data"])
    if mime_type.startswith("image/"):
        return _image_url(f"data:{mime_type};base64,{data}", detail)
    if mime_type in AUDIO_FORMATS:
        return {"type": "input_audio", "input_audio": {"data": data, "format": AUDIO_FORMATS[mime_type]}}
    if mime_type.startswith("text/") or mime_type == "application/json":
        try:
            return {"type": "text", "text": binascii.a2b_base64(data).decode("utf-8")}
        except UnicodeDecodeError:
            raise InvalidArgument(f"{mime_type} data is not UTF-8 text", field=field_path(path + ["data"])) from None
    extension = mimetypes.guess_extension(mime_type) or ""
    filename = blob.get("displayName") or f"file{extension}"
    return {"type": "file", "file": {"filename": filename, "file_data": f"data:{mime_type};base64,{data}"}}


def file_data_part(file_data, path, detail=None):
    uri = file_data["fileUri"]
    if not uri.lower().startswith(("https://", "http://")):
        # Some servers read file:// (llama.cpp --media-path, vLLM local media) or other schemes.
        raise InvalidArgument("only http(s) URIs can be passed on", field=field_path(path + ["fileUri"]))
    mime_type = media_type(file_data.get("mimeType") or mimetypes.guess_type(uri.split("?", 1)[0])[0] or "")
    # Not "send it as inlineData" for types that cannot go inline either.
    check_media_supported(mime_type, path + ["mimeType" if file_data.get("mimeType") else "fileUri"])
    if mime_type.startswith("image/"):
        return _image_url(uri, detail)
    raise InvalidArgument(
        f"only images can be passed by URI here (got {mime_type or 'an unknown type'}); send other files as inlineData",
        field=field_path(path),
    )


def standard_base64(data, path):
    """Standard, padded base64 for ``data``, which may be URL-safe (the Python SDK) or unpadded."""
    text = padded_base64(data)
    try:
        if not text or len(text) % 4 or binascii.a2b_base64(text, strict_mode=True) is None:
            raise binascii.Error
    except ValueError:  # binascii.Error, or characters outside ASCII
        raise InvalidArgument("not valid base64 data", field=field_path(path)) from None
    return text


# --- generation config -------------------------------------------------------------------------

# Gemini generationConfig field -> OpenAI field. Integral floats the Python SDK sends (topK 3.0),
# which some servers refuse, were made integers when the body was read (proto_json).
_GENERATION_FIELDS = {
    "temperature": "temperature",
    "topP": "top_p",
    "topK": "top_k",
    "maxOutputTokens": "max_tokens",
    "candidateCount": "n",
    "seed": "seed",
    "presencePenalty": "presence_penalty",
    "frequencyPenalty": "frequency_penalty",
}


def generation_parameters(config):
    """generationConfig's sampling, length, stop and logprobs fields as OpenAI's:
    ``{"topK": 3, "maxOutputTokens": 50, "stopSequences": ["."]}`` -> ``{"top_k": 3, "max_tokens": 50, "stop": ["."]}``
    """
    params = {openai: config[gemini] for gemini, openai in _GENERATION_FIELDS.items() if gemini in config}
    if config.get("stopSequences"):
        params["stop"] = config["stopSequences"]
    if config.get("responseLogprobs"):
        params["logprobs"] = True
        if "logprobs" in config:
            params["top_logprobs"] = config["logprobs"]
    elif "logprobs" in config:
        raise InvalidArgument("only valid together with responseLogprobs: true", field="generationConfig.logprobs")
    return params


def check_text_output(config):
    """Refuses output an OpenAI chat upstream cannot give: modalities other than text, speech."""
    modalities = [m for m in config.get("responseModalities", []) if m not in ("TEXT", "MODALITY_UNSPECIFIED")]
    if modalities:
        raise InvalidArgument(f"only TEXT output is supported here, not {modalities[0]}",
                              field="generationConfig.responseModalities")
    if "speechConfig" in config:
        raise InvalidArgument("speech output is not supported by this endpoint", field="generationConfig.speechConfig")


def response_format(config):
    """``response_format`` for responseMimeType/responseSchema, and whether answers are enum-wrapped."""
    # Parameters ("application/json; charset=utf-8") do not change the format; Google ignores them too.
    mime_type = media_type(config.get("responseMimeType", "text/plain")) or "text/plain"
    schema = _response_json_schema(config)
    if mime_type == "application/json":
        if schema is None:
            return {"response_format": {"type": "json_object"}}, False
        return {"response_format": _json_schema_format(schema)}, False
    if mime_type == "text/x.enum":
        choices = schema.get("enum") if isinstance(schema, dict) else None
        if not choices:
            raise InvalidArgument("text/x.enum needs a schema with an enum", field="generationConfig.responseSchema")
        wrapper = {
            "type": "object",
            "properties": {ENUM_FIELD: {"type": "string", "enum": [c for c in choices if c is not None]}},
            "required": [ENUM_FIELD],
            "additionalProperties": False,
        }
        return {"response_format": _json_schema_format(wrapper)}, True
    if mime_type != "text/plain":
        raise InvalidArgument(f"{mime_type!r} is not supported; use text/plain, application/json or text/x.enum",
                              field="generationConfig.responseMimeType")
    if schema is not None:
        raise InvalidArgument("a response schema needs application/json or text/x.enum",
                              field="generationConfig.responseMimeType")
    return {}, False


def _response_json_schema(config):
    if "responseSchema" in config and "responseJsonSchema" in config:
        raise InvalidArgument("give responseSchema or responseJsonSchema, not both", field="generationConfig")
    if "responseJsonSchema" in config:
        return standard_json_schema(config["responseJsonSchema"])
    if "responseSchema" in config:
        return from_gemini_schema(config["responseSchema"])
    return None


def _json_schema_format(schema):
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


# --- tools -------------------------------------------------------------------------------------

def tool_parameters(tools, tool_config):
    declarations = []
    for index, tool in enumerate(tools):
        for name in BUILT_IN_TOOLS:
            if name in tool:
                raise InvalidArgument(
                    "Google's built-in tools cannot run on this endpoint's OpenAI-compatible upstream; "
                    "declare a function instead",
                    field=f"tools[{index}].{name}",
                )
        for position, declaration in enumerate(tool.get("functionDeclarations", [])):
            declarations.append((["tools", index, "functionDeclarations", position], declaration))
    calling = tool_config.get("functionCallingConfig", {})
    allowed = calling.get("allowedFunctionNames")
    declared = [declaration["name"] for _, declaration in declarations]
    if allowed:
        for name in allowed:
            if name not in declared:
                raise InvalidArgument(f"{name!r} is not a declared function",
                                      field="toolConfig.functionCallingConfig.allowedFunctionNames")
        declarations = [(path, d) for path, d in declarations if d["name"] in allowed]
    if not declarations:
        return {}  # servers refuse "tools": [] and a tool_choice without tools
    params = {"tools": [function_tool(declaration, path) for path, declaration in declarations]}
    mode = calling.get("mode", "MODE_UNSPECIFIED")
    # ANY with one allowed name is plain "required" too: only that tool is sent, and llama.cpp
    # ignores the {"type": "function", "function": {"name": ...}} form.
    if mode in TOOL_CHOICE_BY_MODE:
        params["tool_choice"] = TOOL_CHOICE_BY_MODE[mode]
    return params


def function_tool(declaration, path):
    if "parameters" in declaration and "parametersJsonSchema" in declaration:
        raise InvalidArgument("give parameters or parametersJsonSchema, not both", field=field_path(path))
    if "parametersJsonSchema" in declaration:
        parameters = standard_json_schema(declaration["parametersJsonSchema"])
    elif "parameters" in declaration:
        parameters = from_gemini_schema(declaration["parameters"])
    else:
        parameters = {"type": "object", "properties": {}}
    function = {"name": declaration["name"]}
    if "description" in declaration:
        function["description"] = declaration["description"]
    function["parameters"] = parameters
    return {"type": "function", "function": function}
