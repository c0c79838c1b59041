"""Request validation against the bundled JSON Schemas in ``schemas/``.

Two steps, both driven by the same schemas, both prepared once at import:

1. Key normalisation. The REST API accepts snake_case and camelCase names at every level (proto3 JSON),
   and the Python SDK really sends some snake_case. A key is renamed to its camelCase form only where
   the schema declares that property; free-form payloads (``functionCall.args``,
   ``parametersJsonSchema``, Schema ``properties`` names...) have no declared properties and are left
   exactly as sent.
2. Validation of the normalised body. ``jsonschema_rs`` (compiled, about 400 times faster than
   ``jsonschema`` on a Gemini CLI request: see the README's benchmark) answers whether it is valid;
   only for an invalid body does ``jsonschema`` find the error, which becomes a 400 whose message
   names the offending field, e.g. ``generationConfig.temperature: 5 is greater than the maximum of 2``.
   ``jsonschema`` is loaded with the first invalid request, not at start: cold start and memory
   are billed. A body either one finds invalid is refused.
"""

import difflib
import functools
import json
import pathlib
from urllib.parse import urldefrag, urljoin

import jsonschema_rs

from .errors import InvalidArgument

SCHEMA_DIR = pathlib.Path(__file__).resolve().parent.parent / "schemas"
_BASE_URI = "https://gemini-compat.invalid/schemas/"

# Spellings the API accepts besides camelCase and snake_case (a json_name quirk of the proto).
_ALIASES = {"_responseJsonSchema": "responseJsonSchema"}


def _load_schemas():
    return {_BASE_URI + path.name: json.loads(path.read_text()) for path in sorted(SCHEMA_DIR.glob("*.json"))}


_SCHEMAS = _load_schemas()


_FAST_REGISTRY = jsonschema_rs.Registry(list(_SCHEMAS.items()))


@functools.cache
def reference_validator(schema_name):
    import jsonschema
    import referencing

    registry = referencing.Registry().with_resources(
        (uri, referencing.Resource.from_contents(schema)) for uri, schema in _SCHEMAS.items()
    )
    return jsonschema.Draft202012Validator(_SCHEMAS[_BASE_URI + schema_name], registry=registry)


# --- key normalisation -------------------------------------------------------------------------

def snake_case(name):
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


class _KeyMap:
    """For one object schema: accepted key -> (camelCase key, _KeyMap of the value or None)."""

    __slots__ = ("fields", "values", "items")

    def __init__(self):
        self.fields = {}
        self.values = None  # for maps (additionalProperties: schema): every value's _KeyMap
        self.items = None  # for arrays: every item's _KeyMap


def _resolve(schema, base):
    """Follow ``$ref`` chains; returns (schema, its base URI)."""
    while "$ref" in schema:
        uri = urljoin(base, schema["$ref"])
        document_uri, fragment = urldefrag(uri)
        target = _SCHEMAS[document_uri]
        for token in filter(None, fragment.split("/")):
            target = target[token]
        schema, base = target, document_uri
    return schema, base


def _key_map(schema, base, memo):
    schema, base = _resolve(schema, base)
    if id(schema) in memo:  # recursive schemas (Schema.items is a Schema)
        return memo[id(schema)]
    node = memo[id(schema)] = _KeyMap()
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        if isinstance(branch, dict):
            _merge(node, _key_map(branch, base, memo))
    for name, child in schema.get("properties", {}).items():
        child_map = _key_map(child, base, memo) if isinstance(child, dict) else None
        node.fields[name] = node.fields[snake_case(name)] = (name, child_map)
    for alias, name in _ALIASES.items():
        if name in node.fields:
            node.fields[alias] = node.fields[name]
    if isinstance(schema.get("additionalProperties"), dict):
        node.values = _key_map(schema["additionalProperties"], base, memo)
    if isinstance(schema.get("items"), dict):
        node.items = _key_map(schema["items"], base, memo)
    return node


def _merge(node, other):
    node.fields.update(other.fields)
    node.values = node.values or other.values
    node.items = node.items or other.items


class _DuplicateField(Exception):
    def __init__(self, first, second):
        self.first, self.second, self.path = first, second, []


