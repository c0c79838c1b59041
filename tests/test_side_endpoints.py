"""The endpoints Gemini clients call besides generateContent: models, countTokens, embeddings. The
answers are checked in process (functions-framework's app through its test client); the Google Gen AI
SDK's calls go to the served function."""

import asyncio

import pytest
from google import genai
from google.genai import errors, types

from fake_upstream import Json, completion, usage
from gemini_compat.catalogue import gemini_model
from gemini_compat.embeddings import embedding_vectors
from gemini_compat.errors import UpstreamError
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


def test_models_list_pages_through_everything(client, upstream, many_models):
    models = list(client.models.list(config={"page_size": 3}))
    assert [m.name for m in models] == [f"models/{m['id']}" for m in many_models]
    assert models[0].supported_actions == ["generateContent", "streamGenerateContent", "countTokens"]
    assert models[-1].supported_actions == ["embedContent", "batchEmbedContents"]
    assert models[-1].input_token_limit == 8192
    assert upstream.requests[-1]["headers"]["Authorization"] == f"Bearer {KEY}"


def test_pagination(app, upstream, many_models):
    first = app.get("/v1beta/models", params={"pageSize": 5}).json()
    assert len(first["models"]) == 5 and first["nextPageToken"]
    second = app.get("/v1beta/models", params={"pageSize": 5, "pageToken": first["nextPageToken"]}).json()
    assert [m["name"] for m in second["models"]] == ["models/model-5", "models/model-6", "models/text-embedding-v3"]
    assert "nextPageToken" not in second  # never an empty token: the JS SDK would loop forever
    assert len(app.get("/v1/models").json()["models"]) == 8  # default page size 50


@pytest.mark.parametrize("params,field", [({"pageSize": "many"}, "pageSize"), ({"pageSize": "-1"}, "pageSize"),
                                          ({"pageToken": "garbage"}, "pageToken")])
def test_bad_pagination_parameters(app, upstream, params, field):
    response = app.get("/v1/models", params=params)
    assert response.status_code == 400 and error_of(response)["message"].startswith(field)


LLAMA_CPP = {"id": "qwen3-8b.gguf", "object": "model", "owned_by": "llamacpp",
             "meta": {"vocab_type": 2, "n_vocab": 151936, "n_ctx_train": 32768, "n_ctx": 4096, "n_embd": 4096}}
VLLM = {"id": "Qwen/Qwen3-8B", "object": "model", "owned_by": "vllm", "max_model_len": 40960}
OPENROUTER = {"id": "qwen/qwen3-8b", "context_length": 131072, "top_provider": {"max_completion_tokens": 16384}}

TOKEN_LIMITS = [
    ("llama.cpp: the server's n_ctx, not n_ctx_train", LLAMA_CPP, 4096, None),
    ("llama.cpp without n_ctx: n_ctx_train", {"id": "m", "meta": {"n_ctx_train": 32768}}, 32768, None),
    ("vLLM", VLLM, 40960, None),
    ("OpenRouter", OPENROUTER, 131072, 16384),
    ("LiteLLM", {"id": "m", "max_input_tokens": 1000, "max_output_tokens": 200}, 1000, 200),
    ("none", {"id": "m", "meta": None, "context_length": "big"}, None, None),
]


@pytest.mark.parametrize("case,entry,input_limit,output_limit", TOKEN_LIMITS, ids=[t[0] for t in TOKEN_LIMITS])
def test_token_limits_of_each_server(case, entry, input_limit, output_limit):
    model = gemini_model(entry)
    assert (model.get("inputTokenLimit"), model.get("outputTokenLimit")) == (input_limit, output_limit)


def test_token_limits_through_the_models_list(app, upstream):
    saved, upstream.models = upstream.models, [LLAMA_CPP, VLLM, OPENROUTER]
    try:
        listed = app.get("/v1beta/models").json()["models"]
    finally:
        upstream.models = saved
    assert [(m["name"], m.get("inputTokenLimit"), m.get("outputTokenLimit")) for m in listed] == [
        ("models/qwen3-8b.gguf", 4096, None), ("models/Qwen/Qwen3-8B", 40960, None), ("models/qwen/qwen3-8b", 131072, 16384)]


def test_models_get(client, upstream):
    model = client.models.get(model="qwen-turbo")
    assert (model.name, model.display_name) == ("models/qwen-turbo", "qwen-turbo")
    with pytest.raises(errors.ClientError) as caught:
        client.models.get(model="no-such-model")
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"


