"""The real Gemini CLI (@google/gemini-cli, tests/clients) run non-interactively against the function,
set up as docs say (GOOGLE_GEMINI_BASE_URL, any GEMINI_API_KEY, a HOME whose settings select API-key
auth): its large agent requests, its own tools run on the model's function calls, the routing
classifier it calls when no model is given, and what it sends for web search and for images.

Each run costs about a second; a run shared by several tests is a module-scoped fixture. Every test
checks what the CLI printed, what the upstream received, and the status of every request the CLI made
(the function's request log). Needs ``npm ci --prefix tests/clients``; skipped without it."""

import base64
import dataclasses
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

from fake_upstream import Json, Stream, chunk, completion, text_stream, usage

CLIENTS = pathlib.Path(__file__).resolve().parent / "clients"
CLI = CLIENTS / "node_modules" / "@google" / "gemini-cli" / "bundle" / "gemini.js"  # node_modules/.bin/gemini
MODEL = "qwen-turbo"
SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
    "ide": {"enabled": False},
}
TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")  # what OpenAI-compatible servers accept
PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")

if not CLI.is_file() or shutil.which("node") is None:
    pytest.skip("the Gemini CLI is not installed: run `npm ci --prefix tests/clients` (needs node)",
                allow_module_level=True)


# --- running the CLI ----------------------------------------------------------------------------

@dataclasses.dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    output: dict  # the --output-format json document ({} if stdout was not JSON)
    requests: list  # what the upstream received during the run
    calls: list  # the function's request log lines for the run: (method, url, status)
    workdir: pathlib.Path

    @property
    def chats(self):
        """The generation requests the upstream got (countTokens asks for one token: not these)."""
        return [r["json"] for r in self.requests
                if r["path"].endswith("/chat/completions") and r["json"].get("max_tokens") != 1]

    @property
    def counts(self):
        return [r["json"] for r in self.requests
                if r["path"].endswith("/chat/completions") and r["json"].get("max_tokens") == 1]

    def __str__(self):
        return f"exit {self.returncode}\nstdout:\n{self.stdout[-3000:]}\nstderr:\n{self.stderr[-3000:]}\ncalls: {self.calls}"


