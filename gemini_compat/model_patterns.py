"""Rules keyed by model name or pattern (MODEL_ALIASES, THINKING_RULES): the first that matches wins."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class ModelRule:
    """A model name, or a pattern where ``*`` stands for any characters (``gemini-*``), and what it
    leads to: an upstream model ID (an alias), or a thinking dialect."""

    name: str
    target: str

    @property
    def is_pattern(self):
        return "*" in self.name

    def matches(self, model):
        """Whether ``model`` is this name, or fits this pattern: ``gemini-*-lite`` matches
        ``gemini-3.5-flash-lite``. Linear in the model's length (a regex with several ``.*`` can
        backtrack for seconds on a long model ID from a request path)."""
        if not self.is_pattern:
            return model == self.name
        first, *middle, last = self.name.split("*")
        if len(model) < len(first) + len(last) or not (model.startswith(first) and model.endswith(last)):
            return False
        position, end = len(first), len(model) - len(last)
        for piece in middle:  # each piece at its leftmost place leaves the most room for the rest
            position = model.find(piece, position, end)
            if position < 0:
                return False
            position += len(piece)
        return True


def first_match(rules, model, default):
    """The target of the first rule that matches ``model``, or ``default``."""
    return next((rule.target for rule in rules if rule.matches(model)), default)
