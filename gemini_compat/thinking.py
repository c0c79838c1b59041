"""Gemini ``thinkingConfig`` in each upstream family's own fields. Pure.

OpenAI-compatible servers agree on no switch for thinking: ``reasoning_effort`` is ignored by
DashScope (Qwen), Zhipu and Moonshot, refused by older vLLM for "none"/"minimal"/"xhigh", and by
OpenAI's non-reasoning models for any value; budgets exist only in each family's own field. So the
client's intent (off, automatic, a budget, a level) is written in the dialect of the upstream model,
chosen by THINKING_RULES, then UPSTREAM_THINKING, then, with ``auto``, by the model's name. Sources
for every row: ../shared/reference/thinking-dialects.md (section 5.3).

>>> thinking_parameters("dashscope", "qwen-turbo", {"thinkingBudget": 0}, stream=True)
{'enable_thinking': False}
>>> thinking_parameters("vllm", "Qwen/Qwen3-8B", {"thinkingBudget": 2048}, stream=True)
{'chat_template_kwargs': {'enable_thinking': True, 'thinking': True}, 'thinking_token_budget': 2048}
"""

import re

from .errors import InvalidArgument
from .model_patterns import ModelRule, first_match

DIALECTS = ("auto", "none", "openai", "openai-effort", "dashscope", "deepseek", "zhipu", "moonshot", "siliconflow",
            "openrouter", "vllm", "llamacpp", "ollama")

# With UPSTREAM_THINKING=auto: the dialect by the upstream model ID, lower-cased. Anything else
# gets none: a thinking field an unknown server does not know may be refused (OpenAI's gpt-4o).
AUTO_RULES = (
    ModelRule("*/qwen*", "siliconflow"),  # Hugging Face IDs: SiliconFlow's naming, and its fields
    ModelRule("qwen*", "dashscope"),
    ModelRule("qwq*", "dashscope"),
    ModelRule("deepseek*", "deepseek"),
    ModelRule("glm-*", "zhipu"),
    ModelRule("*/glm*", "zhipu"),
    ModelRule("kimi-*", "moonshot"),
    ModelRule("moonshot*", "moonshot"),
    ModelRule("gpt-oss*", "openai-effort"),
    ModelRule("o1*", "openai"),
    ModelRule("o3*", "openai"),
    ModelRule("o4*", "openai"),
    ModelRule("gpt-5*", "openai"),
)

# Google's own budgets for its levels (its OpenAI compatibility layer), where a family needs a number.
LEVEL_BUDGETS = {"LOW": 1024, "MEDIUM": 8192, "HIGH": 24576, "XHIGH": 32768}
SILICONFLOW_BUDGET = (128, 32768)
# Open-source Qwen3 on DashScope thinks by default and refuses a non-streamed call that does.
_DASHSCOPE_THINKS_BY_DEFAULT = re.compile(r"qwen3-[0-9.]+b")


def dialect_for(model, rules, configured):
    """The thinking dialect for upstream ``model``: the first THINKING_RULES entry that matches,
    else UPSTREAM_THINKING, else (``auto``) by the model's name."""
    dialect = first_match(rules, model, configured)
    return first_match(AUTO_RULES, model.lower(), "none") if dialect == "auto" else dialect


def answers_only_streamed(dialect, model, payload):
    """Whether the upstream answers ``payload`` only as a stream: DashScope refuses a non-streamed
    call that thinks ("parameter.enable_thinking must be set to false for non-streaming calls"),
    and its thinking-only models (QwQ, QVQ, ``*-thinking``) always think."""
    model = model.lower()
    return dialect == "dashscope" and (payload.get("enable_thinking") is True or model.startswith(("qwq", "qvq"))
                                       or "-thinking" in model)


def intent(thinking):
    """The client's wish: ("off", None), ("auto", None), ("budget", N) or ("level", LEVEL).

    ``{"thinkingBudget": 0}`` -> ("off", None); ``{}`` or ``{"thinkingBudget": -1}`` -> ("auto", None);
    ``{"thinkingLevel": "HIGH"}`` -> ("level", "HIGH"). MINIMAL is a level ("matches no thinking
    for most queries", in Google's words): families without it treat it as off."""
    if "thinkingLevel" in thinking and "thinkingBudget" in thinking:
        raise InvalidArgument("give thinkingLevel or thinkingBudget, not both", field="generationConfig.thinkingConfig")
    level = thinking.get("thinkingLevel", "THINKING_LEVEL_UNSPECIFIED")
    if level != "THINKING_LEVEL_UNSPECIFIED":
        return "level", level
    budget = thinking.get("thinkingBudget", -1)
    if budget == 0:
        return "off", None
    return ("auto", None) if budget == -1 else ("budget", budget)


def effort(budget):
    """A budget as an effort word, at Google's own thresholds: 1024 -> "low", 8192 -> "medium"."""
    return "low" if budget <= 1024 else "medium" if budget <= 8192 else "high"


