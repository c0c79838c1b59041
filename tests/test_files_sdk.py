"""The google-genai SDK's Files and cachedContents methods, unchanged, pointed at the function: on both
API versions it may use (v1, its default, and v1beta), sync and async; and the JS SDK's (@google/genai,
tests/clients/genai.mjs). Uploads go through the SDKs' resumable protocol (8 MiB chunks; the Python
SDK's carry no key), the uploaded files are named in contents and their bytes reach the loopback
upstream; a cached content's system instruction, tools and contents reach it before each new turn,
the same on every call. Neither SDK can send countTokens with a cachedContent (their CountTokensConfig
has no such field), so that is left to tests/test_caches.py.

Each test is its own owner (a key of its own: pass-through mode keeps each key's files apart), so
what it lists is what it made. The function keeps its files in a folder of this module's, and the
main flow runs once more on each storage backend of ``storage_env``."""

import asyncio
import base64
import datetime
import io
import json
import pathlib
import random
import re
import secrets
import shutil
import subprocess
import time
import urllib.parse

import pytest
import requests
from google import genai
from google.genai import errors, types

from fake_upstream import Json, Stream, completion, text_stream, usage
from helpers import client_env, google_sha256

MODEL = "qwen-turbo"
CLIENTS = pathlib.Path(__file__).resolve().parent / "clients"
MiB = 1024 * 1024
CHUNK = 8 * MiB  # the SDK's CHUNK_SIZE
BIG = 20 * MiB + 4321  # three chunks, the last one short
FILE_TTL = datetime.timedelta(hours=48)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))  # every byte value, past the signature
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
NOTES = "Ligne un.\nLigne deux, accentu\u00e9e.\n"
DOCUMENT = "The launch is on Tuesday. The budget is 40,000 EUR. Ask Ines about the venue.\n"
SYSTEM = "Answer from the document only."
CACHED_ANSWER = "I have read it."
TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CACHE_REFUSAL = ("CachedContent can not be used with GenerateContent request setting system_instruction, tools or "
                 "tool_config. Proposed fix: move those values to CachedContent from GenerateContent request.")


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"sunny in {city}"


@pytest.fixture(params=[None, "v1beta"], ids=["default-v1", "v1beta"])
def api_version(request):
    return request.param


@pytest.fixture(scope="module")
def stored(serve, tmp_path_factory):
    """The function, keeping its files in a folder of this module's."""
    return serve(STORAGE_DIR=str(tmp_path_factory.mktemp("files-sdk-store")))


class Sdk:
    """A genai.Client on a function server with a key of its own, recording the requests the SDK
    made (sync and async): method, path with query, headers, and the JSON bodies it sent."""

    def __init__(self, server, api_version, prefix=""):
        self.base_url = server.url + prefix
        self.prefix = prefix
        self.key = f"files-sdk-{secrets.token_hex(8)}"
        self.version = api_version or "v1"
        self.requests = []
        self.client = genai.Client(api_key=self.key, http_options=types.HttpOptions(
            base_url=self.base_url, api_version=api_version, client_args={"event_hooks": {"request": [self._record]}},
            async_client_args={"event_hooks": {"request": [self._record_async]}}))

    def _record(self, request):
        url = urllib.parse.urlsplit(str(request.url))
        chunk = "upload_id=" in url.query  # 8 MiB of file: its size will do
        self.requests.append({"method": request.method, "path": url.path + (f"?{url.query}" if url.query else ""),
                              "headers": dict(request.headers), "size": len(request.content),
                              "body": None if chunk else request.content})

    async def _record_async(self, request):
        self._record(request)

    def upload(self, data, mime_type, display_name=None):
        config = {"mime_type": mime_type, **({"display_name": display_name} if display_name else {})}
        return self.client.files.upload(file=io.BytesIO(data), config=config)

    def paths(self):
        return [r["path"] for r in self.requests]


@pytest.fixture
def sdk(stored, upstream, api_version):
    return Sdk(stored, api_version)


def file_id(file):
    return file.name.removeprefix("files/")


