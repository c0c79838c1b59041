"""One structured JSON line per request, for Cloud Logging; no keys, query strings or prompt text."""

import json
import socket
import time
import uuid

import pytest
import requests

from fake_upstream import Json, Pause, Stream, chunk, text_stream, usage

SECRET_KEY = "sk-very-secret-key-4711"
PROMPT = "my confidential prompt about project zebra"


@pytest.fixture(scope="module")
def server(serve):
    return serve(GOOGLE_CLOUD_PROJECT="my-project")


def log_lines(server, agent, count=1):
    """The JSON log lines of requests sent with User-Agent ``agent`` (waits for stream ends)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
        mine = [line for line in lines if line.get("httpRequest", {}).get("userAgent") == agent]
        if len(mine) >= count or time.monotonic() > deadline:
            return mine
        time.sleep(0.02)


def post(server, path, body, headers=None, params=None):
    agent = f"test-agent/{uuid.uuid4()}"
    headers = {"User-Agent": agent, **(headers or {})}
    response = requests.post(server.url + path, json=body, headers=headers, params=params, timeout=10)
    return response, agent


BODY = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}


def test_a_generate_request_is_one_line_with_what_operations_need(server, upstream):
    upstream.reply(Json({"id": "x", "model": "qwen-turbo-2026", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "answer " + PROMPT}, "finish_reason": "stop"}],
        "usage": usage(11, 22)}))
    response, agent = post(server, "/gemini/v1beta/models/qwen-turbo:generateContent", BODY,
                           headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
                           params={"key": SECRET_KEY, "alt": "json"})
    assert response.status_code == 200
    [line] = log_lines(server, agent)
    assert line["severity"] == "INFO"
    assert line["httpRequest"]["requestMethod"] == "POST"
    assert line["httpRequest"]["requestUrl"] == "/gemini/v1beta/models/qwen-turbo:generateContent"
    assert line["httpRequest"]["status"] == 200
    assert line["httpRequest"]["latency"].endswith("s") and float(line["httpRequest"]["latency"][:-1]) > 0
    assert line["logging.googleapis.com/trace"] == "projects/my-project/traces/4bf92f3577b34da6a3ce929d0e0e4736"
    assert line["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert line["model"] == "qwen-turbo" and line["modelVersion"] == "qwen-turbo-2026"
    assert line["upstreamStatus"] == 200
    assert line["usage"] == {"promptTokenCount": 11, "candidatesTokenCount": 22, "totalTokenCount": 33}
    assert "200" in line["message"]


def test_a_stream_is_logged_once_when_it_ends_with_its_usage(server, upstream):
    upstream.reply(Stream(text_stream(["a", "b"], usage_=usage(3, 4))))
    response, agent = post(server, "/v1/models/qwen-turbo:streamGenerateContent", BODY,
                           headers={"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1",
                                    "x-goog-api-key": SECRET_KEY}, params={"alt": "sse"})
    assert response.status_code == 200
    lines = log_lines(server, agent)
    time.sleep(0.2)
    assert len(log_lines(server, agent)) == 1
    [line] = lines
    assert line["stream"] is True and line["usage"]["totalTokenCount"] == 7
    assert line["logging.googleapis.com/trace"] == "projects/my-project/traces/105445aa7843bc8bf206b12000100000"
    assert line["logging.googleapis.com/spanId"] == "0000000000000001"


@pytest.mark.parametrize("body,status,severity", [
    ({"contents": []}, 400, "WARNING"),
    (BODY, 503, "ERROR"),
])
def test_severity_follows_the_status(server, upstream, body, status, severity):
    upstream.reply(*[Json({"error": {"message": "down"}}, status=503)] * 3)
    response, agent = post(server, "/v1/models/qwen-turbo:generateContent", body, headers={"x-goog-api-key": SECRET_KEY})
    assert response.status_code == status
    [line] = log_lines(server, agent)
    assert line["severity"] == severity and line["httpRequest"]["status"] == status


def test_keys_query_strings_and_prompts_never_reach_the_logs(server, upstream):
    upstream.reply(Json({"error": {"message": f"Incorrect API key provided: {SECRET_KEY}"}}, status=401))
    response, _ = post(server, "/v1/models/qwen-turbo:generateContent", BODY, params={"key": SECRET_KEY})
    assert response.status_code == 400 and "API_KEY_INVALID" in response.text  # Google's answer to a wrong key
    assert SECRET_KEY not in response.text  # the upstream quoted it; it is redacted on the way
    post(server, "/v1/models/qwen-turbo:generateContent", BODY, headers={"Authorization": f"Bearer {SECRET_KEY}"})
    post(server, "/v1/models/qwen-turbo:streamGenerateContent", BODY, params={"alt": "sse", "key": SECRET_KEY})
    post(server, "/v1/models/qwen-turbo:generateContent", {"contents": "bad " + PROMPT}, params={"key": SECRET_KEY})
    time.sleep(0.3)
    logs = server.logs()
    assert logs.count('"httpRequest"') >= 4
    assert SECRET_KEY not in logs
    assert "key=" not in logs
    assert "zebra" not in logs


def test_a_huge_cloud_trace_span_is_ignored_not_a_500(server, upstream):
    response, agent = post(server, "/v1/models/qwen-turbo:generateContent", BODY,
                           headers={"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/" + "9" * 5000,
                                    "x-goog-api-key": SECRET_KEY})
    assert response.status_code == 200
    [line] = log_lines(server, agent)
    assert line["logging.googleapis.com/trace"].endswith("105445aa7843bc8bf206b12000100000")
    assert "logging.googleapis.com/spanId" not in line


def test_upstream_answers_quoted_in_errors_are_not_logged(server, upstream):
    upstream.reply(Stream([chunk({"content": "fine"}), b"data: {not json about zebra}\n\n"]))
    response, agent = post(server, "/v1/models/qwen-turbo:streamGenerateContent", BODY,
                           headers={"x-goog-api-key": SECRET_KEY}, params={"alt": "sse"})
    assert "zebra" in response.text  # the client is told what the upstream sent...
    [line] = log_lines(server, agent)
    # A stream that fails after it began is logged with the error's code, so it counts as a failure.
    assert line["httpRequest"]["status"] == 500 and "invalid stream event" in line["message"]
    assert "zebra" not in json.dumps(line)  # ...the log is not


def test_a_stream_the_client_abandons_is_logged_as_499(server, upstream):
    upstream.reply(Stream([chunk({"content": "a"})] + [Pause(seconds=0.05), chunk({"content": "b"})] * 100))
    agent = f"test-agent/{uuid.uuid4()}"
    body = json.dumps(BODY).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as client:
        client.sendall(f"POST /v1/models/qwen-turbo:streamGenerateContent?alt=sse HTTP/1.1\r\nHost: x\r\n"
                       f"User-Agent: {agent}\r\nx-goog-api-key: {SECRET_KEY}\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        assert client.recv(65536).startswith(b"HTTP/1.1 200")
    [line] = log_lines(server, agent)
    assert line["httpRequest"]["status"] == 499 and line["stream"] is True
