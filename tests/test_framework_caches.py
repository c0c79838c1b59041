"""Agent frameworks that use cached contents, unchanged, against the function (each in the frameworks'
own environment, see tests/test_frameworks.py, running a recipe of tests/frameworks/):

- Google's ADK with context caching on (``ContextCacheConfig(min_tokens=0, cache_intervals=2,
  ttl_seconds=60)``) over one session of four turns with a tool: ADK creates a cachedContent, sends
  ``cachedContent`` with only the turns after it, replaces the cache after two turns and deletes the
  old one; the upstream sees the whole conversation every time, each request beginning with the one
  before it. Its model is named gemini-2.5-flash: for that name ADK applies Google's floor of 2,048
  tokens, so the upstream reports 5,000 prompt tokens.
- LangChain's documented flow: google-genai 2.x uploads a file, caches it, and
  ``ChatGoogleGenerativeAI(cached_content=...)`` asks about it; with ``bind_tools`` it gets Google's 400.

The function aliases the Gemini model names the recipes use to the upstream's qwen-turbo. A recording
proxy between the framework and the function keeps what the framework sent."""

import itertools
import json
import pathlib
import subprocess

import pytest

from fake_upstream import Json, completion, tool_call, usage
from helpers import KEY, client_env, google_sha256
from recording_proxy import RecordingProxy
from test_frameworks import framework_python  # noqa: F401 (a fixture)

TESTS = pathlib.Path(__file__).resolve().parent
QUESTIONS = ["What is the weather in Paris?", "And in Lyon?", "And in Nice?", "And in Lille?"]  # as the recipe asks
PROMPT_TOKENS = 5000  # over ADK's floor for gemini-2.5-* (2,048)


def respond(body):
    """The upstream as a model: get_weather for the city of the last question, then a sentence once
    its result is back; a token count (max_tokens 1, the function's at caches.create) is counted."""
    answer_usage = usage(prompt=PROMPT_TOKENS, completion=1)
    last = body["messages"][-1]
    if body.get("max_tokens") == 1:
        return Json(completion("x", usage_=answer_usage))
    if last["role"] == "tool":
        return Json(completion(f"It is sunny in {json.loads(last['content'])['city']}.", usage_=answer_usage))
    city = last["content"].rstrip("?").split()[-1]
    return Json(completion(None, finish="tool_calls", usage_=answer_usage,
                           tool_calls=[tool_call("get_weather", {"city": city}, f"call_{city.lower()}")]))


@pytest.fixture(scope="module")
def run_recipe(serve, upstream_server, framework_python, tmp_path_factory):  # noqa: F811 (the fixture)
    """run_recipe(name, responder) -> (its scenario's result, what it sent the function, the upstream's
    requests, what the function logged it served: (method, path, status)), for
    tests/frameworks/<name>_recipe.py's one scenario."""
    function = serve(STORAGE_DIR=str(tmp_path_factory.mktemp("framework-caches")), MODEL_ALIASES="gemini-*=qwen-turbo")

    def run(name, responder):
        proxy = RecordingProxy(function.url)
        upstream_server.reset()
        upstream_server.responder = responder
        log_start = len(function.logs())
        try:
            command = [str(framework_python), str(TESTS / "frameworks" / f"{name}_recipe.py"), proxy.url, KEY]
            done = subprocess.run(command, cwd=TESTS, env=client_env(), capture_output=True, text=True, timeout=180)
            recorded = [r["json"] for r in upstream_server.chat_requests]
        finally:
            upstream_server.reset()
            proxy.close()
        assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stderr[-5000:]}\n{done.stdout}"
        [output] = json.loads(done.stdout.strip().splitlines()[-1]).values()
        assert output["error"] is None, output["error"]
        logged = [json.loads(line).get("httpRequest") for line in function.logs()[log_start:].splitlines()
                  if line.startswith("{")]
        served = [(entry["requestMethod"], entry["requestUrl"], entry["status"]) for entry in logged if entry]
        return output["result"], proxy.exchanges, recorded, served

    return run


@pytest.fixture(scope="module")
def cached_session(run_recipe):
    """ADK's session, run once."""
    return run_recipe("adk_cache", respond)


# --- ADK ----------------------------------------------------------------------------------------

def test_the_session_runs_its_tool_every_turn(cached_session):
    turns, _, _, _ = cached_session

    assert [turn["text"] for turn in turns] == [f"It is sunny in {q.rstrip('?').split()[-1]}." for q in QUESTIONS]


def _kind(exchange):
    """What a request ADK made was: generate, create (a cache), delete (a cache), or its method and path."""
    path = exchange.path.split("?")[0]
    if path.endswith(":generateContent"):
        return "generate"
    if "/cachedContents" in path and exchange.method in ("POST", "DELETE"):
        return {"POST": "create", "DELETE": "delete"}[exchange.method]
    return f"{exchange.method} {path}"


