"""Hypothesis strategies for Gemini request bodies: a valid request, and random edits of it."""

import copy

from hypothesis import strategies as st

VALID = {
    "contents": [
        {"role": "user", "parts": [{"text": "hi"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]},
        {"role": "model", "parts": [{"text": "let me look"}, {"functionCall": {"id": "c1", "name": "f", "args": {"a": 1}}}]},
        {"role": "user", "parts": [{"functionResponse": {"id": "c1", "name": "f", "response": {"ok": True}}}]},
    ],
    "systemInstruction": {"parts": [{"text": "be brief"}]},
    "generationConfig": {"temperature": 0.5, "topP": 0.9, "topK": 3, "maxOutputTokens": 100, "stopSequences": ["x"],
                         "responseMimeType": "application/json",
                         "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
                         "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 512}},
    "tools": [{"functionDeclarations": [{"name": "f", "description": "d", "parameters": {
        "type": "OBJECT", "properties": {"a": {"type": "INTEGER", "nullable": True}}, "required": ["a"]}}]}],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def locations(value, path=()):
    """Every (container path, key) in a JSON document."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield path, key
            yield from locations(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield path, index
            yield from locations(child, path + (index,))


def container_at(value, path):
    """The container at ``path`` (keys and indexes) in a JSON document."""
    for step in path:
        value = value[step]
    return value


@st.composite
def mutated_bodies(draw):
    """The valid request with a few random edits: replace, delete, add a key, rename to snake_case."""
    body = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path, key = draw(st.sampled_from(list(locations(body))))
        container = container_at(body, path)
        action = draw(st.sampled_from(["replace", "delete", "add", "snake"]))
        if action == "replace":
            container[key] = draw(json_values)
        elif action == "delete":
            del container[key]
        elif action == "add" and isinstance(container, dict):
            container[draw(st.text(max_size=15))] = draw(json_values)
        elif action == "snake" and isinstance(container, dict) and isinstance(key, str):
            snake = "".join("_" + c.lower() if c.isupper() else c for c in key)
            container[snake] = container.pop(key)
    return body
