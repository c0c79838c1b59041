"""Property-based fuzzing of the request path over real HTTP: thousands of generated and mutated
bodies, headers and paths. Never a 5xx, never a traceback or HTML, every error in the Gemini envelope,
and nothing forwarded upstream unless the answer is a success."""

import http.client
import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import KEY
from strategies import VALID, json_values, mutated_bodies

SETTINGS = settings(max_examples=700, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

def send(port, method, path, body, headers):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def check(response, upstream, before, method="POST"):
    status, headers, body = response
    forwarded = len(upstream.chat_requests) - before
    assert status < 500, (status, body[:500])
    assert b"Traceback" not in body and b"<html" not in body.lower() and b"<!doctype" not in body.lower()
    if status != 200 and method != "HEAD":
        assert headers["Content-Type"].startswith("application/json")
        error = json.loads(body)["error"]
        assert error["code"] == status and error["message"] and error["status"]
    if forwarded:
        assert status == 200, (status, body[:500])
    elif (method == "POST" and status == 200
          and headers.get("Content-Type", "").startswith(("application/json", "text/event"))):
        raise AssertionError("a success without asking the upstream")


@SETTINGS
@given(body=mutated_bodies(), stream=st.booleans(), snake=st.booleans())
def test_mutated_requests(function, upstream_server, body, stream, snake):
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    before = len(upstream_server.chat_requests)
    raw = json.dumps(body).encode()
    response = send(function.port, "POST", f"/v1beta/models/qwen-turbo:{action}", raw,
                    {"x-goog-api-key": KEY, "Content-Type": "application/json"})
    check(response, upstream_server, before)


@SETTINGS
@given(body=json_values | st.dictionaries(st.sampled_from(list(VALID) + ["generation_config", "x"]), json_values))
def test_random_json_bodies(function, upstream_server, body):
    before = len(upstream_server.chat_requests)
    response = send(function.port, "POST", "/v1/models/m:generateContent", json.dumps(body).encode(),
                    {"x-goog-api-key": KEY})
    check(response, upstream_server, before)


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_random_bytes(function, upstream_server, raw):
    before = len(upstream_server.chat_requests)
    response = send(function.port, "POST", "/v1beta/models/m:streamGenerateContent", raw, {"x-goog-api-key": KEY})
    check(response, upstream_server, before)


segments = st.sampled_from(["v1", "v1beta", "v1alpha", "v2", "models", "tunedModels", "..", ".", "", "qwen-turbo",
                            "Qwen", "a:b", ":generateContent", "x:streamGenerateContent", "%2F", "%2e%2e", "%00"])
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40)


@SETTINGS
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
       parts=st.lists(segments | st.text(max_size=10).map(lambda t: quote(t, safe=":")), max_size=6),
       key_header=st.sampled_from(["x-goog-api-key", "Authorization", "X-Other"]), key=header_values,
       query=st.sampled_from(["", "?alt=sse", "?alt=json", "?key=", "?key=%0d%0a", "?alt=proto&key=k", "?$key=k"]),
       content_type=st.sampled_from(["application/json", "text/plain", "", "multipart/form-data; boundary=x"]))
def test_random_paths_methods_and_headers(function, upstream_server, method, parts, key_header, key, query, content_type):
    before = len(upstream_server.chat_requests)
    path = "/" + "/".join(parts) + query
    headers = {key_header: key}
    if content_type:
        headers["Content-Type"] = content_type
    body = json.dumps({"contents": [{"parts": [{"text": "hi"}]}]}).encode() if method != "GET" else None
    try:
        response = send(function.port, method, path, body, headers)
    except http.client.InvalidURL:
        return  # not something an HTTP client can send
    check(response, upstream_server, before, method)