def test_models_list_follows_the_allow_list_and_shows_aliases(in_process, upstream, many_models):
    restricted = in_process(ALLOWED_MODELS="model-1,model-2", MODEL_ALIASES="gemini-2.5-flash=model-2,gemini-x=model-5")
    names = [m["name"] for m in restricted.get("/v1beta/models").json()["models"]]
    assert names == ["models/model-1", "models/model-2", "models/gemini-2.5-flash"]
    alias = restricted.get("/v1beta/models/gemini-2.5-flash").json()
    assert alias["baseModelId"] == "model-2" and alias["description"].startswith("Alias of model-2")
    assert restricted.get("/v1beta/models/model-5").status_code == 404


def test_an_upstream_list_without_models_lists_none(app, upstream):
    saved, upstream.models = upstream.models, None  # the fake answers {"data": null}
    try:
        response = app.get("/v1/models")
        assert response.status_code == 200 and response.json() == {"models": []}
    finally:
        upstream.models = saved


def test_count_tokens_asks_the_upstream_for_a_one_token_generation(client, upstream):
    upstream.reply(Json(completion("x", usage_=usage(prompt=17, completion=1))))
    result = client.models.count_tokens(model="qwen-turbo", contents="How many tokens is this?")
    assert result.total_tokens == 17
    # enable_thinking: a count need not think (qwen-turbo: DashScope, which refuses non-streamed thinking)
    assert upstream.last == {"model": "qwen-turbo", "messages": [{"role": "user", "content": "How many tokens is this?"}],
                             "max_tokens": 1, "enable_thinking": False}


def test_count_tokens_of_a_whole_generate_content_request(post, upstream):
    upstream.reply(Json(completion("x", usage_=usage(prompt=40, completion=1))))
    body = {"generateContentRequest": {
        "model": "models/qwen-turbo",
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "tools": [{"functionDeclarations": [{"name": "f"}]}],
        "generationConfig": {"candidateCount": 3, "maxOutputTokens": 500}}}
    response = post("/v1beta/models/qwen-turbo:countTokens", body)
    assert response.json() == {"totalTokens": 40}
    sent = upstream.last
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert sent["tools"][0]["function"]["name"] == "f"
    assert sent["max_tokens"] == 1 and "n" not in sent


def test_count_tokens_with_both_forms_counts_the_generate_content_request(post, upstream):
    # Google: contents "is ignored when generateContentRequest is set".
    upstream.reply(Json(completion("x", usage_=usage(prompt=9, completion=1))))
    body = {"contents": [{"parts": [{"text": "ignored"}]}],
            "generateContentRequest": {"contents": [{"parts": [{"text": "counted"}]}]}}
    response = post("/v1beta/models/qwen-turbo:countTokens", body)
    assert response.json() == {"totalTokens": 9}
    assert upstream.last["messages"] == [{"role": "user", "content": "counted"}]


@pytest.mark.parametrize("body,message", [
    ({}, "must have contents or generateContentRequest"),
    ({"contents": [{"parts": [{"txt": "a"}]}]}, "contents[0].parts[0].txt"),
])
def test_bad_count_tokens_requests(post, upstream, body, message):
    response = post("/v1/models/qwen-turbo:countTokens", body)
    assert response.status_code == 400 and message in error_of(response)["message"]
    assert upstream.requests == []


def test_count_tokens_without_usage_from_the_upstream(post, upstream):
    answer = completion("x")
    del answer["usage"]
    upstream.reply(Json(answer))
    response = post("/v1/models/qwen-turbo:countTokens", {"contents": [{"parts": [{"text": "a"}]}]})
    error = error_of(response)
    assert (response.status_code, error["status"]) == (500, "INTERNAL") and "count" in error["message"]


def test_embed_content_through_the_sdk_is_a_batch(client, upstream):
    result = client.models.embed_content(model="text-embedding-v3", contents=["alpha", "beta"],
                                         config=types.EmbedContentConfig(output_dimensionality=3,
                                                                         task_type="RETRIEVAL_DOCUMENT"))
    assert [len(e.values) for e in result.embeddings] == [3, 3]
    [call] = [r for r in upstream.requests if r["path"].endswith("/embeddings")]
    assert call["json"] == {"model": "text-embedding-v3", "input": ["alpha", "beta"], "dimensions": 3}


def test_batch_with_mixed_dimensions_keeps_the_order(post, upstream):
    body = {"requests": [
        {"model": "models/emb", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 2},
        {"model": "models/emb", "content": {"parts": [{"text": "bb"}]}},
        {"model": "emb", "content": {"parts": [{"text": "ccc"}, {"text": "d"}]}, "outputDimensionality": 2}]}
    response = post("/v1beta/models/emb:batchEmbedContents", body)
    embeddings = response.json()["embeddings"]
    assert [len(e["values"]) for e in embeddings] == [2, 4, 2]
    calls = [r["json"] for r in upstream.requests if r["path"].endswith("/embeddings")]
    assert calls == [{"model": "emb", "input": ["a", "ccc\nd"], "dimensions": 2}, {"model": "emb", "input": ["bb"]}]


