"""Agent frameworks pointed at the function, each running its own loop: a generation, a stream, a
tool round trip through the framework's tool-calling loop, and structured output, with the loopback
upstream answering as a model would (a tool call first, then text once the tool's result is back).

The Python frameworks (Google's ADK, pydantic-ai, LlamaIndex, LangChain) pin google-genai 2.x, so
they run in a virtual environment of their own (tests/framework_venv.py, made on first use from
tests/frameworks/requirements.txt and kept under ~/.cache/gemini-compat-frameworks/): each runs
tests/frameworks/<name>_recipe.py as a subprocess. The Vercel AI SDK runs tests/clients/ai-sdk.mjs
on Node (``npm ci --prefix tests/clients``). Each script runs all four scenarios in one process and
prints their results as JSON; the upstream's record is split by scenario by the user's prompt.

If the environment cannot be made, these tests fail; GEMINI_COMPAT_SKIP_FRAMEWORKS=1 skips the
Python frameworks on a developer's machine (CI never sets it)."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

import framework_venv
from fake_upstream import Json, Stream, chunk, completion, text_stream, tool_call
from helpers import KEY, client_env

TESTS = pathlib.Path(__file__).resolve().parent
PYTHON_FRAMEWORKS = ("adk", "pydantic_ai", "llama_index", "langchain")
FRAMEWORKS = PYTHON_FRAMEWORKS + ("ai_sdk",)
SCENARIOS = ("generate", "stream", "tools", "structured")
PROMPTS = {  # as tests/frameworks/_common.py and tests/clients/ai-sdk.mjs send them
    "generate": "Say hello",
    "stream": "Count to five in words",
    "tools": "What is the weather in Paris?",
    "structured": "Describe the weather in Paris",
}
WEATHER = {"city": "Paris", "temperature_c": 21}
FINAL_ANSWER = "It is sunny in Paris, 21 C."
# How each framework asks for structured output, in the order its script asks: a JSON schema
# (responseSchema / responseJsonSchema, sent upstream as response_format) or a forced tool call.
STRUCTURED = {
    "adk": [("output_schema", "json_schema")],
    "pydantic_ai": [("output_type", "tool"), ("NativeOutput", "json_schema")],
    "llama_index": [("structured_predict", "json_schema"), ("as_structured_llm", "json_schema")],
    "langchain": [("json_schema", "json_schema"), ("function_calling", "tool"), ("client_options", "json_schema")],
    "ai_sdk": [("Output.object", "json_schema"), ("generateObject", "json_schema")],
}


def respond(body):
    """The upstream's answer to one chat-completions request: text after a tool result; a JSON
    object when a schema is asked for; a call of get_weather when it is offered, else of the one
    tool offered (a structured-output tool); for the rest, None: the upstream's default echo."""
    names = [t["function"]["name"] for t in body.get("tools", [])]
    if body["messages"][-1]["role"] == "tool":
        return _answer(body, FINAL_ANSWER)
    if "response_format" in body:
        return _answer(body, json.dumps(WEATHER))
    if "get_weather" in names:
        return _answer(body, None, [tool_call("get_weather", {"city": "Paris"}, "call_w1")])
    if names:
        return _answer(body, None, [tool_call(names[0], WEATHER, "call_s1")])
    return None


def _answer(body, content, calls=None):
    finish = "tool_calls" if calls else "stop"
    if not body.get("stream"):
        return Json(completion(content, finish=finish, tool_calls=calls))
    if content is not None:
        return Stream(text_stream([content[:6], content[6:]], finish=finish))
    streamed = [dict(call, index=i) for i, call in enumerate(calls)]
    return Stream([chunk({"role": "assistant", "tool_calls": streamed}), chunk({}, finish=finish), "[DONE]"])


@pytest.fixture(scope="session")
def framework_python():
    if os.environ.get("GEMINI_COMPAT_SKIP_FRAMEWORKS"):
        pytest.skip("GEMINI_COMPAT_SKIP_FRAMEWORKS is set")
    try:
        return framework_venv.ensure()
    except framework_venv.Unavailable as error:
        pytest.fail(f"the frameworks' virtual environment cannot be made: {error}")


