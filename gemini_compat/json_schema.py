"""Gemini Schema (the OpenAPI 3.0 subset of ``responseSchema`` and ``parameters``) to JSON Schema.

OpenAI-compatible servers take standard lower-case JSON Schema. The differences that matter:
upper-case type names, ``nullable``, ``example`` (JSON Schema
has ``examples``) and ``propertyOrdering`` (JSON Schema has none: the order is kept by emitting
``properties`` in that order, which is what constrained decoders follow).
"""

_COPIED = ("format", "title", "description", "pattern", "minimum", "maximum", "default", "$ref", "required",
           "minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")


def from_gemini_schema(schema):
    """JSON Schema for a (validated, camelCase) Gemini Schema dict. Pure; the input is not modified."""
    out = {}
    type_name = (schema.get("type") or "").lower()
    if type_name and type_name != "type_unspecified":
        out["type"] = [type_name, "null"] if schema.get("nullable") and type_name != "null" else type_name
    for key in _COPIED:
        if key in schema:
            out[key] = schema[key]
    if "ref" in schema:  # the SDK's spelling; its "#/defs/X" points into what becomes "$defs"
        out["$ref"] = schema["ref"].replace("#/defs/", "#/$defs/", 1)
    if "enum" in schema:
        out["enum"] = list(schema["enum"]) + ([None] if schema.get("nullable") else [])
    if "example" in schema:
        out["examples"] = [schema["example"]]
    if "items" in schema:
        out["items"] = from_gemini_schema(schema["items"])
    if "properties" in schema:
        out["properties"] = {name: from_gemini_schema(schema["properties"][name]) for name in _ordered(schema)}
    if "anyOf" in schema:
        out["anyOf"] = [from_gemini_schema(branch) for branch in schema["anyOf"]]
        if schema.get("nullable") and "type" not in out:
            out["anyOf"].append({"type": "null"})
    additional = schema.get("additionalProperties")
    if isinstance(additional, bool):
        out["additionalProperties"] = additional
    elif isinstance(additional, dict):
        out["additionalProperties"] = from_gemini_schema(additional)
    definitions = schema.get("$defs", schema.get("defs"))
    if definitions:
        out["$defs"] = {name: from_gemini_schema(value) for name, value in definitions.items()}
    return out


def _ordered(schema):
    """Property names in ``propertyOrdering`` order, then any the ordering does not mention."""
    names = list(schema["properties"])
    ordering = [name for name in schema.get("propertyOrdering", ()) if name in schema["properties"]]
    return ordering + [name for name in names if name not in ordering]


# Where a JSON Schema holds further schemas: maps of them, and single ones or lists of them.
_SCHEMA_MAPS = frozenset(("properties", "patternProperties", "$defs", "definitions", "dependentSchemas"))
_SCHEMA_CHILDREN = frozenset(("anyOf", "oneOf", "allOf", "prefixItems", "items", "additionalProperties", "not",
                              "if", "then", "else", "contains", "propertyNames", "unevaluatedProperties",
                              "unevaluatedItems", "additionalItems"))


def standard_json_schema(schema):
    """A JSON Schema as given (``parametersJsonSchema``, ``responseJsonSchema``), except type names
    written the Gemini way (``"OBJECT"``, as the Gemini CLI does) lower-cased: upper-case names are
    no JSON Schema type, and strict servers refuse them. Unchanged parts are returned as they are
    (no copy: this runs on every tool of every request)."""
    if not isinstance(schema, dict):
        return schema
    changes = None
    for key, value in schema.items():
        if key == "type":
            new = _standard_type(value)
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            new = _changed_items(value, value.items())
        elif key in _SCHEMA_CHILDREN:
            new = _changed_items(value, enumerate(value)) if isinstance(value, list) else standard_json_schema(value)
        else:
            continue
        if new is not value:
            changes = changes or {}
            changes[key] = new
    return {**schema, **changes} if changes else schema


def _standard_type(kind):
    if isinstance(kind, str):
        return kind.lower() if kind.isupper() else kind
    if isinstance(kind, list) and any(isinstance(k, str) and k.isupper() for k in kind):
        return [k.lower() if isinstance(k, str) else k for k in kind]
    return kind


def _changed_items(container, items):
    """``container`` (a dict or list of schemas) with each schema standardised; itself if none changed."""
    copy = None
    for key, child in items:
        new = standard_json_schema(child)
        if new is not child:
            copy = copy or (dict(container) if isinstance(container, dict) else list(container))
            copy[key] = new
    return copy if copy is not None else container