def check_file(sdk, file, data, mime_type, display_name=None):
    """``file`` (an SDK File) describes ``data`` as Google's File resource does."""
    assert re.fullmatch(r"files/[a-z0-9]{1,40}", file.name), file.name  # the SDK reads IDs from URIs as [a-z0-9]+
    assert file.uri == f"{sdk.base_url}/{sdk.version}/files/{file_id(file)}"
    assert file.size_bytes == len(data)
    assert file.mime_type == mime_type
    assert file.sha256_hash == google_sha256(data)
    assert file.state == types.FileState.ACTIVE
    assert file.source == types.FileSource.UPLOADED
    now = datetime.datetime.now(datetime.timezone.utc)
    assert now - datetime.timedelta(minutes=1) < file.create_time <= now
    assert file.update_time >= file.create_time
    assert abs(file.expiration_time - file.create_time - FILE_TTL) < datetime.timedelta(seconds=2)
    if display_name is not None:
        assert file.display_name == display_name


def https_form(uri):
    """The file's URI as a deployed function (https) gives it: the SDK's files.get reads the ID out of
    https URIs only (``t_file_name``), and the loopback function's are http."""
    return "https://" + uri.split("://", 1)[1]


def data_url(mime_type, data):
    return f"data:{mime_type};base64,{base64.b64encode(data).decode()}"


def check_upload_requests(sdk, size):
    """The SDK's upload: a start with the key on upload/{v}/files, then one request per 8 MiB chunk
    on the upload URL, without the key and never repeated (no answer lacked X-Goog-Upload-Status)."""
    start, *chunks = sdk.requests
    assert (start["method"], start["path"]) == ("POST", f"{sdk.prefix}/upload/{sdk.version}/files")
    assert start["headers"]["x-goog-api-key"] == sdk.key
    offsets = list(range(0, size, CHUNK))
    commands = ["upload"] * (len(offsets) - 1) + ["upload, finalize"]
    assert [(c["headers"]["x-goog-upload-offset"], c["headers"]["x-goog-upload-command"]) for c in chunks] == \
        [(str(offset), command) for offset, command in zip(offsets, commands, strict=True)]
    assert [c["size"] for c in chunks] == [min(CHUNK, size - offset) for offset in offsets]
    assert all(c["method"] == "POST" and "x-goog-api-key" not in c["headers"] for c in chunks)
    upload_path = chunks[0]["path"]
    assert upload_path.startswith(f"{sdk.prefix}/upload/{sdk.version}/files?") and "upload_id=" in upload_path
    assert {c["path"] for c in chunks} == {upload_path}


# --- files.upload -------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["path", "file-object"])
def test_upload_of_a_multi_chunk_file(sdk, upstream, tmp_path, source):
    data = random.Random(16).randbytes(BIG)
    started = time.monotonic()
    if source == "path":
        path = tmp_path / "measurements.bin"
        path.write_bytes(data)
        file = sdk.client.files.upload(file=path)
    else:
        file = sdk.upload(data, "application/octet-stream", display_name="measurements")
    elapsed = time.monotonic() - started

    assert elapsed < 10, f"the upload took {elapsed:.1f} s: the SDK slept between retried chunks"
    check_file(sdk, file, data, "application/octet-stream", None if source == "path" else "measurements")
    check_upload_requests(sdk, BIG)
    assert upstream.chat_requests == []  # nothing of the file went upstream
    assert sdk.client.files.get(name=file.name) == file


def test_upload_of_a_small_file_object(sdk):
    file = sdk.upload(NOTES.encode(), "text/plain", display_name="Notes")

    check_file(sdk, file, NOTES.encode(), "text/plain", "Notes")
    check_upload_requests(sdk, len(NOTES.encode()))


# --- files.get, files.list ----------------------------------------------------------------------

