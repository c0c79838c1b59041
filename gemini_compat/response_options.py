"""What the request translation tells the response translation about a request.

Both sides import this module, so neither imports the other.
"""

import dataclasses

# text/x.enum answers are constrained through a one-field object (most servers need an object root)
# and unwrapped on the way back: {"value": "positive"} -> "positive".
ENUM_FIELD = "value"


@dataclasses.dataclass(frozen=True)
class ResponseOptions:
    """What the response translation needs to know about the request."""

    model: str
    include_thoughts: bool = False
    enum_answer: bool = False
