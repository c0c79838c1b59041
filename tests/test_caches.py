"""cachedContents: create/get/list/patch/delete over the store (both backends), and a cache used in
generateContent, streamGenerateContent and countTokens: what the upstream receives, Google's refusals,
isolation, expiry (a moved clock), quotas."""

import base64
import datetime
import hashlib
import json
import time

import pytest
from google import genai
from google.genai import errors, types

from fake_upstream import Json, completion, text_stream, tool_call, usage
from fake_upstream import Stream as SseStream
from gemini_compat import caches, storage
from gemini_compat.caches import NOT_WITH_CACHE
from gemini_compat.config import Settings
from gemini_compat.files import generated_id
from gemini_compat.request_translation import chat_request
from helpers import KEY, error_of, sse_chunks

MODEL = "qwen-turbo"
CACHES = "/v1beta/cachedContents"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
OUTPUT_FIELDS = {"name", "model", "displayName", "createTime", "updateTime", "expireTime", "usageMetadata"}
SYSTEM = {"parts": [{"text": "You answer questions about the attached notes."}]}
TOOLS = [{"functionDeclarations": [{"name": "lookup", "description": "Look a word up",
                                    "parameters": {"type": "OBJECT", "properties": {"word": {"type": "STRING"}}}}]}]
NOTES = "Notes: the meeting is on Tuesday.\n"
OTHER_KEY = "another-key-456"


def user(text):
    return {"role": "user", "parts": [{"text": text}]}


def model_turn(text):
    return {"role": "model", "parts": [{"text": text}]}


def seconds(text):
    return datetime.datetime.fromisoformat(text).timestamp()


@pytest.fixture
def env(storage_env):
    return storage_env


@pytest.fixture
def app(in_process, env, upstream):
    return in_process(**env)


@pytest.fixture
def clock(monkeypatch):
    """Now, for caches and files alike, as a list of one number the test moves."""
    now = [float(int(time.time()))]  # the store's own times (a file's creation) are real ones
    monkeypatch.setattr("gemini_compat.clock.now", lambda: now[0])
    return now


def create(app, key=KEY, **fields):
    return app.post(CACHES, {"model": f"models/{MODEL}", **fields}, key=key)


def created(app, **fields):
    answer = create(app, **fields)
    assert answer.status_code == 200, answer.text
    return answer.json()


def upload(app, data, mime_type, key=KEY):
    """A file uploaded the way the SDKs do it (start, then one final chunk): its File resource."""
    start = app.post("/upload/v1beta/files", {"file": {"displayName": "notes"}}, key=key, headers={
        "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
        "X-Goog-Upload-Header-Content-Length": str(len(data)), "X-Goog-Upload-Header-Content-Type": mime_type})
    assert start.status_code == 200, start.text
    url = start.headers["X-Goog-Upload-URL"]
    answer = app.post(url[url.index("/upload/"):], data, key=None, headers={
        "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"})
    assert answer.status_code == 200, answer.text
    return answer.json()["file"]


def put_file(store, data, mime_type, key=KEY):
    """A file put into the store as files.py keeps one (the upload itself is test_files.py's): its File's fields."""
    file_id = generated_id()
    store.put(f"files/{owner(key)}/{file_id}", data, mime_type, {"displayName": "notes"})
    return {"name": f"files/{file_id}", "uri": f"http://localhost/v1beta/files/{file_id}", "mimeType": mime_type}


def file_part(file):
    return {"fileData": {"fileUri": file["uri"], "mimeType": file["mimeType"]}}


@pytest.fixture
def store(env, monkeypatch):
    """The store the function uses, opened here (the emulator's address is read when it is opened)."""
    if "STORAGE_EMULATOR_HOST" in env:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", env["STORAGE_EMULATOR_HOST"])
    return storage.open_store(Settings.from_env(env))


def owner(key=KEY):
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def cache_id(cache):
    return cache["name"].removeprefix("cachedContents/")


# --- create, get, list, patch, delete -------------------------------------------------------------

