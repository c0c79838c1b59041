"""Hostile callers on the Files API and cachedContents, at the size we deploy (THREADS=16): the
upload URL (the credential is the URL itself, so anyone may try it), the upload's start request,
cachedContents' create, and generateContent naming many stored files. Every one is answered with
a Gemini error in bounded time and memory, an upload broken off can be resumed from what the store
says it holds, and the instance keeps serving.

Raw sockets and the memory probe are test_hostile's; ``bench/reliability.py`` runs the cases
marked there as rows of the README's table, each in a fresh function process
(``fresh_files_server``). Everything is loopback, bounded in bytes and seconds, and stops by itself.
"""

import concurrent.futures
import contextlib
import hashlib
import json
import os
import random
import secrets
import socket
import struct
import tempfile
import threading
import time
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

import test_hostile as th
from helpers import UPLOAD_START_HEADERS, error_of, google_sha256, hello

MiB = th.MiB
GRANULE = 256 * 1024
FILE_MAX_BYTES = 32 * MiB
START_BODY_LIMIT = 64 * 1024  # uploads.START_BODY_LIMIT: the start's {"file": {...}} is small
ENV = {**th.TEAM_ENV, "CLIENT_BODY_TIMEOUT": "1", "FILE_MAX_BYTES": str(FILE_MAX_BYTES)}


@contextlib.contextmanager
def fresh_files_server(upstream_url, **env):
    """A function process of its own (ENV, plus ``env``) with a store folder of its own."""
    with tempfile.TemporaryDirectory(prefix="files-hostile-") as store, \
            th.fresh_server(UPSTREAM_BASE_URL=upstream_url, STORAGE_DIR=store, **{**ENV, **env}) as server:
        server.store_dir = store
        yield server


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("files-hostile-store"))


@pytest.fixture(scope="module")
def server(serve, store_dir):
    """Team mode at deploy size, a 1 s body deadline (the default is 60 s), FILE_MAX_BYTES 32 MiB."""
    function = serve(STORAGE_DIR=store_dir, **ENV)
    function.store_dir = store_dir
    return function


# --- the upload, spoken plainly ---------------------------------------------------------------

