"""The client's request body: read only once the caller is let in, never past MAX_REQUEST_BYTES or
CLIENT_BODY_TIMEOUT, and parsed as strict UTF-8 JSON within a budget of values.

An answer given before the body was read (no key, unknown path, too large...) goes out at once and
closes the connection: nothing of the body is read into memory, and a caller who keeps sending, or
goes quiet, holds no thread.
"""

import contextlib
import ctypes
import heapq
import itertools
import json
import re
import socket
import threading
import time

from werkzeug.exceptions import ClientDisconnected

from .config import BYTE_COST
from .errors import DeadlineExceeded, InvalidArgument, Unavailable
from .json_wire import loads

READ_SIZE = 256 * 1024
# Parsed JSON costs up to about 64 bytes of memory per value (`[{},{},...]`, 20 MiB of it, took
# 555 MB). Strings, commas and openings are counted before parsing; a Gemini request with a
# 50,000-row table in a function response still fits.
MAX_JSON_TOKENS = 500_000
PRECISE_COUNT_ABOVE = 50_000
# What a request is reckoned to cost in memory while it is served, for the budget: config.BYTE_COST
# per byte, plus about 64 bytes per parsed JSON value.
TOKEN_COST = 64
# Bodies up to this size (with few JSON values) are not counted in the budget, so that a chat turn
# never waits behind large requests; sixteen threads' worth of them is part of the sizing rule's
# fixed 160 MiB.
SMALL_BODY_BYTES = 1024 * 1024
# mallopt(M_MMAP_THRESHOLD, ...): blocks this large and larger are mapped, and unmapped when freed.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024
# After an answer given without reading the body: how long the client may go on sending (its
# bytes are thrown away) so that it sees the answer rather than a reset connection.
LINGER_SECONDS = 1.0
LINGER_IDLE_SECONDS = 0.2
# In the WSGI environ: that the body was read to its end, and the memory reserved for it.
BODY_READ = "gemini_compat.body_read"
RESERVED = "gemini_compat.reserved"

