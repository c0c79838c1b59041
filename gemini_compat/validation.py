"""Request validation against the bundled JSON Schemas in ``schemas/``.

Two steps, both driven by the same schemas, both prepared once at import:

1. Reading the body as Google does (``proto_json``): snake_case keys, nulls, enum numbers and numbers
   written as strings are brought to the one spelling the schemas declare.
2. Validation of the body so read. ``jsonschema_rs`` (compiled, about 400 times faster than
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

import jsonschema_rs

from . import proto_json
from .errors import InvalidArgument, field_path

SCHEMA_DIR = pathlib.Path(__file__).resolve().parent.parent / "schemas"
_BASE_URI = "https://gemini-compat.invalid/schemas/"


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


# --- error messages ----------------------------------------------------------------------------

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
    if kind in ("oneOf", "anyOf") and all(set(branch) == {"required"} for branch in error.validator_value):
        names = [branch["required"][0] for branch in error.validator_value]
        if kind == "anyOf":
            return [], f"must have {' or '.join(names)}"
        present = [name for name in names if name in value]
        found = ", ".join(present) if present else "none"
        return [], f"must have exactly one of {', '.join(names)} (found {found})"
    if kind == "not" and set(error.validator_value) == {"required"}:  # fields that exclude each other
        return [], f"give {' or '.join(error.validator_value['required'])}, not both"
    if kind == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return [], f"{_shown(value)} is not of type {expected}"
    if kind == "enum":
        choices = ", ".join(_shown(choice) if choice == "" else str(choice) for choice in error.validator_value)
        return [], f"{_shown(value)} is not one of {choices}"
    if kind == "pattern" and error.validator_value.startswith("^(?i:"):  # a case-insensitive enum
        choices = error.validator_value[len("^(?i:"):-len(")$")].replace("|", ", ")
        return [], f"{_shown(value)} is not one of {choices}"
    if kind == "pattern" and isinstance(error.schema.get("description"), str):  # what the pattern stands for
        return [], f"{_shown(value)} is not {error.schema['description']}"
    if kind == "pattern":
        return [], f"{_shown(value)} does not match the pattern {error.validator_value}"
    if kind == "anyOf" and isinstance(value, str):
        return [], f"{_shown(value)} is not a valid value here"
    return [], error.message


def _invalid(error):
    extra, message = _describe(error)
    return InvalidArgument(message, field=field_path(list(error.absolute_path) + extra))


# --- public ------------------------------------------------------------------------------------

class RequestValidator:
    """The validator and proto3 JSON reader for one request body type."""

    def __init__(self, schema_name):
        schema = _SCHEMAS[_BASE_URI + schema_name]
        self.schema_name = schema_name
        self.fast = jsonschema_rs.validator_for(schema, registry=_FAST_REGISTRY)
        self.shape = proto_json.shape(schema, _BASE_URI + schema_name, _SCHEMAS)

    def validate(self, body):
        """``body`` read as proto3 JSON (in place) and validated; raises InvalidArgument naming the field."""
        if not isinstance(body, dict):
            raise InvalidArgument(f"Invalid JSON payload received. Expected an object, got {type(body).__name__}.")
        try:
            proto_json.read(body, self.shape)
        except proto_json.DuplicateField as error:
            raise InvalidArgument(f"given twice, as {error.first!r} and {error.second!r}",
                                  field=field_path(error.path + [error.first])) from None
        if self.fast.is_valid(body):
            return body
        from jsonschema.exceptions import best_match  # loaded with the first invalid request

        error = best_match(reference_validator(self.schema_name).iter_errors(body))
        if error is not None:
            raise _invalid(error)
        # The two disagree (Python's "$" also matches before a final newline, ECMA-262's does not):
        # the body is still invalid, and the compiled validator says where.
        error = next(self.fast.iter_errors(body))
        raise InvalidArgument(error.message, field=field_path(list(error.instance_path)))


GENERATE_CONTENT = RequestValidator("generate_content_request.json")
COUNT_TOKENS = RequestValidator("count_tokens_request.json")
EMBED_CONTENT = RequestValidator("embed_content_request.json")
BATCH_EMBED_CONTENTS = RequestValidator("batch_embed_contents_request.json")
CACHED_CONTENT = RequestValidator("cached_content.json")
CACHED_CONTENT_UPDATE = RequestValidator("cached_content_update.json")
