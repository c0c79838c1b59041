"""Gemini ``GenerateContentRequest`` (validated, camelCase) to an OpenAI chat-completions request.

Pure functions: a dict in, a dict out. What cannot be expressed upstream is refused with a 400 that
names the field, never dropped silently (except the fields documented as accepted and ignored).
"""

import binascii
import dataclasses
import json
import mimetypes
from collections import deque

from .errors import InvalidArgument
from .json_schema import from_gemini_schema, standard_json_schema
from .validation import field_path

BUILT_IN_TOOLS = (
    "googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "computerUse", "fileSearch",
    "googleMaps", "enterpriseWebSearch", "retrieval", "parallelAiSearch", "exaAiSearch", "mcpServers",
)
TOOL_CHOICE_BY_MODE = {"AUTO": "auto", "VALIDATED": "auto", "NONE": "none", "ANY": "required"}
REASONING_EFFORT_BY_LEVEL = {"MINIMAL": "minimal", "LOW": "low", "MEDIUM": "medium", "HIGH": "high", "XHIGH": "xhigh"}
AUDIO_FORMATS = {
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/vnd.wave": "wav",
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/mpeg3": "mp3", "audio/x-mp3": "mp3",
}
# text/x.enum answers are constrained through a one-field object (most servers need an object root)
# and unwrapped on the way back.
ENUM_FIELD = "value"


@dataclasses.dataclass(frozen=True)
class ResponseOptions:
    """What the response translation needs to know about the request."""

    model: str
    include_thoughts: bool = False
    enum_answer: bool = False


def chat_request(body, model, stream, partial_history=False):
    """The OpenAI request for a Gemini request, and the options its answer is translated with.

    ``partial_history``: the contents may be a slice of a conversation (countTokens of one new
    turn), so a function response may come without its call; it is then sent as text."""
    config = body.get("generationConfig", {})
    if "cachedContent" in body:
        raise InvalidArgument("cachedContent: cached contents are not supported by this endpoint; send the contents.")
    request = {"model": model, "messages": messages(body, partial_history)}
    request.update(sampling_parameters(config))
    format_params, enum_answer = response_format(config)
    request.update(format_params)
    request.update(reasoning_parameters(config.get("thinkingConfig", {})))
    request.update(tool_parameters(body.get("tools", []), body.get("toolConfig", {})))
    if stream:
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    include_thoughts = config.get("thinkingConfig", {}).get("includeThoughts", False)
    return request, ResponseOptions(model=model, include_thoughts=include_thoughts, enum_answer=enum_answer)


# --- messages ----------------------------------------------------------------------------------

def messages(body, partial_history=False):
    """``systemInstruction`` + ``contents`` as OpenAI messages, in order."""
    out = []
    system = body.get("systemInstruction")
    if system:
        texts = []
        for index, part in enumerate(system.get("parts", [])):
            if "text" not in part:
                raise InvalidArgument(f"systemInstruction.parts[{index}]: a system instruction may hold only text")
            if not part.get("thought"):
                texts.append(part["text"])
        if texts:
            out.append({"role": "system", "content": "\n".join(texts)})
    call_ids = CallIds(body["contents"], partial_history)
    for index, content in enumerate(body["contents"]):
        path = ["contents", index, "parts"]
        if content.get("role") == "model":
            _add_model_turn(out, content["parts"], call_ids, path)
        else:
            _add_user_turn(out, content["parts"], call_ids, path)
    return [_finish_message(message) for message in out]


def _add_model_turn(out, parts, call_ids, path):
    """A model turn becomes one assistant message. Consecutive model turns (a streamed answer is
    recorded by the SDK as one turn per chunk, each holding a delta) merge into one."""
    if out and out[-1]["role"] == "assistant":
        message = out[-1]
    else:
        message = {"role": "assistant", "content": [], "tool_calls": [], "reasoning": []}
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
        elif "executableCode" in part or "codeExecutionResult" in part:
            message["content"].append(_code_text(part))
        else:
            kind = next(iter(key for key in part if key not in ("thoughtSignature", "thought")), "part")
            raise InvalidArgument(f"{field_path(path + [index, kind])}: not allowed in a model turn")