def test_get_by_name_and_by_uri_and_list_to_the_end(sdk):
    uploaded = [sdk.upload(f"note {n}".encode(), "text/plain", display_name=f"note {n}") for n in range(5)]
    del sdk.requests[:]

    by_name = sdk.client.files.get(name=uploaded[0].name)
    by_uri = sdk.client.files.get(name=https_form(uploaded[1].uri))
    listed = list(sdk.client.files.list(config={"page_size": 2}))

    assert (by_name, by_uri) == (uploaded[0], uploaded[1])
    assert sorted(f.name for f in listed) == sorted(f.name for f in uploaded)
    assert {f.name: f for f in listed} == {f.name: f for f in uploaded}
    get_paths, list_paths = sdk.paths()[:2], sdk.paths()[2:]
    assert get_paths == [f"/{sdk.version}/files/{file_id(f)}" for f in uploaded[:2]]
    assert len(list_paths) == 3  # 2 + 2 + 1: the pager followed nextPageToken, and stopped
    assert list_paths[0] == f"/{sdk.version}/files?pageSize=2"
    assert all(p.startswith(f"/{sdk.version}/files?pageSize=2&pageToken=") for p in list_paths[1:])


# --- generate_content with files ----------------------------------------------------------------

@pytest.mark.parametrize("action", ["generateContent", "streamGenerateContent", "countTokens"])
def test_the_files_bytes_reach_the_upstream(sdk, upstream, action):
    image = sdk.upload(PNG, "image/png")
    report = sdk.upload(PDF, "application/pdf", display_name="report.pdf")
    notes = sdk.upload(NOTES.encode(), "text/plain")
    contents = [image, report, notes, "describe"]
    del sdk.requests[:]

    if action == "generateContent":
        assert sdk.client.models.generate_content(model=MODEL, contents=contents).text.startswith("echo: ")
    elif action == "streamGenerateContent":
        assert "".join(c.text or "" for c in sdk.client.models.generate_content_stream(model=MODEL, contents=contents))
    else:
        assert sdk.client.models.count_tokens(model=MODEL, contents=contents).total_tokens == 5  # the fake's usage

    [sent] = sdk.requests
    assert sent["path"].split("?")[0] == f"/{sdk.version}/models/{MODEL}:{action}"
    assert sent["size"] < 2000  # the SDK named the files (fileData); their bytes came from the store
    [request] = upstream.chat_requests
    [message] = request["json"]["messages"]
    assert message == {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}},
        {"type": "file", "file": {"filename": "report.pdf", "file_data": data_url("application/pdf", PDF)}},
        {"type": "text", "text": NOTES},
        {"type": "text", "text": "describe"},
    ]}


def test_upload_under_a_path_prefix(stored, upstream, api_version):
    """A function served under a path (an API gateway's mount, a load balancer's route): the upload URL
    it answers keeps the prefix, which the SDK uses as it is for the chunks."""
    sdk = Sdk(stored, api_version, prefix="/gemini")
    data = random.Random(3).randbytes(CHUNK + 1)

    file = sdk.upload(data, "application/octet-stream")

    check_file(sdk, file, data, "application/octet-stream")
    check_upload_requests(sdk, len(data))
    assert sdk.client.files.get(name=file.name) == file


# --- files.delete -------------------------------------------------------------------------------

def test_a_deleted_file_is_403_like_a_foreign_one(sdk, stored, upstream):
    file = sdk.upload(NOTES.encode(), "text/plain")
    other = Sdk(stored, None)
    denied = f"You do not have permission to access the File {file_id(file)} or it may not exist."

    with pytest.raises(errors.ClientError) as foreign:
        other.client.files.get(name=file.name)
    sdk.client.files.delete(name=file.name)
    with pytest.raises(errors.ClientError) as deleted:
        sdk.client.files.get(name=file.name)
    with pytest.raises(errors.ClientError) as used:
        sdk.client.models.generate_content(model=MODEL, contents=[file, "describe"])

    for raised in (foreign, deleted, used):
        assert (raised.value.code, raised.value.status, raised.value.message) == (403, "PERMISSION_DENIED", denied)
    assert sdk.requests[-3]["method"] == "DELETE"
    assert sdk.requests[-3]["path"] == f"/{sdk.version}/files/{file_id(file)}"
    assert upstream.chat_requests == []


# --- async --------------------------------------------------------------------------------------