def _embeddings_answer(*vectors):
    return {"object": "list", "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]}


@pytest.mark.parametrize("dimensions,expected", [
    (2, [[0.5, 0.25], [1.0, 2.0]]),  # more than asked (llama.cpp ignores dimensions): the first N, not re-normalised
    (4, [[0.5, 0.25, 0.125, 0.0625], [1.0, 2.0, 3.0]]),  # exactly, or fewer than asked: as they came, not padded
    (None, [[0.5, 0.25, 0.125, 0.0625], [1.0, 2.0, 3.0]]),
])
def test_embedding_vectors_are_cut_to_the_asked_dimensions(dimensions, expected):
    answer = _embeddings_answer([0.5, 0.25, 0.125, 0.0625], [1.0, 2.0, 3.0])
    assert embedding_vectors(answer, 2, dimensions) == expected


@pytest.mark.parametrize("data,message", [
    ([{"index": "1", "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}], "whose index is not an integer"),
    ([{"index": 0, "embedding": "not base64!"}, {"index": 1, "embedding": [2.0]}], "base64 embedding that is not float32"),
    ([{"index": 0, "embedding": "AAAA"}, {"index": 1, "embedding": "AAAAAA=="}], "base64 embedding that is not float32"),
])
def test_a_malformed_embeddings_answer_is_the_upstream_s_error(data, message):
    with pytest.raises(UpstreamError, match=message):
        embedding_vectors({"data": data}, 2)


def test_an_upstream_that_ignores_dimensions_is_truncated(post, upstream):
    upstream.reply(Json(_embeddings_answer([0.5, 0.25, 0.125, 0.0625, 0.5], [1.0, 2.0])),
                   Json(_embeddings_answer([9.0, 8.0, 7.0])))
    body = {"requests": [
        {"model": "models/emb", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 3},
        {"model": "models/emb", "content": {"parts": [{"text": "bb"}]}, "outputDimensionality": 3},
        {"model": "models/emb", "content": {"parts": [{"text": "c"}]}}]}
    response = post("/v1beta/models/emb:batchEmbedContents", body)
    assert response.json() == {"embeddings": [
        {"values": [0.5, 0.25, 0.125]}, {"values": [1.0, 2.0]}, {"values": [9.0, 8.0, 7.0]}]}


def test_embed_content_single(post, upstream):
    response = post("/v1beta/models/emb:embedContent",
                    {"content": {"parts": [{"text": "hello"}]}, "task_type": "CLUSTERING"})
    assert list(response.json()) == ["embedding"] and len(response.json()["embedding"]["values"]) == 4


@pytest.mark.parametrize("path,body,field", [
    (":batchEmbedContents", {"requests": [{"model": "models/other", "content": {"parts": [{"text": "a"}]}}]},
     "requests[0].model"),
    (":batchEmbedContents", {"requests": []}, "requests"),
    (":embedContent", {"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}},
     "content.parts[0]"),
    (":embedContent", {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 0}, "outputDimensionality"),
])
def test_bad_embedding_requests(post, upstream, path, body, field):
    response = post("/v1/models/emb" + path, body)
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


# A wrong method is a 404 as Google answers it, told apart from an unknown path by its Allow header.
@pytest.mark.parametrize("method,path,status,allow", [
    ("POST", "/v1/models", 404, "GET"), ("DELETE", "/v1/models/qwen-turbo", 404, "GET"),
    ("GET", "/v1/models/qwen-turbo:listModels", 404, None),
    ("GET", "/v1/models/qwen-turbo:countTokens", 404, "POST"), ("GET", "/v1/models/a..b", 400, None),
])
def test_side_routes(app, upstream, method, path, status, allow):
    response = app.request(method, path)
    assert response.status_code == status and error_of(response)
    assert response.headers.get("Allow") == allow
    if allow:
        assert error_of(response)["message"].endswith(f" must be called with {allow}, not {method}.")
    assert upstream.requests == []


def test_embeddings_of_an_aliased_model(serve, upstream):
    server = serve(MODEL_ALIASES="gemini-embedding-001=text-embedding-3-small")
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=server.url))
    result = client.models.embed_content(model="gemini-embedding-001", contents="hello")
    assert len(result.embeddings) == 1
    [call] = [r for r in upstream.requests if r["path"].endswith("/embeddings")]
    assert call["json"]["model"] == "text-embedding-3-small"