def thinking_parameters(dialect, model, thinking, stream):
    """The upstream fields for ``thinking`` (a validated thinkingConfig) in ``dialect``."""
    wish, value = intent(thinking)
    if wish == "level" and value == "MINIMAL" and dialect not in ("openai", "openrouter"):
        wish = "off"  # only OpenAI's efforts and OpenRouter's have a minimal level
    budget = value if wish == "budget" else LEVEL_BUDGETS.get(value) if wish == "level" else None
    return _WRITERS[dialect](wish, value if wish == "level" else None, budget, model.lower(), stream)


def _none(wish, level, budget, model, stream):
    return {}


def _openai(wish, level, budget, model, stream):
    o_series = model[:2] in ("o1", "o3", "o4")
    if wish == "off":
        # o-series cannot stop thinking, gpt-5 and its minis stop at "minimal"; "none" from gpt-5.1.
        return {"reasoning_effort": "low" if o_series else
                "minimal" if re.fullmatch(r"gpt-5(-mini|-nano)?(-[0-9-]+)?", model) else "none"}
    if level == "MINIMAL":
        return {"reasoning_effort": "low" if o_series else "minimal"}
    if level == "XHIGH":  # only the newest take "xhigh"; "high" everywhere
        return {"reasoning_effort": "high"}
    if level:
        return {"reasoning_effort": level.lower()}
    return {"reasoning_effort": effort(budget)} if wish == "budget" else {}


def _openai_effort(wish, level, budget, model, stream):
    """gpt-oss (on vLLM, llama.cpp): low, medium and high only, and no off."""
    if wish == "off":
        return {"reasoning_effort": "low"}
    return {"reasoning_effort": effort(budget)} if budget else {}


def _dashscope(wish, level, budget, model, stream):
    if wish == "off" or (wish == "auto" and not stream and _DASHSCOPE_THINKS_BY_DEFAULT.match(model)
                         and "-thinking" not in model):  # thinking-only: answers_only_streamed streams it
        return {"enable_thinking": False}
    if level and model.startswith("qwen3.8"):  # its levels are efforts (low ... xhigh), not budgets
        return {"enable_thinking": True, "reasoning_effort": level.lower()}
    # Never a budget with reasoning_effort: DashScope refuses both together.
    return {"enable_thinking": True, "thinking_budget": budget} if budget else {}


def _siliconflow(wish, level, budget, model, stream):
    if wish == "off":
        return {"enable_thinking": False}
    low, high = SILICONFLOW_BUDGET
    return {"enable_thinking": True, "thinking_budget": min(max(budget, low), high)} if budget else {}


def _deepseek(wish, level, budget, model, stream):
    if wish == "off":
        return {"thinking": {"type": "disabled"}}  # deepseek-reasoner thinks regardless
    # No token budget exists; low and medium are "high" at DeepSeek anyway, xhigh is "max".
    return {"thinking": {"type": "enabled"}, "reasoning_effort": "high" if budget <= 24576 else "max"} if budget else {}


def _zhipu(wish, level, budget, model, stream):
    if wish == "off":
        return {"thinking": {"type": "disabled"}}
    return {"thinking": {"type": "enabled"}} if budget else {}  # no budget field


def _moonshot(wish, level, budget, model, stream):
    # Kimi thinks by default and takes no budget; only K2.5 and K2.6 can stop (the thinking-only
    # models refuse "disabled").
    if wish == "off" and model.startswith(("kimi-k2.5", "kimi-k2.6")):
        return {"thinking": {"type": "disabled"}}
    return {}


def _openrouter(wish, level, budget, model, stream):
    if wish == "off":
        return {"reasoning": {"effort": "none"}}
    if wish == "level":
        return {"reasoning": {"effort": level.lower()}}
    return {"reasoning": {"max_tokens": budget}} if budget else {}


def _vllm(wish, level, budget, model, stream):
    # Templates read enable_thinking (Qwen3, GLM) or thinking (DeepSeek-V3.1, Granite), and ignore
    # the other; the budget needs the server's --reasoning-config.
    if wish == "off":
        return {"chat_template_kwargs": {"enable_thinking": False, "thinking": False}}
    if not budget:
        return {}
    fields = {"chat_template_kwargs": {"enable_thinking": True, "thinking": True}, "thinking_token_budget": budget}
    if level in ("LOW", "MEDIUM", "HIGH"):  # older vLLM refuses any other effort word
        fields["reasoning_effort"] = level.lower()
    return fields


def _llamacpp(wish, level, budget, model, stream):
    if wish == "off":
        return {"chat_template_kwargs": {"enable_thinking": False}}
    return {"chat_template_kwargs": {"enable_thinking": True}, "thinking_budget_tokens": budget} if budget else {}


def _ollama(wish, level, budget, model, stream):
    if wish == "off":
        return {"reasoning_effort": "none"}
    return {"reasoning_effort": effort(budget)} if budget else {}  # only none, low, medium, high


_WRITERS = {
    "none": _none, "openai": _openai, "openai-effort": _openai_effort, "dashscope": _dashscope,
    "siliconflow": _siliconflow, "deepseek": _deepseek, "zhipu": _zhipu, "moonshot": _moonshot,
    "openrouter": _openrouter, "vllm": _vllm, "llamacpp": _llamacpp, "ollama": _ollama,
}
