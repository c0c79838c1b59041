"""The bundled schemas are valid JSON Schema, and the two validators agree on every body."""

import copy
import json

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

from gemini_compat import proto_json, validation
from strategies import VALID, mutated_bodies


@pytest.mark.parametrize("path", sorted(validation.SCHEMA_DIR.glob("*.json")), ids=lambda p: p.name)
def test_schemas_are_valid_draft_2020_12(path):
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


@settings(max_examples=1500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(body=mutated_bodies())
def test_the_fast_validator_agrees_with_the_reference(body):
    kind = validation.GENERATE_CONTENT
    try:
        proto_json.read(body, kind.shape)
    except proto_json.DuplicateField:
        return
    reference = validation.reference_validator(kind.schema_name)
    assert kind.fast.is_valid(body) == reference.is_valid(body), json.dumps(body)[:2000]


def test_the_valid_fuzz_seed_is_valid():
    body = copy.deepcopy(VALID)
    assert validation.GENERATE_CONTENT.validate(body) is body


def test_where_the_validators_disagree_the_body_is_still_refused():
    # Python's "$" matches before a final newline, so jsonschema alone would let this name through.
    body = {"contents": [{"parts": [{"text": "hi"}]}], "tools": [{"functionDeclarations": [{"name": "f\n"}]}]}
    with pytest.raises(validation.InvalidArgument) as caught:
        validation.GENERATE_CONTENT.validate(body)
    assert caught.value.message.startswith("tools[0].functionDeclarations[0].name: ")
