"""Per-team private endpoints: access keys, the team's upstream key, model aliases and allow-lists, CORS."""

import hashlib
import json
import time

import pytest
import requests

from fake_upstream import Json
from helpers import error_of, hello

UPSTREAM_KEY = "sk-team-upstream-secret"
ALICE, BOB = "alice-access-key", "bob-access-key"
HEX_KEY = "ab" * 32  # a key made with `openssl rand -hex 32` looks like a digest: configure its digest


@pytest.fixture(scope="module")
def team(serve):
    digest = hashlib.sha256(BOB.encode()).hexdigest()
    hex_key_digest = hashlib.sha256(HEX_KEY.encode()).hexdigest()
    return serve(UPSTREAM_API_KEY=UPSTREAM_KEY, ACCESS_KEYS=f"{ALICE}, {digest},sha256:{hex_key_digest}",
                 MODEL_ALIASES="gemini-2.5-flash=qwen-turbo, gemini-2.5-pro=qwen-max",
                 ALLOWED_MODELS="qwen-turbo,qwen-max,Qwen/Qwen3-8B")


def post(server, path="/v1beta/models/qwen-turbo:generateContent", body=None, headers=None, **kwargs):
    return requests.post(server.url + path, json=body or hello(), headers=headers or {}, timeout=10, **kwargs)


