"""OpenAI chat-completions answers (whole, or as stream chunks) to Gemini ``GenerateContentResponse``.

Pure: dicts in, dicts out. ``StreamTranslator`` keeps the little state a stream needs (tool-call
fragments, finish reasons, usage) and emits each Gemini chunk as soon as its upstream chunk allows.

An answer of a shape that cannot be translated is the upstream's error (``UpstreamError``), raised
where a field is read, naming the field: ``{"choices": [{"message": "hi"}]}`` -> "The upstream
answer's choices[].message is not a JSON object." Any other exception raised here is a bug of ours.
"""

import json
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from .config import DEFAULT_MAX_UPSTREAM_RESPONSE_BYTES
from .errors import UpstreamError, UpstreamTooLarge
from .json_wire import loads
from .response_options import ENUM_FIELD, ResponseOptions
from .think_tags import ThinkSplitter, split_think_tags
from .thought_signature import MAX_REASONING_BYTES
from .thought_signature import encode as encode_signature

if TYPE_CHECKING:  # for annotations only: translation does no I/O
    from .upstream import EventStream

FINISH_REASONS = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "tool_calls": "STOP",  # Gemini ends a function-call turn with STOP
    "function_call": "STOP",
}


def finish_reason(value):
    """``"length"`` -> ``"MAX_TOKENS"``; a reason Gemini has no name for -> ``"OTHER"``."""
    if not isinstance(value, str):
        raise malformed("choices[].finish_reason", "a string")
    return FINISH_REASONS.get(value, "OTHER")


# --- the upstream's fields, read as the types they must have -----------------------------------

def malformed(field, kind):
    """The upstream's error for a ``field`` (a path, ``[]`` for any element) that is not ``kind``."""
    return UpstreamError(f"The upstream answer's {field} is not {kind}.")


def json_object(value, field):
    """``value`` if it is a JSON object; {} if the upstream left ``field`` out or empty (null, "")."""
    if isinstance(value, dict):
        return value
    if not value:
        return {}
    raise malformed(field, "a JSON object")


def json_list(value, field):
    """``value`` if it is a JSON array; else the upstream's error naming ``field``."""
    if not isinstance(value, list):
        raise malformed(field, "a list")
    return value


def parsed_json(text, what):
    """``loads(text)`` for JSON text inside an answer. Nested deeper than the parser goes, it is the
    upstream's error; text that is not JSON (ValueError) is the caller's to judge."""
    try:
        return loads(text)
    except RecursionError:
        raise UpstreamError(f"The upstream answer has {what} nested too deeply to parse.") from None


# --- pieces shared by whole answers and streams ------------------------------------------------

def usage_metadata(usage):
    """Gemini usageMetadata from OpenAI usage; None when the upstream reported none."""
    if not isinstance(usage, dict):
        return None
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    thoughts = _count(json_object(usage.get("completion_tokens_details"), "usage.completion_tokens_details")
                      .get("reasoning_tokens"))
    cached = _count(json_object(usage.get("prompt_tokens_details"), "usage.prompt_tokens_details")
                    .get("cached_tokens")) or _count(usage.get("prompt_cache_hit_tokens"))  # DeepSeek's name for it
    # Gemini counts thoughts apart from the candidates; OpenAI includes them in completion_tokens.
    metadata = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": max(completion - thoughts, 0),
        "totalTokenCount": _count(usage.get("total_tokens")) or prompt + completion,
    }
    if thoughts:
        metadata["thoughtsTokenCount"] = thoughts
    if cached:
        metadata["cachedContentTokenCount"] = cached
    return metadata