def test_create_stores_everything_and_answers_only_the_output_view(app, upstream, store, clock):
    file = put_file(store, NOTES.encode(), "text/plain")
    upstream.reply(Json(completion("x", usage_=usage(prompt=321, completion=1))))
    cache = created(app, displayName="notes", systemInstruction=SYSTEM, tools=TOOLS, ttl="300.5s",
                    contents=[{"role": "user", "parts": [file_part(file), {"text": "Keep these."}]}])
    assert set(cache) == OUTPUT_FIELDS
    assert cache["model"] == f"models/{MODEL}" and cache["displayName"] == "notes"
    assert cache["usageMetadata"] == {"totalTokenCount": 321}
    assert len(cache_id(cache)) == 16 and cache_id(cache).isalnum()
    assert seconds(cache["createTime"]) == seconds(cache["updateTime"]) == clock[0]
    assert seconds(cache["expireTime"]) - clock[0] == 300.5
    # The one upstream call counted the cache as countTokens counts: its system, tools and the file's text.
    count = upstream.last
    assert count["max_tokens"] == 1 and count["tools"][0]["function"]["name"] == "lookup"
    assert count["messages"] == [{"role": "system", "content": SYSTEM["parts"][0]["text"]},
                                 {"role": "user", "content": NOTES + "\nKeep these."}]
    assert store.head(f"cacheFiles/{owner()}/{cache_id(cache)}/{file['name'].removeprefix('files/')}").size == len(NOTES)
    assert app.get(f"/v1beta/{cache['name']}").json() == cache


def test_the_default_lifetime_is_an_hour_and_the_sdk_spelling_is_read(app, clock):
    cache = created(app, system_instruction=SYSTEM, display_name="snake")
    assert seconds(cache["expireTime"]) - clock[0] == 3600
    assert cache["displayName"] == "snake"


@pytest.mark.parametrize("fields, where, words", [
    ({"ttl": "60s", "expireTime": "2030-01-01T00:00:00Z"}, "", "ttl or expireTime, not both"),
    ({"ttl": "0s"}, "ttl", "future"),
    ({"ttl": "60"}, "ttl", "is not a proto3 Duration"),
    ({"ttl": "99999999999s"}, "ttl", "CACHE_MAX_TTL"),
    ({"expireTime": "2030-01-01T00:00:00"}, "expireTime", "is not an RFC 3339 time with its offset"),
    ({"expireTime": "2020-01-01T00:00:00Z"}, "expireTime", "future"),
    ({"expireTime": "2030-02-30T00:00:00Z"}, "expireTime", "not a valid time"),
    ({"displayName": "x" * 129}, "displayName", "too long"),
    ({"name": "cachedContents/mine"}, "name", "unknown field"),
    ({"contents": [{"parts": [{"text": "a"}], "rol": "user"}]}, "contents[0].rol", "unknown field"),
    ({"tools": [{"googleSearch": {}}]}, "tools[0].googleSearch", "built-in"),
    ({"contents": [user("a")], "model": "qwen-turbo"}, "model", "pattern"),
    ({"model": "models/a b"}, "model", "not a valid model ID"),
    ({"tools": TOOLS}, "", "holds neither"),
])
def test_create_refuses_what_google_refuses_naming_the_field(app, upstream, store, fields, where, words):
    answer = create(app, **fields)
    error = error_of(answer)
    assert answer.status_code == 400, error
    assert error["message"].startswith(f"{where}: " if where else "") and words in error["message"], error
    assert upstream.chat_requests == []
    assert store.list(f"cachedContents/{owner()}/", 10)[0] == []


def test_a_model_the_team_may_not_use_is_not_found(in_process, env, upstream):
    app = in_process(**env, ALLOWED_MODELS="other-model")
    assert create(app).status_code == 404


def test_a_file_of_another_owner_cannot_be_cached(app, upstream, store):
    file = put_file(store, NOTES.encode(), "text/plain", key=OTHER_KEY)
    answer = create(app, contents=[{"role": "user", "parts": [file_part(file)]}])
    assert answer.status_code == 403 and "File" in error_of(answer)["message"]
    assert store.list(f"cachedContents/{owner()}/", 10)[0] == []


