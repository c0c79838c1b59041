"""JSON as it travels: strict both ways (no NaN or Infinity, which Python's json allows and no
JSON parser on the other side does), compact, one line, UTF-8."""

import json
import math

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


def loads(raw):
    """Parse JSON text; raises ValueError for NaN, Infinity and numbers too large for a float."""
    return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)


# Valid raw inside JSON strings, but the Gemini CLI 0.61 and google-genai 2.x split stream lines on
# them ("Incomplete JSON segment at the end"): written escaped, they reach every client intact.
_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def dumps(value):
    r"""Compact one-line JSON, UTF-8 encoded, with U+2028, U+2029 and U+0085 escaped.

    >>> dumps({"text": "a\u2028b"})
    b'{"text":"a\\u2028b"}'
    """
    text = one_line(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate (an upstream's "\ud800"): keep it escaped
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def one_line(text):
    r"""JSON text with the line breaks JSON leaves raw escaped: one line for every reader
    (str.splitlines and JavaScript split on them too).

    >>> one_line('{"path":"/a b"}')
    '{"path":"/a\u2028b"}'
    """
    if not text.isascii():
        for char, escaped in _LINE_BREAKS.items():
            if char in text:
                text = text.replace(char, escaped)
    return text


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value
