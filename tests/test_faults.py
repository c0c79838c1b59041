"""Faults: retries before the first byte, client disconnects, oversized bodies."""

import json
import socket
import threading
import time

import pytest
import requests

from fake_upstream import Disconnect, Hangup, Json, Pause, Stream, chunk, completion, text_stream
from helpers import KEY, error_of, hello, sse_chunks

PATH = "/v1beta/models/qwen-turbo:generateContent"
STREAM_PATH = "/v1beta/models/qwen-turbo:streamGenerateContent?alt=sse"
OVERLOADED = {"error": {"message": "overloaded", "type": "server_error", "code": 503}}


@pytest.mark.parametrize("failure", [
    Json(OVERLOADED, status=503),
    Json({"error": {"message": "Bad gateway"}}, status=502),
    Json({"error": {"message": "rate limited"}}, status=429, headers={"Retry-After": "0"}),
    Json({"error": {"message": "rate limited"}}, status=429, headers={"retry-after-ms": "10"}),
    Hangup(),
])
def test_retryable_failures_are_retried(gemini, upstream, failure):
    upstream.reply(failure, Json(completion("recovered")))
    response = gemini(PATH, hello())
    assert response.status_code == 200 and response.json()["candidates"][0]["content"]["parts"][0]["text"] == "recovered"
    assert len(upstream.chat_requests) == 2
    assert upstream.chat_requests[0]["json"] == upstream.chat_requests[1]["json"]


# The upstream's status decides the retry; the client gets the code Google would answer (a
# rejected caller's key is 400 API_KEY_INVALID, a 422 is a 400).
@pytest.mark.parametrize("status, code", [(400, 400), (401, 400), (403, 403), (404, 404), (422, 400), (500, 500)])
def test_input_and_other_errors_are_not_retried(gemini, upstream, status, code):
    upstream.reply(Json({"error": {"message": "no"}}, status=status), Json(completion("should not be used")))
    assert gemini(PATH, hello()).status_code == code
    assert len(upstream.chat_requests) == 1


def test_retries_are_bounded_and_the_last_error_reaches_the_client(gemini, upstream):
    upstream.reply(*[Json(OVERLOADED, status=503)] * 5)
    response = gemini(PATH, hello())
    assert (response.status_code, error_of(response)["message"]) == (503, "overloaded")
    assert len(upstream.chat_requests) == 3  # the first try and UPSTREAM_RETRIES=2 (the default)


def test_retries_can_be_turned_off(serve, upstream):
    server = serve(UPSTREAM_RETRIES="0")
    upstream.reply(Json(OVERLOADED, status=503), Json(completion()))
    response = requests.post(server.url + PATH, json=hello(), headers={"x-goog-api-key": KEY})
    assert response.status_code == 503 and len(upstream.chat_requests) == 1


def test_a_long_retry_after_is_passed_on_not_waited_out(gemini, upstream):
    upstream.reply(Json({"error": {"message": "later"}}, status=429, headers={"Retry-After": "60"}), Json(completion()))
    started = time.monotonic()
    response = gemini(PATH, hello())
    assert time.monotonic() - started < 2
    assert response.status_code == 429 and response.headers["Retry-After"] == "60"
    assert error_of(response)["details"] == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "60s"}]
    assert len(upstream.chat_requests) == 1


def test_retries_stay_within_the_overall_timeout(serve, upstream):
    server = serve(UPSTREAM_TIMEOUT="1", UPSTREAM_RETRIES="5")
    upstream.reply(*[Json({"error": {"message": "busy"}}, status=429, headers={"Retry-After": "0.6"})] * 6)
    started = time.monotonic()
    response = requests.post(server.url + PATH, json=hello(), headers={"x-goog-api-key": KEY})
    assert response.status_code == 429
    assert time.monotonic() - started < 1.5
    assert len(upstream.chat_requests) == 2  # a third try would end after the 1 s budget


def test_a_stream_is_retried_while_nothing_has_been_sent(gemini, upstream):
    upstream.reply(Json(OVERLOADED, status=503),
                   Stream([{"error": {"message": "provider unavailable", "code": 502}}]),  # error before any output
                   Stream(text_stream(["fine"])))
    response = gemini(STREAM_PATH, hello())
    assert response.status_code == 200
    assert "".join(p["text"] for c in sse_chunks(response) for p in c["candidates"][0]["content"]["parts"]) == "fine"
    assert len(upstream.chat_requests) == 3


