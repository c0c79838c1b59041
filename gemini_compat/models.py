"""Models: which upstream model a requested name means, whether the team may call it, and the
upstream's model list as Gemini ``Model`` objects, paginated the way Google does it."""

import base64
import binascii

from .errors import InvalidArgument, NotFound

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
INT32_MAX = 2**31 - 1
CHAT_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]
EMBEDDING_METHODS = ["embedContent", "batchEmbedContents"]
# Where OpenAI-compatible servers put context and output limits (vLLM, OpenRouter, LiteLLM...).
_INPUT_LIMIT_FIELDS = ("context_length", "max_model_len", "context_window", "max_input_tokens")
_OUTPUT_LIMIT_FIELDS = ("max_completion_tokens", "max_output_tokens", "max_tokens")


def upstream_model(settings, route):
    """The upstream model ID for ``route.model``: its alias target, if any; 404 if not allowed."""
    model = settings.model_aliases.get(route.model, route.model)
    if not is_allowed(settings, model):
        raise not_found(route)
    return model


def is_allowed(settings, model):
    return not settings.allowed_models or model in settings.allowed_models


def not_found(route):
    # Google's wording. A model the team may not use is, for the team, not there.
    return NotFound(
        f"models/{route.model} is not found for API version {route.version}, or is not supported "
        f"for {route.action}. Call ListModels to see the list of available models and their supported methods."
    )


def gemini_models(settings, upstream_list):
    """Gemini Model objects for the upstream's ``GET /models`` answer: the allowed models, then the
    aliases (under their Gemini names) whose targets are available."""
    entries = upstream_list.get("data") if isinstance(upstream_list, dict) else None
    if not isinstance(entries, list):
        entries = []
    by_id = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and is_allowed(settings, entry["id"]):
            by_id.setdefault(entry["id"], entry)
    models = [gemini_model(entry) for entry in by_id.values()]
    for alias, target in settings.model_aliases.items():
        if target in by_id:
            models.append(gemini_model(by_id[target], name=alias))
    return models


def gemini_model(entry, name=None):
    model_id = entry["id"]
    embedding = "embed" in model_id.lower()
    model = {
        "name": f"models/{name or model_id}",
        "baseModelId": model_id,
        "displayName": name or model_id,
        "description": f"{model_id}" + (f" (owned by {entry['owned_by']})" if isinstance(entry.get("owned_by"), str) else ""),
        "supportedGenerationMethods": EMBEDDING_METHODS if embedding else CHAT_METHODS,
    }
    if name:
        model["description"] = f"Alias of {model['description']}"
    input_limit = _first_int(entry, _INPUT_LIMIT_FIELDS)
    output_limit = _first_int(entry, _OUTPUT_LIMIT_FIELDS) or _first_int(entry.get("top_provider") or {}, _OUTPUT_LIMIT_FIELDS)
    if input_limit:
        model["inputTokenLimit"] = input_limit
    if output_limit:
        model["outputTokenLimit"] = output_limit
    return model


def _first_int(entry, fields):
    for field in fields:
        value = entry.get(field) if isinstance(entry, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def find_model(models, route):
    for model in models:
        if model["name"] == f"models/{route.model}":
            return model
    raise not_found(route)


def page_query(args):
    """(page size, offset) from the pageSize/pageToken query, checked before the upstream is asked."""
    return _page_size(args.get("pageSize") or args.get("page_size")), _offset(args.get("pageToken") or args.get("page_token"))


def page(models, size, offset):
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
        raise InvalidArgument(f"pageSize: {raw!r} is not an integer") from None
    if not 0 <= size <= INT32_MAX:  # Google's pageSize is an int32
        raise InvalidArgument(f"pageSize: {raw!r} must be a whole number from 0 to {INT32_MAX}")
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
    raise InvalidArgument("pageToken: not a page token this endpoint gave out")
