"""The caller's API key: where it is taken from (x-goog-api-key, ?key=, ?$key=, Authorization: Bearer,
in that order of precedence), how it reaches the upstream (always as ``Authorization: Bearer <key>``),
what is refused before any upstream call, and that it never shows up in the function's logs. In
process (functions-framework's app through its test client), but for header bytes only a real
client sends (over the wire, to the served function)."""

import http.client
import json
import uuid
from urllib.parse import quote

import pytest

from fake_upstream import Json, Raw, Stream, chunk
from helpers import KEY, error_of, hello

GENERATE = "/v1beta/models/qwen-turbo:generateContent"
STREAM = "/v1beta/models/qwen-turbo:streamGenerateContent?alt=sse"
OTHER_KEY = "other-key-456"
THIRD_KEY = "third-key-789"


def upstream_authorization(upstream):
    assert len(upstream.chat_requests) == 1
    request = upstream.chat_requests[0]
    headers = {name.lower(): value for name, value in request["headers"].items()}
    # the key travels only as a Bearer token: not in the URL, not under the Gemini header name
    assert request["path"] == "/v1/chat/completions"
    assert "x-goog-api-key" not in headers
    return headers["authorization"]


def join_query(path, query):
    return path + ("&" if "?" in path else "?") + query if query else path


# --- where the key comes from ------------------------------------------------------------------

@pytest.mark.parametrize("path", [GENERATE, STREAM], ids=["generate", "stream"])
@pytest.mark.parametrize("query, headers, expected", [
    pytest.param("", {"x-goog-api-key": KEY}, KEY, id="x-goog-api-key"),
    pytest.param("", {"X-Goog-Api-Key": KEY}, KEY, id="x-goog-api-key-any-case"),
    pytest.param(f"key={KEY}", {}, KEY, id="query-key"),
    pytest.param(f"$key={KEY}", {}, KEY, id="query-dollar-key"),
    pytest.param("", {"Authorization": f"Bearer {KEY}"}, KEY, id="bearer"),
    pytest.param("", {"Authorization": f"bearer {KEY}"}, KEY, id="bearer-lowercase-scheme"),
    pytest.param("", {"Authorization": f"BEARER {KEY}"}, KEY, id="bearer-uppercase-scheme"),
    pytest.param("key=%20%20padded-key%20", {}, "padded-key", id="query-key-trimmed"),
    pytest.param("", {"Authorization": "Bearer   padded-key"}, "padded-key", id="bearer-extra-spaces"),
    # RFC 6750 b64token: every character an API key or bearer token is made of.
    pytest.param("key=" + quote("AIza-._~+/Zz09==", safe=""), {}, "AIza-._~+/Zz09==", id="query-key-b64token"),
    pytest.param("", {"x-goog-api-key": "sk-air-._~+/Zz09=="}, "sk-air-._~+/Zz09==", id="header-b64token"),
    pytest.param("key=" + "k" * 4096, {}, "k" * 4096, id="query-key-4096-chars"),
])
def test_key_reaches_upstream_as_bearer(post, upstream, path, query, headers, expected):
    response = post(join_query(path, query), hello(), key=None, headers=headers)
    assert response.status_code == 200, response.text
    assert "Hello" in response.text  # the echo (streamed word by word)
    assert upstream_authorization(upstream) == f"Bearer {expected}"


