"""The upstream's server-sent events, read (``streaming`` writes the client's).

Reading follows the SSE rules tolerant clients use (openai-python's decoder): lines end in CR, LF or
CRLF; a blank line ends an event; ``:`` lines are comments; several ``data:`` lines join with LF.
Beyond the rules, for upstreams seen in the wild: llama.cpp's legacy ``error:`` field, and a bare JSON
line with no field name, both read as data.
"""

from .errors import UpstreamTooLarge


def read_events(blocks, limit):
    """(event type, data) for each event in an iterable of byte blocks, as soon as the event is whole.

    Linear in the bytes read however they are split, and bounded: a line or an event's data longer
    than ``limit`` bytes raises ``UpstreamTooLarge`` (an upstream whose ``data:`` line never ends
    grew memory by 10 GB in 30 s, and re-joining it on every block was quadratic)."""
    whole_lines = _WholeLines(limit)
    # The event's data lines joined with LF, how many, and the bytes they took as received.
    data, lines, size, event = bytearray(), 0, 0, "message"
    for block in blocks:
        for line in whole_lines.of(block).splitlines():
            if not line:
                if lines and len(data) >= lines:  # not only empty "data:" lines (a keep-alive)
                    yield event, bytes(data)
                data, lines, size, event = bytearray(), 0, 0, "message"
                continue
            field, value = _field(line)
            if field == b"data" or field == b"error":
                if lines:
                    data += b"\n"
                data += value
                lines += 1
                size += len(line) + 1  # as received: a stream of "data: x" lines reaches the cap 4 times sooner
                if size > limit:
                    raise UpstreamTooLarge(limit, "An upstream stream event")
                if field == b"error":
                    event = "error"
            elif field == b"event":
                event = value.decode("utf-8", "replace")
    if whole_lines.held:  # the stream ended in the middle of a line
        field, value = _field(b"".join(whole_lines.held))
        if field in (b"data", b"error"):
            data += (b"\n" if lines else b"") + value
            lines += 1
            event = "error" if field == b"error" else event
    if lines and len(data) >= lines:  # the stream ended without the blank line after its last event
        yield event, bytes(data)


class _WholeLines:
    """The whole lines of byte blocks however they are split: ``b"a\\nb"``, ``b"c\\r"``, ``b"\\nd"`` ->
    ``b"a\\n"``, ``b"bc\\r"``, ``b""`` (the LF completes that CRLF), with ``b"d"`` held at the end."""

    def __init__(self, limit):
        self.limit = limit
        self.held, self.held_size = [], 0  # the start of an unfinished line, joined once when it ends
        self.after_cr = False  # the last block ended in CR: a LF opening the next one completes that CRLF
        self.first = True

    def of(self, block):
        """The lines ``block`` completes, from the held start of the first; b"" if none."""
        if self.first:  # a UTF-8 byte order mark at the very start is not data
            block, self.first = block.removeprefix(b"\xef\xbb\xbf"), False
        if not block:
            return b""
        if self.after_cr and block.startswith(b"\n"):
            block = block[1:]
        end = max(block.rfind(b"\n"), block.rfind(b"\r")) + 1
        self.after_cr = end == len(block) and block.endswith(b"\r")
        if not end:
            self.held.append(block)
            self.held_size += len(block)
            if self.held_size > self.limit:
                raise UpstreamTooLarge(self.limit, "An upstream stream line")
            return b""
        text = block if end == len(block) else block[:end]
        if self.held:
            text = b"".join(self.held) + text
        self.held, self.held_size = ([block[end:]], len(block) - end) if end < len(block) else ([], 0)
        return text


def _field(line):
    if line.startswith(b"{"):
        return b"data", line
    name, colon, value = line.partition(b":")
    if not colon or not name:  # a comment (":...") or a line that is not a field
        return b"", b""
    return name, value[1:] if value.startswith(b" ") else value