def test_list_pages_to_the_end(app, env):
    if "STORAGE_BUCKET" in env:
        pytest.skip("the storage emulator does not honour max_results: paging is shown on the folder store")
    names = sorted(created(app, displayName=f"c{n}", contents=[user("a")])["name"] for n in range(5))
    seen, token, pages = [], None, 0
    while True:
        page = app.get(CACHES, params={"pageSize": "2", **({"pageToken": token} if token else {})}).json()
        assert 1 <= len(page["cachedContents"]) <= 2 and all(set(c) == OUTPUT_FIELDS for c in page["cachedContents"])
        seen += [cache["name"] for cache in page["cachedContents"]]
        pages += 1
        token = page.get("nextPageToken")
        if not token:
            break
    assert sorted(seen) == names and pages == 3
    assert len(app.get(CACHES, params={"pageSize": "5000"}).json()["cachedContents"]) == 5
    assert app.get(CACHES, params={"pageSize": "x"}).status_code == 400


def test_patch_moves_the_expiration_only(app, clock):
    cache = created(app, ttl="60s", contents=[user("a")])
    path = f"/v1beta/{cache['name']}"
    clock[0] += 10
    answer = app.request("PATCH", path, {"ttl": "7600s"})
    assert answer.status_code == 200, answer.text
    patched = answer.json()
    assert seconds(patched["expireTime"]) == clock[0] + 7600 and seconds(patched["updateTime"]) == clock[0]
    assert patched["createTime"] == cache["createTime"] and set(patched) == set(cache)
    aware = datetime.datetime.fromtimestamp(clock[0] + 500, datetime.timezone(datetime.timedelta(hours=2)))
    answer = app.request("PATCH", path, {"expire_time": aware.isoformat()}, params={"updateMask": "expireTime"})
    assert seconds(answer.json()["expireTime"]) == clock[0] + 500
    assert app.get(path).json() == answer.json()
    naive = app.request("PATCH", path, {"expireTime": aware.replace(tzinfo=None).isoformat()})
    assert naive.status_code == 400 and error_of(naive)["message"].startswith("expireTime: ")
    for body, mask in [({"displayName": "new"}, None), ({"ttl": "5s"}, "ttl,displayName"),
                       ({"contents": [user("x")]}, None)]:
        refused = app.request("PATCH", path, body, params={"updateMask": mask} if mask else None)
        assert refused.status_code == 400 and "only expiration is updatable" in error_of(refused)["message"]
    both = app.request("PATCH", path, {"ttl": "5s", "expireTime": aware.isoformat()})
    assert both.status_code == 400
    assert app.get(path).json()["expireTime"] == answer.json()["expireTime"]


def test_delete_removes_the_cache_and_its_file_copies(app, store):
    file = put_file(store, NOTES.encode(), "text/plain")
    cache = created(app, contents=[{"role": "user", "parts": [file_part(file)]}])
    assert len(store.list(f"cacheFiles/{owner()}/{cache_id(cache)}/", 10)[0]) == 1
    path = f"/v1beta/{cache['name']}"
    answer = app.request("DELETE", path)
    assert answer.status_code == 200 and answer.json() == {}
    assert store.list(f"cacheFiles/{owner()}/", 10)[0] == []
    assert store.head(f"cachedContents/{owner()}/{cache_id(cache)}") is None
    assert app.get(path).status_code == 403 and app.request("DELETE", path).status_code == 403
    assert app.get(f"/v1beta/{file['name']}").status_code == 200  # the file itself stays


def test_another_owner_sees_nothing(app, upstream):
    cache = created(app, contents=[user("secret")])
    path = f"/v1beta/{cache['name']}"
    for method, body in [("GET", None), ("PATCH", {"ttl": "5s"}), ("DELETE", None)]:
        answer = app.request(method, path, body, key=OTHER_KEY)
        assert answer.status_code == 403, answer.text
        assert error_of(answer)["message"] == (f"You do not have permission to access the CachedContent "
                                               f"{cache_id(cache)} or it may not exist.")
    assert app.get(CACHES, key=OTHER_KEY).json() == {}
    answer = app.post(GENERATE, {"cachedContent": cache["name"], "contents": [user("q")]}, key=OTHER_KEY)
    assert answer.status_code == 403
    assert app.get(path).status_code == 200