def test_async_client_uploads_gets_lists_uses_and_deletes(sdk, upstream):
    data = random.Random(61).randbytes(BIG)
    files = sdk.client.aio.files

    async def run():
        started = time.monotonic()
        big = await files.upload(file=io.BytesIO(data), config={"mime_type": "application/octet-stream"})
        elapsed = time.monotonic() - started
        upload_requests = list(sdk.requests)
        notes = await files.upload(file=io.BytesIO(NOTES.encode()), config={"mime_type": "text/plain"})
        got = await files.get(name=notes.name)
        listed = [f.name async for f in await files.list(config={"page_size": 1})]
        response = await sdk.client.aio.models.generate_content(model=MODEL, contents=[notes, "describe"])
        await files.delete(name=big.name)
        with pytest.raises(errors.ClientError) as raised:
            await files.get(name=big.name)
        return big, elapsed, upload_requests, notes, got, listed, response, raised.value

    big, elapsed, upload_requests, notes, got, listed, response, error = asyncio.run(run())

    assert elapsed < 10
    check_file(sdk, big, data, "application/octet-stream")
    sdk.requests[:] = upload_requests
    check_upload_requests(sdk, BIG)
    assert got == notes
    assert sorted(listed) == sorted([big.name, notes.name])
    assert response.text == f"echo: {NOTES}\ndescribe"
    assert upstream.last["messages"] == [{"role": "user", "content": f"{NOTES}\ndescribe"}]
    assert error.code == 403


# --- cachedContents -----------------------------------------------------------------------------

def create_cache(sdk, upstream, tokens=1234, display_name="document"):
    """A cache of a conversation about an uploaded document (the File object itself in contents),
    with a system instruction and a tool; the upstream counts its tokens (``tokens``)."""
    document = sdk.upload(DOCUMENT.encode(), "text/plain", display_name="document.txt")
    upstream.reply(Json(completion("x", usage_=usage(prompt=tokens, completion=1))))
    config = types.CreateCachedContentConfig(
        contents=["Keep this document in mind:", document, types.ModelContent(CACHED_ANSWER)],
        system_instruction=SYSTEM, tools=[types.Tool(function_declarations=[
            types.FunctionDeclaration.from_callable(client=sdk.client, callable=get_weather)])],
        ttl="300s", display_name=display_name)
    return sdk.client.caches.create(model=MODEL, config=config), document


# The messages a cache of create_cache stands for, before the request's own.
CACHED_MESSAGES = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": f"Keep this document in mind:\n{DOCUMENT}"},
    {"role": "assistant", "content": CACHED_ANSWER},
]


def cache_id(cache):
    return cache.name.removeprefix("cachedContents/")


def near(moment, expected, seconds=30):
    return abs(moment - expected) < datetime.timedelta(seconds=seconds)