def _normalise(value, key_map):
    """Rename snake_case keys to camelCase in place, where ``key_map`` declares them."""
    if isinstance(value, dict):
        fields = key_map.fields
        if fields:
            for key in list(value):
                entry = fields.get(key)
                if entry is None:
                    continue  # unknown: left for validation to report
                name, child = entry
                if name != key:
                    if name in value:
                        raise _DuplicateField(name, key)
                    value[name] = value.pop(key)
                if child is not None:
                    try:
                        _normalise(value[name], child)
                    except _DuplicateField as error:
                        error.path.insert(0, name)
                        raise
        elif key_map.values is not None:
            for key, item in value.items():
                try:
                    _normalise(item, key_map.values)
                except _DuplicateField as error:
                    error.path.insert(0, key)
                    raise
    elif isinstance(value, list) and key_map.items is not None:
        for index, item in enumerate(value):
            try:
                _normalise(item, key_map.items)
            except _DuplicateField as error:
                error.path.insert(0, index)
                raise


# --- error messages ----------------------------------------------------------------------------

def field_path(parts):
    """``["contents", 0, "parts"]`` -> ``contents[0].parts``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier() or part.startswith("$"):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def _shown(value, limit=80):
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "..."


def _describe(error):
    """A message for one jsonschema error that says what is wrong in the client's terms."""
    kind, value, schema = error.validator, error.instance, error.schema
    if kind == "additionalProperties":
        known = list(schema.get("properties", {}))
        unknown = [key for key in value if key not in known]
        name = unknown[0]
        hint = difflib.get_close_matches(name, known, n=1)
        return [name], "unknown field" + (f' (did you mean "{hint[0]}"?)' if hint else "")
    if kind == "required":
        missing = next(name for name in error.validator_value if name not in value)
        return [missing], "required field is missing"
    if kind == "oneOf" and all(set(branch) == {"required"} for branch in error.validator_value):
        names = [branch["required"][0] for branch in error.validator_value]
        present = [name for name in names if name in value]
        found = ", ".join(present) if present else "none"
        return [], f"must have exactly one of {', '.join(names)} (found {found})"
    if kind == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return [], f"{_shown(value)} is not of type {expected}"
    if kind == "enum":
        return [], f"{_shown(value)} is not one of {', '.join(map(str, error.validator_value))}"
    if kind == "pattern" and error.validator_value.startswith("^(?i:"):  # a case-insensitive enum
        choices = error.validator_value[len("^(?i:"):-len(")$")].replace("|", ", ")
        return [], f"{_shown(value)} is not one of {choices}"
    if kind == "pattern":
        return [], f"{_shown(value)} does not match the pattern {error.validator_value}"
    if kind == "anyOf" and isinstance(value, str):
        return [], f"{_shown(value)} is not a valid value here"
    return [], error.message


def _invalid(error):
    extra, message = _describe(error)
    path = field_path(list(error.absolute_path) + extra)
    return InvalidArgument(f"{path}: {message}" if path else message)


# --- public ------------------------------------------------------------------------------------

class RequestKind:
    """The validator and key map for one request body type."""

    def __init__(self, schema_name):
        schema = _SCHEMAS[_BASE_URI + schema_name]
        self.schema_name = schema_name
        self.fast = jsonschema_rs.validator_for(schema, registry=_FAST_REGISTRY)
        self.key_map = _key_map(schema, _BASE_URI + schema_name, {})

    def validate(self, body):
        """Normalise ``body`` in place and validate it; raises InvalidArgument naming the field."""
        if not isinstance(body, dict):
            raise InvalidArgument(f"Invalid JSON payload received. Expected an object, got {type(body).__name__}.")
        try:
            _normalise(body, self.key_map)
        except _DuplicateField as error:
            path = field_path(error.path + [error.first])
            raise InvalidArgument(f"{path}: given twice, as {error.first!r} and {error.second!r}") from None
        if self.fast.is_valid(body):
            return body
        from jsonschema.exceptions import best_match  # loaded with the first invalid request

        error = best_match(reference_validator(self.schema_name).iter_errors(body))
        if error is not None:
            raise _invalid(error)
        # The two disagree (Python's "$" also matches before a final newline, ECMA-262's does not):
        # the body is still invalid, and the compiled validator says where.
        error = next(self.fast.iter_errors(body))
        path = field_path(list(error.instance_path))
        raise InvalidArgument(f"{path}: {error.message}" if path else error.message)


GENERATE_CONTENT = RequestKind("generate_content_request.json")
COUNT_TOKENS = RequestKind("count_tokens_request.json")
EMBED_CONTENT = RequestKind("embed_content_request.json")
BATCH_EMBED_CONTENTS = RequestKind("batch_embed_contents_request.json")