@pytest.mark.parametrize("scope, shared", [("key", False), ("team", True)])
def test_in_team_mode_caches_are_per_access_key_or_the_teams(in_process, env, upstream, scope, shared):
    app = in_process(**env, UPSTREAM_API_KEY="team-upstream-key", ACCESS_KEYS=f"alice={KEY}, bob={OTHER_KEY}",
                     FILES_SCOPE=scope)
    cache = created(app, contents=[user("a")])
    assert upstream.last["max_tokens"] == 1 and upstream.chat_requests[-1]["headers"]["Authorization"].endswith(
        "team-upstream-key")
    assert (app.get(f"/v1beta/{cache['name']}", key=OTHER_KEY).status_code == 200) is shared
    answer = app.post(GENERATE, {"cachedContent": cache["name"], "contents": [user("q")]}, key=OTHER_KEY)
    assert answer.status_code == (200 if shared else 403)


def test_an_expired_cache_is_gone_everywhere_and_deleted(app, upstream, store, clock):
    file = put_file(store, NOTES.encode(), "text/plain")
    cache = created(app, ttl="60s", contents=[{"role": "user", "parts": [file_part(file)]}])
    listed = created(app, ttl="60s", contents=[user("a")])
    path = f"/v1beta/{cache['name']}"
    clock[0] += 59
    assert app.get(path).status_code == 200
    clock[0] += 1
    assert app.get(path).status_code == 403
    assert app.post(GENERATE, {"cachedContent": cache["name"], "contents": [user("q")]}).status_code == 403
    assert app.request("PATCH", path, {"ttl": "600s"}).status_code == 403
    assert app.get(CACHES).json() == {}  # the other one expired too, and was deleted by the list
    assert store.list(f"cachedContents/{owner()}/", 10)[0] == [] and store.list(f"cacheFiles/{owner()}/", 10)[0] == []
    assert app.get(f"/v1beta/{listed['name']}").status_code == 403


# --- use -------------------------------------------------------------------------------------------

def test_generate_sends_the_cache_byte_identical_before_each_new_turn(app, upstream, store):
    file = put_file(store, NOTES.encode(), "text/plain")
    cache = created(app, systemInstruction=SYSTEM, tools=TOOLS, toolConfig={"functionCallingConfig": {"mode": "AUTO"}},
                    contents=[{"role": "user", "parts": [file_part(file), {"text": "Read them."}]},
                              model_turn("Read.")])
    sent = []
    for question in ("When is the meeting?", "Where is it?"):
        answer = app.post(GENERATE, {"cachedContent": cache["name"], "contents": [user(question)],
                                     "generationConfig": {"temperature": 0.5}})
        assert answer.status_code == 200, answer.text
        sent.append(upstream.last)
    stream = app.post(f"/v1beta/models/{MODEL}:streamGenerateContent", params={"alt": "sse"},
                      body={"cachedContent": cache["name"], "contents": [user("And when?")]})
    assert stream.status_code == 200 and sse_chunks(stream)
    sent.append(upstream.last)
    prefixes = [json.dumps({"system_and_cache": request["messages"][:-1], "tools": request["tools"],
                            "tool_choice": request["tool_choice"]}).encode() for request in sent]
    assert prefixes[0] == prefixes[1] == prefixes[2]
    first = sent[0]
    assert first["messages"][:3] == [{"role": "system", "content": SYSTEM["parts"][0]["text"]},
                                     {"role": "user", "content": NOTES + "\nRead them."},
                                     {"role": "assistant", "content": "Read."}]
    assert [request["messages"][-1]["content"] for request in sent] == ["When is the meeting?", "Where is it?",
                                                                      "And when?"]
    assert first["temperature"] == 0.5 and "temperature" not in sent[2]


def test_the_cache_outlives_its_file(app, upstream, clock):
    file = upload(app, NOTES.encode(), "text/plain")
    cache = created(app, ttl="300000s", contents=[{"role": "user", "parts": [file_part(file)]}])
    assert app.request("DELETE", f"/v1beta/{file['name']}").status_code == 200
    assert app.post(GENERATE, {"cachedContent": cache["name"], "contents": [user("q")]}).status_code == 200
    clock[0] += 49 * 3600  # past the file's own 48 h
    answer = app.post(GENERATE, {"cachedContent": cache["name"], "contents": [user("q")]})
    assert answer.status_code == 200, answer.text
    assert upstream.last["messages"][0] == {"role": "user", "content": NOTES + "\nq"}


