"""Thoughts an upstream writes into the answer's ``content`` as ``<think>…</think>``, split off.

vLLM without a reasoning parser, llama.cpp with ``--reasoning-format none`` (and ``deepseek-legacy``,
which also fills ``reasoning_content``) and many relays put a model's thoughts inside ``content``.
``ThinkSplitter`` is fed the content of one choice piece by piece and returns, for each piece and at
the end, ``(reasoning, answer)``:

    "<think>\\nSix times seven.</think>\\n\\n42"   ->  reasoning "Six times seven.", answer "42"
    "Six times seven.</think>\\n\\n42"             ->  the same (the template opened the block)
    "<think>\\n\\n</think>\\n\\n42"                  ->  reasoning "", answer "42"
    "42 is <think>x</think>"                     ->  reasoning "", answer unchanged

The rules:

- Only the block that starts the content is parsed (``<think>``, or ``<thinking>`` closed by
  ``</thinking>``); leading whitespace before it is ignored. Tags later in an answer stay text.
- A closing tag with no opening tag before it, while nothing of the answer has been released, makes
  the text before it reasoning: chat templates that open the block in the prompt send only
  ``</think>``.
- The whitespace after the opening tag and after the closing tag (the "\\n\\n" models write there) is
  neither reasoning nor answer.
- A block that never closes is reasoning to the end.
- Partial tags at piece boundaries (``<thi``) are held back until the next piece decides them. After
  that, reasoning and answer text leave as they arrive.

Whether undecided text at the start (``Okay, so…`` with no tag yet) is held until a closing tag
decides it is the ``preopened`` choice: with it, that text is held (at most ``limit`` characters:
a closing tag must end within them, past them what is held is released as answer text), so the
result does not depend on how the content was cut; without it (a stream's default: a plain
answer must stream), text that is no tag is released at the end of the piece it came in, and a
lone closing tag counts only if it arrives in that same piece. Leading whitespace is held either
way, and kept when the content turns out to have no think block.
"""

OPENINGS = {"<think>": "</think>", "<thinking>": "</thinking>"}
CLOSINGS = tuple(OPENINGS.values())
_TAGS = tuple(OPENINGS) + CLOSINGS
_LONGEST = max(len(tag) for tag in _TAGS)
DEFAULT_LIMIT = 64 * 1024

_START, _THINK, _AFTER, _ANSWER = range(4)


class ThinkSplitter:
    """Splits one choice's content, fed in order, into reasoning and answer text."""

    __slots__ = ("preopened", "lone_closing", "limit", "_state", "_pieces", "_size", "_visible", "_head", "_tail", "_close",
                 "_partial", "_leading")

    def __init__(self, preopened=False, limit=DEFAULT_LIMIT, lone_closing=True):
        self.preopened = preopened
        # Off when the upstream sends its reasoning in a field: a lone closing tag is then answer text.
        self.lone_closing = lone_closing
        self.limit = limit
        self._state = _START
        # At the start: the text held, its length, where its first visible character is (None while
        # there is only whitespace), its first visible characters, and its last ones (for a tag that
        # a piece completes). Held text never contains a whole tag: one decides it.
        self._pieces, self._size, self._visible, self._head, self._tail = [], 0, None, "", ""
        self._close = ""  # in a block: its closing tag,
        self._partial = ""  # what could begin it at the end of the last piece,
        self._leading = True  # and whether its reasoning is still all whitespace (which is dropped)

    def feed(self, piece):
        """(reasoning, answer) released by this piece of content."""
        if not piece:
            return "", ""
        if self._state == _ANSWER:
            return "", piece
        if self._state == _AFTER:
            return "", self._after(piece)
        if self._state == _THINK:
            return self._think(piece, final=False)
        return self._start(piece, final=False)

    def finish(self):
        """(reasoning, answer) still held when the content has ended."""
        if self._state == _START:
            return self._start("", final=True)
        if self._state == _THINK:
            return self._think("", final=True)
        return "", ""

    # --- states ---------------------------------------------------------------------------------

    def _start(self, piece, final):
        before = self._size
        self._pieces.append(piece)
        self._size += len(piece)
        if self._visible is None:
            visible = piece.lstrip()
            if visible:
                self._visible = self._size - len(visible)
        if self._visible is None:  # whitespace only, so far
            return self._release() if final or self._size >= self.limit else self._hold(piece)
        if len(self._head) < _LONGEST:
            self._head += piece[max(self._visible - before, 0):][:_LONGEST - len(self._head)]
        for opening, closing in OPENINGS.items():
            if self._head.startswith(opening):
                rest = self._text()[self._visible + len(opening):]
                self._state, self._close = _THINK, closing
                return self._think(rest, final)
        window, offset = self._tail + piece, before - len(self._tail)
        opening = _first(window, OPENINGS)
        closing = _first(window, CLOSINGS)
        lone = closing and (not opening or closing[0] < opening[0])  # a closing tag before any opening one
        if lone and self.lone_closing and offset + closing[0] + len(closing[1]) <= self.limit:
            text = self._text()
            end = offset + closing[0]
            self._state = _AFTER
            return text[self._visible:end].lstrip(), self._after(text[end + len(closing[1]):])
        if opening or closing or final or self._size >= self.limit:
            return self._release()
        if self.preopened or any(tag.startswith(self._head) for tag in _TAGS):
            return self._hold(piece)
        return self._release()

    def _hold(self, piece):
        self._tail = (self._tail + piece)[-(_LONGEST - 1):]
        return "", ""

    def _release(self):
        text = self._text()
        self._state = _ANSWER
        return "", text

    def _text(self):
        """The held text, which leaves the splitter's keeping."""
        text = "".join(self._pieces)
        self._pieces, self._size, self._head, self._tail = [], 0, "", ""
        return text

    def _think(self, piece, final):
        text = self._partial + piece
        position = text.find(self._close)
        if position >= 0:
            self._partial, self._state = "", _AFTER
            return self._reasoning(text[:position]), self._after(text[position + len(self._close):])
        keep = 0 if final else _partial_tag_length(text, self._close)
        self._partial = text[len(text) - keep:] if keep else ""
        return self._reasoning(text[:len(text) - keep]), ""

    def _reasoning(self, text):
        if self._leading:
            text = text.lstrip()
            self._leading = not text
        return text

    def _after(self, piece):
        text = piece.lstrip()
        if text:
            self._state = _ANSWER
        return text


def _first(text, tags):
    """(position, tag) of the first of ``tags`` in ``text``, or None."""
    found = [(position, tag) for position, tag in ((text.find(tag), tag) for tag in tags) if position >= 0]
    return min(found) if found else None


def _partial_tag_length(text, tag):
    """How many characters at the end of ``text`` could begin ``tag`` (a tag has one ``<``)."""
    start = text.rfind("<", max(len(text) - len(tag) + 1, 0))
    return len(text) - start if start >= 0 and tag.startswith(text[start:]) else 0


def split_think_tags(content, lone_closing=True):
    """(reasoning, answer) of a whole answer's content; ``lone_closing``: whether a lone ``</think>``
    in its first 64 KiB ends reasoning the template opened in the prompt (not when the upstream sent
    the reasoning in a field of its own)."""
    if not content.lstrip().startswith("<") and not (lone_closing and "</think" in content[:DEFAULT_LIMIT]):
        return "", content  # no block can start it, none ends in it: most answers, at C speed
    splitter = ThinkSplitter(preopened=True, lone_closing=lone_closing)
    reasoning, answer = splitter.feed(content)
    more_reasoning, more_answer = splitter.finish()
    return reasoning + more_reasoning, answer + more_answer