def test_a_stream_is_never_retried_once_output_has_begun(gemini, upstream):
    upstream.reply(Stream([chunk({"content": "partial"}), Disconnect()]), Stream(text_stream(["again"])))
    response = gemini(STREAM_PATH, hello())
    chunks = sse_chunks(response)
    assert chunks[0]["candidates"][0]["content"]["parts"][0]["text"] == "partial"
    assert list(chunks[-1]) == ["error"] and chunks[-1]["error"]["code"] == 500
    assert chunks[-1]["error"]["status"] == "INTERNAL"
    assert len(upstream.chat_requests) == 1


def test_client_disconnect_closes_the_upstream_promptly_and_frees_the_worker(serve, upstream):
    server = serve(THREADS="1")
    items = [chunk({"content": "tick "})]
    for _ in range(200):
        items += [Pause(seconds=0.05), chunk({"content": "tick "})]
    upstream.reply(Stream(items + [chunk({}, finish="stop"), "[DONE]"]))

    body = json.dumps(hello()).encode()
    client = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    client.sendall(f"POST {STREAM_PATH} HTTP/1.1\r\nHost: x\r\nx-goog-api-key: {KEY}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    received = b""
    while b"data: " not in received:  # the first chunk is flowing
        received += client.recv(4096)
    assert received.startswith(b"HTTP/1.1 200")
    client.close()
    closed_at = time.monotonic()

    deadline = closed_at + 5
    while not upstream.disconnects and time.monotonic() < deadline:
        time.sleep(0.01)
    assert upstream.disconnects, "the upstream never saw its connection close"
    assert upstream.disconnects[0] - closed_at < 1.0
    # The only worker thread is free again: a new request is answered at once.
    assert requests.post(server.url + PATH, json=hello(), headers={"x-goog-api-key": KEY}, timeout=3).status_code == 200


@pytest.fixture(scope="module")
def small(serve):
    return serve(MAX_REQUEST_BYTES="2000")


def test_a_body_over_the_limit_is_a_400(small, upstream):
    response = requests.post(small.url + PATH, data=json.dumps(hello("x" * 3000)),
                             headers={"x-goog-api-key": KEY, "Content-Type": "application/json"})
    error = error_of(response)
    assert (response.status_code, error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["message"] == "Request payload size exceeds the limit: 2000 bytes."
    assert upstream.requests == []
    assert requests.post(small.url + PATH, json=hello("x" * 100), headers={"x-goog-api-key": KEY}).status_code == 200


def test_an_oversized_body_is_refused_without_being_read(small, upstream):
    with socket.create_connection(("127.0.0.1", small.port), timeout=5) as sock:
        sock.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nx-goog-api-key: {KEY}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n".encode() + b"{" * 1000)
        answer = b""
        for _ in range(100):  # the whole answer arrives, then the connection closes...
            block = sock.recv(65536)  # ...although 49.999 MB of the body were never sent
            if not block:
                break
            answer += block
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert f"content-length: {len(body)}".encode() in head.lower()
    assert json.loads(body)["error"]["status"] == "INVALID_ARGUMENT"
    assert upstream.requests == []


def test_a_chunked_body_over_the_limit_is_a_400(small, upstream):
    def body():
        for _ in range(10):
            yield b'{"contents": "' + b"x" * 500

    response = requests.post(small.url + PATH, data=body(), headers={"x-goog-api-key": KEY})
    error = error_of(response)
    assert (response.status_code, error["status"]) == (400, "INVALID_ARGUMENT") and upstream.requests == []
    assert error["message"] == "Request payload size exceeds the limit: 2000 bytes."


def test_concurrent_requests_share_the_pool_without_mixing_answers(gemini, upstream):
    results = {}

    def ask(number):
        results[number] = gemini(PATH, hello(f"n{number}")).json()["candidates"][0]["content"]["parts"][0]["text"]

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: f"echo: n{n}" for n in range(16)}


def test_an_upstream_slow_to_end_its_body_after_done_does_not_hold_the_client(gemini, upstream):
    upstream.reply(Stream(text_stream(["quick"]) + [Pause(seconds=3)]))
    started = time.monotonic()
    response = gemini(STREAM_PATH, hello())
    assert time.monotonic() - started < 1.5
    assert sse_chunks(response)[-1]["candidates"][0]["finishReason"] == "STOP"