def _add_user_turn(out, parts, call_ids, path):
    """A user (or function) turn: its functionResponse parts become tool messages, first (OpenAI
    needs them right after the assistant's tool calls); its other parts one user message."""
    content = []
    tool_messages = []
    for index, part in enumerate(parts):
        part_path = path + [index]
        if part.get("thought"):
            continue
        if "text" in part:
            content.append({"type": "text", "text": part["text"]})
        elif "inlineData" in part:
            content.append(inline_data_part(part["inlineData"], part_path + ["inlineData"]))
        elif "fileData" in part:
            content.append(file_data_part(part["fileData"], part_path + ["fileData"]))
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
            for media_index, media in enumerate(response.get("parts", [])):
                media_path = part_path + ["functionResponse", "parts", media_index]
                if "inlineData" in media:
                    content.append(inline_data_part(media["inlineData"], media_path + ["inlineData"]))
                elif "fileData" in media:
                    content.append(file_data_part(media["fileData"], media_path + ["fileData"]))
        elif "executableCode" in part or "codeExecutionResult" in part:
            content.append({"type": "text", "text": _code_text(part)})
        else:
            raise InvalidArgument(f"{field_path(part_path + ['functionCall'])}: a function call must be in a model turn")
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
    text = "".join(message["content"])
    finished = {"role": "assistant", "content": text}
    if message["tool_calls"]:
        finished["content"] = text or None
        finished["tool_calls"] = message["tool_calls"]
        if message["reasoning"]:
            # DeepSeek and Kimi thinking modes refuse a tool-call turn whose reasoning is not sent back.
            finished["reasoning_content"] = "".join(message["reasoning"])
    return finished


def _code_text(part):
    if "executableCode" in part:
        code = part["executableCode"]
        return f"```{code.get('language', 'python').lower()}\n{code.get('code', '')}\n```"
    result = part["codeExecutionResult"]
    return f"Code execution result ({result.get('outcome', 'OUTCOME_UNSPECIFIED')}):\n{result.get('output', '')}"


class CallIds:
    """tool_call ids for one request: kept when the client sent them, otherwise synthesized, and
    function responses matched to their calls by id, or first-in-first-out by name."""

    def __init__(self, contents, partial_history=False):
        self._contents = contents
        self._partial_history = partial_history
        self._taken = None
        self._count = 0
        self._unanswered = {}  # function name -> ids of its calls not yet answered, oldest first

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
        raise InvalidArgument(
            f"{field_path(path)}: no earlier functionCall named {name!r} is waiting for this response; "
            "a function response turn must come right after the model's function call turn"
        )

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

def inline_data_part(blob, path):
    mime_type = blob["mimeType"].lower()
    data = standard_base64(blob["data"], path + ["data"])
    if mime_type.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": f"data:{mime_type};base64,{data}"}}
    if mime_type in AUDIO_FORMATS:
        return {"type": "input_audio", "input_audio": {"data": data, "format": AUDIO_FORMATS[mime_type]}}
    if mime_type.startswith("text/") or mime_type == "application/json":
        try:
            return {"type": "text", "text": binascii.a2b_base64(data).decode("utf-8")}
        except UnicodeDecodeError:
            raise InvalidArgument(f"{field_path(path + ['data'])}: {mime_type} data is not UTF-8 text") from None
    extension = mimetypes.guess_extension(mime_type) or ""
    filename = blob.get("displayName") or f"file{extension}"
    return {"type": "file", "file": {"filename": filename, "file_data": f"data:{mime_type};base64,{data}"}}


def file_data_part(file_data, path):
    uri = file_data["fileUri"]
    if not uri.lower().startswith(("https://", "http://")):
        # Some servers read file:// (llama.cpp --media-path, vLLM local media) or other schemes.
        raise InvalidArgument(f"{field_path(path + ['fileUri'])}: only http(s) URIs can be passed on")
    mime_type = (file_data.get("mimeType") or mimetypes.guess_type(uri.split("?", 1)[0])[0] or "").lower()
    if mime_type.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": uri}}
    raise InvalidArgument(
        f"{field_path(path)}: only images can be passed by URI here (got {mime_type or 'an unknown type'}); "
        "send other files as inlineData"
    )


def standard_base64(data, path):
    """Standard, padded base64 for ``data``, which may be URL-safe (the Python SDK) or unpadded."""
    text = data.replace("\n", "").replace("\r", "").replace("-", "+").replace("_", "/").rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        if not text or len(text) % 4 or binascii.a2b_base64(text, strict_mode=True) is None:
            raise binascii.Error
    except ValueError:  # binascii.Error, or characters outside ASCII
        raise InvalidArgument(f"{field_path(path)}: not valid base64 data") from None
    return text


# --- generation config -------------------------------------------------------------------------

def _as_given(value):
    return value


# Gemini generationConfig field -> (OpenAI field, conversion). Integer fields are made integers:
# the Python SDK sends integral floats (topK 3.0), which some servers refuse.
_SAMPLING = {
    "temperature": ("temperature", _as_given),
    "topP": ("top_p", _as_given),
    "topK": ("top_k", int),
    "maxOutputTokens": ("max_tokens", int),
    "candidateCount": ("n", int),
    "seed": ("seed", int),
    "presencePenalty": ("presence_penalty", _as_given),
    "frequencyPenalty": ("frequency_penalty", _as_given),
}
def sampling_parameters(config):
    params = {openai: convert(config[gemini]) for gemini, (openai, convert) in _SAMPLING.items() if gemini in config}
    if config.get("stopSequences"):
        params["stop"] = config["stopSequences"]
    if config.get("responseLogprobs"):
        params["logprobs"] = True
        if "logprobs" in config:
            params["top_logprobs"] = config["logprobs"]
    elif "logprobs" in config:
        raise InvalidArgument("generationConfig.logprobs: only valid together with responseLogprobs: true")
    modalities = [m for m in config.get("responseModalities", []) if m not in ("TEXT", "MODALITY_UNSPECIFIED")]
    if modalities:
        raise InvalidArgument(f"generationConfig.responseModalities: only TEXT output is supported here, not {modalities[0]}")
    if "speechConfig" in config:
        raise InvalidArgument("generationConfig.speechConfig: speech output is not supported by this endpoint")
    return params


