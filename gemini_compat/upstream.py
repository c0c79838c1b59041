"""The OpenAI-compatible upstream, and the only module that talks to it: one connection pool,
requests, reading whole answers, error bodies and event streams, upstream failures as Gemini
errors, and retries.

Nothing an upstream sends can grow memory without bound or, before a stream begins, hold a thread
past UPSTREAM_TIMEOUT: answers, stream lines and events stop at MAX_UPSTREAM_RESPONSE_BYTES (after
decompression), error bodies at 64 KiB, and upstream text passes ``redacted`` before it reaches the
client or the log.

urllib3 (the transport under requests) is used directly: requests' session machinery costs about
0.5 ms per call, half of our whole budget (see the README's benchmark).
"""

import contextlib
import email.utils
import http.client
import io
import json
import math
import os
import random
import re
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import urllib3

from .config import Settings
from .errors import (
    GeminiError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamTooLarge,
    UpstreamUnavailable,
    api_key_invalid,
    status_for,
)
from .json_wire import dumps, loads
from .sse import read_events

# An error body is read only this far (after decompression): enough for any message.
ERROR_BODY_LIMIT = 64 * 1024
READ_SIZE = 64 * 1024
DRAIN_SECONDS = 0.25
DRAIN_BYTES = 64 * 1024
BACKOFF_BASE = 0.25  # seconds; attempt n waits a random time up to BACKOFF_BASE * 2**n
BACKOFF_CAP = 8.0
# A Retry-After longer than this is passed on to the client rather than waited out here.
RETRY_AFTER_CAP = 10.0
# Upstream answers worth retrying: rate limited, or a gateway or server briefly unavailable.
RETRYABLE_STATUS = (429, 502, 503)
MAX_RETRY_AFTER = 86400.0  # a day: longer is not a hint anyone follows
_SECONDS = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?\Z")
_TAG = re.compile(r"<[^<>]*>")
MESSAGE_LIMIT = 1000  # characters of an upstream error message passed on
REDACTED = "[redacted]"
# Shorter keys are placeholders for key-less local servers: redacting "x" would mangle every message.
MIN_SECRET = 8
T = TypeVar("T")  # what an attempt returns, returned by with_retries and read_stream
# zlib window bits by Content-Encoding. We ask for identity; some servers compress anyway.
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_GZIP_MAGIC = b"\x1f\x8b"


