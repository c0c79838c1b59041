"""thinkingConfig in each upstream family's own fields (issue 15): dialect x intent -> the body sent."""

import pytest
import requests
from google import genai
from google.genai import types

from fake_upstream import Json, Stream, chunk, text_stream, usage
from gemini_compat.config import ConfigError, Settings
from gemini_compat.errors import InvalidArgument
from gemini_compat.thinking import DIALECTS, dialect_for, thinking_parameters
from helpers import KEY, hello, sse_chunks

OFF, AUTO = {"thinkingBudget": 0}, {"thinkingBudget": -1}
BUDGET, BIG = {"thinkingBudget": 2048}, {"thinkingBudget": 50000}
MINIMAL, LOW, HIGH, XHIGH = ({"thinkingLevel": level} for level in ("MINIMAL", "LOW", "HIGH", "XHIGH"))
KWARGS_ON = {"enable_thinking": True, "thinking": True}

# (dialect, model, thinkingConfig, stream) -> fields. The golden table of README's dialect table.
TABLE = [
    ("none", "gpt-4o", OFF, True, {}), ("none", "gpt-4o", HIGH, True, {}), ("none", "gpt-4o", BUDGET, True, {}),
    ("openai", "gpt-5.1", OFF, True, {"reasoning_effort": "none"}),
    ("openai", "gpt-5-mini", OFF, True, {"reasoning_effort": "minimal"}),
    ("openai", "o3-mini", OFF, True, {"reasoning_effort": "low"}),  # o-series cannot stop thinking
    ("openai", "o3", AUTO, True, {}), ("openai", "o3", {}, True, {}),
    ("openai", "o3", BUDGET, True, {"reasoning_effort": "medium"}),
    ("openai", "gpt-5.1", MINIMAL, True, {"reasoning_effort": "minimal"}),
    ("openai", "gpt-5.1", XHIGH, True, {"reasoning_effort": "high"}),  # "xhigh" only on the newest
    ("openai", "o3", MINIMAL, True, {"reasoning_effort": "low"}),
    ("openai", "gpt-5.1", HIGH, True, {"reasoning_effort": "high"}),
    ("openai-effort", "gpt-oss-20b", OFF, True, {"reasoning_effort": "low"}),
    ("openai-effort", "gpt-oss-20b", MINIMAL, True, {"reasoning_effort": "low"}),
    ("openai-effort", "gpt-oss-20b", XHIGH, True, {"reasoning_effort": "high"}),
    ("openai-effort", "gpt-oss-20b", {"thinkingBudget": 1024}, True, {"reasoning_effort": "low"}),
    ("dashscope", "qwen-turbo", OFF, True, {"enable_thinking": False}),
    ("dashscope", "qwen-turbo", MINIMAL, False, {"enable_thinking": False}),
    ("dashscope", "qwen-turbo", AUTO, False, {}),
    ("dashscope", "qwen3-32b", AUTO, True, {}),
    ("dashscope", "qwen3-32b", AUTO, False, {"enable_thinking": False}),  # it would refuse a non-streamed call
    ("dashscope", "qwen3-235b-a22b", {}, False, {"enable_thinking": False}),
    ("dashscope", "qwen3-32b", BUDGET, False, {"enable_thinking": True, "thinking_budget": 2048}),
    ("dashscope", "qwen-plus", LOW, True, {"enable_thinking": True, "thinking_budget": 1024}),
    ("dashscope", "qwen-plus", HIGH, True, {"enable_thinking": True, "thinking_budget": 24576}),
    ("dashscope", "qwen3.8-max", XHIGH, True, {"enable_thinking": True, "reasoning_effort": "xhigh"}),
    ("dashscope", "qwen3.8-max", BUDGET, True, {"enable_thinking": True, "thinking_budget": 2048}),
    ("siliconflow", "Qwen/Qwen3-8B", OFF, True, {"enable_thinking": False}),
    ("siliconflow", "Qwen/Qwen3-8B", {"thinkingBudget": 5}, True, {"enable_thinking": True, "thinking_budget": 128}),
    ("siliconflow", "Qwen/Qwen3-8B", BIG, True, {"enable_thinking": True, "thinking_budget": 32768}),
    ("siliconflow", "Qwen/Qwen3-8B", AUTO, True, {}),
    ("deepseek", "deepseek-chat", OFF, True, {"thinking": {"type": "disabled"}}),
    ("deepseek", "deepseek-chat", MINIMAL, True, {"thinking": {"type": "disabled"}}),
    ("deepseek", "deepseek-chat", AUTO, True, {}),
    ("deepseek", "deepseek-chat", LOW, True, {"thinking": {"type": "enabled"}, "reasoning_effort": "high"}),
    ("deepseek", "deepseek-chat", XHIGH, True, {"thinking": {"type": "enabled"}, "reasoning_effort": "max"}),
    ("deepseek", "deepseek-chat", BIG, True, {"thinking": {"type": "enabled"}, "reasoning_effort": "max"}),
    ("zhipu", "glm-4.6", OFF, True, {"thinking": {"type": "disabled"}}),
    ("zhipu", "glm-4.6", BUDGET, True, {"thinking": {"type": "enabled"}}),
    ("zhipu", "glm-4.6", AUTO, True, {}),
    ("moonshot", "kimi-k2.5", OFF, True, {"thinking": {"type": "disabled"}}),
    ("moonshot", "kimi-k2-thinking", OFF, True, {}),  # cannot stop thinking, and refuses "disabled"
    ("moonshot", "kimi-k2.7-code", MINIMAL, True, {}),
    ("moonshot", "kimi-k2.5", HIGH, True, {}),
    ("moonshot", "moonshot-v1-8k", OFF, True, {}),  # no thinking to stop
    ("dashscope", "qwen3-235b-a22b-thinking-2507", AUTO, False, {}),  # thinking-only: streamed instead
    ("openrouter", "qwen/qwen3-8b", OFF, True, {"reasoning": {"effort": "none"}}),
    ("openrouter", "qwen/qwen3-8b", BUDGET, True, {"reasoning": {"max_tokens": 2048}}),
    ("openrouter", "qwen/qwen3-8b", MINIMAL, True, {"reasoning": {"effort": "minimal"}}),
    ("openrouter", "qwen/qwen3-8b", XHIGH, True, {"reasoning": {"effort": "xhigh"}}),
    ("openrouter", "qwen/qwen3-8b", AUTO, True, {}),
    ("vllm", "Qwen/Qwen3-8B", OFF, True, {"chat_template_kwargs": {"enable_thinking": False, "thinking": False}}),
    ("vllm", "Qwen/Qwen3-8B", BUDGET, True, {"chat_template_kwargs": KWARGS_ON, "thinking_token_budget": 2048}),
    ("vllm", "Qwen/Qwen3-8B", HIGH, True,
     {"chat_template_kwargs": KWARGS_ON, "thinking_token_budget": 24576, "reasoning_effort": "high"}),
    ("vllm", "Qwen/Qwen3-8B", XHIGH, True, {"chat_template_kwargs": KWARGS_ON, "thinking_token_budget": 32768}),
    ("vllm", "Qwen/Qwen3-8B", AUTO, True, {}),
    ("llamacpp", "gemma", OFF, True, {"chat_template_kwargs": {"enable_thinking": False}}),
    ("llamacpp", "gemma", BUDGET, True, {"chat_template_kwargs": {"enable_thinking": True},
                                         "thinking_budget_tokens": 2048}),
    ("llamacpp", "gemma", AUTO, True, {}),
    ("ollama", "qwen3:8b", OFF, True, {"reasoning_effort": "none"}),
    ("ollama", "qwen3:8b", MINIMAL, True, {"reasoning_effort": "none"}),
    ("ollama", "qwen3:8b", XHIGH, True, {"reasoning_effort": "high"}),
    ("ollama", "qwen3:8b", BUDGET, True, {"reasoning_effort": "medium"}),
]