def upload_url(server, size=None):
    headers = {**UPLOAD_START_HEADERS, "x-goog-api-key": th.ACCESS_KEY,
               "X-Goog-Upload-Header-Content-Type": "application/octet-stream"}
    if size is not None:
        headers["X-Goog-Upload-Header-Content-Length"] = str(size)
    answer = requests.post(server.url + "/upload/v1beta/files", headers=headers, json={}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.headers["X-Goog-Upload-URL"]


def chunk(url, data, offset, command="upload"):
    return requests.post(url, data=data, timeout=30,
                         headers={"X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset)})


def received(url):
    """What the upload's ``query`` says the store holds."""
    answer = chunk(url, b"", 0, "query")
    assert answer.status_code == 200 and answer.headers["X-Goog-Upload-Status"] == "active", answer.text
    return int(answer.headers["X-Goog-Upload-Size-Received"])


def chunk_head(url, headers):
    """The request head of a chunk on ``url`` (path and query as the upload URL has them), no key."""
    parts = urlsplit(url)
    return th.request_head("POST", f"{parts.path}?{parts.query}", {
        "X-Goog-Upload-Command": "upload", "X-Goog-Upload-Offset": "0", **headers})


def held_bytes(store_dir, url):
    """The bytes the folder store holds of the upload's resumable write (the layout uploads.py keeps:
    its record at ``uploads/sessions/{digest of the upload_id}`` names the write's session)."""
    upload_id = parse_qs(urlsplit(url).query)["upload_id"][0]
    digest = hashlib.sha256(upload_id.encode()).hexdigest()[:32]
    with open(os.path.join(store_dir, "objects", "uploads", "sessions", digest), encoding="utf-8") as record:
        session = json.load(record)["session"]
    return os.path.getsize(os.path.join(store_dir, "writes", session))


def http_lines(server):
    return server.logs().count('"httpRequest"')


def wait_logged(server, count, timeout=5.0):
    """Waits until the server has logged ``count`` requests in all (bounded): whether it did."""
    deadline = time.monotonic() + timeout
    while http_lines(server) < count:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def timed_valid_request(server, result, delay):
    """A valid generateContent ``delay`` seconds from now, in a thread: its status and seconds go to ``result``."""
    def run():
        time.sleep(delay)
        started = time.monotonic()
        try:
            result["status"] = th.post(server, key=th.ACCESS_KEY, body=hello(), timeout=10).status_code
        except requests.RequestException as error:
            result["status"] = repr(error)
        result["seconds"] = time.monotonic() - started
    thread = threading.Thread(target=run)
    thread.start()
    return thread


# --- a chunk that does not arrive in time ------------------------------------------------------

def stalled_chunk_case(server, trickle_interval=None, time_bound=8.0):
    """An upload of five granules and a tail: the first granule sent, then the next four announced
    (Content-Length 1 MiB) and not sent (or one byte every ``trickle_interval``); 0.3 s in, a valid
    generateContent beside it. Then ``query``, and the upload finished from where it says."""
    data = random.Random(16).randbytes(5 * GRANULE + 3)
    url = upload_url(server, len(data))
    assert chunk(url, data[:GRANULE], 0).status_code == 200
    beside = {}
    thread = timed_valid_request(server, beside, 0.3)
    head = chunk_head(url, {"Content-Length": str(4 * GRANULE), "X-Goog-Upload-Offset": str(GRANULE)})
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(head)
        response = None
        while response is None and time.monotonic() - started < time_bound:
            response, _ = th.read_response(sock, time.monotonic() + (trickle_interval or time_bound))
            if response is None and trickle_interval is not None:
                try:
                    sock.sendall(data[GRANULE + sent:GRANULE + sent + 1])
                    sent += 1
                except OSError:
                    break
        seconds = time.monotonic() - started
    thread.join(15)
    held, told = held_bytes(server.store_dir, url), received(url)
    resumed = chunk(url, data[told:], told, "upload, finalize")
    sha = resumed.json()["file"].get("sha256Hash") if resumed.status_code == 200 else None
    return {"response": response, "seconds": seconds, "trickled": sent, "beside": beside, "held": held,
            "received": told, "resumed": resumed.status_code,
            "sha256_ok": sha == google_sha256(data)}


def stalled_chunk_ok(result):
    """The bounds the test asserts, as one verdict (for the bench)."""
    response = result["response"]
    return (response is not None and response.status == 504 and response.headers.get("x-goog-upload-status") == "final"
            and 0.9 <= result["seconds"] <= 3.0 and result["beside"].get("status") == 200
            and result["beside"]["seconds"] < 1.0 and result["held"] == result["received"] == GRANULE
            and result["resumed"] == 200 and result["sha256_ok"])


@pytest.mark.parametrize("trickle", [None, 0.2], ids=["silent", "one byte every 0.2 s"])
def test_a_chunk_that_does_not_arrive_in_time_is_a_504_final_and_the_upload_resumes(server, upstream, trickle):
    result = stalled_chunk_case(server, trickle)
    response, context = result["response"], (result, th.trimmed_logs(server))
    assert response is not None, context
    assert response.status == 504 and response.error()["status"] == "DEADLINE_EXCEEDED", context
    assert response.headers["x-goog-upload-status"] == "final", context
    assert 0.9 <= result["seconds"] <= 3.0, context  # CLIENT_BODY_TIMEOUT=1
    assert result["beside"]["status"] == 200, context
    assert result["beside"]["seconds"] < 1.0, context  # the stalled chunk held its thread only
    assert result["held"] == result["received"] == GRANULE, context  # nothing of the broken chunk kept
    assert result["resumed"] == 200 and result["sha256_ok"], context
    assert stalled_chunk_ok(result)


# --- a client that goes away mid-chunk ----------------------------------------------------------

def disconnect_case(server, reset):
    """Of a 3-granule-and-a-tail upload, the first granule sent; then a 2-granule chunk announced
    and broken off after one granule and 1000 bytes (the socket closed, or reset)."""
    data = random.Random(17).randbytes(3 * GRANULE + 5)
    url = upload_url(server, len(data))
    assert chunk(url, data[:GRANULE], 0).status_code == 200
    logged = http_lines(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(chunk_head(url, {"Content-Length": str(2 * GRANULE), "X-Goog-Upload-Offset": str(GRANULE)})
                     + data[GRANULE:2 * GRANULE + 1000])
        time.sleep(0.2)  # let the server write what came
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    answered = wait_logged(server, logged + 1)
    after = th.post(server, key=th.ACCESS_KEY, body=hello()).status_code
    held, told = held_bytes(server.store_dir, url), received(url)
    resumed = chunk(url, data[told:], told, "upload, finalize")
    sha = resumed.json()["file"].get("sha256Hash") if resumed.status_code == 200 else None
    return {"answered": answered, "after": after, "held": held, "received": told, "resumed": resumed.status_code,
            "sha256_ok": sha == google_sha256(data)}


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_client_gone_mid_chunk_leaves_what_query_says_and_the_upload_resumes(server, upstream, reset):
    result = disconnect_case(server, reset)
    context = (result, th.trimmed_logs(server))
    assert result["answered"] and result["after"] == 200, context
    assert result["held"] == result["received"] == GRANULE, context  # no half-piece beyond what query reports
    assert result["resumed"] == 200 and result["sha256_ok"], context
    assert "Traceback" not in server.logs(), context


def in_flight_query_case(server):
    """Of a 3-granule-and-a-tail upload, the first granule sent; then a 2-granule chunk announced,
    one granule and 1000 bytes of it sent, and the connection left open and silent (a client whose
    network went away without a word). Meanwhile the client, on a new connection, asks ``query``
    and resumes from what it says, as the protocol has it."""
    data = random.Random(18).randbytes(3 * GRANULE + 5)
    url = upload_url(server, len(data))
    assert chunk(url, data[:GRANULE], 0).status_code == 200
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(chunk_head(url, {"Content-Length": str(2 * GRANULE), "X-Goog-Upload-Offset": str(GRANULE)})
                     + data[GRANULE:2 * GRANULE + 1000])
        time.sleep(0.3)  # the server has taken the first granule of it
        told = received(url)
        started = time.monotonic()
        resumed = chunk(url, data[told:], told, "upload, finalize")
        seconds = time.monotonic() - started
        stalled, _ = th.read_response(sock, time.monotonic() + 3)
    sha = resumed.json().get("file", {}).get("sha256Hash")
    return {"received": told, "resumed": resumed.status_code, "message": resumed.text[:300], "seconds": seconds,
            "stalled": stalled, "sha256_ok": sha == google_sha256(data)}


def test_query_while_a_chunk_is_in_flight_reports_what_a_resume_can_build_on(server, upstream):
    result = in_flight_query_case(server)
    assert result["resumed"] == 200 and result["sha256_ok"], result


# --- refused without reading the body -----------------------------------------------------------

def chunk_refusal(declared, upload_id=None, chunked=False):
    """A chunk of 64 MiB (announced, or chunked) on a fresh upload of ``declared`` bytes, or with
    another ``upload_id``: (server -> head, chunked)."""
    def build(server):
        url = upload_url(server, declared)
        if upload_id is not None:
            parts = urlsplit(url)
            url = f"{parts.scheme}://{parts.netloc}{parts.path}?upload_id={quote(upload_id(), safe='')}"
        framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(64 * MiB)}
        return chunk_head(url, framing), chunked
    return build


def keyed_head(path, framing):
    def build(server):
        headers = {"Content-Type": "application/json", "x-goog-api-key": th.ACCESS_KEY, **framing}
        if path.startswith("/upload/"):
            headers.update(UPLOAD_START_HEADERS)
        return th.request_head("POST", path, headers), "chunked" in framing.values()
    return build


LENGTH_64_MIB = {"Content-Length": str(64 * MiB)}
CHUNKED = {"Transfer-Encoding": "chunked"}
UNREAD = {
    # name: (builder of (head, chunked), status, words of the message)
    "chunk past the declared size (1 MiB)": (chunk_refusal(MiB), 400, "past its declared size"),
    "chunk past FILE_MAX_BYTES (32 MiB), size not declared": (chunk_refusal(None), 400, "FILE_MAX_BYTES"),
    "chunk on a random well-formed upload_id": (chunk_refusal(MiB, lambda: secrets.token_urlsafe(32)), 404,
                                                "No upload with this upload_id"),
    "chunk on a garbage upload_id": (chunk_refusal(MiB, lambda: "../../writes/%00" + "é" * 40), 404,
                                     "No upload with this upload_id"),
    "chunked chunk (no Content-Length)": (chunk_refusal(MiB, chunked=True), 400, "needs a Content-Length"),
    "start with Content-Length 64 MiB": (keyed_head("/upload/v1beta/files", LENGTH_64_MIB), 400,
                                         f"exceeds the limit: {START_BODY_LIMIT} bytes"),
    "start with a chunked 64 MiB body": (keyed_head("/upload/v1beta/files", CHUNKED), 400,
                                         f"exceeds the limit: {START_BODY_LIMIT} bytes"),
    "cachedContents create with Content-Length 64 MiB": (keyed_head("/v1beta/cachedContents", LENGTH_64_MIB), 400,
                                                         f"exceeds the limit: {th.DEFAULT_MAX_REQUEST_BYTES} bytes"),
}
# Read, but no further than the start's 64 KiB cap: the rest of what the client sends is not.
READ_TO_THE_CAP = {"start with a chunked 64 MiB body"}


def unread_case(server, name):
    """The case's 64 MiB sent in 64 KiB pieces while the answer is awaited: the answer, the body
    bytes sent before it came, whether the connection closed, the worker's peak RSS up."""
    head, chunked = UNREAD[name][0](server)
    probe = th.MemoryProbe(server)
    result = th.hostile_upload(server.port, head, chunked=chunked)
    result["up_mb"] = probe.up_mb()
    return result


def unread_ok(name, result):
    """The bounds the test asserts, as one verdict (for the bench)."""
    response = result["response"]
    return (response is not None and response.status == UNREAD[name][1] and result["sent"] < 4 * MiB
            and result["closed"] is not None and result["up_mb"] <= 16
            and (name.startswith(("start", "cachedContents")) or response.headers.get("x-goog-upload-status") == "final"))


@pytest.mark.parametrize("name", list(UNREAD))
def test_a_64_mib_body_that_cannot_be_taken_is_refused_unread_in_bounded_memory(server, upstream, name):
    result = unread_case(server, name)
    response, (_, status, words) = result["response"], UNREAD[name]
    context = f"{ {k: v for k, v in result.items() if k != 'response'} } {response!r}\n{th.trimmed_logs(server)}"
    assert response is not None, context
    assert response.status == status and words in response.error()["message"], context
    if not name.startswith(("start", "cachedContents")):
        assert response.headers["x-goog-upload-status"] == "final", context
    assert result["sent"] < 4 * MiB, f"the answer came only after {result['sent']} bytes: {context}"
    assert result["closed"] is not None, f"the connection stayed open after the answer: {context}"
    assert result["up_mb"] <= 16, context
    assert unread_ok(name, result)
    assert th.post(server, key=th.ACCESS_KEY, body=hello()).status_code == 200


NO_BODY = {
    # name: (path, Content-Length announced, message): the body is never sent
    "start, Content-Length one past its 64 KiB cap": ("/upload/v1beta/files", START_BODY_LIMIT + 1,
                                                      f"exceeds the limit: {START_BODY_LIMIT} bytes"),
    "cachedContents create, Content-Length one past MAX_REQUEST_BYTES": (
        "/v1beta/cachedContents", th.DEFAULT_MAX_REQUEST_BYTES + 1,
        f"exceeds the limit: {th.DEFAULT_MAX_REQUEST_BYTES} bytes"),
}


@pytest.mark.parametrize("name", list(NO_BODY))
def test_a_declared_oversized_body_is_refused_before_it_is_sent(server, upstream, name):
    path, length, words = NO_BODY[name]
    head, _ = keyed_head(path, {"Content-Length": str(length)})(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(head)  # and not one byte of the body
        response, seconds = th.read_response(sock, started + 5)
        closed = th.closed_within(sock, 1.5) if response is not None else None
    assert response is not None and response.status == 400, (response, th.trimmed_logs(server))
    assert words in response.error()["message"]
    assert seconds < 1.0 and closed is not None, (seconds, closed)
    assert upstream.requests == []


# --- stalled uploads beside a valid request -----------------------------------------------------

def stalled_uploads_case(server, count=32, known=False):
    """``count`` chunks announced (Content-Length 1 MiB) and never sent, on random upload_ids, or
    with ``known`` on upload URLs the caller started; 0.3 s later, a valid generateContent."""
    urls = [upload_url(server, MiB) if known else
            f"{server.url}/upload/v1beta/files?upload_id={secrets.token_urlsafe(32)}" for _ in range(count)]
    sockets = []
    try:
        for url in urls:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(chunk_head(url, {"Content-Length": str(MiB)}))
            sockets.append(sock)
        beside = {}
        timed_valid_request(server, beside, 0.3).join(15)
        return beside
    finally:
        for sock in sockets:
            sock.close()


# The valid request's bound, in seconds: at once beside chunks refused unread; beside chunks that
# are read (live upload URLs), after two body deadlines (CLIENT_BODY_TIMEOUT=1) at most: 32 of them
# take the 16 threads twice.
STALLED_BOUND = {False: 3.0, True: 2 * 1.0 + 1.5}


def stalled_uploads_ok(result, known):
    return result.get("status") == 200 and result["seconds"] <= STALLED_BOUND[known]


def test_32_stalled_chunks_on_unknown_upload_ids_do_not_hold_the_16_threads(serve, upstream, tmp_path):
    # the default 60 s body deadline: it is not what frees the threads
    function = serve(STORAGE_DIR=str(tmp_path), **th.TEAM_ENV)
    result = stalled_uploads_case(function)
    assert stalled_uploads_ok(result, known=False), (result, th.trimmed_logs(function))


def test_32_stalled_chunks_on_live_upload_urls_hold_threads_until_the_body_deadline_only(server, upstream):
    """An upload URL is a credential: its chunk is read, and a stalled one holds a thread until
    CLIENT_BODY_TIMEOUT (1 s here), as a stalled generateContent body with a valid key does."""
    result = stalled_uploads_case(server, known=True)
    assert stalled_uploads_ok(result, known=True), (result, th.trimmed_logs(server))


# --- guessing upload_ids --------------------------------------------------------------------------

def guessing_case(server, count=200):
    """``count`` random well-formed upload_ids, each asked for a 1-byte finalizing chunk."""
    guesses = [secrets.token_urlsafe(32) for _ in range(count)]
    answers, worst = [], 0.0
    with requests.Session() as session:
        for guess in guesses:
            started = time.monotonic()
            answer = session.post(f"{server.url}/upload/v1beta/files?upload_id={guess}&upload_protocol=resumable",
                                  data=b"x", timeout=10, headers={"X-Goog-Upload-Command": "upload, finalize",
                                                                  "X-Goog-Upload-Offset": "0"})
            worst = max(worst, time.monotonic() - started)
            answers.append((answer.status_code, answer.headers.get("X-Goog-Upload-Status")))
    return {"guesses": guesses, "answers": answers, "worst": worst}


def test_guessed_upload_ids_are_each_a_quick_404_final_and_never_logged(server, upstream):
    before = sorted(os.walk(server.store_dir))
    result = guessing_case(server)
    assert set(result["answers"]) == {(404, "final")}, result["answers"][:5]
    assert result["worst"] < 0.5, result["worst"]
    logs = server.logs()
    assert [guess for guess in result["guesses"] if guess[:12] in logs] == []
    assert sorted(os.walk(server.store_dir)) == before  # a guess stores nothing


# --- bodies at the cap ----------------------------------------------------------------------------

def cache_body(limit=th.DEFAULT_MAX_REQUEST_BYTES):
    """A cachedContents create of ``limit`` bytes: one image's worth of contents."""
    head = b'{"model":"models/qwen-turbo",'
    return head + th.image_body(limit - len(head) + 1)[1:]


def cache_at_the_cap_case(upstream_url):
    """The 20 MiB cache create in a fresh function process: its answer, time, worker peak RSS up."""
    body = cache_body()
    with fresh_files_server(upstream_url) as server:
        assert th.post(server, key=th.ACCESS_KEY, body=hello()).status_code == 200
        probe = th.MemoryProbe(server)
        started = time.monotonic()
        response = th.post(server, "/v1beta/cachedContents", body, key=th.ACCESS_KEY, timeout=60,
                           headers={"Content-Type": "application/json"})
        seconds = time.monotonic() - started
        up = probe.up_mb()
        after = th.post(server, key=th.ACCESS_KEY, body=hello()).status_code
        logs = th.trimmed_logs(server)
    return {"response": response, "size_mb": len(body) / th.MB, "seconds": seconds, "up_mb": up, "after": after,
            "logs": logs}


def test_a_cache_create_at_max_request_bytes_stays_within_generates_bound(upstream_server):
    result = cache_at_the_cap_case(upstream_server.base_url)
    response = result["response"]
    context = (f"status {response.status_code} {response.text[:200]!r}, {result['size_mb']:.1f} MB body, "
               f"{result['seconds']:.2f} s, peak RSS up {result['up_mb']:.0f} MB\n{result['logs']}")
    assert len(cache_body()) == th.DEFAULT_MAX_REQUEST_BYTES
    assert response.status_code == 200 and response.json()["name"].startswith("cachedContents/"), context
    assert result["up_mb"] <= 5 * result["size_mb"] + 30, context  # test_hostile's bound for an accepted body
    assert result["seconds"] < 20 and result["after"] == 200, context


def concurrent_caches_case(upstream_url, count=16):
    """``count`` 20 MiB cache creates at once (THREADS=16, the default 60 s body deadline, which is
    also how long a request waits for room in REQUEST_MEMORY_BYTES): statuses, seconds, peak RSS up."""
    body = cache_body()
    with fresh_files_server(upstream_url, CLIENT_BODY_TIMEOUT="60") as server:
        assert th.post(server, key=th.ACCESS_KEY, body=hello()).status_code == 200
        probe = th.MemoryProbe(server)
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            statuses = list(pool.map(lambda _: th.post(server, "/v1beta/cachedContents", body, key=th.ACCESS_KEY,
                                                       timeout=60, headers={"Content-Type": "application/json"}
                                                       ).status_code, range(count)))
        seconds = time.monotonic() - started
        up = probe.up_mb()
        logs = th.trimmed_logs(server)
    return {"statuses": sorted(statuses), "seconds": seconds, "up_mb": up, "size_mb": len(body) / th.MB, "logs": logs}


def test_sixteen_20_mib_cache_creates_at_once_hold_the_memory_budget(upstream_server):
    """As sixteen 20 MiB generateContent requests (test_hostile): they wait for room in
    REQUEST_MEMORY_BYTES (256 MiB) rather than take 16 times their size."""
    result = concurrent_caches_case(upstream_server.base_url)
    context = f"{ {k: v for k, v in result.items() if k != 'logs'} }\n{result['logs']}"
    assert result["statuses"] == [200] * 16, context
    assert result["up_mb"] <= 256, context


# --- many stored files past the budget -------------------------------------------------------------

def files_past_the_budget_case(server, count=50, size=MiB):
    """``count`` files of ``size`` bytes uploaded, then one generateContent naming them all (50 MiB
    against MAX_RESOLVED_FILE_BYTES, 20 MiB by default): its answer, time, worker peak RSS up."""
    names = []
    for number in range(count):
        url = upload_url(server, size)
        answer = chunk(url, bytes([number]) * size, 0, "upload, finalize")
        assert answer.status_code == 200, answer.text
        names.append(answer.json()["file"]["name"])
    body = {"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": name}} for name in names]}]}
    assert th.post(server, key=th.ACCESS_KEY, body=hello()).status_code == 200
    probe = th.MemoryProbe(server)
    started = time.monotonic()
    response = th.post(server, key=th.ACCESS_KEY, body=body)
    seconds = time.monotonic() - started
    return {"response": response, "seconds": seconds, "up_mb": probe.up_mb(), "files_mb": count * size / th.MB,
            "after": th.post(server, key=th.ACCESS_KEY, body=hello()).status_code}


FIRST_PAST_THE_BUDGET = "contents[0].parts[20].fileData: "  # 21 MiB > 20 MiB


def files_past_the_budget_ok(result):
    response = result["response"]
    return (response.status_code == 400 and response.json()["error"]["message"].startswith(FIRST_PAST_THE_BUDGET)
            and result["up_mb"] <= 8 and result["seconds"] < 2 and result["after"] == 200)


def test_50_files_past_max_resolved_file_bytes_are_refused_before_any_is_read(upstream_server, upstream):
    with fresh_files_server(upstream_server.base_url) as server:
        result = files_past_the_budget_case(server)
        logs = th.trimmed_logs(server)
    response = result["response"]
    context = f"{ {k: v for k, v in result.items() if k != 'response'} } {response.text[:300]}\n{logs}"
    assert response.status_code == 400, context
    message = error_of(response)["message"]
    assert message.startswith(FIRST_PAST_THE_BUDGET) and "MAX_RESOLVED_FILE_BYTES" in message, context
    assert result["up_mb"] <= 8, context  # 50 MB of files: none of them read
    assert files_past_the_budget_ok(result), context
    assert len(upstream.chat_requests) == 2  # the two valid requests beside it, not this one
