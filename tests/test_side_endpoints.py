"""The endpoints Gemini clients call besides generateContent: models, countTokens, embeddings."""

import asyncio

import pytest
import requests
from google import genai
from google.genai import errors, types

from fake_upstream import Json, completion, usage
from helpers import KEY, error_of

MANY = [{"id": f"model-{n}", "object": "model", "owned_by": "nexusflow"} for n in range(7)]


@pytest.fixture(params=["v1", "v1beta"])
def client(request, function):
    return genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=function.url, api_version=request.param))


@pytest.fixture
def many_models(upstream):
    saved = upstream.models
    upstream.models = MANY + [{"id": "text-embedding-v3", "object": "model", "context_length": 8192}]
    yield upstream.models
    upstream.models = saved


def get(function, path, **params):
    return requests.get(function.url + path, params=params, headers={"x-goog-api-key": KEY}, timeout=10)


def test_models_list_pages_through_everything(client, upstream, many_models):
    models = list(client.models.list(config={"page_size": 3}))
    assert [m.name for m in models] == [f"models/{m['id']}" for m in many_models]
    assert models[0].supported_actions == ["generateContent", "streamGenerateContent", "countTokens"]
    assert models[-1].supported_actions == ["embedContent", "batchEmbedContents"]
    assert models[-1].input_token_limit == 8192
    assert upstream.requests[-1]["headers"]["Authorization"] == f"Bearer {KEY}"


def test_pagination_on_the_wire(function, upstream, many_models):
    first = get(function, "/v1beta/models", pageSize=5).json()
    assert len(first["models"]) == 5 and first["nextPageToken"]
    second = get(function, "/v1beta/models", pageSize=5, pageToken=first["nextPageToken"]).json()
    assert [m["name"] for m in second["models"]] == ["models/model-5", "models/model-6", "models/text-embedding-v3"]
    assert "nextPageToken" not in second  # never an empty token: the JS SDK would loop forever
    assert len(get(function, "/v1/models").json()["models"]) == 8  # default page size 50


@pytest.mark.parametrize("params,field", [({"pageSize": "many"}, "pageSize"), ({"pageSize": "-1"}, "pageSize"),
                                          ({"pageToken": "garbage"}, "pageToken")])
def test_bad_pagination_parameters(function, upstream, params, field):
    response = get(function, "/v1/models", **params)
    assert response.status_code == 400 and error_of(response)["message"].startswith(field)


def test_models_get(client, upstream):
    model = client.models.get(model="qwen-turbo")
    assert (model.name, model.display_name) == ("models/qwen-turbo", "qwen-turbo")
    with pytest.raises(errors.ClientError) as caught:
        client.models.get(model="no-such-model")
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"


def test_models_list_follows_the_allow_list_and_shows_aliases(serve, upstream, many_models):
    server = serve(ALLOWED_MODELS="model-1,model-2", MODEL_ALIASES="gemini-2.5-flash=model-2,gemini-x=model-5")
    names = [m["name"] for m in get(server, "/v1beta/models").json()["models"]]
    assert names == ["models/model-1", "models/model-2", "models/gemini-2.5-flash"]
    alias = get(server, "/v1beta/models/gemini-2.5-flash").json()
    assert alias["baseModelId"] == "model-2" and alias["description"].startswith("Alias of model-2")
    assert get(server, "/v1beta/models/model-5").status_code == 404


def test_an_upstream_list_without_models_lists_none(function, upstream):
    saved, upstream.models = upstream.models, None  # the fake answers {"data": null}
    try:
        response = get(function, "/v1/models")
        assert response.status_code == 200 and response.json() == {"models": []}
    finally:
        upstream.models = saved


def test_count_tokens_asks_the_upstream_for_a_one_token_generation(client, upstream):
    upstream.reply(Json(completion("x", usage_=usage(prompt=17, completion=1))))
    result = client.models.count_tokens(model="qwen-turbo", contents="How many tokens is this?")
    assert result.total_tokens == 17
    assert upstream.last == {"model": "qwen-turbo", "messages": [{"role": "user", "content": "How many tokens is this?"}],
                             "max_tokens": 1}


def test_count_tokens_of_a_whole_generate_content_request(function, upstream):
    upstream.reply(Json(completion("x", usage_=usage(prompt=40, completion=1))))
    body = {"generateContentRequest": {
        "model": "models/qwen-turbo",
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "tools": [{"functionDeclarations": [{"name": "f"}]}],
        "generationConfig": {"candidateCount": 3, "maxOutputTokens": 500}}}
    response = requests.post(function.url + "/v1beta/models/qwen-turbo:countTokens", json=body,
                             headers={"x-goog-api-key": KEY})
    assert response.json() == {"totalTokens": 40}
    sent = upstream.last
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert sent["tools"][0]["function"]["name"] == "f"
    assert sent["max_tokens"] == 1 and "n" not in sent