@pytest.mark.parametrize("dialect,model,thinking,stream,expected", TABLE,
                         ids=[f"{d}-{m}-{t}-{'stream' if s else 'whole'}" for d, m, t, s, _ in TABLE])
def test_each_dialect_gets_its_own_fields(dialect, model, thinking, stream, expected):
    assert thinking_parameters(dialect, model, thinking, stream) == expected


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d != "auto"])
@pytest.mark.parametrize("level", ["MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH"])
def test_effort_words_a_family_refuses_are_never_sent(dialect, level):
    sent = thinking_parameters(dialect, "m", {"thinkingLevel": level}, True)
    if dialect in ("vllm", "ollama", "openai-effort", "deepseek"):  # older vLLM and Ollama 400 on others
        assert sent.get("reasoning_effort", "low") in ({"low", "medium", "high", "none"} |
                                                       ({"max"} if dialect == "deepseek" else set()))
    if dialect in ("dashscope", "siliconflow"):  # DashScope refuses an effort beside a budget
        assert not {"reasoning_effort", "thinking_budget"} <= set(sent)


def test_include_thoughts_alone_sends_nothing_anywhere():
    assert all(thinking_parameters(d, "m", {"includeThoughts": True}, False) == {}
               for d in DIALECTS if d != "auto")