class Upstream:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_url = settings.upstream_base_url
        self.timeout = settings.upstream_timeout
        self.retries = settings.upstream_retries
        self.pool = connection_pool(settings)

    def with_retries(self, attempt: Callable[[], T], deadline: float | None = None) -> T:
        """``attempt()``, again after a backoff while it fails with a retryable error, within the
        retry budget and ``deadline`` (monotonic; by default UPSTREAM_TIMEOUT from now). Callers make
        sure nothing reached the client yet."""
        deadline = deadline or time.monotonic() + self.timeout
        for number in range(self.retries + 1):
            try:
                return attempt()
            except GeminiError as error:
                delay = retry_delay(error, number) if error.retryable and number < self.retries else None
                if delay is None or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)

    def post_json(self, path: str, payload: dict, key: str) -> object:
        """POST ``payload`` to ``path`` under the base URL: the parsed JSON answer, retried, and
        whole (retries included) within UPSTREAM_TIMEOUT."""
        return self._json("POST", path, key, payload)

    def get_json(self, path: str, key: str) -> object:
        """GET ``path`` under the base URL: the parsed JSON answer, as ``post_json``."""
        return self._json("GET", path, key)

    def open_stream(self, payload: dict, key: str) -> "EventStream":
        """POST a streaming chat request to /chat/completions: its ``EventStream``, status checked,
        body unread. Not retried: the caller retries until its first chunk (``with_retries``).
        Its head (or error body) must arrive within UPSTREAM_TIMEOUT; then each read may take that long."""
        deadline = time.monotonic() + self.timeout
        with reading_until(deadline):
            response = self._send("POST", "/chat/completions", key, payload, deadline, stream=True)
        return EventStream(response, key, self.settings)

    def read_stream(self, payload: dict, key: str, consume: Callable[["EventStream"], T]) -> T:
        """``consume(stream)`` of a streaming chat request that is wanted whole: read within
        UPSTREAM_TIMEOUT in all, as an answer asked for whole is, and retried."""
        deadline = time.monotonic() + self.timeout

        def attempt():
            with reading_until(deadline):
                stream = EventStream(self._send("POST", "/chat/completions", key, payload, deadline, stream=True),
                                     key, self.settings)
                try:
                    return consume(stream)
                finally:
                    stream.close()

        return self.with_retries(attempt, deadline)

    def _json(self, method, path, key, payload=None):
        # A total deadline, not one per read: one byte every 0.5 s held a request 62 s with UPSTREAM_TIMEOUT=3.
        deadline = time.monotonic() + self.timeout

        def attempt():
            with reading_until(deadline):
                return Body(self._send(method, path, key, payload, deadline), key, self.settings).json()

        return self.with_retries(attempt, deadline)

    def _send(self, method, path, key, payload, deadline, stream=False):
        """The upstream's answer to one request, status 200, body unread; close it with ``close``.
        Connecting gets only the time left before ``deadline``; reading, see ``reading_until``."""
        headers = {"Authorization": f"Bearer {key}", "Accept-Encoding": "identity"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        if stream:
            headers["Accept"] = "text/event-stream"
        left = time_left(deadline, self.timeout)
        try:
            response = self.pool.request(method, self.base_url + path, headers=headers,
                                         body=None if payload is None else dumps(payload),
                                         preload_content=False, decode_content=False, redirect=False,
                                         timeout=urllib3.Timeout(connect=left, read=self.timeout))
        except urllib3.exceptions.HTTPError as error:
            raise transport_error(error, self.timeout) from None
        if response.status == 200:
            return response
        try:
            raise self._status_error(response, key)
        finally:
            close(response)

    def _status_error(self, response, key):
        status, reason = response.status, shown(response.reason or "", key, 100)
        location = response.headers.get("Location") if 300 <= status < 400 else None
        if location:  # redirect=False: never followed (with our key, to wherever it points)
            return UpstreamError(f"The upstream answered {status} {reason}, a redirect to {shown(location, key, 300)}: "
                                 "check UPSTREAM_BASE_URL (redirects are not followed).")
        if not 400 <= status <= 599:  # relayed, a 201 was a 2xx with an error body, a 600 an invalid status
            return UpstreamError(f"The upstream answered an unexpected status {status} {reason}".rstrip() + ".")
        try:
            raw = bytes(Body(response, key, self.settings).read(ERROR_BODY_LIMIT)[:ERROR_BODY_LIMIT])
        except GeminiError:
            raw = b""
        try:
            payload = loads(raw)
        except (ValueError, RecursionError):
            payload = excerpt(raw, key) or reason
        return upstream_error(status, payload, response.headers, key, self.settings.team_mode)


class EventStream:
    """A streamed chat answer: iterating gives its chunks, parsed, as they arrive.

    The upstream's stream protocol ends here. ``[DONE]`` ends the iteration with ``done`` set (without
    it, the upstream closed the stream); an error event, ``error:`` line or ``{"error": ...}`` chunk
    raises that error. ``whole`` is set when the server ignored ``"stream": true`` and answered one
    JSON completion, which is then the only item. ``close()`` it in the end: a stream read to its
    end gives its connection back to the pool (one upstream connection for 55 streams, not 55)."""

    def __init__(self, response, key, settings):
        self.response, self.key = response, key
        self.body = Body(response, key, settings)
        self.limit = settings.max_upstream_response_bytes
        self.whole = response.headers.get("Content-Type", "").startswith("application/json")
        self.done = False
        self._ended = False  # read to its end: the connection can serve the next request
        self._model = self._shown_model = None

    def __iter__(self):
        if self.whole:  # read whole and closed: the connection is back in the pool already
            yield self.body.json()
            return
        for event, data in read_events(self.body.pieces(), self.limit):
            if data.strip() == b"[DONE]":
                self.done = self._ended = True
                return
            yield self._chunk(event, data)
        self._ended = True

    def _chunk(self, event, data):
        try:
            chunk = loads(data)
        except (ValueError, RecursionError):
            text = data[:ERROR_BODY_LIMIT].decode("utf-8", "replace")
            raise UpstreamError(f"The upstream sent an invalid stream event: {shown(text, self.key, 200)}") from None
        if event == "error" or not isinstance(chunk, dict) or chunk.get("error"):
            raise upstream_error(None, chunk, key=self.key, team_mode=self.body.settings.team_mode)
        model = chunk.get("model")
        if model is not None:  # it becomes modelVersion; redacted once per distinct value, not per chunk
            if model != self._model:
                self._model, self._shown_model = model, redacted(model, self.key) if isinstance(model, str) else model
            chunk["model"] = self._shown_model
        return chunk

    def close(self):
        close(self.response, reuse=self._ended)


def connection_pool(settings):
    """One pool for the process, sized to the server's threads; environment proxies and CA bundles
    are read here, once, not on every request."""
    options = {
        "maxsize": settings.threads,
        "retries": False,  # retrying is ours (with_retries), and only before the first byte
        "timeout": urllib3.Timeout(connect=settings.upstream_timeout, read=settings.upstream_timeout),
    }
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if ca_bundle:
        options["ca_certs"] = ca_bundle
    parts = urlsplit(settings.upstream_base_url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        manager = urllib3.ProxyManager(proxy, **options)
    else:
        manager = urllib3.PoolManager(**options)
    manager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}
    return manager


# --- reading within a deadline -------------------------------------------------------------------

class _Deadline(threading.local):
    at = None  # monotonic time by which what this thread reads from the upstream must have arrived


_deadline = _Deadline()


@contextlib.contextmanager
def reading_until(deadline):
    """Within the block, every read from the upstream in this thread waits only for the time left
    before ``deadline``, then fails as a socket timeout. Per-read timeouts alone let an upstream
    sending one byte every 0.5 s hold a request for minutes, in its status line and headers too."""
    _deadline.at = deadline
    try:
        yield
    finally:
        _deadline.at = None


class _SocketReader(io.RawIOBase):
    """What http.client reads an answer from (status line, headers, chunk sizes, body)."""

    def __init__(self, sock):
        self.sock = sock
        self.file = sock.makefile("rb", buffering=0)  # counted: the socket stays open while we read
        self.per_read = sock.gettimeout()  # UPSTREAM_TIMEOUT: urllib3 set it for this answer
        self.bounded = False  # the timeout was last set from a deadline

    def readable(self):
        return True

    def readinto(self, buffer):
        if _deadline.at is not None:
            left = _deadline.at - time.monotonic()
            if left <= 0:
                raise TimeoutError("the upstream answer's deadline has passed")
            self.sock.settimeout(left)
            self.bounded = True
        elif self.bounded:  # a stream's head has arrived: from now on, per-read timeouts
            self.sock.settimeout(self.per_read)
            self.bounded = False
        return self.file.readinto(buffer)

    def close(self):
        self.file.close()
        super().close()


class _Response(http.client.HTTPResponse):
    def __init__(self, sock, *args, **kwargs):
        super().__init__(sock, *args, **kwargs)
        original, self.fp = self.fp, io.BufferedReader(_SocketReader(sock))
        original.close()


class _Connection(urllib3.connection.HTTPConnection):
    response_class = _Response


class _TLSConnection(urllib3.connection.HTTPSConnection):
    response_class = _Response


class _Pool(urllib3.HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


def close(response, reuse=False):
    """Give the connection back to the pool, or close it if the answer was not read to its end.
    ``reuse``: the answer is complete (a stream after [DONE]); read what little is left of the
    body (the chunked encoding's last chunk), so that the connection can serve the next request
    instead of costing a new connection (a TLS handshake) per stream. At most DRAIN_BYTES within
    DRAIN_SECONDS: an upstream that went on sending after [DONE] grew the worker by 600 MB."""
    if not (reuse and _drained(response)) and not response.isclosed():
        response.close()
    response.release_conn()


def _drained(response):
    try:
        with reading_until(time.monotonic() + DRAIN_SECONDS):
            left = DRAIN_BYTES
            while left > 0 and not response.isclosed():
                block = response.read1(min(READ_SIZE, left), decode_content=False)
                if not block:
                    break
                left -= len(block)
    except Exception:  # noqa: BLE001 - whatever went wrong, the connection is not reused
        return False
    return response.isclosed()


# --- reading, bounded ----------------------------------------------------------------------------

class Body:
    """The body of one upstream answer, read bounded. Decompressed when the upstream compressed it
    although we ask for identity, in pieces of at most READ_SIZE bytes: a 1 MB gzip answer inflating
    to 1 GiB grew the worker by 3 GB when decoded whole. Transport failures are Gemini errors."""

    def __init__(self, response, key, settings):
        self.response, self.key, self.settings = response, key, settings

    def pieces(self):
        encoding = self.response.headers.get("Content-Encoding", "").strip().lower()
        if encoding in ("", "identity"):
            return self._blocks()
        if encoding not in _WBITS:
            raise UpstreamError(f"The upstream answered in Content-Encoding {shown(encoding, self.key, 100)}, "
                                "which the function cannot decode (it asks for identity).")
        return _inflated(self._blocks(), _WBITS[encoding], self.settings.max_upstream_response_bytes)

    def read(self, limit):
        """The body; reading stops once it is longer than ``limit`` bytes."""
        body = bytearray()
        for piece in self.pieces():
            body += piece
            if len(body) > limit:
                break
        return body

    def json(self):
        """A whole 200 answer's JSON, at most MAX_UPSTREAM_RESPONSE_BYTES (a 300 MB answer grew the
        worker by 900 MB); the response is closed. An ``{"error": ...}`` in it is that error: some
        servers answer errors with a 200. Its ``model`` (our modelVersion) is redacted: an upstream
        may echo the key there."""
        limit = self.settings.max_upstream_response_bytes
        try:
            raw = self.read(limit)
        finally:
            close(self.response)
        if len(raw) > limit:
            raise UpstreamTooLarge(limit)
        try:
            answer = loads(raw)
        except (ValueError, RecursionError):
            raise UpstreamError(f"The upstream answer is not valid JSON: {excerpt(raw, self.key)}") from None
        if isinstance(answer, dict):
            if answer.get("error"):
                raise upstream_error(None, answer, key=self.key, team_mode=self.settings.team_mode)
            if isinstance(answer.get("model"), str):
                answer["model"] = redacted(answer["model"], self.key)
        return answer

    def _blocks(self):
        try:
            while True:
                block = self.response.read1(READ_SIZE, decode_content=False)
                if not block:
                    return
                yield block
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise transport_error(error, self.settings.upstream_timeout) from None


def _inflated(blocks, wbits, limit):
    """The decompressed pieces of ``blocks``, each at most READ_SIZE bytes. A gzip answer may be
    several members one after the other; anything else after the end of the compressed data is
    refused (zlib keeps it undecoded, and it piled up without limit), and the compressed bytes
    count against ``limit`` too."""
    decoder, received, carry = zlib.decompressobj(wbits), 0, b""
    try:
        for block in blocks:
            received += len(block)
            if received > limit:
                raise UpstreamTooLarge(limit)
            block, carry = carry + block, b""
            while block or not decoder.eof:
                if decoder.eof:  # the next gzip member, or bytes that do not belong
                    if len(block) < len(_GZIP_MAGIC) and _GZIP_MAGIC.startswith(block) and wbits == _WBITS["gzip"]:
                        carry = block  # the magic split across two blocks
                        break
                    if wbits != _WBITS["gzip"] or not block.startswith(_GZIP_MAGIC):
                        raise UpstreamError("The upstream sent bytes after the end of its compressed answer.")
                    decoder = zlib.decompressobj(wbits)
                piece = decoder.decompress(block, READ_SIZE)
                block = decoder.unused_data if decoder.eof else decoder.unconsumed_tail
                if piece:
                    yield piece
                if not block and (decoder.eof or len(piece) < READ_SIZE):  # else output may be pending
                    break
    except zlib.error:
        raise UpstreamError("The upstream's compressed answer is corrupt.") from None


def time_left(deadline, timeout):
    left = deadline - time.monotonic()
    if left <= 0:
        raise timed_out(timeout)
    return left


# --- failures as Gemini errors -------------------------------------------------------------------

def timed_out(timeout):
    return UpstreamTimeout(f"The upstream did not answer within UPSTREAM_TIMEOUT ({timeout:g} s).")


def transport_error(error, timeout):
    """The Gemini error for a failure to talk to the upstream."""
    # NewConnectionError (refused, no route, no DNS name) is a subclass of ConnectTimeoutError.
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return UpstreamUnavailable("The upstream is unreachable.", retryable=True)
    if isinstance(error, urllib3.exceptions.ConnectTimeoutError):
        return UpstreamUnavailable("The upstream did not accept a connection in time.", retryable=True)
    if isinstance(error, (urllib3.exceptions.TimeoutError, TimeoutError)):
        return timed_out(timeout)
    if isinstance(error, urllib3.exceptions.ProtocolError) and error.args[:1] == ("Connection aborted.",):
        # Closed before answering, typically a pooled keep-alive connection the server had dropped.
        return UpstreamError("The upstream closed the connection before answering.", retryable=True)
    return UpstreamError("The upstream connection broke off before its answer was complete.")


def upstream_error(status, payload, headers=None, key="", team_mode=False):
    """A GeminiError for an upstream error, whatever shape its body has (see the quirks reference:
    nested or flat, numeric, string or null code, HTML or plain text). ``status`` None: an error
    inside a 200 answer or stream, whose own code counts if it is an HTTP one. The code is the one
    Google would answer (errors.google_code): a 422 is a 400. A rejected key is the caller's
    (pass-through: Google's API_KEY_INVALID) or the endpoint's own (team mode: not the caller's fault)."""
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    message = None
    if isinstance(error, dict):
        message = error.get("message") or error.get("detail") or error.get("msg")
        if isinstance(error.get("metadata"), dict) and isinstance(error["metadata"].get("raw"), str):
            message = f"{message}: {error['metadata']['raw']}" if message else error["metadata"]["raw"]
    elif isinstance(error, str):
        message = error
    message = shown(message if isinstance(message, str) else json.dumps(error), key, MESSAGE_LIMIT)
    if status is None:
        code = error.get("code") if isinstance(error, dict) else None
        if isinstance(code, str) and code.isdigit():
            code = int(code)
        # Without an HTTP code: a failure while serving, reported as a gateway's (503, worth a retry).
        status = code if isinstance(code, int) and 400 <= code <= 599 else 502
    if status == 401:
        if team_mode:
            return UpstreamError(f"The upstream refused this endpoint's UPSTREAM_API_KEY: {message}", from_upstream=True)
        return api_key_invalid(f"API key not valid. Please pass a valid API key. (The upstream said: {message})",
                               from_upstream=True)
    extra_headers, details = {}, None
    retry_after = retry_after_seconds(headers or {})
    given = ((headers or {}).get("Retry-After") or "").strip()
    if retry_after is not None and given and not _SECONDS.match(given):
        extra_headers["Retry-After"] = given  # an HTTP date, passed on as it is
    elif retry_after is not None:
        seconds = math.ceil(retry_after)
        extra_headers["Retry-After"] = str(seconds)
        # The Gemini CLI reads RetryInfo to time its retry.
        details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds}s"}]
    return GeminiError(message.strip() or status_for(status), code=status, headers=extra_headers, details=details,
                       retryable=status in RETRYABLE_STATUS, from_upstream=True, retry_after=retry_after)


def retry_after_seconds(headers):
    """Seconds the upstream asked to wait (Retry-After as seconds or an HTTP date, or OpenAI's
    retry-after-ms), or None when it did not say, or said something unusable."""
    value = (headers.get("Retry-After") or "").strip()
    if _SECONDS.match(value):  # RFC 9110 says whole seconds; some servers send decimals
        return min(float(value), MAX_RETRY_AFTER)
    if value:
        try:
            return min(max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0), MAX_RETRY_AFTER)
        except (TypeError, ValueError, OverflowError):
            return None
    try:
        milliseconds = float(headers.get("retry-after-ms") or "")
    except ValueError:
        return None
    return min(milliseconds / 1000, MAX_RETRY_AFTER) if math.isfinite(milliseconds) and milliseconds >= 0 else None