def test_an_image_file_in_a_cache_reaches_the_upstream_as_its_bytes(app, upstream, store):
    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5"
                           "ErkJggg==")
    file = put_file(store, png, "image/png")
    cache = created(app, contents=[{"role": "user", "parts": [file_part(file)]}])
    assert app.post(GENERATE, {"cachedContent": cache["name"], "contents": [user("what is it?")]}).status_code == 200
    content = upstream.last["messages"][0]["content"]
    assert content[0]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png).decode()


def test_a_large_cache_is_counted_in_the_request_memory_budget(in_process, env, upstream):
    cache = created(in_process(**env), contents=[user("x" * (3 << 20))])
    small = in_process(**env, MAX_REQUEST_BYTES=str(1 << 20), REQUEST_MEMORY_BYTES=str(6 << 20))
    answer = small.post(GENERATE, {"cachedContent": cache["name"], "contents": [user("q")]})
    assert answer.status_code == 400 and "REQUEST_MEMORY_BYTES" in error_of(answer)["message"]
    assert upstream.last["max_tokens"] == 1  # only create's count went upstream


def test_a_call_at_the_end_of_the_cache_is_answered_in_the_request(app, upstream):
    call = {"role": "model", "parts": [{"functionCall": {"name": "lookup", "args": {"word": "Tuesday"}}}]}
    cache = created(app, tools=TOOLS, contents=[user("Look up Tuesday."), call])
    response = {"role": "user", "parts": [{"functionResponse": {"name": "lookup", "response": {"meaning": "a day"}}}]}
    upstream.reply(Json(completion("It is a day.")))
    answer = app.post(GENERATE, {"cachedContent": cache["name"], "contents": [response]})
    assert answer.status_code == 200, answer.text
    messages = upstream.last["messages"]
    assert messages[1]["tool_calls"][0]["id"] == messages[2]["tool_call_id"] == "call00001"
    assert messages[2] == {"role": "tool", "tool_call_id": "call00001", "content": '{"meaning": "a day"}'}


def test_a_cached_call_answered_by_the_model_reaches_the_client(app, upstream):
    cache = created(app, tools=TOOLS, contents=[user("Look something up.")])
    upstream.reply(Json(completion(None, finish="tool_calls", tool_calls=[tool_call("lookup", {"word": "x"})])))
    answer = app.post(GENERATE, {"cachedContent": cache["name"], "contents": [user("Now.")]})
    assert answer.json()["candidates"][0]["content"]["parts"][0]["functionCall"]["name"] == "lookup"


@pytest.mark.parametrize("field, value", [("systemInstruction", SYSTEM), ("tools", TOOLS),
                                          ("toolConfig", {"functionCallingConfig": {"mode": "NONE"}})])
def test_what_the_cache_holds_cannot_be_sent_next_to_it(app, upstream, field, value):
    cache = created(app, contents=[user("a")])
    calls = len(upstream.requests)
    for path in (GENERATE, f"/v1beta/models/{MODEL}:streamGenerateContent"):
        answer = app.post(path, {"cachedContent": cache["name"], "contents": [user("q")], field: value})
        assert answer.status_code == 400 and error_of(answer)["message"] == NOT_WITH_CACHE
    counted = app.post(f"/v1beta/models/{MODEL}:countTokens", {"generateContentRequest": {
        "cachedContent": cache["name"], "contents": [user("q")], field: value}})
    assert counted.status_code == 400 and error_of(counted)["message"] == NOT_WITH_CACHE
    assert len(upstream.requests) == calls