def test_adk_creates_uses_and_replaces_caches(cached_session):
    turns, exchanges, _, served = cached_session

    # Two generateContent calls a turn (the tool's call, then the answer). ADK only fingerprints the
    # first; the second creates a cache holding the question and the call; it serves two turns, then
    # is deleted, and a new one, holding the conversation so far, takes its place.
    assert [(_kind(e), e.status) for e in exchanges] == [(kind, 200) for kind in ["generate", "create", "generate"]
                                                         + ["generate"] * 2 + ["delete", "create"] + ["generate"] * 4]
    first, second = [e.json()["name"] for e in exchanges if _kind(e) == "create"]
    generated = [e for e in exchanges if _kind(e) == "generate"]
    bodies = [e.request for e in generated]
    assert [b.get("cachedContent") for b in bodies] == [None] + [first] * 3 + [second] * 4
    [delete] = [e for e in exchanges if _kind(e) == "delete"]
    assert delete.path.endswith(f"/{first}")
    # A request with a cache sends neither system instruction nor tools, and only the turns after the cache.
    assert {"systemInstruction", "tools"} <= set(bodies[0])
    for body in bodies[1:]:
        assert not {"systemInstruction", "tools", "toolConfig"} & set(body), body
    assert [len(b["contents"]) for b in bodies] == [1, 1, 3, 5, 1, 3, 5, 7]
    # ADK's own view: the cache it used for each turn's answer.
    assert [turn["caches"][-1]["cache_name"] for turn in turns] == [first, first, second, second]
    # The function's log: the caches created, the first one deleted, all answered 200.
    version = generated[0].path.split("/")[1]
    assert [line for line in served if "/cachedContents" in line[1]] == [
        ("POST", f"/{version}/cachedContents", 200), ("DELETE", f"/{version}/{first}", 200),
        ("POST", f"/{version}/cachedContents", 200)]
    assert [line for line in served if line[1].endswith(":generateContent")] == \
        [("POST", generated[0].path.split("?")[0], 200)] * 8


def test_the_upstream_sees_the_whole_conversation_with_a_stable_prefix(cached_session):
    _, _, recorded, _ = cached_session
    counts = [r for r in recorded if r.get("max_tokens") == 1]  # at each caches.create
    sent = [r for r in recorded if r.get("max_tokens") != 1]

    assert len(counts) == 2 and len(sent) == 8
    system = sent[0]["messages"][0]
    assert system["role"] == "system" and "Be brief." in system["content"]
    assert all(r["tools"] == sent[0]["tools"] for r in sent + counts)
    assert [t["function"]["name"] for t in sent[0]["tools"]] == ["get_weather"]
    # Each request begins with the one before it, as sent: the upstream's prefix cache can hit.
    for before, after in itertools.pairwise(sent):
        assert after["messages"][:len(before["messages"])] == before["messages"]
    # And each cache's count primed exactly the prefix the next requests begin with.
    for count in counts:
        assert any(r["messages"][:len(count["messages"])] == count["messages"] for r in sent)
    # The last request holds the whole conversation: every question, call and result.
    last = sent[-1]["messages"]
    assert [m["content"] for m in last if m["role"] == "user"] == QUESTIONS
    assert [m["tool_call_id"] for m in last if m["role"] == "tool"] == ["call_paris", "call_lyon", "call_nice",
                                                                          "call_lille"]
    assert len(last) == 1 + 3 * 4 + 3  # system; question, call, result, answer of three turns; the fourth's first three


# --- LangChain ----------------------------------------------------------------------------------

LINE = "The launch is on Tuesday.\n"  # the document, as the recipe writes it
DOCUMENT = LINE * (8 * 1024 * 1024 // len(LINE) + 1000)
QUESTION = "Summarize the main points of the content."
CACHE_REFUSAL = ("CachedContent can not be used with GenerateContent request setting system_instruction, tools or "
                 "tool_config. Proposed fix: move those values to CachedContent from GenerateContent request.")


def test_langchain_asks_about_a_cached_file_and_gets_googles_400_with_tools(run_recipe):
    result, exchanges, recorded, served = run_recipe("langchain_cache", lambda body: None)  # the upstream's echo
    sent = [r for r in recorded if r.get("max_tokens") != 1]

    # google-genai 2.x: v1beta by default, the file in two chunks, its hash as Google gives it.
    assert result["file"]["uri"].split("/")[-3] == "v1beta"
    assert (result["file"]["size"], result["file"]["sha256Hash"]) == (len(DOCUMENT), google_sha256(DOCUMENT.encode()))
    # (The chunks go to the upload URL the function gave, past the proxy, which sends the function's Host.)
    assert [line for line in served if line[1].startswith("/upload/")] == [("POST", "/upload/v1beta/files", 200)] * 3
    # The question after the cache's file, one user message, under the cache's system instruction.
    assert sent[0]["messages"] == [{"role": "system", "content": "You answer from the file."},
                                   {"role": "user", "content": f"{DOCUMENT}\n{QUESTION}"}]
    assert result["answer"] == f"echo: {DOCUMENT}\n{QUESTION}"
    [generate, refused] = [e for e in exchanges if e.path.endswith(":generateContent")]
    assert generate.request["cachedContent"] == result["cache"]
    assert (refused.status, "tools" in refused.request) == (400, True)
    assert CACHE_REFUSAL in result["refused"]
    assert len(sent) == 1  # the refused call never reached the upstream