def _count(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def reasoning_text(message):
    """The reasoning in a message or delta, whichever field this upstream uses."""
    for field in ("reasoning_content", "reasoning"):
        value = message.get(field)
        if isinstance(value, str) and value:
            return value
    details = message.get("reasoning_details")
    if isinstance(details, list):  # OpenRouter: [{"type": "reasoning.text", "text": ...}, ...]
        return "".join(
            item.get("text") or item.get("summary") or ""
            for item in details
            if isinstance(item, dict) and isinstance(item.get("text") or item.get("summary") or "", str)
        )
    return ""


def content_text(content):
    """Message content as text: a string, or (some servers) a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def parse_arguments(arguments):
    """Tool-call arguments as a dict, or None when they are not a JSON object."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}  # some servers send "" for a call without arguments
    try:
        value = parsed_json(arguments, "tool call arguments")
        if isinstance(value, str):  # arguments encoded twice
            value = parsed_json(value, "tool call arguments")
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def function_call_part(call_id, name, arguments, signature=None):
    """A functionCall part, or (None, finishMessage) when the call cannot be one. ``signature``: the
    turn's reasoning as a thoughtSignature (thought_signature.encode), for the turn's first call."""
    args = parse_arguments(arguments)
    if not name or args is None:
        shown = arguments if isinstance(arguments, str) else json.dumps(arguments)
        shown = shown if len(shown) <= 200 else shown[:200] + "..."
        return None, f"Malformed function call {name or '(no name)'}: arguments are not a JSON object: {shown}"
    call = {"name": name, "args": args}
    if call_id:
        call = {"id": call_id, **call}
    part = {"functionCall": call}
    if signature:
        part["thoughtSignature"] = signature
    return part, None


def cut_call_message(name):
    """The finishMessage for a last call whose arguments do not parse in an answer that ended with
    ``finish_reason: "length"``: the token limit cut it (llama.cpp does, when max_tokens falls inside
    a call), so the answer ends MAX_TOKENS, not MALFORMED_FUNCTION_CALL, and the call is dropped
    (Gemini never returns a call it could not complete). E.g. a call ``get_weather`` with arguments
    ``{"city": "Par`` and finish ``length`` -> no functionCall part, finishReason ``MAX_TOKENS``,
    finishMessage "The function call get_weather was cut off by the output token limit ..."."""
    return (f"The function call {name or '(no name)'} was cut off by the output token limit before its "
            "arguments were complete, and was dropped")


def finish_with_problems(candidate, problems, length):
    """Set finishReason and finishMessage for calls that could not be made: MALFORMED_FUNCTION_CALL,
    unless the answer ended ``length``, which always wins (MAX_TOKENS)."""
    if problems:
        if not length:
            candidate["finishReason"] = "MALFORMED_FUNCTION_CALL"
        candidate["finishMessage"] = "; ".join(problems)


def unwrap_enum(text):
    """The bare value of a text/x.enum answer, which the upstream wrote as {"value": ...}."""
    try:
        value = parsed_json(text, "a text/x.enum answer")
    except ValueError:
        return text.strip()
    if isinstance(value, dict) and isinstance(value.get(ENUM_FIELD), str):
        return value[ENUM_FIELD]
    return value if isinstance(value, str) else text.strip()


def logprobs_result(logprobs):
    """Gemini logprobsResult and avgLogprobs from an OpenAI choice's logprobs, if any:
    ``{"content": [{"token": "Hi", "logprob": -0.5, "top_logprobs": [...]}]}`` ->
    ``{"logprobsResult": {"chosenCandidates": [{"token": "Hi", "logProbability": -0.5}],
    "logProbabilitySum": -0.5, "topCandidates": [{"candidates": [...]}]}, "avgLogprobs": -0.5}``."""
    tokens = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not tokens:
        return {}
    field = "choices[].logprobs.content"
    chosen = [_candidate_logprob(token, field) for token in json_list(tokens, field)]
    total = sum(item["logProbability"] for item in chosen)
    result = {"chosenCandidates": chosen, "logProbabilitySum": total}
    if any(t.get("top_logprobs") for t in tokens):
        field = "choices[].logprobs.content[].top_logprobs"
        result["topCandidates"] = [
            {"candidates": [_candidate_logprob(c, field) for c in json_list(t.get("top_logprobs") or [], field)]}
            for t in tokens
        ]
    return {"logprobsResult": result, "avgLogprobs": total / len(chosen)}


def _candidate_logprob(token, field):
    """``{"token": "Hi", "logprob": -0.5}`` -> ``{"token": "Hi", "logProbability": -0.5}``."""
    if not isinstance(token, dict):
        raise malformed(field + "[]", "a JSON object")
    logprob = token.get("logprob", 0.0)
    if not isinstance(logprob, (int, float)):
        raise malformed(field + "[].logprob", "a number")
    return {"token": token.get("token", ""), "logProbability": logprob}


# --- whole answers -----------------------------------------------------------------------------

def gemini_response(completion: object, options: ResponseOptions) -> dict:
    """A GenerateContentResponse for a whole (non-streamed) chat completion."""
    if not isinstance(completion, dict):
        raise UpstreamError("The upstream answer is not a JSON object.")
    choices = completion.get("choices")
    if not isinstance(choices, list):
        raise UpstreamError("The upstream answer has no choices.")
    response = {"candidates": [_candidate(choice, position, options) for position, choice in enumerate(choices)
                               if isinstance(choice, dict)]}
    if not response["candidates"]:
        response["promptFeedback"] = {"blockReason": "OTHER"}
    usage = usage_metadata(completion.get("usage"))
    if usage:
        response["usageMetadata"] = usage
    response["modelVersion"] = completion.get("model") or options.model
    if completion.get("id"):
        response["responseId"] = str(completion["id"])
    return response


def text_parts(message, options, text, thoughts):
    """The parts a message or delta says in words: ``thoughts`` (its reasoning), if asked for;
    ``text``; a refusal."""
    parts = []
    if options.include_thoughts and thoughts:
        parts.append({"text": thoughts, "thought": True})
    if text:
        parts.append({"text": text})
    if refusal_text(message):
        parts.append({"text": refusal_text(message)})
    return parts


def refusal_text(message):
    refusal = message.get("refusal")
    return refusal if isinstance(refusal, str) else ""


def tool_calls(message):
    """A message's or delta's tool calls, the deprecated single ``function_call`` included."""
    if isinstance(message.get("function_call"), dict):
        return [{"index": 0, "function": message["function_call"]}]
    calls = message.get("tool_calls")
    return [call for call in calls if isinstance(call, dict)] if isinstance(calls, list) else []


def _candidate(choice, position, options):
    message = json_object(choice.get("message"), "choices[].message")
    field = reasoning_text(message)
    tagged, text = split_think_tags(content_text(message.get("content")), lone_closing=not field)
    thoughts = field or tagged  # both (llama.cpp deepseek-legacy): the field, once
    parts = text_parts(message, options, unwrap_enum(text) if options.enum_answer and text else text, thoughts)
    calls = tool_calls(message)
    reason = "SAFETY" if refusal_text(message) else finish_reason(choice.get("finish_reason") or "stop")
    length = choice.get("finish_reason") == "length"
    problems = []
    # The reasoning rides on the first call returned, so that it comes back with the turn.
    signature = encode_signature(thoughts) if calls else None
    for number, call in enumerate(calls):
        function = json_object(call.get("function"), "choices[].message.tool_calls[].function")
        part, problem = function_call_part(call.get("id"), function.get("name"), function.get("arguments"), signature)
        if part:
            parts.append(part)
            signature = None
        elif length and number == len(calls) - 1:  # only the last call can have been cut
            problems.append(cut_call_message(function.get("name")))
        else:
            problems.append(problem)
    candidate = {"content": {"parts": parts or [{"text": ""}], "role": "model"}, "finishReason": reason}
    finish_with_problems(candidate, problems, length)
    index = choice.get("index")
    candidate["index"] = index if isinstance(index, int) else position
    candidate.update(logprobs_result(choice.get("logprobs")))
    return candidate


# --- streams -----------------------------------------------------------------------------------

# Outside JSON strings, what changes the nesting; inside one, the rest of it (escapes included).
_NESTING = re.compile(r'[][{}"]')
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.S)