@pytest.mark.parametrize("query, headers, expected", [
    pytest.param(f"key={OTHER_KEY}", {"x-goog-api-key": KEY}, KEY, id="header-over-query"),
    pytest.param("", {"x-goog-api-key": KEY, "Authorization": f"Bearer {OTHER_KEY}"}, KEY, id="header-over-bearer"),
    pytest.param(f"key={KEY}", {"Authorization": f"Bearer {OTHER_KEY}"}, KEY, id="query-over-bearer"),
    pytest.param(f"key={OTHER_KEY}", {"x-goog-api-key": KEY, "Authorization": f"Bearer {THIRD_KEY}"}, KEY,
                 id="header-over-query-over-bearer"),
    pytest.param(f"key={KEY}&$key={OTHER_KEY}", {}, KEY, id="key-over-dollar-key"),
    pytest.param(f"$key={KEY}", {"Authorization": f"Bearer {OTHER_KEY}"}, KEY, id="dollar-key-over-bearer"),
    # an empty source does not shadow the next one
    pytest.param(f"key={KEY}", {"x-goog-api-key": ""}, KEY, id="empty-header-falls-back-to-query"),
    pytest.param("key=", {"Authorization": f"Bearer {KEY}"}, KEY, id="empty-query-falls-back-to-bearer"),
    # the winning source decides, even when a losing one is malformed
    pytest.param("key=a%0Db", {"x-goog-api-key": KEY}, KEY, id="header-wins-over-bad-query"),
    pytest.param("", {"x-goog-api-key": KEY, "Authorization": "Bearer \u00e9"}, KEY, id="header-wins-over-bad-bearer"),
])
def test_key_precedence(post, upstream, query, headers, expected):
    response = post(join_query(GENERATE, query), hello(), key=None, headers=headers)
    assert response.status_code == 200, response.text
    assert upstream_authorization(upstream) == f"Bearer {expected}"


def test_query_key_beats_a_bad_bearer_and_a_bad_query_key_beats_a_good_bearer(post, upstream):
    response = post(join_query(GENERATE, f"key={KEY}"), hello(), key=None,
                      headers={"Authorization": "Bearer \u00e9"})
    assert response.status_code == 200, response.text
    assert upstream_authorization(upstream) == f"Bearer {KEY}"
    upstream.reset()
    response = post(join_query(GENERATE, "key=a%0Ab"), hello(), key=None,
                      headers={"Authorization": f"Bearer {KEY}"})
    error = error_of(response)
    assert response.status_code == 400 and error["status"] == "INVALID_ARGUMENT"
    assert upstream.chat_requests == []


# --- no key: 403 PERMISSION_DENIED -------------------------------------------------------------

@pytest.mark.parametrize("path", [GENERATE, STREAM], ids=["generate", "stream"])
@pytest.mark.parametrize("query, headers", [
    pytest.param("", {}, id="nothing"),
    pytest.param("key=", {}, id="empty-query-key"),
    pytest.param("key=%20%20%20", {}, id="whitespace-query-key"),
    pytest.param("$key=", {}, id="empty-dollar-key"),
    pytest.param("", {"x-goog-api-key": ""}, id="empty-header"),
    pytest.param("", {"Authorization": "Bearer"}, id="bearer-without-token"),
    pytest.param("", {"Authorization": "Bearer "}, id="bearer-empty-token"),
    pytest.param("", {"Authorization": f"Basic {KEY}"}, id="basic-scheme"),
    pytest.param("", {"Authorization": f"Token {KEY}"}, id="token-scheme"),
    pytest.param("", {"Authorization": KEY}, id="no-scheme"),
    pytest.param("api_key=" + KEY, {"api-key": KEY, "x-api-key": KEY}, id="other-names-are-not-keys"),
])
def test_missing_key_is_403_and_nothing_goes_upstream(post, upstream, path, query, headers):
    response = post(join_query(path, query), hello(), key=None, headers=headers)
    error = error_of(response)
    assert response.status_code == 403
    assert error["status"] == "PERMISSION_DENIED"
    assert "API key" in error["message"]
    assert upstream.requests == []


@pytest.mark.parametrize("value", ["   ", "\t"], ids=["spaces", "tab"])
def test_whitespace_only_header_is_a_missing_key(function, upstream, value):
    # requests refuses such header values; http.client sends them as they are
    connection = http.client.HTTPConnection("127.0.0.1", function.port, timeout=30)
    try:
        connection.request("POST", GENERATE, body=json.dumps(hello()),
                           headers={"Content-Type": "application/json", "x-goog-api-key": value})
        response = connection.getresponse()
        status, content_type, body = response.status, response.getheader("Content-Type"), json.loads(response.read())
    finally:
        connection.close()
    assert status == 403
    assert content_type.startswith("application/json")
    assert body["error"]["status"] == "PERMISSION_DENIED"
    assert upstream.requests == []


