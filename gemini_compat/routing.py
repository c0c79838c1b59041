"""Which Gemini method a request path names: ``[/prefix]/{version}/models[/{model}[:{action}]]``,
``[/prefix][/upload]/{version}/files[/{id}]`` or ``[/prefix]/{version}/cachedContents[/{id}]``.

The path is parsed from the raw request URI, before percent-decoding, so that an encoded slash or dot
inside a model ID is seen for what it is and refused.
"""

import dataclasses
import re
from urllib.parse import urlsplit

from .errors import InvalidArgument, NotFound

# Any prefix (a Cloud Functions URL carries the function name), then the API version and collection.
_PATH = re.compile(r"^(?P<prefix>(?:/[^/]*)*?)(?P<upload>/upload)?/(?P<version>v1|v1beta|v1alpha)"
                   r"/(?P<collection>models|files|cachedContents)(?:/(?P<rest>.*))?$")
# A file's or cached content's ID (file.proto): up to 40 lowercase letters, digits and dashes, not
# at either end.
RESOURCE_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
# Letters, digits, '.', '_', '-', ':' (Ollama tags "qwen2.5:7b", OpenAI fine-tunes "ft:gpt-4o-mini:org::id",
# OpenRouter variants "…:free"); optionally one '/'-separated owner part ("Qwen/Qwen3-8B").
_MODEL_ID = re.compile(r"[A-Za-z0-9._:-]+(?:/[A-Za-z0-9._:-]+)?")

# action -> the HTTP method it takes. Reads of the collection and of one model have pseudo-actions.
METHODS = {
    "generateContent": "POST",
    "streamGenerateContent": "POST",
    "countTokens": "POST",
    "embedContent": "POST",
    "batchEmbedContents": "POST",
    "listModels": "GET",
    "getModel": "GET",
}


# (collection, method, with an ID) -> action, for files and cached contents. The upload (start, and
# the chunks sent to the URL the start answers) is POST /upload/{version}/files.
RESOURCE_METHODS = {
    ("files", "GET", False): "listFiles",
    ("files", "GET", True): "getFile",
    ("files", "DELETE", True): "deleteFile",
    ("cachedContents", "POST", False): "createCachedContent",
    ("cachedContents", "GET", False): "listCachedContents",
    ("cachedContents", "GET", True): "getCachedContent",
    ("cachedContents", "PATCH", True): "updateCachedContent",
    ("cachedContents", "DELETE", True): "deleteCachedContent",
}


@dataclasses.dataclass(frozen=True)
class Route:
    version: str
    model: str
    action: str
    collection: str = "models"  # or "files", "cachedContents"
    # files and cachedContents: the resource ID ("" for the collection), and the path before the
    # version (upload URLs are built under the same prefix)
    resource_id: str = ""
    prefix: str = ""


def raw_path(environ):
    """The request path as the client sent it (still percent-encoded)."""
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not uri:
        return environ.get("PATH_INFO") or "/"
    if not uri.startswith("/"):  # absolute-form request line: "POST http://host/v1/... HTTP/1.1"
        uri = urlsplit(uri).path or "/"
    return uri.split("?", 1)[0]


def parse_route(path, method):
    """Route for ``path`` (raw, encoded) and ``method``; raises the Gemini error the path deserves."""
    # Some HTTP stacks encode the verb separator (and a ':' inside a model ID): both read as ':'.
    match = _PATH.match(path.replace("%3A", ":").replace("%3a", ":"))
    if match is None:
        raise NotFound(f"No Gemini API method at {path}. Expected /{{v1|v1beta|v1alpha}}/models/{{model}}:{{action}}.")
    version, rest = match["version"], match["rest"] or ""
    if match["upload"] or match["collection"] != "models":
        return _resource_route(path, method, match)
    model, action = _model_and_action(rest, method)
    if action != "listModels":
        check_model_id(model)
    if action not in METHODS or (model != rest and METHODS[action] == "GET"):  # pseudo-actions are not named
        raise NotFound(
            f"Method models/{model}:{action} is not found for API version {version}. "
            f"Supported: {', '.join(sorted(a for a, m in METHODS.items() if m == 'POST'))}."
        )
    if method != METHODS[action]:
        # Google's front end answers 404 here; Allow still tells a person with curl what to use.
        raise NotFound(
            f"{path} must be called with {METHODS[action]}, not {method}.",
            headers={"Allow": METHODS[action]},
        )
    return Route(version, model, action)


def _resource_route(path, method, match):
    """The route of a files or cachedContents path (``match`` of _PATH)."""
    version, collection, rest = match["version"], match["collection"], match["rest"]
    if match["upload"]:
        if collection != "files" or rest is not None or method != "POST":
            raise NotFound(f"No Gemini API method at {path}. Uploads are POST /upload/{{version}}/files.")
        return Route(version, "", "uploadFile", collection, prefix=match["prefix"])
    resource_id, colon, verb = (rest or "").partition(":")
    if rest is not None and not RESOURCE_ID.fullmatch(resource_id):
        shown = resource_id if len(resource_id) <= 100 else resource_id[:100] + "..."
        raise InvalidArgument(f"{shown!r} is not a valid {collection} ID (up to 40 lowercase letters, digits and "
                              "dashes, not at either end).", field="name")
    if colon:
        if collection == "files" and verb == "download" and method == "GET":
            return Route(version, "", "downloadFile", collection, resource_id, match["prefix"])
        raise NotFound(f"Method {collection}/{resource_id}:{verb} is not found for API version {version}.")
    action = RESOURCE_METHODS.get((collection, method, rest is not None))
    if action is None:
        allowed = sorted(m for (c, m, one), a in RESOURCE_METHODS.items() if c == collection and one == (rest is not None))
        raise NotFound(f"{path} must be called with {' or '.join(allowed)}, not {method}.",
                       headers={"Allow": ", ".join(allowed)})
    return Route(version, "", action, collection, resource_id, match["prefix"])


def _model_and_action(rest, method):
    """The model and the action, split at the last ':' when what follows is a method, or when a POST
    names one (an unknown one then gets its 404); otherwise the ':' belongs to the model ID.

    ``qwen2.5:7b:generateContent`` -> (``qwen2.5:7b``, ``generateContent``);
    GET ``qwen2.5:7b`` -> (``qwen2.5:7b``, ``getModel``); ``""`` -> (``""``, ``listModels``)."""
    if not rest:
        return "", "listModels"
    model, colon, action = rest.rpartition(":")
    if colon and (action in METHODS or method == "POST"):
        return model, action
    return rest, "getModel"


def is_model_id(model):
    return bool(_MODEL_ID.fullmatch(model)) and ".." not in model and not model.startswith(".") and "/." not in model


def check_model_id(model):
    if not is_model_id(model):
        shown = model if len(model) <= 100 else model[:100] + "..."
        raise InvalidArgument(
            f"{shown!r} is not a valid model ID (letters, digits, '.', '_', '-', ':', "
            "optionally one '/'-separated owner part).",
            field="model",
        )