def test_level_and_budget_together_are_refused():
    with pytest.raises(InvalidArgument, match="generationConfig.thinkingConfig: give thinkingLevel or thinkingBudget"):
        thinking_parameters("none", "m", {"thinkingLevel": "LOW", "thinkingBudget": 5}, True)


@pytest.mark.parametrize("model,dialect", [
    ("qwen-turbo", "dashscope"), ("qwen3-32b", "dashscope"), ("QwQ-32B", "dashscope"), ("Qwen/Qwen3-8B", "siliconflow"),
    ("deepseek-reasoner", "deepseek"), ("glm-4.6", "zhipu"), ("zai-org/GLM-4.6", "zhipu"), ("kimi-k2.5", "moonshot"),
    ("moonshot-v1-8k", "moonshot"), ("gpt-oss-120b", "openai-effort"), ("o4-mini", "openai"), ("gpt-5.1", "openai"),
    ("gpt-4o", "none"), ("gemma-3-270m", "none"), ("llama3:latest", "none"),
])
def test_auto_picks_the_family_by_the_model_name(model, dialect):
    assert dialect_for(model, (), "auto") == dialect


def test_rules_then_the_setting_then_auto():
    settings = Settings.from_env({"THINKING_RULES": "qwen3-*=vllm, *-local=llamacpp", "UPSTREAM_THINKING": "ollama"})
    assert dialect_for("qwen3-8b", settings.thinking_rules, settings.upstream_thinking) == "vllm"
    assert dialect_for("gemma-local", settings.thinking_rules, settings.upstream_thinking) == "llamacpp"
    assert dialect_for("qwen-turbo", settings.thinking_rules, settings.upstream_thinking) == "ollama"
    auto = Settings.from_env({"THINKING_RULES": "qwen3-*=auto"})
    assert dialect_for("qwen3-8b", auto.thinking_rules, auto.upstream_thinking) == "dashscope"


@pytest.mark.parametrize("env", [{"UPSTREAM_THINKING": "qwen"}, {"THINKING_RULES": "qwen3-*"},
                                 {"THINKING_RULES": "qwen3-*=magic"}, {"THINKING_RULES": "a b=vllm"}])
def test_bad_thinking_settings_stop_the_function_at_start(env):
    with pytest.raises(ConfigError, match=next(iter(env))):
        Settings.from_env(env)


# --- on the wire -----------------------------------------------------------------------------------

def body(thinking):
    return {**hello(), "generationConfig": {"thinkingConfig": thinking}}


def test_thinking_off_on_the_default_platform_is_enable_thinking_false(gemini, upstream):
    response = gemini("/v1beta/models/qwen-turbo:streamGenerateContent?alt=sse", body(OFF))
    assert response.status_code == 200, response.text
    assert upstream.last["enable_thinking"] is False and "reasoning_effort" not in upstream.last


def test_a_non_streamed_call_to_open_source_qwen3_turns_default_thinking_off(gemini, upstream):
    response = gemini("/v1beta/models/qwen3-32b:generateContent", hello())
    assert response.status_code == 200, response.text
    assert upstream.last["enable_thinking"] is False