def test_cache_create_get_list_update_delete(sdk, upstream):
    now = datetime.datetime.now(datetime.timezone.utc)
    cache, _ = create_cache(sdk, upstream, tokens=1234)
    others = [create_cache(sdk, upstream, display_name=f"other {n}")[0] for n in range(2)]

    assert re.fullmatch(r"cachedContents/[a-z0-9][a-z0-9-]{0,38}[a-z0-9]?", cache.name), cache.name
    assert cache.model == f"models/{MODEL}"
    assert cache.display_name == "document"
    assert near(cache.expire_time, now + datetime.timedelta(seconds=300))
    assert near(cache.create_time, now) and cache.update_time >= cache.create_time
    assert cache.usage_metadata.total_token_count == 1234  # the upstream's count of the cached prompt
    count_request = upstream.chat_requests[0]  # the first cache's, counted at create
    assert count_request["json"]["max_tokens"] == 1
    assert count_request["json"]["messages"] == CACHED_MESSAGES
    assert count_request["json"]["tools"] == [TOOL]

    got = sdk.client.caches.get(name=cache.name)
    assert got == cache
    # The input-only fields never come back (the SDK's CachedContent has no place for them).
    raw = requests.get(f"{sdk.base_url}/{sdk.version}/{cache.name}", headers={"x-goog-api-key": sdk.key}, timeout=10)
    assert raw.status_code == 200
    assert not {"contents", "systemInstruction", "tools", "toolConfig", "ttl"} & set(raw.json()), raw.json()
    assert raw.json()["expireTime"].endswith("Z")

    del sdk.requests[:]
    listed = list(sdk.client.caches.list(config={"page_size": 2}))
    assert sorted(c.name for c in listed) == sorted(c.name for c in [cache, *others])
    assert {c.name: c for c in listed}[cache.name] == cache
    assert len(sdk.paths()) == 2 and sdk.paths()[0] == f"/{sdk.version}/cachedContents?pageSize=2"

    by_ttl = sdk.client.caches.update(name=cache.name, config={"ttl": "7600s"})
    assert near(by_ttl.expire_time, datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=7600))
    assert by_ttl.update_time > cache.update_time and by_ttl.create_time == cache.create_time
    when = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=3)).replace(microsecond=0)
    by_time = sdk.client.caches.update(name=cache.name, config={"expire_time": when})
    assert by_time.expire_time == when
    assert sdk.client.caches.get(name=cache.name).expire_time == when
    assert [r["method"] for r in sdk.requests[-3:-1]] == ["PATCH", "PATCH"]

    sdk.client.caches.delete(name=cache.name)
    with pytest.raises(errors.ClientError) as raised:
        sdk.client.caches.get(name=cache.name)
    assert (raised.value.code, raised.value.status) == (403, "PERMISSION_DENIED")
    assert raised.value.message == \
        f"You do not have permission to access the CachedContent {cache_id(cache)} or it may not exist."
    assert sorted(c.name for c in sdk.client.caches.list()) == sorted(c.name for c in others)


def test_generate_and_stream_with_a_cache_send_the_same_prefix_then_the_new_turn(sdk, upstream):
    cache, _ = create_cache(sdk, upstream)
    before = len(upstream.chat_requests)
    upstream.reply(Json(completion("Tuesday.", usage_=usage(prompt=1300, completion=2, cached=1234))),
                   Json(completion("A launch.")), Stream(text_stream(["Laun", "ch"])))
    config = types.GenerateContentConfig(cached_content=cache.name)
    questions = ["When is the launch?", "Summarize it.", "In one word?"]

    first = sdk.client.models.generate_content(model=MODEL, contents=questions[0], config=config)
    second = sdk.client.models.generate_content(model=MODEL, contents=questions[1], config=config)
    streamed = list(sdk.client.models.generate_content_stream(model=MODEL, contents=questions[2], config=config))

    assert (first.text, second.text, "".join(c.text or "" for c in streamed)) == ("Tuesday.", "A launch.", "Launch")
    assert first.usage_metadata.cached_content_token_count == 1234  # what the upstream reports it hit
    assert first.usage_metadata.prompt_token_count == 1300
    sent = [r["json"] for r in upstream.chat_requests[before:]]
    assert [r["messages"] for r in sent] == [CACHED_MESSAGES + [{"role": "user", "content": q}] for q in questions]
    assert [r["tools"] for r in sent] == [[TOOL]] * 3
    # The prefix the upstream's own cache keys on, as serialized: the same on every call.
    assert len({repr((r["messages"][:-1], r["tools"])) for r in sent}) == 1
    assert sent[2]["stream"] is True
    assert all(r["method"] == "POST" and b'"cachedContent"' in r["body"] for r in sdk.requests[-3:])


def test_a_chat_on_a_cache_sends_the_cache_then_its_own_history(sdk, upstream):
    cache, _ = create_cache(sdk, upstream)
    chat = sdk.client.chats.create(model=MODEL, config=types.GenerateContentConfig(cached_content=cache.name))

    first, second = chat.send_message("When is the launch?"), chat.send_message("And the budget?")

    assert (first.text, second.text) == ("echo: When is the launch?", "echo: And the budget?")
    assert upstream.last["messages"] == CACHED_MESSAGES + [
        {"role": "user", "content": "When is the launch?"},
        {"role": "assistant", "content": "echo: When is the launch?"},
        {"role": "user", "content": "And the budget?"},
    ]