# A string (one that never closes runs to the end in one match: retrying it at every later quote
# was quadratic, 200 KB took minutes), or a comma or an opening.
_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)|[,{\[]')
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def check_content_type(headers):
    """POST bodies are JSON: ``application/json``, a ``+json`` type, or no type at all. Anything
    else is refused, so that a web page cannot make a browser send a CORS-free "simple" request
    (text/plain, a form) that spends the key."""
    given = headers.get("Content-Type", "")
    media_type = given.partition(";")[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        shown = given if len(given) <= 100 else given[:100] + "..."
        raise InvalidArgument(f"Content-Type {shown!r} is not supported: send the body as application/json.")


def has_body(request):
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def read_json(request, limit, timeout, budget):
    """The parsed JSON body, read within ``limit`` bytes and ``timeout`` seconds, once ``budget``
    has room for the memory it will take (released by ``release`` when the request is answered).

    >>> read_json(<POST with b'{"contents": []}'>, limit=20 << 20, timeout=60, budget=...)
    {'contents': []}
    """
    if (request.content_length or 0) > limit:
        raise InvalidArgument(f"Request payload size exceeds the limit: {limit} bytes.")
    deadline = time.monotonic() + timeout
    if (request.content_length or 0) > SMALL_BODY_BYTES:
        reserve(request.environ, budget, BYTE_COST * request.content_length, deadline)
    raw = _read(request, limit, deadline, timeout, budget)
    cost = json_cost(raw)
    if cost > BYTE_COST * SMALL_BODY_BYTES:
        reserve(request.environ, budget, cost, deadline)
    text = utf8_text(raw)
    del raw  # the parse holds the text and what it builds, not the bytes too
    return parse_json(text)


def utf8_text(raw):
    """Strict UTF-8, unlike ``json.loads(bytes)``, which lets raw surrogates (ED A0 80) through."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument("Invalid JSON payload received. The body is not valid UTF-8.") from None


def parse_json(text):
    """A JSON value, refused with the 400 Google gives when it is not one.

    >>> parse_json('{"a": [1, 2]}')
    {'a': [1, 2]}
    >>> parse_json('"\\ud800"')
    InvalidArgument: Invalid JSON payload received. A string holds a lone UTF-16 surrogate escape.
    """
    if not text.strip():
        raise InvalidArgument("Invalid JSON payload received. The request body is empty.")
    try:
        value = loads(text)
    except ValueError as error:
        raise InvalidArgument(f"Invalid JSON payload received. {getattr(error, 'msg', error)}.") from None
    except RecursionError:
        raise InvalidArgument("Invalid JSON payload received. The body is nested too deeply.") from None
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise InvalidArgument("Invalid JSON payload received. A string holds a lone UTF-16 surrogate escape.")
    return value


def _has_lone_surrogate(value):
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


def json_cost(raw):
    """The memory JSON ``raw`` is reckoned to take once parsed and translated: BYTE_COST per byte,
    TOKEN_COST per value (count_tokens)."""
    return BYTE_COST * len(raw) + TOKEN_COST * count_tokens(raw)


def count_tokens(raw):
    """About how many strings, commas and openings ``raw`` holds (each becomes an object of its
    own when parsed); more than MAX_JSON_TOKENS is refused. Counted at C speed; one by one outside
    strings only when that count is high (in valid JSON a comma or colon separates any two
    strings, so the walk ends after about MAX_JSON_TOKENS steps).

    >>> count_tokens(b'{"text": "a, b, c"}')  # quick count: 2 quotes pairs, 1 brace, 2 commas
    5
    """
    count = raw.count(b",") + raw.count(b"{") + raw.count(b"[") + raw.count(b'"') // 2
    if count <= PRECISE_COUNT_ABOVE:
        return count
    count = 0
    for count, _ in enumerate(_JSON_TOKEN.finditer(raw), 1):
        if count > MAX_JSON_TOKENS:
            raise InvalidArgument(
                f"Invalid JSON payload received. The body holds more than {MAX_JSON_TOKENS} JSON values."
            )
    return count


def _read(request, limit, deadline, timeout, budget):
    """The body's bytes, at most ``limit`` of them, by ``deadline`` (``timeout`` seconds in all). A
    body of unknown length (chunked) reserves for the largest one in ``budget`` once it outgrows a
    small one."""
    chunks, size = [], 0
    with contextlib.closing(body_blocks(request, limit + 1, deadline, timeout)) as blocks:
        for chunk in blocks:
            chunks.append(chunk)
            size += len(chunk)
            if size > SMALL_BODY_BYTES and RESERVED not in request.environ:
                reserve(request.environ, budget, BYTE_COST * limit, deadline)
    if size > limit:
        raise InvalidArgument(f"Request payload size exceeds the limit: {limit} bytes.")
    request.environ[BODY_READ] = True
    return b"".join(chunks)


def body_blocks(request, length, deadline, timeout):
    """The body's first ``length`` bytes (fewer if it is shorter), in blocks of at most READ_SIZE,
    each read by ``deadline`` (``timeout`` seconds from the start, for the message). Close it when
    done: that ends the deadline's watch."""
    sock = request.environ.get("gunicorn.socket")
    watch = DEADLINES.watch(sock, deadline) if sock is not None else None
    received = 0
    try:
        stream = request.stream
        while received < length:
            block = stream.read(min(READ_SIZE, length - received))
            if not block or time.monotonic() > deadline:
                break
            received += len(block)
            yield block
    except (OSError, ValueError, ClientDisconnected):
        if time.monotonic() <= deadline:
            raise InvalidArgument("The request body ended before it was complete.") from None
    finally:
        if watch is not None:
            DEADLINES.cancel(watch)
    if time.monotonic() > deadline:
        raise DeadlineExceeded(f"The request body did not arrive within CLIENT_BODY_TIMEOUT ({timeout:g} s).")


class MemoryBudget:
    """The memory all requests may take at once (REQUEST_MEMORY_BYTES). A request waits for room
    before its body is read, until its body deadline; then 503. Without it, sixteen 20 MiB
    requests at once take 1.6 GB."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.used = 0
        self._condition = threading.Condition()

    def acquire(self, amount, deadline):
        if amount > self.capacity:
            raise InvalidArgument(
                f"This request needs about {amount} bytes of memory, more than REQUEST_MEMORY_BYTES ({self.capacity})."
            )
        with self._condition:
            while self.used + amount > self.capacity:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Unavailable("The instance is busy with other large requests. Retry shortly.",
                                      headers={"Retry-After": "1"})
                self._condition.wait(remaining)
            self.used += amount

    def release(self, amount):
        with self._condition:
            self.used -= amount
            self._condition.notify_all()


def give_freed_memory_back():
    """Make the C allocator return large freed blocks to the system at once. glibc otherwise
    raises its mmap threshold to the largest block freed (up to 32 MiB) and keeps later ones in
    per-thread heaps: sixteen threads that had each translated a 20 MiB request held 556 MB, with
    a fixed threshold 149 MB. Elsewhere (no glibc) it does nothing."""
    try:
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        pass


def reserve(environ, budget, amount, deadline):
    """Hold ``amount`` of ``budget`` for this request, in all (not in addition). It waits for room
    only while it holds nothing: two requests that each held part and waited for more would wait
    for each other until their deadlines."""
    held = environ.pop(RESERVED, None)
    if held:
        if held[1] >= amount:
            environ[RESERVED] = held
            return
        budget.release(held[1])
    budget.acquire(amount, deadline)
    environ[RESERVED] = (budget, amount)


def reserve_more(environ, budget, amount, deadline):
    """Hold ``amount`` of ``budget`` for this request on top of what it holds already (its body's):
    for what it reads besides its body, a cache's record or its stored files."""
    held = environ.get(RESERVED, (None, 0))[1]
    reserve(environ, budget, held + amount, deadline)


def release(environ):
    """Give back the memory reserved for this request's body (once it is answered)."""
    held = environ.pop(RESERVED, None)
    if held:
        held[0].release(held[1])


class Deadlines:
    """Ends blocked body reads at their deadline: one thread, started with the first read, shuts
    down the read side of the socket of every read still running at its deadline, which wakes
    the read with an end of file. (A socket timeout alone is per recv: a client sending one byte
    just before each would never time out.)"""

    def __init__(self):
        self._condition = threading.Condition()
        self._heap = []  # (deadline, number), cancelled ones among them until they are dropped
        self._sockets = {}  # number -> socket, of the reads still running
        self._numbers = itertools.count()
        self._thread = None

    def watch(self, sock, deadline):
        number = next(self._numbers)
        with self._condition:
            heapq.heappush(self._heap, (deadline, number))
            self._sockets[number] = sock
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="body-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][1] == number:
                self._condition.notify()
        return number

    def cancel(self, number):
        with self._condition:
            self._sockets.pop(number, None)  # gone already if its deadline passed
            if len(self._heap) > 2 * len(self._sockets) + 64:  # mostly finished reads: drop them now
                self._heap = [entry for entry in self._heap if entry[1] in self._sockets]
                heapq.heapify(self._heap)

    def _run(self):
        with self._condition:
            while True:
                while self._heap and self._heap[0][1] not in self._sockets:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._condition.wait()
                    continue
                deadline, number = self._heap[0]
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._condition.wait(remaining)
                    continue
                heapq.heappop(self._heap)
                try:
                    self._sockets.pop(number).shutdown(socket.SHUT_RD)
                except OSError:
                    pass


DEADLINES = Deadlines()


def answered_unread(response, environ):
    """``response`` for a request whose body was not read, sent without reading the body, and the
    connection closed after it.

    Under gunicorn the answer is written to the socket here, with ``Connection: close`` (gunicorn
    drops an application's Connection header and would announce keep-alive; a client that then
    sent its next request on this connection would lose it), and the response handed back to the
    server is empty and streamed (functions-framework's after_request hook reads the whole body
    of any non-streamed answer). Other servers (the test client) get the response as it is."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return response
    head = [f"HTTP/1.1 {response.status}", *(f"{name}: {value}" for name, value in response.headers.items()),
            "Connection: close", "", ""]
    response.response = _send_and_close(sock, "\r\n".join(head).encode("latin-1") + response.get_data())
    return response


def _send_and_close(sock, answer):
    try:
        sock.sendall(answer)
    except OSError:
        pass
    close_after_answer(sock)
    yield from ()  # nothing for the server to send: it finds the socket closed and lets go of it


def close_after_answer(sock):
    """Half-close after the answer, throw away what the client still sends for a moment (closing
    with unread bytes would reset the connection, and the client could lose the answer), then
    shut the read side too, so that the server closes the connection instead of reading on."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(LINGER_IDLE_SECONDS)
        deadline = time.monotonic() + LINGER_SECONDS
        while time.monotonic() < deadline and sock.recv(READ_SIZE):
            pass
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