def test_missing_key_is_reported_before_the_body_is_looked_at(post, upstream):
    response = post(GENERATE, b"{not json", key=None)
    error = error_of(response)
    assert response.status_code == 403 and error["status"] == "PERMISSION_DENIED"
    assert upstream.requests == []


# --- keys that cannot be keys: 400, never 500, nothing upstream --------------------------------

@pytest.mark.parametrize("path", [GENERATE, STREAM], ids=["generate", "stream"])
@pytest.mark.parametrize("query, headers", [
    pytest.param("key=a%0Db", {}, id="query-carriage-return"),
    pytest.param("key=a%0Ab", {}, id="query-newline"),
    pytest.param("key=a%0D%0AX-Injected:%201", {}, id="query-header-injection"),
    pytest.param("", {"x-goog-api-key": "AIza!bad#key"}, id="punctuation-outside-b64token"),
    pytest.param("key=" + quote("a%b", safe=""), {}, id="percent-sign"),
    pytest.param("key=a%00b", {}, id="query-nul"),
    pytest.param("key=a%09b", {}, id="query-tab"),
    pytest.param("key=a%20b", {}, id="query-inner-space"),
    pytest.param("key=a%7Fb", {}, id="query-del"),
    pytest.param("key=%C3%A9", {}, id="query-non-ascii"),
    pytest.param("$key=%C3%A9", {}, id="dollar-key-non-ascii"),
    pytest.param("key=" + "k" * 4097, {}, id="query-too-long"),
    pytest.param("", {"x-goog-api-key": "\u00e9t\u00e9"}, id="header-latin1"),
    pytest.param("", {"x-goog-api-key": "\u00c3\u00a9".encode("latin-1")}, id="header-utf8-bytes"),
    pytest.param("", {"x-goog-api-key": "a b"}, id="header-inner-space"),
    pytest.param("", {"Authorization": "Bearer a b"}, id="bearer-inner-space"),
    pytest.param("", {"Authorization": "Bearer \u00e9"}, id="bearer-non-ascii"),
])
def test_malformed_key_is_400_not_500_and_nothing_goes_upstream(post, upstream, path, query, headers):
    response = post(join_query(path, query), hello(), key=None, headers=headers)
    error = error_of(response)
    assert response.status_code == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert "API key" in error["message"]
    assert "X-Injected" not in response.headers
    assert upstream.requests == []


# --- the key never reaches the logs ------------------------------------------------------------

@pytest.fixture
def canary():
    """A key no other test uses, so that what one test leaks cannot fail another."""
    return f"AIzaCanary-{uuid.uuid4().hex}-never-log-me"


def assert_not_logged(server, *secrets):
    logs = server.logs()
    for secret in secrets:
        assert secret not in logs, f"the key was logged:\n{logs[-2000:]}"


def canary_requests(post, canary, path=GENERATE, body=None):
    """The same request with the key in each place a client may put it."""
    body = hello() if body is None else body
    return [
        post(join_query(path, f"key={canary}"), body, key=None),
        post(path, body, key=canary),
        post(path, body, key=None, headers={"Authorization": f"Bearer {canary}"}),
    ]


def test_key_not_logged_on_success(app, post, upstream, canary):
    for response in canary_requests(post, canary) + canary_requests(post, canary, STREAM):
        assert response.status_code == 200, response.text
    assert len(upstream.chat_requests) == 6
    assert {r["headers"]["Authorization"] for r in upstream.chat_requests} == {f"Bearer {canary}"}
    assert_not_logged(app, canary)


