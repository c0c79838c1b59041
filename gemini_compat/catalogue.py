"""The model catalogue: which upstream model a requested name means, whether the team may call it, and the
upstream's model list as Gemini ``Model`` objects, paginated the way Google does it."""

import base64
import binascii
from collections.abc import Mapping

from .config import Settings
from .errors import InvalidArgument, NotFound
from .model_patterns import first_match
from .routing import Route

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
INT32_MAX = 2**31 - 1
CHAT_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]
EMBEDDING_METHODS = ["embedContent", "batchEmbedContents"]
# Where OpenAI-compatible servers put context and output limits, first found wins; a dot walks into
# an object. llama.cpp: meta.n_ctx, the context the server runs with (it can be less than the
# model's n_ctx_train, the fallback); vLLM: max_model_len; OpenRouter: context_length; LiteLLM...
_INPUT_LIMIT_FIELDS = ("meta.n_ctx", "context_length", "max_model_len", "context_window", "max_input_tokens",
                       "meta.n_ctx_train")
_OUTPUT_LIMIT_FIELDS = ("max_completion_tokens", "max_output_tokens", "max_tokens")


def upstream_model(settings: Settings, route: Route) -> str:
    """The upstream model ID for ``route.model``: its alias target, if any; 404 if not allowed."""
    model = aliased(settings, route.model)
    if not is_allowed(settings, model):
        raise not_found(route)
    return model


def aliased(settings: Settings, name: str) -> str:
    """The target of the first MODEL_ALIASES entry that matches ``name``, or ``name`` itself."""
    return first_match(settings.model_aliases, name, name)


def is_allowed(settings: Settings, model: str) -> bool:
    return not settings.allowed_models or model in settings.allowed_models


def not_found(route: Route) -> NotFound:
    # Google's wording. A model the team may not use is, for the team, not there.
    return NotFound(
        f"models/{route.model} is not found for API version {route.version}, or is not supported "
        f"for {route.action}. Call ListModels to see the list of available models and their supported methods."
    )


def gemini_models(settings: Settings, upstream_list: object) -> list[dict]:
    """Gemini Model objects for the upstream's ``GET /models`` answer: the allowed models, then the
    aliases (under their Gemini names) whose targets are available. Patterns name no model to list;
    an upstream model whose name an alias sends elsewhere cannot be called by it, so is not listed."""
    by_id = _available(settings, upstream_list)
    models = [gemini_model(entry) for model_id, entry in by_id.items() if aliased(settings, model_id) == model_id]
    for alias in settings.model_aliases:
        if not alias.is_pattern and alias.target in by_id and aliased(settings, alias.name) == alias.target:
            models.append(gemini_model(by_id[alias.target], name=alias.name))
    return models


def find_model(settings: Settings, upstream_list: object, route: Route) -> dict:
    """The Gemini Model ``route.model`` names: an upstream model, or one an alias or pattern leads to."""
    target = aliased(settings, route.model)
    entry = _available(settings, upstream_list).get(target)
    if entry is None:
        raise not_found(route)
    return gemini_model(entry, name=route.model if target != route.model else None)


def _available(settings, upstream_list):
    """The upstream's model entries the team may use, by ID, in the upstream's order."""
    entries = upstream_list.get("data") if isinstance(upstream_list, dict) else None
    by_id = {}
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and is_allowed(settings, entry["id"]):
            by_id.setdefault(entry["id"], entry)
    return by_id


def gemini_model(entry: dict, name: str | None = None) -> dict:
    model_id = entry["id"]
    embedding = "embed" in model_id.lower()
    model = {
        "name": f"models/{name or model_id}",
        "baseModelId": model_id,
        # Required in Google's Model; OpenAI-compatible lists have no version, so the first one's.
        "version": "001",
        "displayName": name or model_id,
        "description": f"{model_id}"
                       + (f" (owned by {entry['owned_by']})" if isinstance(entry.get("owned_by"), str) else ""),
        "supportedGenerationMethods": EMBEDDING_METHODS if embedding else CHAT_METHODS,
    }
    if name:
        model["description"] = f"Alias of {model['description']}"
    input_limit = _first_int(entry, _INPUT_LIMIT_FIELDS)
    output_limit = (_first_int(entry, _OUTPUT_LIMIT_FIELDS)
                    or _first_int(entry.get("top_provider") or {}, _OUTPUT_LIMIT_FIELDS))
    if input_limit:
        model["inputTokenLimit"] = input_limit
    if output_limit:
        model["outputTokenLimit"] = output_limit
    return model


def _first_int(entry, fields):
    """The first positive integer at one of ``fields``: {"meta": {"n_ctx": 4096}} at "meta.n_ctx" -> 4096."""
    for field in fields:
        value = entry
        for key in field.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def page_query(args: Mapping[str, str]) -> tuple[int, int]:
    """(page size, offset) from the pageSize/pageToken query, checked before the upstream is asked."""
    size = _page_size(args.get("pageSize") or args.get("page_size"))
    return size, _offset(args.get("pageToken") or args.get("page_token"))


def page(models: list[dict], size: int, offset: int) -> dict:
    """One page of ``models``; no nextPageToken on the last page (an empty one makes the JS SDK's
    pager loop forever)."""
    result = {"models": models[offset:offset + size]}
    if offset + size < len(models):
        result["nextPageToken"] = base64.urlsafe_b64encode(f"offset:{offset + size}".encode()).decode()
    return result


def _page_size(raw):
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        raise InvalidArgument(f"{raw!r} is not an integer", field="pageSize") from None
    if not 0 <= size <= INT32_MAX:  # Google's pageSize is an int32
        raise InvalidArgument(f"{raw!r} must be a whole number from 0 to {INT32_MAX}", field="pageSize")
    return min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _offset(token):
    if not token:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind == "offset" and number.isdigit():
            return int(number)
    except (binascii.Error, UnicodeError, ValueError):
        pass
    raise InvalidArgument("not a page token this endpoint gave out", field="pageToken")