@pytest.mark.parametrize("refused", [
    {"tools": [get_weather], "automatic_function_calling": {"disable": True}},
    {"system_instruction": "Be brief."},
    {"tool_config": {"function_calling_config": {"mode": "ANY"}}},
], ids=["tools", "system_instruction", "tool_config"])
def test_tools_or_system_instruction_next_to_a_cache_is_googles_400(sdk, upstream, refused):
    cache, _ = create_cache(sdk, upstream)
    before = len(upstream.chat_requests)

    with pytest.raises(errors.ClientError) as raised:
        sdk.client.models.generate_content(model=MODEL, contents="Hi",
                                           config=types.GenerateContentConfig(cached_content=cache.name, **refused))

    assert (raised.value.code, raised.value.status, raised.value.message) == (400, "INVALID_ARGUMENT", CACHE_REFUSAL)
    assert len(upstream.chat_requests) == before


def test_a_cache_used_with_another_model_is_400(sdk, upstream):
    cache, _ = create_cache(sdk, upstream)
    before = len(upstream.chat_requests)

    with pytest.raises(errors.ClientError) as raised:
        sdk.client.models.generate_content(model="other-model", contents="Hi",
                                           config=types.GenerateContentConfig(cached_content=cache.name))

    assert (raised.value.code, raised.value.status) == (400, "INVALID_ARGUMENT")
    assert raised.value.message == (f"Model used by GenerateContent request (models/other-model) and CachedContent "
                                    f"(models/{MODEL}) has to be the same.")
    assert len(upstream.chat_requests) == before


def test_a_cache_outlives_the_file_it_holds(sdk, upstream):
    cache, document = create_cache(sdk, upstream)
    sdk.client.files.delete(name=document.name)

    sdk.client.models.generate_content(model=MODEL, contents="When is the launch?",
                                       config=types.GenerateContentConfig(cached_content=cache.name))

    assert upstream.last["messages"] == CACHED_MESSAGES + [{"role": "user", "content": "When is the launch?"}]


def test_a_deleted_cache_is_403_in_generate(sdk, upstream):
    cache, _ = create_cache(sdk, upstream)
    sdk.client.caches.delete(name=cache.name)
    before = len(upstream.chat_requests)

    with pytest.raises(errors.ClientError) as raised:
        sdk.client.models.generate_content(model=MODEL, contents="Hi",
                                           config=types.GenerateContentConfig(cached_content=cache.name))

    assert (raised.value.code, raised.value.status) == (403, "PERMISSION_DENIED")
    assert len(upstream.chat_requests) == before


def test_async_client_caches(sdk, upstream):
    document = sdk.upload(DOCUMENT.encode(), "text/plain")
    upstream.reply(Json(completion("x", usage_=usage(prompt=99, completion=1))))
    caches = sdk.client.aio.caches
    config = types.CreateCachedContentConfig(contents=[document, "Keep it in mind."], system_instruction=SYSTEM,
                                             ttl="60s")

    async def run():
        cache = await caches.create(model=MODEL, config=config)
        got = await caches.get(name=cache.name)
        listed = [c.name async for c in await caches.list()]
        updated = await caches.update(name=cache.name, config={"ttl": "120s"})
        answer = await sdk.client.aio.models.generate_content(
            model=MODEL, contents="When?", config=types.GenerateContentConfig(cached_content=cache.name))
        await caches.delete(name=cache.name)
        return cache, got, listed, updated, answer

    cache, got, listed, updated, answer = asyncio.run(run())

    assert got == cache and listed == [cache.name]
    assert cache.usage_metadata.total_token_count == 99
    assert updated.expire_time > cache.expire_time
    # A cache ending in a user turn, and a request starting with one: one user message, the cache's text first.
    assert upstream.last["messages"] == [{"role": "system", "content": SYSTEM},
                                         {"role": "user", "content": f"{DOCUMENT}\nKeep it in mind.\nWhen?"}]
    assert answer.text == f"echo: {DOCUMENT}\nKeep it in mind.\nWhen?"


# --- on each storage backend --------------------------------------------------------------------