def test_the_cache_serves_only_its_own_model(in_process, env, upstream):
    app = in_process(**env, MODEL_ALIASES="gemini-2.5-flash=qwen-turbo")
    cache = created(app, contents=[user("a")])
    answer = app.post("/v1beta/models/gemini-2.5-flash:generateContent",
                      {"cachedContent": cache["name"], "contents": [user("q")]})
    assert answer.status_code == 400
    assert error_of(answer)["message"] == ("Model used by GenerateContent request (models/gemini-2.5-flash) and "
                                           f"CachedContent (models/{MODEL}) has to be the same.")
    aliased = created(app, model="models/gemini-2.5-flash", contents=[user("a")])
    assert app.post("/v1beta/models/gemini-2.5-flash:generateContent",
                    {"cachedContent": aliased["name"], "contents": [user("q")]}).status_code == 200
    assert upstream.last["model"] == MODEL


@pytest.mark.parametrize("name", ["abc", "cachedContents/", "cachedContents/Upper", "cachedContents/a/b"])
def test_a_cache_name_that_names_none_is_400(app, upstream, name):
    answer = app.post(GENERATE, {"cachedContent": name, "contents": [user("q")]})
    assert answer.status_code == 400 and error_of(answer)["message"].startswith("cachedContent: ")


def test_count_tokens_with_a_cache(app, upstream):
    upstream.reply(Json(completion("x", usage_=usage(prompt=40, completion=1))))
    cache = created(app, systemInstruction=SYSTEM, contents=[user("Long context.")])
    upstream.reply(Json(completion("x", usage_=usage(prompt=47, completion=1))))
    answer = app.post(f"/v1beta/models/{MODEL}:countTokens",
                      {"generateContentRequest": {"cachedContent": cache["name"], "contents": [user("q")]}})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"totalTokens": 47, "cachedContentTokenCount": 40}
    assert upstream.last["messages"] == [{"role": "system", "content": SYSTEM["parts"][0]["text"]},
                                         {"role": "user", "content": "Long context.\nq"}]
    assert upstream.last["max_tokens"] == 1


def test_count_tokens_with_a_cache_holding_a_file(app, upstream, store):
    file = put_file(store, NOTES.encode(), "text/plain")
    cache = created(app, contents=[{"role": "user", "parts": [file_part(file)]}])
    answer = app.post(f"/v1beta/models/{MODEL}:countTokens",
                      {"generateContentRequest": {"cachedContent": cache["name"], "contents": [user("q")]}})
    assert answer.status_code == 200, answer.text
    assert upstream.last["messages"] == [{"role": "user", "content": NOTES + "\nq"}]


