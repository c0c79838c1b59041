"""Upstream model IDs of every shape a server uses (':' included), and MODEL_ALIASES with patterns."""

import time

import pytest
import requests
from google import genai
from google.genai import types

from gemini_compat.catalogue import aliased, gemini_models
from gemini_compat.config import ConfigError, Settings
from gemini_compat.model_patterns import ModelRule
from helpers import KEY, error_of, hello

COLON_IDS = ["qwen2.5:7b", "ft:gpt-4o-mini:org:custom:A1b2", "meta-llama/llama-3-8b-instruct:free", "llama3:latest"]
CLI_ALIASES = "gemini-2.5-pro=qwen-max, gemini-*=qwen2.5:7b, *-lite=never-reached"


def settings(**env):
    return Settings.from_env(env)


@pytest.mark.parametrize("name,expected", [
    ("gemini-2.5-pro", "qwen-max"),  # the exact entry comes first
    ("gemini-3.5-flash-lite", "qwen2.5:7b"),  # the first match wins, not the most specific
    ("gemini-2.5-flash", "qwen2.5:7b"),
    ("gemini-", "qwen2.5:7b"),  # '*' matches nothing too
    ("flash-lite", "never-reached"),
    ("qwen-turbo", "qwen-turbo"),  # no match: the name itself
    ("Gemini-2.5-flash", "Gemini-2.5-flash"),  # case-sensitive, as model IDs are
])
def test_alias_patterns_first_match_wins(name, expected):
    assert aliased(settings(MODEL_ALIASES=CLI_ALIASES), name) == expected


@pytest.mark.parametrize("pattern,model,matches", [
    ("qwen2.5*", "qwen2.5:7b", True), ("qwen2.5*", "qwen2x5", False),  # only '*' is special
    ("*-lite", "gemini-3.5-flash-lite", True), ("gemini-*-lite", "gemini-lite", False),
    ("a*b*c", "abc", True), ("a*b*c", "axxbyyc", True), ("a*b*c", "acb", False), ("ab*ba", "aba", False),
    ("*", "", True), ("a**b", "ab", True), ("*b*", "abc", True), ("*b*", "ac", False),
])
def test_alias_patterns(pattern, model, matches):
    assert ModelRule(pattern, "x").matches(model) is matches


def test_alias_patterns_match_in_linear_time():
    # A model ID comes from the request path; a regex of several ".*" would backtrack for minutes here.
    started = time.perf_counter()
    assert not ModelRule("*-*-*-*-*-x", "y").matches("-" * 8000)
    assert time.perf_counter() - started < 0.5


def test_models_an_alias_redirects_are_not_listed_under_their_own_name():
    upstream_list = {"data": [{"id": "gemini-2.5-flash"}, {"id": "qwen-turbo"}, {"id": "qwen-max"}]}
    listed = gemini_models(settings(MODEL_ALIASES="gemini-x=qwen-max,gemini-*=qwen-turbo"), upstream_list)
    # gemini-2.5-flash is served upstream, but a call by that name goes to qwen-turbo
    assert [(m["name"], m["baseModelId"]) for m in listed] == [
        ("models/qwen-turbo", "qwen-turbo"), ("models/qwen-max", "qwen-max"), ("models/gemini-x", "qwen-max")]


@pytest.mark.parametrize("value", ["gemini-*", "*=", "=qwen", "a b=c", "a=b c", "gemini/*/x=y", "a=b*"])
def test_bad_alias_entries_stop_the_function_at_start(value):
    with pytest.raises(ConfigError, match="MODEL_ALIASES"):
        settings(MODEL_ALIASES=value)


@pytest.mark.parametrize("model", COLON_IDS)
def test_colon_model_ids_reach_the_upstream_through_the_sdk(function, upstream, model):
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=function.url))
    assert client.models.generate_content(model=model, contents="hi").text == "echo: hi"
    assert upstream.last["model"] == model
    assert "".join(chunk.text for chunk in client.models.generate_content_stream(model=model, contents="hi")) == "echo: hi"


@pytest.fixture
def aliased_function(serve):
    return serve(MODEL_ALIASES=CLI_ALIASES, ALLOWED_MODELS="qwen-max,qwen2.5:7b,ft:gpt-4o-mini:org:custom:A1b2")


@pytest.mark.parametrize("requested,sent", [
    ("gemini-3.5-flash-lite", "qwen2.5:7b"), ("gemini-2.5-pro", "qwen-max"),
    ("ft:gpt-4o-mini:org:custom:A1b2", "ft:gpt-4o-mini:org:custom:A1b2"),
])
def test_aliases_and_allowed_models_take_colon_ids(aliased_function, upstream, requested, sent):
    response = requests.post(f"{aliased_function.url}/v1beta/models/{requested}:generateContent", json=hello(),
                             headers={"x-goog-api-key": KEY}, timeout=10)
    assert response.status_code == 200, response.text
    assert upstream.last["model"] == sent


def test_a_model_outside_allowed_models_is_not_found_after_the_patterns(aliased_function, upstream):
    response = requests.post(f"{aliased_function.url}/v1beta/models/qwen2.5:14b:generateContent", json=hello(),
                             headers={"x-goog-api-key": KEY}, timeout=10)
    assert response.status_code == 404 and "models/qwen2.5:14b is not found" in error_of(response)["message"]
    assert upstream.requests == []


def test_get_model_by_a_pattern_alias_and_by_a_colon_id(aliased_function, upstream):
    saved = upstream.models
    upstream.models = [{"id": "qwen2.5:7b", "object": "model", "context_length": 32768}, {"id": "qwen-max"},
                       {"id": "gemini-2.5-flash"}]  # served upstream, but the pattern sends that name elsewhere
    try:
        client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=aliased_function.url))
        model = client.models.get(model="gemini-3.5-flash-lite")
        assert (model.name, model.input_token_limit) == ("models/gemini-3.5-flash-lite", 32768)
        assert "Alias of qwen2.5:7b" in model.description
        assert client.models.get(model="qwen2.5:7b").name == "models/qwen2.5:7b"
        listed = [m.name for m in client.models.list()]
        assert listed == ["models/qwen2.5:7b", "models/qwen-max", "models/gemini-2.5-pro"]  # patterns list nothing
    finally:
        upstream.models = saved