@pytest.mark.parametrize("body,message", [
    ({}, "exactly one of contents, generateContentRequest"),
    ({"contents": [{"parts": [{"text": "a"}]}], "generateContentRequest": {"contents": [{"parts": [{"text": "a"}]}]}},
     "exactly one of"),
    ({"contents": [{"parts": [{"txt": "a"}]}]}, "contents[0].parts[0].txt"),
])
def test_bad_count_tokens_requests(function, upstream, body, message):
    response = requests.post(function.url + "/v1/models/qwen-turbo:countTokens", json=body, headers={"x-goog-api-key": KEY})
    assert response.status_code == 400 and message in error_of(response)["message"]
    assert upstream.requests == []


def test_count_tokens_without_usage_from_the_upstream(function, upstream):
    answer = completion("x")
    del answer["usage"]
    upstream.reply(Json(answer))
    response = requests.post(function.url + "/v1/models/qwen-turbo:countTokens",
                             json={"contents": [{"parts": [{"text": "a"}]}]}, headers={"x-goog-api-key": KEY})
    assert response.status_code == 502 and "count" in error_of(response)["message"]


def test_embed_content_through_the_sdk_is_a_batch(client, upstream):
    result = client.models.embed_content(model="text-embedding-v3", contents=["alpha", "beta"],
                                         config=types.EmbedContentConfig(output_dimensionality=3, task_type="RETRIEVAL_DOCUMENT"))
    assert [len(e.values) for e in result.embeddings] == [3, 3]
    [call] = [r for r in upstream.requests if r["path"].endswith("/embeddings")]
    assert call["json"] == {"model": "text-embedding-v3", "input": ["alpha", "beta"], "dimensions": 3}


def test_batch_with_mixed_dimensions_keeps_the_order(function, upstream):
    body = {"requests": [
        {"model": "models/emb", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 2},
        {"model": "models/emb", "content": {"parts": [{"text": "bb"}]}},
        {"model": "emb", "content": {"parts": [{"text": "ccc"}, {"text": "d"}]}, "outputDimensionality": 2}]}
    response = requests.post(function.url + "/v1beta/models/emb:batchEmbedContents", json=body,
                             headers={"x-goog-api-key": KEY})
    embeddings = response.json()["embeddings"]
    assert [len(e["values"]) for e in embeddings] == [2, 4, 2]
    calls = [r["json"] for r in upstream.requests if r["path"].endswith("/embeddings")]
    assert calls == [{"model": "emb", "input": ["a", "ccc\nd"], "dimensions": 2}, {"model": "emb", "input": ["bb"]}]


def test_embed_content_single(function, upstream):
    response = requests.post(function.url + "/v1beta/models/emb:embedContent",
                             json={"content": {"parts": [{"text": "hello"}]}, "task_type": "CLUSTERING"},
                             headers={"x-goog-api-key": KEY})
    assert list(response.json()) == ["embedding"] and len(response.json()["embedding"]["values"]) == 4


@pytest.mark.parametrize("path,body,field", [
    (":batchEmbedContents", {"requests": [{"model": "models/other", "content": {"parts": [{"text": "a"}]}}]},
     "requests[0].model"),
    (":batchEmbedContents", {"requests": []}, "requests"),
    (":embedContent", {"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}},
     "content.parts[0]"),
    (":embedContent", {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 0}, "outputDimensionality"),
])
def test_bad_embedding_requests(function, upstream, path, body, field):
    response = requests.post(function.url + "/v1/models/emb" + path, json=body, headers={"x-goog-api-key": KEY})
    assert response.status_code == 400 and error_of(response)["message"].startswith(field)
    assert upstream.requests == []


def test_async_client_side_endpoints(function, upstream):
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=function.url))

    async def calls():
        count = await client.aio.models.count_tokens(model="qwen-turbo", contents="hi")
        embedded = await client.aio.models.embed_content(model="emb", contents="hi")
        listed = [m async for m in await client.aio.models.list()]
        return count, embedded, listed

    count, embedded, listed = asyncio.run(calls())
    assert count.total_tokens == 5 and len(embedded.embeddings) == 1 and listed[0].name == "models/qwen-turbo"


@pytest.mark.parametrize("method,path,status", [
    ("POST", "/v1/models", 405), ("DELETE", "/v1/models/qwen-turbo", 405), ("GET", "/v1/models/qwen-turbo:listModels", 404),
    ("GET", "/v1/models/qwen-turbo:countTokens", 405), ("GET", "/v1/models/a..b", 400),
])
def test_side_routes(function, upstream, method, path, status):
    response = requests.request(method, function.url + path, headers={"x-goog-api-key": KEY})
    assert response.status_code == status and error_of(response)
    assert upstream.requests == []


def test_embeddings_of_an_aliased_model(serve, upstream):
    server = serve(MODEL_ALIASES="gemini-embedding-001=text-embedding-3-small")
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=server.url))
    result = client.models.embed_content(model="gemini-embedding-001", contents="hello")
    assert len(result.embeddings) == 1
    [call] = [r for r in upstream.requests if r["path"].endswith("/embeddings")]
    assert call["json"]["model"] == "text-embedding-3-small"