class _StreamedCall:
    """One streamed tool call. Its arguments are followed once, fragment by fragment, to the brace
    that closes the top-level object, and parsed only then: re-parsing them whole on every fragment
    took over 68 s of CPU for 8 MB of fragments that never closed."""

    __slots__ = ("id", "name", "fragments", "size", "scanning", "depth", "in_string", "escaped", "ended",
                 "closed", "args")

    def __init__(self, call_id, name):
        self.id, self.name, self.closed, self.args = call_id, name, False, None
        self.fragments, self.size = [], 0
        self.scanning, self.depth, self.in_string = True, 0, False
        self.escaped = False  # the last fragment ended in a string's backslash: it escapes the next character
        self.ended = False  # the top-level object has closed: worth one parse

    @property
    def arguments(self):
        return "".join(self.fragments)

    def add(self, text, limit):
        self.size += len(text)
        if self.size > limit:
            raise UpstreamTooLarge(limit, "A streamed tool call's arguments")
        self.fragments.append(text)
        if self.scanning:
            self._scan(text)

    def _scan(self, text):
        """Follow the nesting through ``text``: ``{"a": "}"}`` closes at its last brace only."""
        position, self.escaped = int(self.escaped), False
        while position < len(text):
            if self.in_string:
                position = _STRING_REST.match(text, position).end()
                if position == len(text):
                    return
                if text[position] == "\\":  # the fragment's last character
                    self.escaped = True
                    return
                self.in_string, position = False, position + 1
                continue
            match = _NESTING.search(text, position)
            if match is None:
                return
            char, position = match.group(), match.end()
            if char == '"':
                self.in_string = True
            elif char in "{[":
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth <= 0:  # the top-level value closed (or was not JSON): scanning ends
                    self.scanning = False
                    self.ended = self.depth == 0 and char == "}"
                    return

    def complete(self):
        """True once the call is known to be whole: closed, or its arguments parse as an object."""
        if self.closed or self.args is not None:
            return True
        if self.ended and self.name:
            self.ended = False  # parsed once: arguments that do not parse wait for the call to close
            self.args = parse_arguments(self.arguments)
        return self.args is not None