@pytest.mark.parametrize("path", [GENERATE, STREAM], ids=["generate", "stream"])
def test_key_not_logged_after_upstream_401(app, post, upstream, path, canary):
    rejection = Json({"error": {"message": "Invalid API key.", "type": "invalid_request_error",
                                "code": "invalid_api_key"}}, status=401)
    upstream.reply(rejection, rejection, rejection)
    for response in canary_requests(post, canary, path):
        error = error_of(response)
        assert response.status_code == 400
        assert error["status"] == "INVALID_ARGUMENT" and error["details"] == API_KEY_INVALID_DETAILS
        assert canary not in response.text
    assert [r["headers"]["Authorization"] for r in upstream.chat_requests] == [f"Bearer {canary}"] * 3
    assert_not_logged(app, canary)


INVALID_KEY_REPLY = Json({"error": {"message": "Invalid API key.", "type": "invalid_request_error",
                                   "code": "invalid_api_key"}}, status=401)
# Pass-through mode: the upstream rejected the caller's own key, which Google answers 400 with
# reason API_KEY_INVALID (what clients read to ask for another key), not 401.
API_KEY_INVALID_DETAILS = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com"}]
UPSTREAM_401_MESSAGE = "API key not valid. Please pass a valid API key. (The upstream said: Invalid API key.)"


def test_upstream_401_message_reaches_the_client_on_stream(post, upstream):
    upstream.reply(INVALID_KEY_REPLY)
    response = post(STREAM, hello(), key=OTHER_KEY)
    error = error_of(response)
    assert response.status_code == 400 and error["status"] == "INVALID_ARGUMENT"
    assert error["details"] == API_KEY_INVALID_DETAILS
    assert error["message"] == UPSTREAM_401_MESSAGE
    assert upstream_authorization(upstream) == f"Bearer {OTHER_KEY}"


def test_upstream_401_message_reaches_the_client_on_generate(post, upstream):
    upstream.reply(INVALID_KEY_REPLY)
    response = post(GENERATE, hello(), key=OTHER_KEY)
    error = error_of(response)
    assert response.status_code == 400 and error["status"] == "INVALID_ARGUMENT"
    assert error["details"] == API_KEY_INVALID_DETAILS
    assert upstream_authorization(upstream) == f"Bearer {OTHER_KEY}"
    assert error["message"] == UPSTREAM_401_MESSAGE


@pytest.mark.parametrize("query", ["key=%FF%FE", "key=%ED%A0%80", "key=ok%FFkey"])
def test_query_key_that_is_not_utf8_is_400(post, upstream, query):
    response = post(join_query(GENERATE, query), hello(), key=None)
    error = error_of(response)
    assert response.status_code == 400 and error["status"] == "INVALID_ARGUMENT"
    assert upstream.requests == []


def test_key_not_logged_after_upstream_500_html(app, post, upstream, canary):
    page = Raw("<html><title>500 Internal Server Error</title><body>boom</body></html>", status=500,
               content_type="text/html")
    upstream.reply(page, page, page)
    for response in canary_requests(post, canary):
        error = error_of(response)
        assert response.status_code == 500
        assert "<html" not in error["message"]
        assert canary not in response.text
    assert len(upstream.chat_requests) == 3
    assert_not_logged(app, canary)


def test_key_not_logged_when_upstream_is_unreachable(in_process, upstream, canary):
    unreachable = in_process(UPSTREAM_BASE_URL="http://127.0.0.1:9/v1", UPSTREAM_RETRIES="0")
    for path in (GENERATE, STREAM):
        for response in canary_requests(unreachable.post, canary, path):
            error = error_of(response)
            assert response.status_code == 503
            assert error["status"] == "UNAVAILABLE"
            assert canary not in response.text
    assert upstream.requests == []
    assert_not_logged(unreachable, canary)