def test_the_operators_dialect_and_rules_reach_the_upstream(serve, upstream):
    function = serve(UPSTREAM_THINKING="vllm", THINKING_RULES="gemma-*=llamacpp")
    for model, expected in [("Qwen/Qwen3-8B", {"chat_template_kwargs": {"enable_thinking": False, "thinking": False}}),
                            ("gemma-3", {"chat_template_kwargs": {"enable_thinking": False}})]:
        response = requests.post(f"{function.url}/v1beta/models/{model}:generateContent", json=body(OFF),
                                 headers={"x-goog-api-key": KEY}, timeout=10)
        assert response.status_code == 200, response.text
        assert upstream.last["chat_template_kwargs"] == expected["chat_template_kwargs"]


# --- DashScope answers thinking calls only as a stream: one answer assembled from it ---------------

NON_STREAMING_REFUSED = {"error": {"code": "invalid_parameter_error", "type": "invalid_request_error",
                                   "message": "parameter.enable_thinking must be set to false for non-streaming calls"}}


def dashscope_thinking(body):
    """DashScope's behaviour: a non-streamed call that thinks is a 400; streamed, thoughts then the answer."""
    if not body.get("stream"):
        return Json(NON_STREAMING_REFUSED, status=400)
    return Stream([chunk({"role": "assistant", "content": "", "reasoning_content": "Six"}),
                   chunk({"reasoning_content": " sevens."}), chunk({"content": "4"}), chunk({"content": "2"}),
                   chunk({}, finish="stop"), chunk(choices=[], usage_=usage(5, 9, reasoning=4)), "[DONE]"])


@pytest.mark.parametrize("model,thinking,upstream_fields", [
    ("qwq-32b", {}, {}),  # thinking-only: always streamed
    ("qwen3-235b-a22b-thinking-2507", {"includeThoughts": True}, {}),
    ("qwen-plus", {"thinkingBudget": 2048, "includeThoughts": True}, {"enable_thinking": True, "thinking_budget": 2048}),
])
def test_generate_content_on_a_thinking_dashscope_model_is_assembled_from_a_stream(function, upstream, model, thinking,
                                                                                   upstream_fields):
    upstream.reply(dashscope_thinking)
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=function.url))
    response = client.models.generate_content(model=model, contents="6*7?",
                                              config=types.GenerateContentConfig(thinking_config=thinking or None))
    assert response.text == "42"
    parts = response.candidates[0].content.parts
    thoughts = [part.text for part in parts if part.thought]
    assert thoughts == (["Six sevens."] if thinking.get("includeThoughts") else [])
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert (response.usage_metadata.thoughts_token_count, response.usage_metadata.total_token_count) == (4, 14)
    [sent] = [request["json"] for request in upstream.chat_requests]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert {key: sent[key] for key in upstream_fields} == upstream_fields


def test_count_tokens_on_a_thinking_dashscope_model_asks_without_thinking(gemini, upstream):
    response = gemini("/v1beta/models/qwen-plus:countTokens", {"generateContentRequest": {
        **hello(), "generationConfig": {"thinkingConfig": {"thinkingLevel": "HIGH"}}}})
    assert response.status_code == 200, response.text
    assert upstream.last["enable_thinking"] is False and "thinking_budget" not in upstream.last


def test_a_refusal_while_assembling_is_the_upstreams_error(function, upstream):
    upstream.reply(Json({"error": {"message": "Model overloaded"}}, status=429),
                   Json({"error": {"message": "no"}}, status=400))
    response = requests.post(f"{function.url}/v1beta/models/qwq-32b:generateContent", json=hello(),
                             headers={"x-goog-api-key": KEY}, timeout=30)
    assert (response.status_code, response.json()["error"]["message"]) == (400, "no")  # the 429 was retried
    assert all(request["json"]["stream"] for request in upstream.chat_requests)


def test_a_template_that_opens_think_streams_only_the_answer(serve, upstream):
    function = serve(THINK_TAGS="preopened")
    pieces = ["The user", " wants a", " greeting.", "</th", "ink>\n\n", "Hel", "lo"]
    upstream.reply(Stream(text_stream(pieces)))
    response = requests.post(f"{function.url}/v1beta/models/my-model:streamGenerateContent?alt=sse", json=hello(),
                             headers={"x-goog-api-key": KEY}, timeout=30)
    texts = [part.get("text", "") for chunk_ in sse_chunks(response)
             for part in chunk_["candidates"][0]["content"]["parts"] if not part.get("thought")]
    assert "".join(texts) == "Hello"