class _CandidateState:
    """Stream state of one candidate."""

    def __init__(self, limit, preopened_think=False):
        self.limit = limit
        self.think = ThinkSplitter(preopened=preopened_think)  # the <think> block its content may open
        self.fielded = False  # the upstream sent reasoning in a field: a <think> block in content repeats it
        self.calls = []
        self.by_id = {}
        self.by_index = {}
        self.emitted = 0
        self.finish = None
        self.length = False  # the upstream's finish_reason was "length": an unfinished last call was cut
        self.problems = []
        self.enum_text = []
        self.enum_size = 0
        self.refused = False
        self.reasoning = []  # the choice's reasoning so far, for the first call's thoughtSignature
        self.reasoning_size = 0  # None once too long to keep
        self.signed = False  # the first functionCall part has gone out

    def add_reasoning(self, text):
        """Keep reasoning for the signature, until it is too long to keep at all."""
        if text and self.reasoning_size is not None:
            self.reasoning_size += len(text)
            if self.reasoning_size > MAX_REASONING_BYTES:
                self.reasoning, self.reasoning_size = [], None
            else:
                self.reasoning.append(text)

    def split_content(self, delta, ended=False):
        """(thoughts, answer text) of a delta: its reasoning field, or what the content's leading
        ``<think>`` block releases, and the rest of its content; ``ended``: with what was held."""
        field = reasoning_text(delta)
        if field:
            self.fielded = True
            # the thoughts come in the field: the content is the answer, after a leading block at most
            self.think.preopened = self.think.lone_closing = False
        tagged, text = self.think.feed(content_text(delta.get("content")))
        if ended:
            more_tagged, more_text = self.think.finish()
            tagged, text = tagged + more_tagged, text + more_text
        return field if self.fielded else tagged, text

    def add_fragment(self, fragment):
        """Accumulate one tool-call delta. Keyed on id, falling back to index; a fragment with
        neither continues the last call; a named fragment at a finished index starts a new one."""
        function = json_object(fragment.get("function"), "choices[].delta.tool_calls[].function")
        call_id, index, name = fragment.get("id"), fragment.get("index"), function.get("name")
        if isinstance(call_id, (dict, list)):  # the calls are looked up by id and index
            raise malformed("choices[].delta.tool_calls[].id", "a string")
        if isinstance(index, (dict, list)):
            raise malformed("choices[].delta.tool_calls[].index", "an integer")
        call = None
        if call_id:
            call = self.by_id.get(call_id)
        elif index is not None and index in self.by_index:
            known = self.by_index[index]
            if not (name and known.name and (known.name != name or known.complete())):
                call = known
        elif self.calls and not name:
            call = self.calls[-1]
        if call is None:
            for earlier in self.calls:  # a new call begins: the earlier ones are whole
                earlier.closed = True
            call = _StreamedCall(call_id, name)
            self.calls.append(call)
            if call_id:
                self.by_id[call_id] = call
            if index is not None:
                self.by_index[index] = call
        elif name and not call.name:
            call.name = name
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments)
        if isinstance(arguments, str) and arguments and call.args is None:
            call.add(arguments, self.limit)

    def ready_calls(self, close_all=False):
        """functionCall parts for the calls now whole, in order (a later call waits for earlier ones)."""
        parts = []
        while self.emitted < len(self.calls):
            call = self.calls[self.emitted]
            if close_all:
                call.closed = True
            if not call.complete():
                break
            self.emitted += 1
            signature = None if self.signed else encode_signature("".join(self.reasoning))
            part, problem = function_call_part(call.id, call.name, call.args if call.args is not None else call.arguments,
                                               signature)
            if part:
                parts.append(part)
                self.signed = True
            elif self.length and self.emitted == len(self.calls):  # the last call: cut by the token limit
                self.problems.append(cut_call_message(call.name))
            else:
                self.problems.append(problem)
        return parts