def retry_delay(error, number):
    """Seconds to wait before retry ``number`` (0-based): the upstream's Retry-After when it gave
    one (None if that is too long to wait here), else exponential backoff with full jitter."""
    if error.retry_after is not None:
        return error.retry_after if error.retry_after <= RETRY_AFTER_CAP else None
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** number))


# --- upstream text shown to the client or the log ------------------------------------------------

def excerpt(raw, key, limit=300):
    """A short plain-text excerpt of a non-JSON body (an HTML page's title, or its text)."""
    text = raw[:ERROR_BODY_LIMIT].decode("utf-8", "replace")
    # str.find and [^<>]: a page of 64 KiB of "<title>" or "<" made the regexes here quadratic.
    lowered = text.lower()
    start = lowered.find("<title>")
    end = lowered.find("</title>", start)
    text = text[start + len("<title>"):end] if start != -1 and end != -1 else _TAG.sub(" ", text)
    return shown(" ".join(text.split()), key, limit)


def shown(text, key, limit):
    """Upstream text as the client may see it: the key redacted first, then cut to ``limit``
    (what lies beyond the limit and a key's length cannot show, and is not scanned)."""
    return shortened(redacted(text[:limit + len(key)], key), limit) if len(text) > limit else redacted(text, key)


def redacted(text, secret):
    """``text`` with every run of 8 or more consecutive characters of ``secret`` replaced by
    [redacted]: the whole key, and what is left of it where the upstream cut it. Upstreams quote the
    key they refused, and in team mode that key is the function's own.

    >>> redacted("Incorrect API key provided: sk-proj-abcd1234efgh****", "sk-proj-abcd1234efgh5678")
    'Incorrect API key provided: [redacted]****'
    """
    if len(secret) < MIN_SECRET or len(text) < MIN_SECRET:
        return text
    pieces = {secret[i:i + MIN_SECRET] for i in range(len(secret) - MIN_SECRET + 1)}
    runs = []  # [start, end) of text made of the key's pieces, overlapping ones merged
    for i in range(len(text) - MIN_SECRET + 1):
        if text[i:i + MIN_SECRET] in pieces:
            if runs and i <= runs[-1][1]:
                runs[-1][1] = i + MIN_SECRET
            else:
                runs.append([i, i + MIN_SECRET])
    if not runs:
        return text
    out, copied = [], 0
    for start, end in runs:
        out += (text[copied:start], REDACTED)
        copied = end
    out.append(text[copied:])
    return "".join(out)


def shortened(text, limit):
    """``text`` cut to ``limit`` characters and "...", but never inside a [redacted]."""
    if len(text) <= limit:
        return text
    marker = text.find(REDACTED, max(limit - len(REDACTED) + 1, 0), limit + len(REDACTED) - 1)
    if marker != -1 and marker < limit:
        limit = marker + len(REDACTED)
    return text[:limit] + "..."
