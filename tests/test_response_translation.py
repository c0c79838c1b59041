"""OpenAI answers -> Gemini responses, whole and streamed: pure, table-driven."""

import copy
import json
import re
import time

import pytest

from fake_upstream import chunk, completion, tool_call, usage
from gemini_compat.errors import GeminiError, UpstreamError
from gemini_compat.response_options import ResponseOptions
from gemini_compat.response_translation import (
    StreamTranslator,
    gemini_response,
    merged_response,
    parse_arguments,
    usage_metadata,
)
from gemini_compat.thought_signature import decode as decode_signature
from strategies import container_at, locations

OPTIONS = ResponseOptions(model="requested-model")
THOUGHTFUL = ResponseOptions(model="m", include_thoughts=True)


@pytest.mark.parametrize("finish,expected", [
    ("stop", "STOP"), ("length", "MAX_TOKENS"), ("content_filter", "SAFETY"), ("tool_calls", "STOP"),
    ("function_call", "STOP"), ("abort", "OTHER"), ("repetition", "OTHER"), ("error", "OTHER"), (None, "STOP"),
])
def test_finish_reasons(finish, expected):
    assert gemini_response(completion("x", finish=finish), OPTIONS)["candidates"][0]["finishReason"] == expected


def test_text_answer():
    assert gemini_response(completion("Hi!"), OPTIONS) == {
        "candidates": [{"content": {"parts": [{"text": "Hi!"}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 7, "totalTokenCount": 12},
        "modelVersion": "qwen-turbo",
        "responseId": "chatcmpl-test123",
    }


def test_model_version_falls_back_to_the_requested_model():
    answer = completion("x")
    del answer["model"], answer["id"]
    response = gemini_response(answer, OPTIONS)
    assert response["modelVersion"] == "requested-model" and "responseId" not in response


def test_empty_content_still_has_a_part():
    assert gemini_response(completion(None), OPTIONS)["candidates"][0]["content"]["parts"] == [{"text": ""}]


def test_content_given_as_a_list_of_parts():
    answer = completion([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])
    assert gemini_response(answer, OPTIONS)["candidates"][0]["content"]["parts"] == [{"text": "ab"}]


@pytest.mark.parametrize("usage_in,expected", [
    (usage(10, 20), {"promptTokenCount": 10, "candidatesTokenCount": 20, "totalTokenCount": 30}),
    (usage(10, 20, reasoning=15), {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 30,
                                   "thoughtsTokenCount": 15}),
    (usage(10, 20, cached=8), {"promptTokenCount": 10, "candidatesTokenCount": 20, "totalTokenCount": 30,
                               "cachedContentTokenCount": 8}),
    ({"prompt_tokens": 3, "completion_tokens": 4, "prompt_cache_hit_tokens": 2},
     {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7, "cachedContentTokenCount": 2}),
    ({"prompt_tokens": "x", "completion_tokens": None},
     {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0}),
    (None, None),
])
def test_usage(usage_in, expected):
    assert usage_metadata(usage_in) == expected


def test_several_choices_are_several_candidates():
    answer = completion("a")
    answer["choices"].append({"index": 1, "message": {"role": "assistant", "content": "b"}, "finish_reason": "length"})
    candidates = gemini_response(answer, OPTIONS)["candidates"]
    assert [(c["index"], c["content"]["parts"][0]["text"], c["finishReason"]) for c in candidates] == [
        (0, "a", "STOP"), (1, "b", "MAX_TOKENS")]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_becomes_thought_parts_when_asked(field):
    answer = completion("42", **{field: "Let me think."})
    assert gemini_response(answer, THOUGHTFUL)["candidates"][0]["content"]["parts"] == [
        {"text": "Let me think.", "thought": True}, {"text": "42"}]
    assert gemini_response(answer, OPTIONS)["candidates"][0]["content"]["parts"] == [{"text": "42"}]


def test_reasoning_details_from_openrouter():
    answer = completion("42", reasoning_details=[{"type": "reasoning.text", "text": "Step 1."},
                                                 {"type": "reasoning.encrypted", "data": "xx"}])
    parts = gemini_response(answer, THOUGHTFUL)["candidates"][0]["content"]["parts"]
    assert parts[0] == {"text": "Step 1.", "thought": True}


def test_tool_calls_become_function_call_parts_after_the_text():
    answer = completion("Checking.", finish="tool_calls", tool_calls=[
        tool_call("get_weather", {"city": "Paris"}, "call_1"), tool_call("get_time", "", "call_2")])
    candidate = gemini_response(answer, OPTIONS)["candidates"][0]
    assert candidate["content"]["parts"] == [
        {"text": "Checking."},
        {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"id": "call_2", "name": "get_time", "args": {}}},
    ]
    assert candidate["finishReason"] == "STOP"


@pytest.mark.parametrize("arguments,expected", [
    ('{"a": 1}', {"a": 1}), ("", {}), ("  ", {}), (None, {}), ({"a": 1}, {"a": 1}),
    (json.dumps('{"a": 1}'), {"a": 1}), ("[1]", None), ('{"a": ', None), ("nope", None), ("1", None),
])
def test_parse_arguments(arguments, expected):
    assert parse_arguments(arguments) == expected


def test_malformed_arguments_are_reported_as_gemini_does():
    answer = completion(None, finish="tool_calls", tool_calls=[tool_call("f", '{"a": ', "c1")])
    candidate = gemini_response(answer, OPTIONS)["candidates"][0]
    assert candidate["finishReason"] == "MALFORMED_FUNCTION_CALL"
    assert "f" in candidate["finishMessage"] and '{"a": ' in candidate["finishMessage"]
    assert candidate["content"]["parts"] == [{"text": ""}]


CUT = ("The function call get_weather was cut off by the output token limit before its arguments were complete, "
       "and was dropped")
MALFORMED_F = 'Malformed function call f: arguments are not a JSON object: {"a": '
WEATHER_CALL = {"functionCall": {"id": "c0", "name": "get_weather", "args": {"city": "Oslo"}}}

# (case, text, calls as (name, arguments), upstream finish, parts, finishReason, finishMessage or None)
TRUNCATED_CALLS = [
    ("length cuts the only call: dropped, text kept", "Checking.", [("get_weather", '{"city": "Par')], "length",
     [{"text": "Checking."}], "MAX_TOKENS", CUT),
    ("length cuts the only call, no text: an empty text part", None, [("get_weather", '{"city": ')], "length",
     [{"text": ""}], "MAX_TOKENS", CUT),
    ("length cuts the second call: the first is kept", None,
     [("get_weather", '{"city": "Oslo"}'), ("get_weather", '{"ci')], "length", [WEATHER_CALL], "MAX_TOKENS", CUT),
    ("length, but an earlier call is malformed too: length still wins", None,
     [("f", '{"a": '), ("get_weather", "{")], "length", [{"text": ""}], "MAX_TOKENS", MALFORMED_F + "; " + CUT),
    ("length with whole calls: nothing to report", None, [("get_weather", '{"city": "Oslo"}')], "length",
     [WEATHER_CALL], "MAX_TOKENS", None),
    ("tool_calls with truncated arguments stays malformed", None, [("f", '{"a": ')], "tool_calls",
     [{"text": ""}], "MALFORMED_FUNCTION_CALL", MALFORMED_F),
    ("stop with truncated arguments stays malformed", "x", [("f", '{"a": ')], "stop",
     [{"text": "x"}], "MALFORMED_FUNCTION_CALL", MALFORMED_F),
    ("no finish reason with truncated arguments stays malformed", None, [("f", '{"a": ')], None,
     [{"text": ""}], "MALFORMED_FUNCTION_CALL", MALFORMED_F),
]


@pytest.mark.parametrize("case,text,made,finish,parts,reason,message", TRUNCATED_CALLS, ids=[t[0] for t in TRUNCATED_CALLS])
def test_truncated_calls_whole(case, text, made, finish, parts, reason, message):
    answer = completion(text, finish=finish, tool_calls=[tool_call(name, arguments, f"c{position}")
                                                         for position, (name, arguments) in enumerate(made)])
    candidate = gemini_response(answer, OPTIONS)["candidates"][0]
    assert candidate["content"]["parts"] == parts
    assert candidate["finishReason"] == reason
    assert candidate.get("finishMessage") == message


@pytest.mark.parametrize("case,text,made,finish,parts,reason,message", TRUNCATED_CALLS, ids=[t[0] for t in TRUNCATED_CALLS])
def test_truncated_calls_streamed(case, text, made, finish, parts, reason, message):
    deltas = [chunk({"content": text})] if text else []
    for position, (name, arguments) in enumerate(made):  # each call in two fragments, as llama.cpp sends them
        deltas += [frag(position, f"c{position}", name, arguments[:2]), frag(position, arguments=arguments[2:])]
    deltas.append(chunk({}, finish=finish))
    out = run(deltas + [chunk(choices=[], usage_=usage())])
    streamed = [p for c in out for p in c["candidates"][0]["content"]["parts"] if p != {"text": ""}]
    assert streamed == [p for p in parts if p != {"text": ""}]
    assert last(out)["content"]["parts"][-1] == {"text": ""}  # the final chunk still has a part
    assert last(out)["finishReason"] == reason
    assert last(out).get("finishMessage") == message


def test_a_choice_without_index_keeps_its_position_whatever_its_calls():
    answer = completion("a")
    answer["choices"].append({"message": {"role": "assistant", "content": None, "tool_calls": [
        tool_call("f", "{}", "c1"), tool_call("g", "{}", "c2"), tool_call("h", "{}", "c3")]}, "finish_reason": "tool_calls"})
    assert [c["index"] for c in gemini_response(answer, OPTIONS)["candidates"]] == [0, 1]


def test_text_enum_answers_are_unwrapped():
    options = ResponseOptions(model="m", enum_answer=True)
    assert gemini_response(completion('{"value": "neg"}'), options)["candidates"][0]["content"]["parts"] == [{"text": "neg"}]


def test_logprobs():
    answer = completion("ab")
    answer["choices"][0]["logprobs"] = {"content": [
        {"token": "a", "logprob": -0.5, "top_logprobs": [{"token": "a", "logprob": -0.5}, {"token": "b", "logprob": -1.5}]},
        {"token": "b", "logprob": -1.5, "top_logprobs": [{"token": "b", "logprob": -1.5}]},
    ]}
    candidate = gemini_response(answer, OPTIONS)["candidates"][0]
    assert candidate["avgLogprobs"] == -1.0
    assert candidate["logprobsResult"] == {
        "chosenCandidates": [{"token": "a", "logProbability": -0.5}, {"token": "b", "logProbability": -1.5}],
        "logProbabilitySum": -2.0,
        "topCandidates": [
            {"candidates": [{"token": "a", "logProbability": -0.5}, {"token": "b", "logProbability": -1.5}]},
            {"candidates": [{"token": "b", "logProbability": -1.5}]}],
    }


def test_no_choices_is_a_blocked_prompt():
    answer = completion("x")
    answer["choices"] = []
    response = gemini_response(answer, OPTIONS)
    assert response["candidates"] == [] and response["promptFeedback"] == {"blockReason": "OTHER"}


@pytest.mark.parametrize("answer", [[], "x", {"object": "chat.completion"}, {"choices": "nope"}])
def test_answers_that_are_not_completions(answer):
    with pytest.raises(UpstreamError):
        gemini_response(answer, OPTIONS)


def _choice(**fields):
    """An answer whose choice has ``fields`` (of a shape the translation cannot read)."""
    answer = completion()
    answer["choices"][0].update(fields)
    return answer


DEEP = "[" * 100_000 + "]" * 100_000
TOKEN = {"token": "a", "logprob": -0.5}
# Fields the translation reads, each of a type it cannot read: the upstream's error, naming the field.
MALFORMED_ANSWERS = {
    "choices[].message": (_choice(message="hi"), "choices[].message is not a JSON object"),
    "choices[].finish_reason": (_choice(finish_reason=["stop"]), "choices[].finish_reason is not a string"),
    "tool call function": (completion(tool_calls=[{"id": "c", "function": "f"}]),
                           "choices[].message.tool_calls[].function is not a JSON object"),
    "tool call arguments too deep": (completion(tool_calls=[tool_call("f", DEEP)]),
                                     "has tool call arguments nested too deeply to parse"),
    "usage details": (completion(usage_={"completion_tokens_details": [1]}),
                      "usage.completion_tokens_details is not a JSON object"),
    "usage prompt details": (completion(usage_={"prompt_tokens_details": "x"}),
                             "usage.prompt_tokens_details is not a JSON object"),
    "logprobs content": (_choice(logprobs={"content": "abc"}), "choices[].logprobs.content is not a list"),
    "logprobs token": (_choice(logprobs={"content": [None]}), "choices[].logprobs.content[] is not a JSON object"),
    "logprob": (_choice(logprobs={"content": [{"token": "a", "logprob": "-1"}]}),
                "choices[].logprobs.content[].logprob is not a number"),
    "top logprobs": (_choice(logprobs={"content": [{**TOKEN, "top_logprobs": {"a": 1}}]}),
                     "choices[].logprobs.content[].top_logprobs is not a list"),
    "top logprob": (_choice(logprobs={"content": [{**TOKEN, "top_logprobs": [{"logprob": None}]}]}),
                    "choices[].logprobs.content[].top_logprobs[].logprob is not a number"),
}
MALFORMED_CHUNKS = {
    "choices": ({**chunk({"content": "a"}), "choices": 5}, "choices is not a list"),
    "choices[].index": (chunk({"content": "a"}, index="0"), "choices[].index is not an integer"),
    "choices[].delta": (chunk("oops"), "choices[].delta is not a JSON object"),
    "tool call function": (chunk({"tool_calls": [{"index": 0, "function": "f"}]}),
                           "choices[].delta.tool_calls[].function is not a JSON object"),
    "tool call id": (chunk({"tool_calls": [{"id": ["c"], "function": {"name": "f"}}]}),
                     "choices[].delta.tool_calls[].id is not a string"),
    "tool call index": (chunk({"tool_calls": [{"index": {"i": 0}, "function": {"name": "f"}}]}),
                        "choices[].delta.tool_calls[].index is not an integer"),
    "usage": (chunk({"content": "a"}, usage_={"prompt_tokens_details": [1]}),
              "usage.prompt_tokens_details is not a JSON object"),
    "finish_reason": (chunk({}, finish=1), "choices[].finish_reason is not a string"),
}


@pytest.mark.parametrize("name", list(MALFORMED_ANSWERS))
def test_a_malformed_answer_is_the_upstream_s_error_naming_the_field(name):
    answer, message = MALFORMED_ANSWERS[name]
    with pytest.raises(UpstreamError, match=re.escape(message)):
        gemini_response(answer, OPTIONS)


@pytest.mark.parametrize("name", list(MALFORMED_CHUNKS))
def test_a_malformed_stream_chunk_is_the_upstream_s_error_naming_the_field(name):
    odd, message = MALFORMED_CHUNKS[name]
    with pytest.raises(UpstreamError, match=re.escape(message)):
        run([chunk({"content": "a"}), odd, chunk({}, finish="stop")])


def test_an_enum_answer_nested_too_deeply_is_the_upstream_s_error():
    with pytest.raises(UpstreamError, match="a text/x.enum answer nested too deeply"):
        gemini_response(completion(DEEP), ResponseOptions(model="m", enum_answer=True))


# Every field of an answer that the translation reads.
FULL_COMPLETION = completion(tool_calls=[tool_call("f", {"a": 1}, index=0)], reasoning_content="r",
                             usage_=usage(3, 4, reasoning=1, cached=1))
FULL_COMPLETION["choices"][0]["logprobs"] = {"content": [{**TOKEN, "top_logprobs": [TOKEN]}]}
# Every field a chunk can have that the translation reads.
FULL_CHUNK = copy.deepcopy(chunk(FULL_COMPLETION["choices"][0]["message"], finish="stop", usage_=FULL_COMPLETION["usage"]))
FULL_CHUNK["choices"][0].update(copy.deepcopy({"logprobs": FULL_COMPLETION["choices"][0]["logprobs"],
                                               "usage": FULL_COMPLETION["usage"]}))  # Moonshot's place for it


ODD_VALUES = [None, "", "x", 0, 5, 1.5, True, [], [1], {}, {"a": 1}]


def _every_odd_field(value):
    """``value`` with one field (at any depth) replaced by one of ODD_VALUES, for every field and value."""
    for path, key in list(locations(value)):
        for odd in ODD_VALUES:
            changed = copy.deepcopy(value)
            container_at(changed, path)[key] = odd
            yield f"{[*path, key]} = {odd!r}", changed


def _crash(translate, *args):
    """What ``translate(*args)`` raised, unless it was the upstream's error."""
    try:
        translate(*args)
    except UpstreamError:
        pass
    except Exception as error:  # noqa: BLE001 - named in the failure
        return repr(error)
    return None


@pytest.mark.parametrize("options", [OPTIONS, ResponseOptions(model="m", include_thoughts=True, enum_answer=True)],
                         ids=["plain", "thoughts-enum"])
def test_any_field_of_any_type_translates_or_is_the_upstream_s_error(options):
    # Anything else raised would be a 500 that blames us (and logs a traceback) for the upstream's answer.
    crashes = [f"answer {name}: {crash}" for name, answer in _every_odd_field(FULL_COMPLETION)
               if (crash := _crash(gemini_response, answer, options))]
    crashes += [f"chunk {name}, done={done}: {crash}" for name, odd in _every_odd_field(FULL_CHUNK) for done in (True, False)
                if (crash := _crash(run, [chunk({"content": "a"}), odd, chunk({}, finish="stop")], options, done))]
    assert not crashes, "\n".join(crashes)


# --- streams -----------------------------------------------------------------------------------

def run(chunks, options=OPTIONS, done=True, candidate_count=1):
    """All Gemini chunks for a list of upstream chunks (then [DONE] or EOF)."""
    translator = StreamTranslator(options, candidate_count)
    out = []
    for item in chunks:
        out.extend(translator.translate(item))
    out.extend(translator.done() if done else translator.end_of_stream())
    return out


def texts(out):
    return [p.get("text") for c in out for cand in c["candidates"] for p in cand["content"]["parts"] if "text" in p]


def calls(out):
    return [p["functionCall"] for c in out for cand in c["candidates"] for p in cand["content"]["parts"]
            if "functionCall" in p]


def last(out):
    return out[-1]["candidates"][0]


def test_text_deltas_then_a_final_chunk_with_finish_and_usage():
    out = run([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"}),
               chunk({}, finish="stop"), chunk(choices=[], usage_=usage(3, 2))])
    assert texts(out) == ["Hel", "lo", ""]
    assert "finishReason" not in out[0]["candidates"][0]
    assert last(out)["finishReason"] == "STOP"
    assert out[-1]["usageMetadata"] == {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}
    assert all(c["modelVersion"] == "qwen-turbo" and c["responseId"] == "chatcmpl-stream1" for c in out)


def test_each_chunk_leaves_as_soon_as_its_upstream_chunk_arrives():
    translator = StreamTranslator(OPTIONS)
    assert translator.translate(chunk({"role": "assistant"})) == []
    assert texts(translator.translate(chunk({"content": "a"}))) == ["a"]
    assert translator.translate(chunk({}, finish="stop")) == []  # waits only for the usage
    final = translator.translate(chunk(choices=[], usage_=usage()))
    assert last(final)["finishReason"] == "STOP" and translator.finished


def test_content_and_finish_in_one_chunk_and_usage_in_the_same_chunk():
    out = run([chunk({"content": "all"}, finish="length", usage_=usage())], done=False)
    assert texts(out) == ["all", ""] and last(out)["finishReason"] == "MAX_TOKENS"


def test_usage_inside_the_choice_moonshot():
    item = chunk({}, finish="stop")
    item["choices"][0]["usage"] = usage(1, 1)
    out = run([chunk({"content": "x"}), item], done=False)
    assert out[-1]["usageMetadata"]["totalTokenCount"] == 2


def test_duplicate_finish_chunks_answer_once():
    out = run([chunk({"content": "x"}), chunk({"content": ""}, finish="tool_calls"),
               chunk({"content": ""}, finish="tool_calls")])
    assert sum("finishReason" in c["candidates"][0] for c in out) == 1


def test_empty_choices_first_chunk_azure():
    out = run([{"id": "", "choices": [], "created": 0, "prompt_filter_results": []}, chunk({"content": "x"}),
               chunk({}, finish="stop")])
    assert texts(out) == ["x", ""] and out[0]["responseId"] == "chatcmpl-stream1"


def test_no_done_after_a_finish_is_fine_but_no_finish_is_truncation():
    assert last(run([chunk({"content": "x"}), chunk({}, finish="stop")], done=False))["finishReason"] == "STOP"
    with pytest.raises(UpstreamError):
        run([chunk({"content": "x"})], done=False)


def test_done_without_a_finish_reason_is_a_clean_stop():
    assert last(run([chunk({"content": "x"})]))["finishReason"] == "STOP"


@pytest.mark.parametrize("item", [
    {"id": "x", "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]},
    chunk({}, finish="error"),
])
def test_a_finish_reason_error_raises(item):
    # An "error" key in a chunk is the upstream module's to find (test_upstream); OpenRouter's
    # finish_reason "error" is a translation matter.
    with pytest.raises(GeminiError):
        run([chunk({"content": "x"}), item])


def test_thoughts_stream_before_the_answer():
    out = run([chunk({"reasoning_content": "Hmm"}), chunk({"reasoning": " ok"}), chunk({"content": "42"}),
               chunk({}, finish="stop")], options=THOUGHTFUL)
    parts = [p for c in out for p in c["candidates"][0]["content"]["parts"]]
    assert parts[:3] == [{"text": "Hmm", "thought": True}, {"text": " ok", "thought": True}, {"text": "42"}]
    assert texts(run([chunk({"reasoning_content": "Hmm"}), chunk({"content": "42"})])) == ["42", ""]


def test_text_enum_streams_are_unwrapped_at_the_end():
    out = run([chunk({"content": '{"val'}), chunk({"content": 'ue": "pos"}'}), chunk({}, finish="stop")],
              options=ResponseOptions(model="m", enum_answer=True))
    assert texts(out) == ["pos"]


def test_several_candidates_finish_together():
    out = run([chunk({"content": "a"}, index=0), chunk({"content": "b"}, index=1), chunk({}, finish="stop", index=0),
               chunk({}, finish="length", index=1), chunk(choices=[], usage_=usage())], done=False, candidate_count=2)
    assert [(c["index"], c["finishReason"]) for c in out[-1]["candidates"]] == [(0, "STOP"), (1, "MAX_TOKENS")]


# Tool-call delta shapes (quirks reference §2.4 and §5).

def frag(index=None, id=None, name=None, arguments=None):
    call = {}
    if index is not None:
        call["index"] = index
    if id is not None:
        call["id"], call["type"] = id, "function"
    function = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    call["function"] = function
    return chunk({"tool_calls": [call]})


FINISH = [chunk({}, finish="tool_calls"), chunk(choices=[], usage_=usage())]
PARIS = {"id": "c1", "name": "weather", "args": {"city": "Paris"}}
NOW = {"id": "c2", "name": "time", "args": {"tz": "UTC"}}

TOOL_STREAMS = [
    ("openai fragments, two parallel calls",
     [frag(0, "c1", "weather", ""), frag(0, arguments='{"ci'), frag(0, arguments='ty": "Paris"}'),
      frag(1, "c2", "time", ""), frag(1, arguments='{"tz": "UTC"}')], [PARIS, NOW]),
    ("role and first fragment in one chunk",
     [chunk({"role": "assistant", "content": None, "tool_calls": [
         {"index": 0, "id": "c1", "type": "function", "function": {"name": "weather", "arguments": ""}}]}),
      frag(0, arguments='{"city": "Paris"}')], [PARIS]),
    ("whole arguments in one chunk (ollama), content empty",
     [chunk({"role": "assistant", "content": "", "tool_calls": [
         {"id": "c1", "index": 0, "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]})],
     [PARIS]),
    ("missing index: id starts a call, id-less fragments continue it",
     [frag(None, "c1", "weather", '{"city"'), frag(None, arguments=': "Paris"}'),
      frag(None, "c2", "time", '{"tz": '), frag(None, arguments='"UTC"}')], [PARIS, NOW]),
    ("same index for every parallel call, with ids",
     [frag(0, "c1", "weather", '{"city": "Paris"}'), frag(0, "c2", "time", '{"tz"'), frag(0, arguments=': "UTC"}')],
     [PARIS, NOW]),
    ("same index for every call, no ids, whole arguments",
     [frag(0, None, "weather", '{"city": "Paris"}'), frag(0, None, "time", '{"tz": "UTC"}')],
     [{"name": "weather", "args": {"city": "Paris"}}, {"name": "time", "args": {"tz": "UTC"}}]),
    ("empty arguments mean no arguments",
     [frag(0, "c1", "ping", "")], [{"id": "c1", "name": "ping", "args": {}}]),
    ("arguments given as an object",
     [frag(0, "c1", "weather", {"city": "Paris"})], [PARIS]),
]


@pytest.mark.parametrize("name,deltas,expected", TOOL_STREAMS, ids=[t[0] for t in TOOL_STREAMS])
def test_tool_call_delta_shapes(name, deltas, expected):
    out = run(deltas + FINISH, done=False)
    assert calls(out) == expected
    assert last(out)["finishReason"] == "STOP"


def test_a_call_is_sent_as_soon_as_it_is_complete():
    translator = StreamTranslator(OPTIONS)
    assert translator.translate(frag(0, "c1", "weather", '{"city": ')) == []
    assert calls(translator.translate(frag(0, arguments='"Paris"}'))) == [PARIS]
    assert translator.translate(frag(1, "c2", "time", '{"tz": ')) == []
    assert calls(translator.translate(frag(1, arguments='"UTC"}'))) == [NOW]


def test_malformed_streamed_arguments():
    out = run([frag(0, "c1", "weather", '{"city": ')] + FINISH, done=False)
    assert calls(out) == [] and last(out)["finishReason"] == "MALFORMED_FUNCTION_CALL"
    assert "weather" in last(out)["finishMessage"]


def test_a_streamed_refusal_ends_with_safety():
    out = run([chunk({"refusal": "I can't help"}), chunk({}, finish="stop")])
    assert texts(out) == ["I can't help", ""] and last(out)["finishReason"] == "SAFETY"


def test_streamed_logprobs_ride_on_their_chunk():
    item = chunk({"content": "a"})
    item["choices"][0]["logprobs"] = {"content": [{"token": "a", "logprob": -0.25, "top_logprobs": []}]}
    out = run([item, chunk({}, finish="stop")])
    assert out[0]["candidates"][0]["logprobsResult"]["chosenCandidates"] == [{"token": "a", "logProbability": -0.25}]


def test_the_deprecated_function_call_delta():
    out = run([chunk({"function_call": {"name": "f", "arguments": '{"a"'}}),
               chunk({"function_call": {"arguments": ": 1}"}}), chunk({}, finish="function_call")])
    assert calls(out) == [{"name": "f", "args": {"a": 1}}]


# --- the turn's reasoning in the first call's thoughtSignature ---------------------------------

def signed(parts):
    """(functionCall name, the reasoning its thoughtSignature holds) for each call part."""
    return [(p["functionCall"]["name"], decode_signature(p["thoughtSignature"]) if "thoughtSignature" in p else None)
            for p in parts if "functionCall" in p]


@pytest.mark.parametrize("options", [OPTIONS, THOUGHTFUL], ids=["includeThoughts false", "includeThoughts true"])
def test_reasoning_rides_in_the_first_calls_signature(options):
    answer = completion(None, finish="tool_calls", reasoning_content="Paris, then Oslo.", tool_calls=[
        tool_call("get_weather", {"city": "Paris"}, "c1"), tool_call("get_weather", {"city": "Oslo"}, "c2")])
    parts = gemini_response(answer, options)["candidates"][0]["content"]["parts"]
    assert signed(parts) == [("get_weather", "Paris, then Oslo."), ("get_weather", None)]
    assert parts[-2]["functionCall"] == {"id": "c1", "name": "get_weather", "args": {"city": "Paris"}}
    assert [p.get("thought") for p in parts if "text" in p] == ([True] if options.include_thoughts else [])


def test_no_signature_without_reasoning_or_without_calls():
    plain = completion(None, finish="tool_calls", tool_calls=[tool_call("f", {}, "c1")])
    assert signed(gemini_response(plain, OPTIONS)["candidates"][0]["content"]["parts"]) == [("f", None)]
    thinking = completion("42", reasoning_content="Six times seven.")
    assert all("thoughtSignature" not in p for p in gemini_response(thinking, OPTIONS)["candidates"][0]["content"]["parts"])


def test_a_malformed_first_call_passes_the_signature_to_the_first_call_returned():
    answer = completion(None, finish="tool_calls", reasoning_content="Hmm.", tool_calls=[
        tool_call("f", '{"a": ', "c1"), tool_call("g", {}, "c2"), tool_call("h", {}, "c3")])
    candidate = gemini_response(answer, OPTIONS)["candidates"][0]
    assert signed(candidate["content"]["parts"]) == [("g", "Hmm."), ("h", None)]
    assert candidate["finishReason"] == "MALFORMED_FUNCTION_CALL"


def test_reasoning_in_openrouter_details_is_kept_too():
    answer = completion(None, finish="tool_calls", reasoning_details=[{"type": "reasoning.text", "text": "Use f."}],
                        tool_calls=[tool_call("f", {}, "c1")])
    assert signed(gemini_response(answer, OPTIONS)["candidates"][0]["content"]["parts"]) == [("f", "Use f.")]


@pytest.mark.parametrize("options", [OPTIONS, THOUGHTFUL], ids=["includeThoughts false", "includeThoughts true"])
def test_streamed_reasoning_rides_in_the_first_calls_signature(options):
    out = run([chunk({"role": "assistant", "reasoning_content": "Paris"}), chunk({"reasoning_content": ", then"}),
               chunk({"reasoning": " Oslo."}), frag(0, "c1", "weather", '{"city": '), frag(0, arguments='"Paris"}'),
               frag(1, "c2", "time", '{"tz": "UTC"}')] + FINISH, options=options, done=False)
    parts = [p for c in out for p in c["candidates"][0]["content"]["parts"]]
    assert signed(parts) == [("weather", "Paris, then Oslo."), ("time", None)]
    assert calls(out) == [PARIS, NOW]
    assert any(p.get("thought") for p in parts) == options.include_thoughts


def test_a_streamed_call_completed_only_at_the_finish_is_signed_too():
    """A call without arguments is known whole only when the answer finishes."""
    out = run([chunk({"reasoning_content": "Hmm."}), frag(0, "c1", "ping", "")] + FINISH, done=False)
    assert signed([p for c in out for p in c["candidates"][0]["content"]["parts"]]) == [("ping", "Hmm.")]
    out = run([chunk({"reasoning_content": "Hmm."}), frag(0, "c1", "ping", "")])  # [DONE] without a finish
    assert signed(last(out)["content"]["parts"]) == [("ping", "Hmm.")]


def test_streamed_reasoning_too_long_to_keep_gets_no_signature():
    piece = "x" * 65536
    out = run([chunk({"reasoning_content": piece}) for _ in range(3)] + [frag(0, "c1", "ping", "")] + FINISH, done=False)
    assert signed([p for c in out for p in c["candidates"][0]["content"]["parts"]]) == [("ping", None)]
    out = run([chunk({"reasoning_content": piece}) for _ in range(1)] + [frag(0, "c1", "ping", "")] + FINISH, done=False)
    assert signed([p for c in out for p in c["candidates"][0]["content"]["parts"]]) == [("ping", piece)]


# --- <think> blocks in content -----------------------------------------------------------------

THINK_ANSWERS = [
    "<think>\nSix times seven.</think>\n\n42",  # vLLM without a reasoning parser, llama.cpp "none"
    "Six times seven.</think>\n\n42",  # the template opened the block in the prompt
    "\n<thinking>Six times seven.</thinking>42",
]


@pytest.mark.parametrize("content", THINK_ANSWERS)
@pytest.mark.parametrize("options", [OPTIONS, THOUGHTFUL])
def test_a_think_block_in_content_is_thoughts_whole(content, options):
    parts = gemini_response(completion(content), options)["candidates"][0]["content"]["parts"]
    thoughts = [{"text": "Six times seven.", "thought": True}] if options.include_thoughts else []
    assert parts == thoughts + [{"text": "42"}]


@pytest.mark.parametrize("options", [OPTIONS, THOUGHTFUL])
def test_think_tags_later_in_an_answer_and_empty_blocks(options):
    assert gemini_response(completion("Use <think>x</think> tags."), options)["candidates"][0]["content"]["parts"] == [
        {"text": "Use <think>x</think> tags."}]
    assert gemini_response(completion("<think>\n\n</think>\n\n42"), options)["candidates"][0]["content"]["parts"] == [
        {"text": "42"}]


@pytest.mark.parametrize("options", [OPTIONS, THOUGHTFUL])
def test_both_the_reasoning_field_and_the_tags_give_the_thoughts_once_whole(options):
    # llama.cpp --reasoning-format deepseek-legacy
    answer = completion("<think>Six times seven.</think>\n\n42", reasoning_content="Six times seven.")
    parts = gemini_response(answer, options)["candidates"][0]["content"]["parts"]
    assert parts == [{"text": "Six times seven.", "thought": True}] * options.include_thoughts + [{"text": "42"}]


def test_json_and_enum_answers_after_a_think_block_parse():
    answer = completion('<think>The user wants JSON.</think>\n\n{"ok": true}')
    [part] = gemini_response(answer, OPTIONS)["candidates"][0]["content"]["parts"]
    assert json.loads(part["text"]) == {"ok": True}
    options = ResponseOptions(model="m", enum_answer=True)
    answer = completion('<think>{"value": "pos"}?</think>\n{"value": "neg"}')
    assert gemini_response(answer, options)["candidates"][0]["content"]["parts"] == [{"text": "neg"}]


def stream_of(pieces, **delta):
    return [chunk({"role": "assistant", "content": "", **delta})] + [chunk({"content": p}) for p in pieces] + [
        chunk({}, finish="stop"), chunk(choices=[], usage_=usage())]


def thought_texts(out):
    return [p["text"] for c in out for cand in c["candidates"] for p in cand["content"]["parts"] if p.get("thought")]


def answer_text(out):
    return "".join(p["text"] for c in out for cand in c["candidates"] for p in cand["content"]["parts"]
                   if not p.get("thought"))


@pytest.mark.parametrize("options", [OPTIONS, THOUGHTFUL])
def test_a_streamed_think_block_is_thought_parts_as_it_arrives(options):
    out = run(stream_of(["<thi", "nk>\nSix", " times seven.</th", "ink>\n\n4", "2"]), options=options)
    assert thought_texts(out) == (["Six", " times seven."] if options.include_thoughts else [])
    assert texts(out)[-3:] == ["4", "2", ""]
    assert answer_text(out) == "42"
    assert options.include_thoughts or "Six" not in json.dumps(out)


def test_streamed_answer_text_is_not_held():
    translator = StreamTranslator(OPTIONS)
    assert translator.translate(chunk({"content": "<"})) == []  # could open a block
    assert texts(translator.translate(chunk({"content": "b>Bold"}))) == ["<b>Bold"]
    assert texts(translator.translate(chunk({"content": " <think>"}))) == [" <think>"]


@pytest.mark.parametrize("preopened", [False, True])
def test_a_streamed_lone_closing_tag(preopened):
    """Held only when the translator is told that the template opens the block in the prompt;
    otherwise it counts when it comes in the content's first piece (a relay's single chunk)."""
    out = run(stream_of(["Six times seven.</think>\n\n42"]), options=THOUGHTFUL)
    assert thought_texts(out) == ["Six times seven."] and answer_text(out) == "42"
    translator = StreamTranslator(THOUGHTFUL, preopened_think=preopened)
    out = [c for item in stream_of(["Six times", " seven.</think>", "\n\n42"]) for c in translator.translate(item)]
    if preopened:
        assert thought_texts(out) == ["Six times seven."] and answer_text(out) == "42"
    else:
        assert thought_texts(out) == [] and answer_text(out) == "Six times seven.</think>\n\n42"


def test_preopened_holding_stops_when_the_upstream_sends_a_reasoning_field():
    translator = StreamTranslator(THOUGHTFUL, preopened_think=True)
    assert texts(translator.translate(chunk({"reasoning_content": "Hmm."}))) == ["Hmm."]
    assert texts(translator.translate(chunk({"content": "42"}))) == ["42"]


@pytest.mark.parametrize("options", [OPTIONS, THOUGHTFUL])
def test_both_the_reasoning_field_and_the_tags_give_the_thoughts_once_streamed(options):
    out = run([chunk({"role": "assistant", "reasoning_content": "Six", "content": "<think>Six"}),
               chunk({"reasoning_content": " times seven.", "content": " times seven."}),
               chunk({"content": "</think>\n\n42"}), chunk({}, finish="stop")], options=options)
    assert thought_texts(out) == (["Six", " times seven."] if options.include_thoughts else [])
    assert answer_text(out) == "42"


def test_a_streamed_enum_answer_after_a_think_block_is_unwrapped():
    out = run(stream_of(["<think>h", 'mm</think>\n{"val', 'ue": "pos"}']),
              options=ResponseOptions(model="m", enum_answer=True))
    assert texts(out) == ["pos"]


@pytest.mark.parametrize("pieces,thoughts,text", [
    (["<th"], [], "<th"),  # held as a possible tag: the end releases it as text
    (["<think>Hm", "m</thi"], ["Hm", "m", "</thi"], ""),  # a block that never closed is all thoughts
])
def test_what_is_held_comes_out_when_a_stream_ends_without_a_finish_reason(pieces, thoughts, text):
    out = run([chunk({"content": p}) for p in pieces], options=THOUGHTFUL)
    assert thought_texts(out) == thoughts and answer_text(out) == text
    assert last(out)["finishReason"] == "STOP" and last(out)["content"]["parts"][-1] == {"text": text}


def test_reasoning_split_from_think_tags_is_kept_too():
    answer = completion("<think>Use f.</think>", finish="tool_calls", tool_calls=[tool_call("f", {}, "c1")])
    assert signed(gemini_response(answer, OPTIONS)["candidates"][0]["content"]["parts"]) == [("f", "Use f.")]
    out = run([chunk({"content": "<think>Use"}), chunk({"content": " f.</think>"}), frag(0, "c1", "ping", "")] + FINISH,
              done=False)
    assert signed([p for c in out for p in c["candidates"][0]["content"]["parts"]]) == [("ping", "Use f.")]


# --- a stream assembled into one answer ----------------------------------------------------------

def candidate(parts, index=0, **extra):
    return {"content": {"parts": parts, "role": "model"}, "index": index, **extra}


MERGES = [
    ("text joined, thoughts apart, calls in order, the closing empty text dropped",
     [{"candidates": [candidate([{"text": "Hm", "thought": True}])], "modelVersion": "m"},
      {"candidates": [candidate([{"text": "m.", "thought": True}, {"text": "Hel"}])], "modelVersion": "m"},
      {"candidates": [candidate([{"text": "lo"}, {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"}])]},
      {"candidates": [candidate([{"text": ""}], finishReason="STOP")], "usageMetadata": {"totalTokenCount": 3},
       "modelVersion": "m", "responseId": "r"}],
     {"candidates": [candidate([{"text": "Hmm.", "thought": True}, {"text": "Hello"},
                                {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"}],
                               finishReason="STOP")],
      "modelVersion": "m", "usageMetadata": {"totalTokenCount": 3}, "responseId": "r"}),
    ("an empty answer keeps its one empty part",
     [{"candidates": [candidate([{"text": ""}], finishReason="MAX_TOKENS", finishMessage="cut")]}],
     {"candidates": [candidate([{"text": ""}], finishReason="MAX_TOKENS", finishMessage="cut")]}),
    ("candidates kept apart, in index order",
     [{"candidates": [candidate([{"text": "b"}], index=1), candidate([{"text": "a"}], index=0)]},
      {"candidates": [candidate([{"text": "2"}], index=1, finishReason="STOP"),
                      candidate([{"text": "1"}], index=0, finishReason="STOP")]}],
     {"candidates": [candidate([{"text": "a1"}], finishReason="STOP"),
                     candidate([{"text": "b2"}], index=1, finishReason="STOP")]}),
    ("logprobs concatenated",
     [{"candidates": [candidate([{"text": "a"}], logprobsResult={
         "chosenCandidates": [{"token": "a", "logProbability": -1.0}], "logProbabilitySum": -1.0}, avgLogprobs=-1.0)]},
      {"candidates": [candidate([{"text": "b"}], logprobsResult={
          "chosenCandidates": [{"token": "b", "logProbability": -3.0}], "logProbabilitySum": -3.0}, avgLogprobs=-3.0)]}],
     {"candidates": [candidate([{"text": "ab"}], logprobsResult={
         "chosenCandidates": [{"token": "a", "logProbability": -1.0}, {"token": "b", "logProbability": -3.0}],
         "logProbabilitySum": -4.0}, avgLogprobs=-2.0)]}),
]


@pytest.mark.parametrize("case,chunks,expected", MERGES, ids=[case for case, _, _ in MERGES])
def test_a_stream_merged_into_one_answer(case, chunks, expected):
    assert merged_response(chunks) == expected


def test_a_merged_answer_is_bounded():
    chunks = ({"candidates": [candidate([{"text": "x" * 600}])]} for _ in range(10))
    with pytest.raises(GeminiError, match="MAX_UPSTREAM_RESPONSE_BYTES"):
        merged_response(chunks, limit=5000)


@pytest.mark.parametrize("streamed", [False, True])
def test_with_a_reasoning_field_a_lone_closing_tag_is_answer_text(streamed):
    content = "Explain: use </think> to end."
    if streamed:
        out = run([chunk({"role": "assistant", "reasoning_content": "r", "content": content}),
                   chunk({}, finish="stop")], options=OPTIONS)
        assert answer_text(out) == content
    else:
        answer = completion(content, reasoning_content="r")
        assert gemini_response(answer, OPTIONS)["candidates"][0]["content"]["parts"] == [{"text": content}]


def test_a_long_stream_merges_in_linear_time():
    # Adding each delta to one string copied it whole: 400,000 deltas of 5 characters took 218 s.
    started = time.monotonic()
    merged = merged_response({"candidates": [candidate([{"text": "abcde"}])]} for _ in range(200_000))
    assert len(merged["candidates"][0]["content"]["parts"][0]["text"]) == 1_000_000
    assert time.monotonic() - started < 5