class StreamTranslator:
    """Feed it upstream chunks (parsed JSON); it returns the Gemini chunks to send now."""

    def __init__(self, options: ResponseOptions, candidate_count: int = 1, limit: int = DEFAULT_MAX_UPSTREAM_RESPONSE_BYTES,
                 preopened_think: bool = False) -> None:
        self.options = options
        # The model's template opens <think> in the prompt: hold the content's start until </think>
        # (or 64 KiB) decides it. Off, a lone </think> counts only in the first piece of content.
        self.preopened_think = preopened_think
        self.limit = limit  # MAX_UPSTREAM_RESPONSE_BYTES: of one tool call's arguments, of a text/x.enum answer
        self.candidate_count = candidate_count
        self.choices = {}
        self.usage = None  # usageMetadata of the upstream's last usage report
        self.usage_reported = False  # with every candidate finished, the answer is complete
        self.model = None
        self.response_id = None
        self.finished = False

    def translate(self, chunk: dict) -> list[dict]:
        if self.finished:
            return []
        if self.model is None and chunk.get("model"):
            self.model = chunk["model"]
        if self.response_id is None and chunk.get("id"):
            self.response_id = str(chunk["id"])
        if chunk.get("usage"):
            self._report_usage(chunk["usage"])
        out = []
        for choice in json_list(chunk.get("choices") or [], "choices"):
            if isinstance(choice, dict):
                parts = self._choice_parts(choice)
                if parts:
                    candidate = {"content": {"parts": parts, "role": "model"}, "index": choice.get("index") or 0}
                    candidate.update(logprobs_result(choice.get("logprobs")))
                    out.append(self._chunk([candidate]))
        finished = [state for state in self.choices.values() if state.finish]
        if len(finished) >= self.candidate_count and self.usage_reported:
            out.append(self._final_chunk())
        return out

    def _report_usage(self, usage):
        # Translated as it arrives: a malformed one is the upstream's error at its chunk, not a failure
        # of the log line written at the stream's end.
        self.usage, self.usage_reported = usage_metadata(usage), True

    def _choice_parts(self, choice):
        index = choice.get("index") or 0
        if not isinstance(index, int):  # the candidates are keyed and ordered on it
            raise malformed("choices[].index", "an integer")
        state = self.choices.get(index)
        if state is None:
            state = self.choices[index] = _CandidateState(self.limit, self.preopened_think)
        if state.finish:  # duplicate finish chunks, late deltas: already answered
            return []
        if choice.get("usage"):  # Moonshot puts usage inside the choice
            self._report_usage(choice["usage"])
        delta = json_object(choice.get("delta") or choice.get("message"), "choices[].delta")
        thoughts, text = state.split_content(delta, ended=bool(choice.get("finish_reason")))
        if text and self.options.enum_answer:
            state.enum_text.append(text)  # a few tokens; sent whole once the answer is complete
            state.enum_size += len(text)
            if state.enum_size > self.limit:
                raise UpstreamTooLarge(self.limit, "The upstream's text/x.enum answer")
            text = ""
        parts = text_parts(delta, self.options, text, thoughts)
        state.add_reasoning(thoughts)
        state.refused = state.refused or bool(refusal_text(delta))
        for fragment in tool_calls(delta):
            state.add_fragment(fragment)
        reason = choice.get("finish_reason")
        if reason == "error":
            raise UpstreamError("The upstream reported an error while generating the answer.")
        if reason:
            state.finish = "SAFETY" if state.refused else finish_reason(reason)
            state.length = reason == "length"
        parts.extend(state.ready_calls(close_all=bool(reason)))
        return parts

    def chunks(self, stream: "EventStream") -> Iterator[dict]:
        """The Gemini chunks of an upstream stream (``upstream.EventStream``): its parsed chunks, then
        the end (``done``: it sent [DONE]); one whole completion instead when it set ``whole``.
        ``{"choices": [{"delta": {"content": "Hi"}}]}``, ``{"choices": [{"delta": {}, "finish_reason":
        "stop"}]}``, [DONE] -> ``{"candidates": [{"content": {"parts": [{"text": "Hi"}], ...}}]}``, then
        the last chunk, ``{"candidates": [{"content": {"parts": [{"text": ""}], ...}, "finishReason": "STOP",
        ...}]}``."""
        for chunk in stream:
            if stream.whole:  # a server that ignored "stream": true answered whole: one chunk with everything
                yield gemini_response(chunk, self.options)
                return
            yield from self.translate(chunk)
        yield from self.done() if stream.done else self.end_of_stream()

    def done(self) -> list[dict]:
        """The upstream sent [DONE]: choices still open ended cleanly."""
        if self.finished:
            return []
        if not self.choices:
            self.choices[0] = _CandidateState(self.limit)
        for state in self.choices.values():
            state.finish = state.finish or "STOP"
        return [self._final_chunk()]

    def end_of_stream(self) -> list[dict]:
        """The upstream closed the stream without [DONE]: fine after a finish, truncation otherwise."""
        if self.finished:
            return []
        if self.choices and all(state.finish for state in self.choices.values()):
            return [self._final_chunk()]
        raise UpstreamError("The upstream stream ended before the answer was complete.")

    def _final_chunk(self):
        """The last chunk: finishReason and usage, with a part (the SDK's chat history drops a
        streamed turn if any chunk has no parts)."""
        self.finished = True
        candidates = []
        for index, state in sorted(self.choices.items()):
            thoughts, text = state.split_content({}, ended=True)  # a stream that ended without a finish_reason
            if text and self.options.enum_answer:
                state.enum_text.append(text)
            text = unwrap_enum("".join(state.enum_text)) if state.enum_text else text
            state.add_reasoning(thoughts)
            parts = text_parts({}, self.options, "", thoughts) + state.ready_calls(close_all=True) + [{"text": text}]
            candidate = {"content": {"parts": parts, "role": "model"}, "finishReason": state.finish, "index": index}
            finish_with_problems(candidate, state.problems, state.length)
            candidates.append(candidate)
        return self._chunk(candidates, self.usage)

    def _chunk(self, candidates, usage=None):
        chunk = {"candidates": candidates}
        if usage:
            chunk["usageMetadata"] = usage
        chunk["modelVersion"] = self.model or self.options.model
        if self.response_id:
            chunk["responseId"] = self.response_id
        return chunk