@pytest.fixture(scope="module")
def framework_run(request, function, upstream_server):
    """framework_run(name) -> {scenario: (script result, upstream requests)}, run once per module."""
    runs = {}

    def run(name):
        if name not in runs:
            if name == "ai_sdk":
                command = ["node", str(TESTS / "clients" / "ai-sdk.mjs")]
            else:
                python = request.getfixturevalue("framework_python")
                command = [str(python), str(TESTS / "frameworks" / f"{name}_recipe.py")]
            upstream_server.reset()
            upstream_server.responder = respond
            try:
                done = subprocess.run(command + [function.url, KEY], cwd=TESTS, env=client_env(), capture_output=True,
                                      text=True, timeout=180)
                recorded = list(upstream_server.chat_requests)
            finally:
                upstream_server.reset()
            if done.returncode:  # failed once, not run again by the next test
                runs[name] = f"{name} exited {done.returncode}:\n{done.stderr[-5000:]}\n{done.stdout}"
            else:
                output = json.loads(done.stdout.strip().splitlines()[-1])
                runs[name] = {scenario: (output[scenario], [r["json"] for r in recorded if _prompt(r["json"]) == prompt])
                              for scenario, prompt in PROMPTS.items()}
        assert not isinstance(runs[name], str), runs[name]
        return runs[name]

    return run


def _prompt(body):
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def result_of(framework_run, framework, scenario):
    """The scenario's result (failing with the framework's traceback) and its upstream requests."""
    if framework == "ai_sdk" and (not (TESTS / "clients" / "node_modules" / "ai").is_dir() or not shutil.which("node")):
        pytest.skip("the AI SDK is not installed: run `npm ci --prefix tests/clients` (needs node)")
    output, requests = framework_run(framework)[scenario]
    assert output["error"] is None, output["error"]
    return output["result"], output["tool_calls"], requests


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_generate(framework_run, framework):
    result, _, requests = result_of(framework_run, framework, "generate")

    assert result["text"] == "echo: Say hello"
    assert [r["messages"][-1] for r in requests] == [{"role": "user", "content": "Say hello"}] * len(requests)
    assert len(requests) == (2 if framework == "ai_sdk" else 1)
    assert not any(r.get("stream") for r in requests)
    if framework == "ai_sdk":  # google("models/Qwen/...") for a model ID holding "/"
        assert result["slashed"] == "echo: Say hello"
        assert [r["model"] for r in requests] == ["qwen-turbo", "Qwen/Qwen2.5-7B-Instruct"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_stream(framework_run, framework):
    result, _, [request] = result_of(framework_run, framework, "stream")

    pieces = [piece for piece in result["pieces"] if piece]
    assert len(pieces) >= 2, pieces  # streamed as the upstream streamed, word by word
    assert "".join(pieces) == "echo: Count to five in words"
    assert request["stream"] is True and request["messages"][-1] == {"role": "user", "content": PROMPTS["stream"]}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_tool_round_trip(framework_run, framework):
    result, tool_calls, requests = result_of(framework_run, framework, "tools")

    assert tool_calls == [{"city": "Paris"}]  # the framework ran the tool with the model's arguments
    assert result["text"] == FINAL_ANSWER
    first, second = requests
    assert "get_weather" in [t["function"]["name"] for t in first["tools"]]
    assert first["messages"][-1] == {"role": "user", "content": PROMPTS["tools"]}
    *_, call, answer = second["messages"]
    [sent_call] = call["tool_calls"]
    assert call["role"] == "assistant"
    assert (sent_call["function"]["name"], json.loads(sent_call["function"]["arguments"])) == \
        ("get_weather", {"city": "Paris"})
    assert answer["role"] == "tool" and answer["tool_call_id"] == sent_call["id"]
    assert "sunny, 21 C" in answer["content"]  # the tool's result, in whatever wrapping the framework gives it


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_structured_output(framework_run, framework):
    result, _, requests = result_of(framework_run, framework, "structured")

    assert result == {variant: WEATHER for variant, _ in STRUCTURED[framework]}
    assert [_structured_mechanism(r) for r in requests] == [how for _, how in STRUCTURED[framework]]


def _structured_mechanism(body):
    if "response_format" in body:
        schema = body["response_format"]["json_schema"]["schema"]
        assert list(schema["properties"]) == ["city", "temperature_c"], schema
        assert schema["properties"]["temperature_c"]["type"] == "integer"
        return "json_schema"
    [offered] = body["tools"]
    assert body["tool_choice"] == "required"
    assert set(offered["function"]["parameters"]["properties"]) == {"city", "temperature_c"}
    return "tool"