def test_upload_and_cache_on_each_storage_backend(serve, storage_env, upstream):
    sdk = Sdk(serve(**storage_env), None)
    data = random.Random(7).randbytes(BIG)

    started = time.monotonic()
    big = sdk.upload(data, "application/octet-stream")
    elapsed = time.monotonic() - started
    check_file(sdk, big, data, "application/octet-stream")
    assert elapsed < 10
    cache, document = create_cache(sdk, upstream)
    sdk.client.files.delete(name=document.name)
    sdk.client.models.generate_content(model=MODEL, contents="When is the launch?",
                                       config=types.GenerateContentConfig(cached_content=cache.name))
    listed = list(sdk.client.files.list(config={"page_size": 1}))
    sdk.client.caches.delete(name=cache.name)

    assert [f.name for f in listed] == [big.name]
    assert upstream.last["messages"] == CACHED_MESSAGES + [{"role": "user", "content": "When is the launch?"}]
    assert list(sdk.client.caches.list()) == []


# --- @google/genai (Node) -----------------------------------------------------------------------

@pytest.mark.skipif(not (CLIENTS / "node_modules" / "@google" / "genai").is_dir() or shutil.which("node") is None,
                    reason="the JS SDK is not installed: run `npm ci --prefix tests/clients` (needs node)")
def test_js_sdk_uploads_caches_and_generates(stored, upstream, api_version):
    size = CHUNK + 5  # two chunks
    key = f"files-js-{secrets.token_hex(8)}"
    env = client_env(GENAI_BASE_URL=stored.url, GENAI_API_KEY=key, NO_COLOR="1")
    args = {"size": size, "mimeType": "application/octet-stream", "apiVersion": api_version}
    command = ["node", str(CLIENTS / "genai.mjs"), "filesAndCaches", json.dumps(args)]
    done = subprocess.run(command, cwd=CLIENTS, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"node exited {done.returncode}:\n{done.stderr}\n{done.stdout}"
    output = json.loads(done.stdout.strip().splitlines()[-1])

    assert output["error"] is None, output["error"]
    result, version = output["result"], api_version or "v1"
    period = bytes((i * 31 + 7) % 251 for i in range(251))  # genai.mjs's pattern
    data = (period * (size // 251 + 1))[:size]
    uploaded = result["uploaded"]
    file_id = uploaded["name"].removeprefix("files/")
    assert uploaded["uri"] == f"{stored.url}/{version}/files/{file_id}"
    assert (uploaded["sizeBytes"], uploaded["mimeType"], uploaded["displayName"], uploaded["state"]) == \
        (str(size), "application/octet-stream", "pattern", "ACTIVE")
    assert uploaded["sha256Hash"] == google_sha256(data)
    assert result["got"] == uploaded
    start, *chunks = output["requests"][:3]
    # The JS SDK starts at upload/{its version}/files and sends the key with every chunk.
    assert (start["method"], urllib.parse.urlsplit(start["url"]).path, start["key"]) == \
        ("POST", f"/upload/{version}/files", key)
    assert [(c["uploadOffset"], c["uploadCommand"], c["size"], c["key"]) for c in chunks] == \
        [("0", "upload", CHUNK, key), (str(CHUNK), "upload, finalize", 5, key)]
    assert all("upload_id=" in c["url"] for c in chunks)
    assert result["cacheGot"]["name"] == result["cache"]["name"]
    assert result["cacheGot"]["expireTime"] == result["cache"]["expireTime"]
    assert upstream.last["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": [{"type": "text", "text": "Keep this in mind:"}, {"type": "file", "file": {
            "filename": "pattern", "file_data": data_url("application/octet-stream", data)}}]},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "What was it?"},
    ]
    assert result["text"] == "echo: What was it?"
    assert result["afterDelete"] == {"isApiError": True, "status": 403}
    assert [(r["method"], urllib.parse.urlsplit(r["url"]).path) for r in output["requests"][-3:]] == [
        ("DELETE", f"/{version}/{result['cache']['name']}"), ("DELETE", f"/{version}/files/{file_id}"),
        ("GET", f"/{version}/{result['cache']['name']}")]