def run_cli(function, upstream, model_script, prompt, model=MODEL, files=None, output_format="json", timeout=120):
    """Runs ``gemini -p PROMPT [-m MODEL]`` in a scratch directory holding ``files``; each upstream
    chat request is answered by ``model_script(workdir)(body)``."""
    with tempfile.TemporaryDirectory(prefix="gemini-cli-") as scratch:
        home, workdir = pathlib.Path(scratch, "home"), pathlib.Path(scratch, "work")
        (home / ".gemini").mkdir(parents=True)
        (home / ".gemini" / "settings.json").write_text(json.dumps(SETTINGS))
        workdir.mkdir()
        for name, content in (files or {}).items():
            (workdir / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GEMINI_", "CLOUDSDK_"))}
        env.update(HOME=str(home), GOOGLE_GEMINI_BASE_URL=function.url, GEMINI_API_KEY="anykey",
                   GEMINI_CLI_TRUST_WORKSPACE="true", GEMINI_CLI_NO_RELAUNCH="true", NO_COLOR="1")
        command = ["node", str(CLI), "-p", prompt, "--output-format", output_format]
        if model:
            command += ["-m", model]
        upstream.reset()
        upstream.reply(*[model_script(workdir)] * 40)
        log_start = len(function.logs())
        done = subprocess.run(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
        requests = list(upstream.requests)
        upstream.reset()
        try:
            output = json.loads(done.stdout) if output_format == "json" else {}
        except ValueError:
            output = {}
        return CliRun(done.returncode, done.stdout, done.stderr, output, requests,
                      _calls(function.logs()[log_start:]), workdir)


def _calls(log_text):
    calls = []
    for line in log_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        http = entry.get("httpRequest") if isinstance(entry, dict) else None
        if http:
            calls.append((http["requestMethod"], http["requestUrl"], http["status"]))
    return calls


# --- what the fake model says -------------------------------------------------------------------

def text_reply(body, text):
    if body.get("stream"):
        words = text.split(" ")
        return Stream(text_stream([w if i == 0 else " " + w for i, w in enumerate(words)]))
    return Json(completion(text))


def tool_call_reply(body, name, arguments, call_id):
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    if not body.get("stream"):
        return Json(completion(None, finish="tool_calls", tool_calls=[call]))
    return Stream([chunk({"role": "assistant", "content": None, "tool_calls": [{"index": 0, **call}]}),
                   chunk({}, finish="tool_calls"), chunk(choices=[], usage_=usage()), "[DONE]"])


def is_classifier(body):
    """The CLI's model router (no -m): a JSON-mode request asking for a complexity score."""
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
    return "complexity_score" in (schema.get("properties") or {})


def agent(tool=None, final="All done."):
    """A model script: the main model calls ``tool`` (name, arguments, id) once, then answers
    ``final``; the CLI's internal requests get what they ask for. ``{work}`` in string arguments
    is the scratch directory."""

    def script(workdir):
        def answer(body):
            if is_classifier(body):
                return Json(completion(json.dumps({"complexity_reasoning": "Simple read.", "complexity_score": 10})))
            if tool and not any(m["role"] == "tool" for m in body["messages"]):
                name, arguments, call_id = tool
                arguments = {k: v.format(work=workdir) if isinstance(v, str) else v for k, v in arguments.items()}
                return tool_call_reply(body, name, arguments, call_id)
            return text_reply(body, final)

        return answer

    return script


def tool_messages(chat):
    return [m for m in chat["messages"] if m["role"] == "tool"]


# --- a prompt answered --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hello_run(function, upstream_server):
    return run_cli(function, upstream_server, agent(final="Hello from the fake model!"), "Say hello")


def test_prompt_is_answered(hello_run):
    assert hello_run.returncode == 0, hello_run
    assert hello_run.output["response"] == "Hello from the fake model!"
    stats = hello_run.output["stats"]["models"][MODEL]["api"]
    assert stats["totalRequests"] == 1 and stats["totalErrors"] == 0
    assert hello_run.calls == [("POST", f"/v1beta/models/{MODEL}:streamGenerateContent", 200)]


def test_the_cli_request_is_translated(hello_run):
    [chat] = hello_run.chats
    assert chat["model"] == MODEL
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    system, user = chat["messages"]
    assert system["role"] == "system" and system["content"].startswith("You are Gemini CLI")
    assert len(system["content"]) > 10_000
    assert user["role"] == "user" and user["content"].endswith("Say hello")
    assert "<session_context>" in user["content"]
    assert (chat["temperature"], chat["top_p"]) == (1, 0.95)
    assert "reasoning_effort" not in chat  # thinkingConfig {"includeThoughts": true} only: the model decides
    tools = chat["tools"]
    assert len(tools) >= 5
    names = [t["function"]["name"] for t in tools]
    assert len(set(names)) == len(names)
    assert {"read_file", "list_directory", "glob", "grep_search"} <= set(names)
    for tool in tools:
        assert tool["type"] == "function"
        assert TOOL_NAME.match(tool["function"]["name"]), tool
        assert tool["function"]["description"]
        assert tool["function"]["parameters"]["type"] == "object", tool
    read_file = tools[names.index("read_file")]["function"]["parameters"]
    assert "file_path" in read_file["properties"] and read_file["required"] == ["file_path"]


def test_plain_text_output(function, upstream):
    run = run_cli(function, upstream, agent(final="Plain words, no JSON."), "Say something", output_format="text")

    assert run.returncode == 0, run
    assert run.stdout.strip() == "Plain words, no JSON."
    assert run.calls == [("POST", f"/v1beta/models/{MODEL}:streamGenerateContent", 200)]


def test_line_separators_in_a_streamed_answer_reach_the_cli_whole(function, upstream):
    # The CLI splits stream lines on U+2028/U+2029 too ("Incomplete JSON segment at the end") unless
    # they are written as escapes.
    final = "one\u2028two\u2029three\u0085four"
    run = run_cli(function, upstream, agent(final=final), "Say something", output_format="text")

    assert run.returncode == 0, run
    assert run.stdout.strip() == final
    assert run.calls == [("POST", f"/v1beta/models/{MODEL}:streamGenerateContent", 200)]


# --- the model calls the CLI's own tools --------------------------------------------------------

@pytest.mark.parametrize("tool,arguments,expected", [
    ("read_file", {"file_path": "{work}/notes.txt"}, "The secret word is PAPAYA-42."),
    ("list_directory", {"dir_path": "{work}"}, "notes.txt"),
], ids=["read_file", "list_directory"])
def test_the_cli_runs_its_tool_on_a_function_call(function, upstream, tool, arguments, expected):
    run = run_cli(function, upstream, agent(tool=(tool, arguments, "call_cli_1"), final="The tool said what I needed."),
                  "Use your tools on notes.txt",
                  files={"notes.txt": "The secret word is PAPAYA-42.\n", "other.md": "# other\n"})

    assert run.returncode == 0, run
    assert run.output["response"] == "The tool said what I needed."
    assert run.output["stats"]["tools"]["totalCalls"] == 1
    assert run.output["stats"]["tools"]["totalSuccess"] == 1, run.output["stats"]["tools"]
    first, second = run.chats
    assert tool_messages(first) == []
    assistant = second["messages"][-2]
    assert assistant["role"] == "assistant"
    [call] = assistant["tool_calls"]
    assert (call["id"], call["function"]["name"]) == ("call_cli_1", tool)
    assert json.loads(call["function"]["arguments"]) == {k: v.format(work=run.workdir) for k, v in arguments.items()}
    [result] = tool_messages(second)
    assert result["tool_call_id"] == "call_cli_1"
    assert expected in result["content"]
    if tool == "list_directory":
        assert "other.md" in result["content"]
    assert run.calls == [("POST", f"/v1beta/models/{MODEL}:streamGenerateContent", 200)] * 2


# --- no -m: the CLI's router asks a small model first -------------------------------------------

@pytest.fixture(scope="module")
def routed_run(function, upstream_server):
    return run_cli(function, upstream_server, agent(final="Routed answer."), "Read the README", model=None)


def test_default_model_routing_is_answered(routed_run):
    assert routed_run.returncode == 0, routed_run
    assert routed_run.output["response"] == "Routed answer."
    classifier, main = routed_run.chats
    assert is_classifier(classifier)
    assert classifier.get("stream") is not True and "tools" not in classifier
    assert classifier["messages"][0]["role"] == "system" and "Complexity Score" in classifier["messages"][0]["content"]
    # The router chose the main model from the score; the names are the CLI's own.
    assert classifier["model"] != main["model"]
    assert main["stream"] is True and main["tools"]
    # thinkingLevel HIGH, for a gemini-* name no thinking family claims: nothing a server could refuse
    assert not {"reasoning_effort", "enable_thinking", "thinking", "chat_template_kwargs"} & set(main)
    assert [status for _, _, status in routed_run.calls] == [200, 200]
    assert routed_run.calls[0][1] == f"/v1beta/models/{classifier['model']}:generateContent"
    assert routed_run.calls[1][1] == f"/v1beta/models/{main['model']}:streamGenerateContent"


def test_one_alias_pattern_sends_all_the_clis_own_model_names_to_the_teams_model(serve, upstream_server):
    team = serve(MODEL_ALIASES="gemini-*=qwen-turbo", ALLOWED_MODELS="qwen-turbo")
    run = run_cli(team, upstream_server, agent(final="Routed to the team model."), "Read the README", model=None)

    assert run.returncode == 0, run
    assert run.output["response"] == "Routed to the team model."
    assert {chat["model"] for chat in run.chats} == {"qwen-turbo"}
    assert len(run.calls) >= 2 and all(status == 200 for _, _, status in run.calls)
    assert all(url.startswith("/v1beta/models/gemini-") for _, url, _ in run.calls)


def test_the_router_schema_reaches_the_upstream_as_standard_json_schema(routed_run):
    classifier = routed_run.chats[0]
    schema = classifier["response_format"]["json_schema"]["schema"]
    assert schema["type"] == "object"
    assert schema["properties"]["complexity_score"]["type"] == "integer"
    assert schema["properties"]["complexity_reasoning"]["type"] == "string"


# --- the CLI's web search tool: Google's built-in googleSearch ----------------------------------

def test_web_search_is_refused_cleanly_and_the_cli_goes_on(function, upstream):
    run = run_cli(function, upstream, agent(tool=("google_web_search", {"query": "weather in Paris"}, "call_ws"),
                                            final="I could not search."), "What is the weather in Paris?")

    assert run.returncode == 0, run
    assert run.output["response"] == "I could not search."
    # The tool asks another model with Google's built-in search, which this endpoint cannot run: a 400.
    assert [(method, status) for method, _, status in run.calls] == [("POST", 200), ("POST", 400), ("POST", 200)]
    assert run.calls[1][1].endswith(":generateContent")
    [result] = tool_messages(run.chats[-1])
    assert result["tool_call_id"] == "call_ws"
    assert "googleSearch: Google's built-in tools cannot run on this endpoint" in result["content"]
    assert len(run.chats) == 2  # the refused request never reached the upstream


# --- an image read by the CLI: a functionResponse with inline data, and countTokens --------------

@pytest.fixture(scope="module")
def image_run(function, upstream_server):
    script = agent(tool=("read_file", {"file_path": "{work}/pixel.png"}, "call_img"), final="A single pixel.")
    return run_cli(function, upstream_server, script, "Describe pixel.png", files={"pixel.png": PNG_1PX})


def test_an_image_read_by_the_cli_reaches_the_upstream(image_run):
    assert image_run.returncode == 0, image_run
    assert image_run.output["response"] == "A single pixel."
    first, second = image_run.chats
    [result] = tool_messages(second)
    assert result["tool_call_id"] == "call_img"
    image = second["messages"][-1]
    assert image["role"] == "user"
    [part] = image["content"]
    assert part["type"] == "image_url" and part["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")
    statuses = {(method, url.rsplit(":", 1)[-1]): status for method, url, status in image_run.calls}
    assert statuses[("POST", "streamGenerateContent")] == 200


def test_count_tokens_of_a_function_response_turn_is_answered(image_run):
    count_calls = [call for call in image_run.calls if call[1].endswith(":countTokens")]
    assert count_calls, image_run.calls
    assert all(status == 200 for _, _, status in count_calls), count_calls
    # The turn holds the response but not its call: the response is counted as text, with the image.
    [count] = image_run.counts
    content = count["messages"][-1]["content"]
    assert '"functionResponse"' in content[0]["text"] and content[1]["type"] == "image_url"