def test_key_not_logged_on_an_internal_error(app, post, upstream, canary):
    # A lone surrogate in a text part cannot be encoded for the upstream; whatever the function
    # answers (and logs) about it, the key must not be in the log.
    body = b'{"contents": [{"parts": [{"text": "\\ud800"}]}]}'
    for response in canary_requests(post, canary, body=body):
        error_of(response)
        assert canary not in response.text
    assert_not_logged(app, canary)


def echoed(key):
    return f"Incorrect API key provided: {key}. You can find your API key at https://example.invalid."


# Upstream replies quoting a key, built for the key of the test.
QUOTING_REPLIES = [
    pytest.param(GENERATE, lambda key: Json({"error": {"message": echoed(key), "code": "invalid_api_key"}},
                                            status=401), id="generate-401"),
    pytest.param(STREAM, lambda key: Json({"error": {"message": echoed(key), "code": "invalid_api_key"}},
                                          status=401), id="stream-401"),
    pytest.param(GENERATE, lambda key: Raw(echoed(key), status=403), id="generate-403-text"),
    pytest.param(STREAM, lambda key: Raw(echoed(key), status=403), id="stream-403-text"),
    pytest.param(GENERATE, lambda key: Json({"error": {"message": echoed(key), "code": 401}}),
                 id="generate-error-in-200"),
    pytest.param(STREAM, lambda key: Stream([{"error": {"message": echoed(key), "code": 401}}]),
                 id="stream-error-first"),
    pytest.param(STREAM, lambda key: Stream([chunk({"role": "assistant", "content": "Hi"}),
                                             {"error": {"message": echoed(key), "code": 401}}]),
                 id="stream-error-after-output"),
]


@pytest.mark.parametrize("path, reply", QUOTING_REPLIES)
def test_key_quoted_by_the_upstream_is_not_logged(app, post, upstream, path, reply, canary):
    upstream.reply(reply(canary))
    response = post(join_query(path, f"key={canary}"), hello(), key=None)
    assert response.status_code != 200 or '"error"' in response.text
    assert upstream.chat_requests[0]["headers"]["Authorization"] == f"Bearer {canary}"
    assert_not_logged(app, canary)
    assert canary not in response.text  # redacted on the way to the client too, as for non-200 answers


TEAM_UPSTREAM_KEY = "sk-team-upstream-secret-4b1e8a"
TEAM_ACCESS_KEY = "team-access-key-93c2"


@pytest.mark.parametrize("path, reply", QUOTING_REPLIES)
def test_team_mode_upstream_key_quoted_by_the_upstream_is_neither_logged_nor_returned(in_process, upstream, path, reply):
    server = in_process(UPSTREAM_API_KEY=TEAM_UPSTREAM_KEY, ACCESS_KEYS=TEAM_ACCESS_KEY)
    logged_before = len(server.logs())
    upstream.reply(reply(TEAM_UPSTREAM_KEY))
    response = server.post(path, hello(), key=TEAM_ACCESS_KEY)
    assert response.status_code != 200 or '"error"' in response.text
    # the function's own key went upstream, the caller's access key did not
    assert upstream_authorization(upstream) == f"Bearer {TEAM_UPSTREAM_KEY}"
    assert TEAM_UPSTREAM_KEY not in response.text
    new_logs = server.logs()[logged_before:]
    assert TEAM_UPSTREAM_KEY not in new_logs and TEAM_ACCESS_KEY not in new_logs, new_logs


IDENTITY_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL3gifQ.c2lnbmF0dXJl"


def test_an_identity_token_is_not_taken_for_an_api_key(post, upstream):
    # On an IAM-private service "Authorization: Bearer" carries the caller's Google identity token.
    response = post(GENERATE, hello(), key=None, headers={"Authorization": f"Bearer {IDENTITY_TOKEN}"})
    assert response.status_code == 403 and "identity token" in error_of(response)["message"]
    assert upstream.requests == []
    response = post(GENERATE, hello(), key="real-key", headers={"Authorization": f"Bearer {IDENTITY_TOKEN}"})
    assert response.status_code == 200 and upstream_authorization(upstream) == "Bearer real-key"