def response_format(config):
    """``response_format`` for responseMimeType/responseSchema, and whether answers are enum-wrapped."""
    mime_type = config.get("responseMimeType", "text/plain")
    schema = _response_json_schema(config)
    if mime_type == "application/json":
        if schema is None:
            return {"response_format": {"type": "json_object"}}, False
        return {"response_format": _json_schema_format(schema)}, False
    if mime_type == "text/x.enum":
        choices = schema.get("enum") if isinstance(schema, dict) else None
        if not choices:
            raise InvalidArgument("generationConfig.responseSchema: text/x.enum needs a schema with an enum")
        wrapper = {
            "type": "object",
            "properties": {ENUM_FIELD: {"type": "string", "enum": [c for c in choices if c is not None]}},
            "required": [ENUM_FIELD],
            "additionalProperties": False,
        }
        return {"response_format": _json_schema_format(wrapper)}, True
    if mime_type != "text/plain":
        raise InvalidArgument(
            f"generationConfig.responseMimeType: {mime_type!r} is not supported; "
            "use text/plain, application/json or text/x.enum"
        )
    if schema is not None:
        raise InvalidArgument("generationConfig.responseMimeType: a response schema needs application/json or text/x.enum")
    return {}, False


def _response_json_schema(config):
    if "responseSchema" in config and "responseJsonSchema" in config:
        raise InvalidArgument("generationConfig: give responseSchema or responseJsonSchema, not both")
    if "responseJsonSchema" in config:
        return standard_json_schema(config["responseJsonSchema"])
    if "responseSchema" in config:
        return from_gemini_schema(config["responseSchema"])
    return None


def _json_schema_format(schema):
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


def reasoning_parameters(thinking):
    """``reasoning_effort`` from thinkingLevel or thinkingBudget; nothing when neither is set."""
    if "thinkingLevel" in thinking and "thinkingBudget" in thinking:
        raise InvalidArgument("generationConfig.thinkingConfig: give thinkingLevel or thinkingBudget, not both")
    if "thinkingLevel" in thinking:
        effort = REASONING_EFFORT_BY_LEVEL.get(thinking["thinkingLevel"])
        return {"reasoning_effort": effort} if effort else {}
    budget = thinking.get("thinkingBudget", -1)
    if budget == -1:  # -1: the model decides, which is the upstream's default too
        return {}
    if budget == 0:
        return {"reasoning_effort": "none"}
    return {"reasoning_effort": "low" if budget <= 1024 else "medium" if budget <= 8192 else "high"}


# --- tools -------------------------------------------------------------------------------------

def tool_parameters(tools, tool_config):
    declarations = []
    for index, tool in enumerate(tools):
        for name in BUILT_IN_TOOLS:
            if name in tool:
                raise InvalidArgument(
                    f"tools[{index}].{name}: Google's built-in tools cannot run on this endpoint's "
                    "OpenAI-compatible upstream; declare a function instead"
                )
        for position, declaration in enumerate(tool.get("functionDeclarations", [])):
            declarations.append((["tools", index, "functionDeclarations", position], declaration))
    calling = tool_config.get("functionCallingConfig", {})
    allowed = calling.get("allowedFunctionNames")
    declared = [declaration["name"] for _, declaration in declarations]
    if allowed:
        for name in allowed:
            if name not in declared:
                raise InvalidArgument(
                    f"toolConfig.functionCallingConfig.allowedFunctionNames: {name!r} is not a declared function"
                )
        declarations = [(path, d) for path, d in declarations if d["name"] in allowed]
    if not declarations:
        return {}  # servers refuse "tools": [] and a tool_choice without tools
    params = {"tools": [function_tool(declaration, path) for path, declaration in declarations]}
    mode = calling.get("mode", "MODE_UNSPECIFIED")
    if mode == "ANY" and allowed and len(allowed) == 1:
        params["tool_choice"] = {"type": "function", "function": {"name": allowed[0]}}
    elif mode in TOOL_CHOICE_BY_MODE:
        params["tool_choice"] = TOOL_CHOICE_BY_MODE[mode]
    return params


def function_tool(declaration, path):
    if "parameters" in declaration and "parametersJsonSchema" in declaration:
        raise InvalidArgument(f"{field_path(path)}: give parameters or parametersJsonSchema, not both")
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
