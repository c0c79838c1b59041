"""Server-sent events: reading the upstream's, writing the client's.

Reading follows the SSE rules tolerant clients use (openai-python's decoder): lines end in CR, LF or
CRLF; a blank line ends an event; ``:`` lines are comments; several ``data:`` lines join with LF.
Beyond the rules, for upstreams seen in the wild: llama.cpp's legacy ``error:`` field, and a bare JSON
line with no field name, both read as data.
"""

from .json_wire import dumps


def read_events(blocks):
    """(event type, data) for each event in an iterable of byte blocks, as soon as the event is whole."""
    pending = None  # None until the first block: a UTF-8 byte order mark there is not data
    data = []
    event = "message"
    for block in blocks:
        pending = block.removeprefix(b"\xef\xbb\xbf") if pending is None else pending + block
        lines = pending.splitlines(keepends=True)
        pending = b""
        # Hold back an unfinished last line, and a lone CR that may be the first half of CRLF.
        if lines and (not lines[-1].endswith((b"\n", b"\r")) or lines[-1].endswith(b"\r")):
            pending = lines.pop()
        for line in lines:
            line = line.rstrip(b"\r\n")
            if not line:
                if any(data):  # an empty "data:" frame is a keep-alive, not an event
                    yield event, b"\n".join(data)
                data, event = [], "message"
                continue
            field, value = _field(line)
            if field == b"data":
                data.append(value)
            elif field == b"error":
                data.append(value)
                event = "error"
            elif field == b"event":
                event = value.decode("utf-8", "replace")
    line = (pending or b"").rstrip(b"\r\n")
    if line:
        field, value = _field(line)
        if field in (b"data", b"error"):
            data.append(value)
            event = "error" if field == b"error" else event
    if any(data):  # the stream ended without the blank line after its last event
        yield event, b"\n".join(data)


def _field(line):
    if line.startswith(b"{"):
        return b"data", line
    name, colon, value = line.partition(b":")
    if not colon or not name:  # a comment (":...") or a line that is not a field
        return b"", b""
    return name, value[1:] if value.startswith(b" ") else value


def sse_event(value):
    """One Gemini SSE event: exactly ``data: <json>`` and a blank line (Google's CRLF framing)."""
    return b"data: " + dumps(value) + b"\r\n\r\n"