# --- a stream assembled into one answer --------------------------------------------------------

def merged_response(chunks: Iterable[dict], limit: int = DEFAULT_MAX_UPSTREAM_RESPONSE_BYTES) -> dict:
    """One GenerateContentResponse from the Gemini chunks of a streamed answer (for an upstream that
    answers some calls only as a stream): each candidate's consecutive text (or thought text) joined,
    its other parts in order, logprobs concatenated, and the last finish, usage and model seen; held
    whole, so at most ``limit`` characters of parts, as a whole answer is at most that many bytes.

    ``[{"candidates": [{"content": {"parts": [{"text": "Hel"}], ...}, "index": 0}]},
    {"candidates": [{"content": {"parts": [{"text": "lo"}], ...}, "finishReason": "STOP", "index": 0}]}]``
    -> ``{"candidates": [{"content": {"parts": [{"text": "Hello"}], "role": "model"}, "index": 0,
    "finishReason": "STOP"}]}``"""
    response, candidates, size = {}, {}, 0
    for chunk in chunks:
        for index, candidate in enumerate(chunk.get("candidates", ())):
            size += sum(len(part["text"]) if "text" in part else len(json.dumps(part))
                        for part in candidate["content"]["parts"])
            if size > limit:
                raise UpstreamTooLarge(limit)
            position = candidate.get("index", index)
            into = candidates.setdefault(position, {"content": {"parts": [], "role": "model"}, "index": position})
            _merge_parts(into["content"]["parts"], candidate["content"]["parts"])
            _merge_logprobs(into, candidate)
            into.update((key, value) for key, value in candidate.items()
                        if key not in ("content", "index", "logprobsResult", "avgLogprobs"))
        response.update((key, value) for key, value in chunk.items() if key != "candidates")
    for candidate in candidates.values():
        parts = candidate["content"]["parts"]
        for part in parts:
            if isinstance(part.get("text"), list):
                part["text"] = "".join(part["text"])
        # the stream's closing empty text, where other parts exist
        parts[:] = [part for part in parts if part != {"text": ""}] or [{"text": ""}]
    return {"candidates": [candidates[position] for position in sorted(candidates)], **response}


def _merge_parts(parts, new_parts):
    """Appends ``new_parts`` to ``parts``; a run of text parts is gathered as a list of pieces, joined
    at the end (adding each delta to a string copied it whole: quadratic in a long answer)."""
    for part in new_parts:
        last = parts[-1] if parts else None
        if _plain_text(part) and last is not None and isinstance(last.get("text"), list) \
                and last.get("thought") == part.get("thought"):
            last["text"].append(part["text"])
        elif _plain_text(part):
            parts.append({**part, "text": [part["text"]]})
        else:
            parts.append(dict(part))


def _plain_text(part):
    return "text" in part and set(part) <= {"text", "thought"}


def _merge_logprobs(into, candidate):
    new = candidate.get("logprobsResult")
    if not new:
        return
    result = into.setdefault("logprobsResult", {"chosenCandidates": [], "logProbabilitySum": 0.0})
    result["chosenCandidates"] += new["chosenCandidates"]
    result["logProbabilitySum"] += new["logProbabilitySum"]
    if "topCandidates" in new:
        result.setdefault("topCandidates", []).extend(new["topCandidates"])
    into["avgLogprobs"] = result["logProbabilitySum"] / len(result["chosenCandidates"])