def test_an_upstream_failure_at_create_leaves_no_cache(app, upstream, store):
    file = put_file(store, NOTES.encode(), "text/plain")
    upstream.reply(Json({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
                        status=401))
    answer = create(app, contents=[{"role": "user", "parts": [file_part(file)]}])
    assert answer.status_code in (400, 401, 403) and "Incorrect API key" in error_of(answer)["message"]
    assert store.list(f"cachedContents/{owner()}/", 10)[0] == [] and store.list(f"cacheFiles/{owner()}/", 10)[0] == []


def test_cache_min_tokens_answers_googles_400(in_process, env, upstream):
    app = in_process(**env, CACHE_MIN_TOKENS="4096")
    upstream.reply(Json(completion("x", usage_=usage(prompt=416, completion=1))))
    answer = create(app, contents=[user("short")])
    assert answer.status_code == 400
    assert error_of(answer)["message"] == "Cached content is too small. total_token_count=416, min_total_token_count=4096"
    assert app.get(CACHES).json() == {}


def test_without_counting_the_pass_through_key_is_proved_once(in_process, env, upstream):
    app = in_process(**env, CACHE_TOKEN_COUNT="none")
    cache = created(app, contents=[user("a")])
    assert "usageMetadata" not in cache and set(cache) == OUTPUT_FIELDS - {"usageMetadata", "displayName"}
    assert [r["path"] for r in upstream.requests] == ["/v1/models"]
    created(app, contents=[user("b")])
    assert len(upstream.requests) == 1
    counted = app.post(f"/v1beta/models/{MODEL}:countTokens",
                       {"generateContentRequest": {"cachedContent": cache["name"], "contents": [user("q")]}})
    assert "cachedContentTokenCount" not in counted.json()


def test_quotas_count_caches_and_their_copies(in_process, env, upstream, store):
    app = in_process(**env, STORAGE_QUOTA_OBJECTS="3")
    file = put_file(store, NOTES.encode(), "text/plain")
    created(app, contents=[{"role": "user", "parts": [file_part(file)]}])  # the file, the cache, its copy
    answer = create(app, contents=[user("one more")])
    assert answer.status_code == 429 and error_of(answer)["status"] == "RESOURCE_EXHAUSTED"
    app = in_process(**env, STORAGE_QUOTA_BYTES=str(len(NOTES) * 2 + 200))
    answer = create(app, contents=[{"role": "user", "parts": [file_part(file)]}])
    assert answer.status_code == 429


def test_without_a_store_the_routes_are_501_and_a_named_cache_400(in_process, upstream):
    app = in_process(K_SERVICE="gemini")
    answer = create(app, contents=[user("a")])
    assert answer.status_code == 501 and error_of(answer)["status"] == "UNIMPLEMENTED"
    assert app.get(CACHES).status_code == 501
    answer = app.post(GENERATE, {"cachedContent": "cachedContents/abc", "contents": [user("q")]})
    assert answer.status_code == 400 and error_of(answer)["message"].startswith("cachedContent: ")
    assert upstream.requests == []


def test_translation_refuses_an_unmaterialized_cache():
    """A cachedContent that reached translation would be a bug: never silently dropped."""
    with pytest.raises(ValueError):
        chat_request({"cachedContent": "cachedContents/abc", "contents": [user("q")]}, MODEL, stream=False)


def test_output_view_shows_no_input_field():
    stored = storage.StoredObject("cachedContents/o/abc", 10, "application/json", 0, 0, {
        "model": "models/m", "createTime": "t", "updateTime": "t", "expireTime": "e", "totalTokenCount": "9"})
    assert caches.output_view(stored) == {"name": "cachedContents/abc", "model": "models/m", "createTime": "t",
                                          "updateTime": "t", "expireTime": "e", "usageMetadata": {"totalTokenCount": 9}}


# --- the real client -------------------------------------------------------------------------------

def test_the_python_sdk_creates_updates_uses_and_deletes_a_cache(serve, env, upstream):
    server = serve(**env)
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=server.url))
    cache = client.caches.create(model=MODEL, config=types.CreateCachedContentConfig(
        contents=[types.Content(role="user", parts=[types.Part(text="Long notes.")])],
        system_instruction="Be brief.", tools=[types.Tool(function_declarations=[types.FunctionDeclaration(
            name="lookup", parameters=types.Schema(type="OBJECT", properties={"word": types.Schema(type="STRING")}))])],
        display_name="sdk", ttl="300s"))
    assert cache.name.startswith("cachedContents/") and cache.model == f"models/{MODEL}"
    assert cache.usage_metadata.total_token_count == 5 and cache.expire_time - cache.create_time == datetime.timedelta(
        seconds=300)
    assert client.caches.get(name=cache.name).display_name == "sdk"
    assert [c.name for c in client.caches.list()] == [cache.name]
    updated = client.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(ttl="7600s"))
    assert updated.expire_time > cache.expire_time
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=3)
    assert client.caches.update(name=cache.name, config={"expire_time": later}).expire_time == later
    with pytest.raises(errors.ClientError) as caught:
        client.caches.update(name=cache.name, config={"expire_time": later.replace(tzinfo=None)})
    assert caught.value.code == 400
    answer = client.models.generate_content(model=MODEL, contents="Question?",
                                            config=types.GenerateContentConfig(cached_content=cache.name))
    assert answer.text and upstream.last["messages"][0] == {"role": "system", "content": "Be brief."}
    upstream.reply(SseStream(text_stream(["A", "B"])))
    streamed = client.models.generate_content_stream(model=MODEL, contents="Again?",
                                                     config=types.GenerateContentConfig(cached_content=cache.name))
    assert "".join(chunk.text or "" for chunk in streamed) == "AB"
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="q", config=types.GenerateContentConfig(
            cached_content=cache.name, system_instruction="no"))
    assert caught.value.code == 400 and "CachedContent can not be used" in caught.value.message
    client.caches.delete(name=cache.name)
    with pytest.raises(errors.ClientError) as caught:
        client.caches.get(name=cache.name)
    assert caught.value.code == 403