@pytest.mark.parametrize("key", [ALICE, BOB, HEX_KEY])
def test_an_access_key_lets_in_and_the_team_key_goes_upstream(team, upstream, key):
    response = post(team, headers={"x-goog-api-key": key})
    assert response.status_code == 200, response.text
    sent = upstream.chat_requests[-1]["headers"]
    assert sent["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert key not in str(upstream.requests)


@pytest.mark.parametrize("headers,params", [
    ({"x-goog-api-key": ALICE}, None), (None, {"key": ALICE}), ({"Authorization": f"Bearer {ALICE}"}, None)])
def test_every_key_form_works_in_team_mode(team, upstream, headers, params):
    assert post(team, headers=headers, params=params).status_code == 200


# A configured digest is not itself a key: seeing the configuration does not let anyone in.
@pytest.mark.parametrize("key", ["wrong", UPSTREAM_KEY, hashlib.sha256(BOB.encode()).hexdigest(), ALICE + "x",
                                 "sha256:" + hashlib.sha256(BOB.encode()).hexdigest()])
def test_a_wrong_key_is_refused_like_google_does(team, upstream, key):
    response = post(team, headers={"x-goog-api-key": key})
    error = error_of(response)
    assert (response.status_code, error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    assert upstream.requests == []


def test_an_upstream_401_in_team_mode_is_the_endpoints_fault_not_the_callers(team, upstream):
    """The upstream refused UPSTREAM_API_KEY: not the caller's key, so no API_KEY_INVALID (which would make
    clients ask for another key), but 500 INTERNAL naming the setting to fix."""
    upstream.reply(Json({"error": {"message": "Invalid API key.", "code": "invalid_api_key"}}, status=401))
    response = post(team, headers={"x-goog-api-key": ALICE})
    error = error_of(response)
    assert (response.status_code, error["status"]) == (500, "INTERNAL")
    assert error["message"] == "The upstream refused this endpoint's UPSTREAM_API_KEY: Invalid API key."
    assert "details" not in error and UPSTREAM_KEY not in response.text
    assert len(upstream.chat_requests) == 1


# --- who used what: the caller in the log -------------------------------------------------------

CAROL, DAVE = "carol-access-key", "dave-access-key/b64+padded=="


@pytest.fixture(scope="module")
def named_team(serve):
    carol_digest = hashlib.sha256(CAROL.encode()).hexdigest()
    return serve(UPSTREAM_API_KEY=UPSTREAM_KEY,
                 ACCESS_KEYS=f"carol=sha256:{carol_digest}, dave.m@example.com={DAVE}, {ALICE}, {BOB}==")


def log_lines(server):
    """The complete JSON log lines so far."""
    text = server.logs()
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines() if line.startswith("{")]


def new_log_line(server, before):
    """The one log line after the first ``before``, waiting for it: it is written after the answer."""
    deadline = time.monotonic() + 5
    while len(lines := log_lines(server)) <= before and time.monotonic() < deadline:
        time.sleep(0.02)
    [line] = lines[before:]
    return line


@pytest.mark.parametrize("key, caller", [
    (CAROL, "carol"), (DAVE, "dave.m@example.com"),
    (ALICE, hashlib.sha256(ALICE.encode()).hexdigest()[:8]),  # unnamed: its digest's first 8 hex digits
    (BOB + "==", hashlib.sha256((BOB + "==").encode()).hexdigest()[:8]),  # "=" as padding names no one
], ids=["named-by-digest", "named-plaintext-key-with-padding", "unnamed", "unnamed-padded"])
def test_each_request_logs_its_caller_never_the_key_or_its_digest(named_team, upstream, key, caller):
    before = len(log_lines(named_team))
    upstream.reply(Json({"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}))
    assert post(named_team, headers={"x-goog-api-key": key}).status_code == 200
    line = new_log_line(named_team, before)
    assert line["caller"] == caller and line["usage"]["totalTokenCount"] == 4
    logs = named_team.logs()
    for secret in (key, hashlib.sha256(key.encode()).hexdigest(), UPSTREAM_KEY):
        assert secret not in logs


def test_a_refused_key_logs_no_caller(named_team, upstream):
    before = len(log_lines(named_team))
    assert post(named_team, headers={"x-goog-api-key": "not-a-member"}).status_code == 400
    line = new_log_line(named_team, before)
    assert "caller" not in line and "not-a-member" not in named_team.logs()


def test_pass_through_logs_the_keys_fingerprint(serve, upstream):
    server = serve()
    before = len(log_lines(server))
    assert post(server, headers={"x-goog-api-key": "sk-someones-own-key"}).status_code == 200
    line = new_log_line(server, before)
    assert line["caller"] == hashlib.sha256(b"sk-someones-own-key").hexdigest()[:8]
    assert "sk-someones-own-key" not in server.logs()


def test_no_key_is_refused(team, upstream):
    response = post(team)
    assert (response.status_code, error_of(response)["status"]) == (403, "PERMISSION_DENIED")
    assert upstream.requests == []


def test_team_key_without_access_keys_refuses_everything(serve, upstream):
    server = serve(UPSTREAM_API_KEY=UPSTREAM_KEY)
    for headers in ({}, {"x-goog-api-key": UPSTREAM_KEY}, {"x-goog-api-key": "anything"}):
        response = post(server, headers=headers)
        assert response.status_code == 403
        assert "ACCESS_KEYS" in error_of(response)["message"]
    assert upstream.requests == []


def test_allow_unauthenticated_is_for_iam_protected_services(serve, upstream):
    server = serve(UPSTREAM_API_KEY=UPSTREAM_KEY, ALLOW_UNAUTHENTICATED="true")
    response = post(server)
    assert response.status_code == 200
    assert upstream.chat_requests[-1]["headers"]["Authorization"] == f"Bearer {UPSTREAM_KEY}"


@pytest.mark.parametrize("requested,sent", [("gemini-2.5-flash", "qwen-turbo"), ("gemini-2.5-pro", "qwen-max"),
                                            ("qwen-turbo", "qwen-turbo"), ("Qwen/Qwen3-8B", "Qwen/Qwen3-8B")])
def test_aliases_map_gemini_names_to_upstream_models(team, upstream, requested, sent):
    response = post(team, path=f"/v1/models/{requested}:generateContent", headers={"x-goog-api-key": ALICE})
    assert response.status_code == 200
    assert upstream.last["model"] == sent
    assert response.json()["modelVersion"] == "qwen-turbo"  # what really ran, as the upstream says


@pytest.mark.parametrize("model", ["gpt-4o", "gemini-2.0-flash", "qwen-plus"])
def test_models_outside_the_allow_list_are_not_found(team, upstream, model):
    response = post(team, path=f"/v1beta/models/{model}:streamGenerateContent?alt=sse", headers={"x-goog-api-key": ALICE})
    error = error_of(response)
    assert (response.status_code, error["status"]) == (404, "NOT_FOUND")
    assert f"models/{model} is not found" in error["message"]
    assert upstream.requests == []


def test_unknown_callers_learn_nothing_about_models(team, upstream):
    response = post(team, path="/v1beta/models/gpt-4o:generateContent", headers={"x-goog-api-key": "wrong"})
    assert response.status_code == 400


def test_cors_is_off_by_default(function, upstream):
    response = requests.options(function.url + "/v1beta/models/qwen-turbo:generateContent",
                                headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 404 and response.headers["Allow"] == "POST"  # a wrong method, as Google answers it
    assert "Access-Control-Allow-Origin" not in response.headers
    ok = requests.post(function.url + "/v1beta/models/qwen-turbo:generateContent", json=hello(),
                       headers={"Origin": "https://app.example", "x-goog-api-key": "k"})
    assert "Access-Control-Allow-Origin" not in ok.headers


@pytest.fixture(scope="module")
def cors(serve):
    return serve(CORS_ORIGINS="https://app.example,https://other.example/")


def test_preflight_is_answered_without_a_key(cors, upstream):
    response = requests.options(cors.url + "/v1beta/models/qwen-turbo:streamGenerateContent", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-goog-api-key"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "x-goog-api-key" in response.headers["Access-Control-Allow-Headers"]
    assert upstream.requests == []


def test_cors_headers_on_answers_and_errors_for_allowed_origins_only(cors, upstream):
    headers = {"Origin": "https://other.example", "x-goog-api-key": "k"}
    ok = requests.post(cors.url + "/v1beta/models/qwen-turbo:generateContent", json=hello(), headers=headers)
    assert ok.headers["Access-Control-Allow-Origin"] == "https://other.example"
    bad = requests.post(cors.url + "/v1beta/models/qwen-turbo:generateContent", json={}, headers=headers)
    assert bad.status_code == 400 and bad.headers["Access-Control-Allow-Origin"] == "https://other.example"
    stranger = requests.post(cors.url + "/v1beta/models/qwen-turbo:generateContent", json=hello(),
                             headers={"Origin": "https://evil.example", "x-goog-api-key": "k"})
    assert "Access-Control-Allow-Origin" not in stranger.headers
    refused = requests.options(cors.url + "/v1beta/models/qwen-turbo:generateContent",
                               headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers


@pytest.mark.parametrize("env,message", [
    ({"ACCESS_KEYS": "a"}, "ACCESS_KEYS needs UPSTREAM_API_KEY"),
    ({"ACCESS_KEYS": "bob smith=k1", "UPSTREAM_API_KEY": "u"}, "ACCESS_KEYS names are letters"),
    ({"MODEL_ALIASES": "gemini-pro"}, "MODEL_ALIASES"),
    ({"UPSTREAM_TIMEOUT": "soon"}, "UPSTREAM_TIMEOUT"),
    ({"UPSTREAM_RETRIES": "-1"}, "UPSTREAM_RETRIES"),
    ({"ALLOW_UNAUTHENTICATED": "maybe"}, "ALLOW_UNAUTHENTICATED"),
    ({"UPSTREAM_BASE_URL": "ftp://x"}, "UPSTREAM_BASE_URL"),
    ({"MAX_REQUEST_BYTES": "104857600", "REQUEST_MEMORY_BYTES": "268435456"},
     "REQUEST_MEMORY_BYTES (268435456) must be at least 5 x MAX_REQUEST_BYTES"),
    ({"REQUEST_MEMORY_BYTES": "1000", "MAX_REQUEST_BYTES": "1000"}, "must be at least 5 x MAX_REQUEST_BYTES"),
    ({"CLIENT_BODY_TIMEOUT": "0"}, "CLIENT_BODY_TIMEOUT"),
    ({"MAX_UPSTREAM_RESPONSE_BYTES": "10"}, "MAX_UPSTREAM_RESPONSE_BYTES"),
])
def test_bad_configuration_stops_the_function_at_start(env, message):
    from gemini_compat.config import ConfigError, Settings

    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert message in str(caught.value)


@pytest.mark.parametrize("env,message", [
    ({"UPSTREAM_TIMEOUT": "nan"}, "UPSTREAM_TIMEOUT"), ({"UPSTREAM_TIMEOUT": "inf"}, "UPSTREAM_TIMEOUT"),
    ({"THREADS": "abc"}, "THREADS"), ({"THREADS": "0"}, "THREADS"), ({"MAX_REQUEST_BYTES": "1e3"}, "MAX_REQUEST_BYTES"),
])
def test_unusable_numbers_stop_the_function_at_start(env, message):
    from gemini_compat.config import ConfigError, Settings

    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert message in str(caught.value)


def test_the_request_memory_budget_grows_with_the_request_size_unless_set():
    from gemini_compat.config import Settings

    assert Settings.from_env({}).request_memory_bytes == 256 * 1024 * 1024
    assert Settings.from_env({"MAX_REQUEST_BYTES": "104857600"}).request_memory_bytes == 5 * 104857600
    settings = Settings.from_env({"REQUEST_MEMORY_BYTES": "200000000", "MAX_REQUEST_BYTES": "1000"})
    assert settings.request_memory_bytes == 200000000
