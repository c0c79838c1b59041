"""Request bodies read the way Google's API reads them: as proto3 JSON, driven by the bundled schemas.

Google parses every request into protocol buffers, so it accepts more than one spelling of a value.
Before validation, a body is brought to the one spelling the schemas and the translation expect, in
place, wherever the schema declares the field:

- keys: snake_case becomes camelCase      ``{"max_output_tokens": 64}`` -> ``{"maxOutputTokens": 64}``
- null is absent                          ``{"temperature": null}`` -> ``{}``
- enums as numbers become names           ``{"threshold": 4}`` -> ``{"threshold": "BLOCK_NONE"}``
- numbers as strings become numbers       ``{"maxOutputTokens": "64"}`` -> ``{"maxOutputTokens": 64}``
- integral floats in integer fields       ``{"topK": 3.0}`` -> ``{"topK": 3}``

Google's generated REST client (``google-ai-generativelanguage``) sends every enum as its number and
int64 counts as strings; the Python SDK sends some snake_case and integral floats.

Free-form payloads (``functionCall.args``, ``functionResponse.response``, ``parametersJsonSchema``,
Schema ``properties`` names, ``example``) have no declared fields and are left exactly as sent: there
a null is a value and a string is a string. Anything still wrong is left for validation to report.

A field is a proto enum where its schema says ``x-proto-enum``: ``true`` when the numbers are the
positions in ``enum``, or the proto's names listed by number (names we refuse included, so that the
error names them). Enums whose numbers Google's generated client does not publish (``thinkingLevel``)
and plain strings (``role``) have none: a number there is refused. tests/test_proto_json.py checks
every number against that client's protos.
"""

import math
import re
from urllib.parse import urldefrag, urljoin

# Spellings the API accepts besides camelCase and snake_case (a json_name quirk of the proto).
_ALIASES = {"_responseJsonSchema": "responseJsonSchema"}
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,20}")
_NUMBER_TEXT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")


def snake_case(name):
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


class DuplicateField(Exception):
    """One field given twice, in its two spellings; ``path`` leads to the object holding it."""

    def __init__(self, first, second):
        self.first, self.second, self.path = first, second, []


class Shape:
    """What the reader needs of one schema: for an object, accepted key -> (camelCase key, the
    value's Shape or None, whether null means absent); for a map, every value's Shape; for an array,
    every item's Shape; for a scalar, the function that reads it."""

    __slots__ = ("fields", "values", "items", "scalar")

    def __init__(self):
        self.fields = {}
        self.values = None
        self.items = None
        self.scalar = None


def shape(schema, uri, schemas):
    """The Shape of ``schema``, found at ``uri`` among ``schemas`` (uri -> document)."""
    return _shape(schema, uri, schemas, {})


def read(value, body_shape):
    """``value`` in its one spelling (see the module docstring); dicts and lists are changed in place."""
    scalar = body_shape.scalar
    if scalar is not None:
        return scalar(value)
    if isinstance(value, dict):
        if body_shape.fields:
            _read_fields(value, body_shape.fields)
        elif body_shape.values is not None:
            for key, item in value.items():
                _read_child(value, key, item, body_shape.values)
    elif isinstance(value, list) and body_shape.items is not None:
        for index, item in enumerate(value):
            _read_child(value, index, item, body_shape.items)
    return value


def _read_fields(value, fields):
    for key in list(value):
        entry = fields.get(key)
        if entry is None:
            continue  # unknown: left for validation to report
        name, child, null_is_absent = entry
        if name != key:
            if name in value:
                raise DuplicateField(name, key)
            value[name] = value.pop(key)
        item = value[name]
        if item is None:
            if null_is_absent:
                del value[name]
        elif child is not None:
            _read_child(value, name, item, child)


def _read_child(container, key, item, child):
    try:
        new = read(item, child)
    except DuplicateField as error:
        error.path.insert(0, key)
        raise
    if new is not item:
        container[key] = new


# --- scalars -----------------------------------------------------------------------------------

def padded_base64(text):
    """A bytes field's text as standard, padded base64 (not checked): proto3 JSON takes standard or
    URL-safe base64 (the Python SDK sends URL-safe), padded or not: ``"-_8"`` -> ``"+/8="``."""
    text = text.replace("\n", "").replace("\r", "").replace("-", "+").replace("_", "/").rstrip("=")
    return text + "=" * (-len(text) % 4)


def _integer(value):
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _number(value):
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
        number = float(value)
        return number if math.isfinite(number) else value  # "1e999": no JSON number stands for it
    return value


def _enum(names):
    def read_enum(value):
        if type(value) is int and 0 <= value < len(names) and names[value] is not None:
            return names[value]
        return value
    return read_enum


def _scalar(schema):
    numbered = schema.get("x-proto-enum")
    if numbered:
        return _enum(tuple(schema["enum"] if numbered is True else numbered))
    kind = schema.get("type")
    if kind == "integer":
        return _integer
    if kind == "number":
        return _number
    return None


# --- shapes ------------------------------------------------------------------------------------

def _resolve(schema, base, schemas):
    """Follow ``$ref`` chains; returns (schema, its base URI)."""
    while "$ref" in schema:
        document_uri, fragment = urldefrag(urljoin(base, schema["$ref"]))
        target = schemas[document_uri]
        for token in filter(None, fragment.split("/")):
            target = target[token]
        schema, base = target, document_uri
    return schema, base


def _shape(schema, base, schemas, memo):
    """A Shape, or None where there is nothing to read (a plain string or boolean)."""
    schema, base = _resolve(schema, base, schemas)
    if id(schema) in memo:  # recursive schemas (Schema.items is a Schema)
        return memo[id(schema)]
    node = memo[id(schema)] = Shape()
    node.scalar = _scalar(schema)
    branches = [shape for branch in schema.get("anyOf", []) + schema.get("oneOf", [])
                if isinstance(branch, dict) and (shape := _shape(branch, base, schemas, memo)) is not None]
    if branches:
        # One branch to read by (Schema.additionalProperties: a boolean or a Schema): that branch's
        # own Shape, not a copy, since a recursive one is still being built. Our schemas need no more.
        if len(branches) > 1 or node.scalar or "properties" in schema or "items" in schema:
            raise ValueError(f"{base}: a schema is read by one anyOf/oneOf branch at most, with nothing of its own")
        memo[id(schema)] = branches[0]
        return branches[0]
    for name, child in schema.get("properties", {}).items():
        typed = isinstance(child, dict)  # ``true`` (any value, a protobuf Value): there null is a value
        child_shape = _shape(child, base, schemas, memo) if typed else None
        node.fields[name] = node.fields[snake_case(name)] = (name, child_shape, typed)
    for alias, name in _ALIASES.items():
        if name in node.fields:
            node.fields[alias] = node.fields[name]
    if isinstance(schema.get("additionalProperties"), dict):
        node.values = _shape(schema["additionalProperties"], base, schemas, memo)
    if isinstance(schema.get("items"), dict):
        node.items = _shape(schema["items"], base, schemas, memo)
    if not (node.fields or node.values or node.items or node.scalar):
        memo[id(schema)] = None
        return None
    return node

