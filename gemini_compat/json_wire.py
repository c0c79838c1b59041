"""JSON as it travels: strict both ways (no NaN or Infinity, which Python's json allows and no
JSON parser on the other side does), compact, one line, UTF-8."""

import json
import math


def loads(raw):
    """Parse JSON text; raises ValueError for NaN, Infinity and numbers too large for a float."""
    return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)


def dumps(value):
    """Compact one-line JSON, UTF-8 encoded."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except UnicodeEncodeError:  # a lone surrogate (an upstream's "\ud800"): keep it escaped
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value
