"""A misbehaving OpenAI-compatible upstream on loopback, on raw sockets (http.server would tidy up
exactly what these tests need to get wrong): gzip bombs, answers of hundreds of megabytes, SSE
events and tool-call arguments that never end, trickles, odd status codes, and answers that quote
the key they were called with.

Every behaviour is a function ``behaviour(conn, request)`` that writes a reply on ``conn`` (a
``Conn``); the server pops them from a script in order, and answers a plain valid completion (or
stream) when the script is empty. All sending goes through ``Conn.send``, which stops a behaviour
(``Stop``) as soon as the function closes the connection, after ``time_bound`` seconds, or after
``byte_bound`` bytes, whichever comes first: nothing here runs on by itself.

The module keeps the one expensive payload, a 1 GiB gzip bomb (about 1 MB compressed), in a cache.
"""

import collections
import json
import socket
import struct
import threading
import time
import zlib

MiB = 1024 * 1024
GiB = 1024 * MiB
BLOCK = b"a" * MiB


# --- payloads -----------------------------------------------------------------------------------

_bomb_cache = {}


def gzip_member(data):
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def gzip_bomb_core(size=GiB):
    """One gzip member that inflates to ``size`` bytes of ``a``, built from 1 MiB blocks (the test
    process never holds the inflated bytes). After a full flush deflate starts afresh, so every
    block after the first compresses to the same bytes: each is compressed once and repeated."""
    if size in _bomb_cache:
        return _bomb_cache[size]
    assert size % MiB == 0 and size >= 3 * MiB
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(BLOCK) + compressor.flush(zlib.Z_FULL_FLUSH)
    second = compressor.compress(BLOCK) + compressor.flush(zlib.Z_FULL_FLUSH)
    third = compressor.compress(BLOCK) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert second == third
    crc = 0
    for _ in range(size // MiB):
        crc = zlib.crc32(BLOCK, crc)
    end = compressor.flush(zlib.Z_FINISH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    data = header + first + second * (size // MiB - 1) + end + struct.pack("<II", crc, size & 0xFFFFFFFF)
    _bomb_cache[size] = data
    return data


def gzip_bomb(prefix, suffix=b"", size=GiB):
    """``prefix`` + ``size`` bytes of ``a`` + ``suffix``, gzipped (three gzip members, which every
    gzip reader, urllib3's included, reads as one body)."""
    return gzip_member(prefix) + gzip_bomb_core(size) + gzip_member(suffix)


# --- OpenAI wire shapes -------------------------------------------------------------------------

def completion(content="ok", model="qwen-turbo"):
    return {"id": "chatcmpl-h1", "object": "chat.completion", "created": 1767000000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


def chunk(delta=None, finish=None, model="qwen-turbo", choices=None, usage=None):
    value = {"id": "chatcmpl-h2", "object": "chat.completion.chunk", "created": 1767000000, "model": model,
             "choices": choices if choices is not None else
             [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}
    if usage is not None:
        value["usage"] = usage
    return value


def event(value):
    return b"data: " + json.dumps(value).encode() + b"\n\n"


def ok_stream_events(text="ok", model="qwen-turbo"):
    return (event(chunk({"role": "assistant", "content": ""}, model=model))
            + event(chunk({"content": text}, model=model))
            + event(chunk({}, finish="stop", model=model))
            + event(chunk(choices=[], usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                          model=model))
            + b"data: [DONE]\n\n")


# --- the server ---------------------------------------------------------------------------------

class Stop(Exception):
    """Raised by Conn.send when a behaviour must stop sending."""


class Conn:
    def __init__(self, sock, time_bound, byte_bound):
        self.sock = sock
        self.started = time.monotonic()
        self.time_bound, self.byte_bound = time_bound, byte_bound
        self.sent = 0
        self.ended = None  # why sending stopped: "complete", "peer closed", "time bound", "byte bound", ...
        self.keep_alive = False

    def send(self, data):
        if time.monotonic() - self.started > self.time_bound:
            self.ended = "time bound"
            raise Stop
        if self.sent >= self.byte_bound:
            self.ended = "byte bound"
            raise Stop
        try:
            self.sock.sendall(data)
        except socket.timeout:
            self.ended = "send blocked (peer stopped reading)"
            raise Stop from None
        except OSError:
            self.ended = "peer closed"
            raise Stop from None
        self.sent += len(data)

    def head(self, status, headers=(), reason=None):
        lines = [f"HTTP/1.1 {status} {reason or 'Whatever'}"] + [f"{name}: {value}" for name, value in headers]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def whole(self, status, body, content_type="application/json", headers=()):
        """A complete answer with Content-Length, on a connection that stays open."""
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.head(status, [("Content-Type", content_type), ("Content-Length", len(body)), *headers])
        self.send(body)
        self.keep_alive = True

    def chunked(self, data):
        self.send(b"%x\r\n%s\r\n" % (len(data), data))

    def sleep(self, seconds):
        """Wait, but notice a peer that has gone away meanwhile."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if time.monotonic() - self.started > self.time_bound:
                self.ended = "time bound"
                raise Stop
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))


class HostileUpstream:
    def __init__(self, time_bound=10.0, byte_bound=2 * GiB):
        self.time_bound, self.byte_bound = time_bound, byte_bound
        self.requests = []  # {"method", "path", "headers", "json", "key"}
        self.connections = []  # Conn of every behaviour that ran, for its sent/ended figures
        self.script = collections.deque()
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.listener.getsockname()[1]

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def reply(self, *behaviours):
        self.script.extend(behaviours)

    def reset(self):
        self.script.clear()
        del self.requests[:]
        del self.connections[:]

    def close(self):
        self.closed = True
        self.listener.close()

    def _accept(self):
        while not self.closed:
            try:
                sock, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        reader = sock.makefile("rb")
        try:
            while not self.closed:
                sock.settimeout(30.0)  # an idle keep-alive connection of the function's pool
                request = _read_request(reader)
                if request is None:
                    return
                sock.settimeout(2.0)  # a send that blocks this long: the function stopped reading
                self.requests.append(request)
                with self.lock:
                    behaviour = self.script.popleft() if self.script else ok
                conn = Conn(sock, self.time_bound, self.byte_bound)
                conn.behaviour = getattr(behaviour, "__name__", repr(behaviour))
                self.connections.append(conn)
                try:
                    behaviour(conn, request)
                    conn.ended = conn.ended or "complete"
                except Stop:
                    return
                if not conn.keep_alive:
                    return
        except (OSError, ValueError):
            return
        finally:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def _read_request(reader):
    line = reader.readline(65537)
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers = {}
    while True:
        line = reader.readline(65537)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = reader.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int(reader.readline().split(b";")[0], 16)
            data = reader.read(size + 2)[:size]
            if size == 0:
                break
            body += data
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    authorization = headers.get("authorization", "")
    key = authorization[len("Bearer "):] if authorization.startswith("Bearer ") else ""
    return {"method": method, "path": path, "headers": headers, "json": parsed, "key": key}


def _streaming(request):
    return bool((request.get("json") or {}).get("stream"))


# --- behaviours ---------------------------------------------------------------------------------

def ok(conn, request):
    """A plain valid answer, streamed when asked to stream."""
    if _streaming(request):
        body = ok_stream_events()
        conn.whole(200, body, "text/event-stream")
    elif request["path"].rstrip("/").endswith("/models"):
        conn.whole(200, {"object": "list", "data": [{"id": "qwen-turbo", "object": "model"}]})
    else:
        conn.whole(200, completion())


def gzip_json_bomb(conn, request):
    """200, Content-Encoding: gzip, a JSON completion whose content inflates to 1 GiB."""
    prefix = json.dumps(completion("@@")).encode().split(b'"@@')[0] + b'"'
    suffix = json.dumps(completion("@@")).encode().split(b'@@"')[1]
    body = gzip_bomb(prefix, b'"' + suffix)
    conn.whole(200, body, "application/json", [("Content-Encoding", "gzip")])


def gzip_html_bomb(conn, request):
    """500, text/html, gzip: an error page that inflates to 1 GiB."""
    body = gzip_bomb(b"<html><head><title>Internal", b"</title></head><body>oops</body></html>")
    conn.whole(500, body, "text/html; charset=utf-8", [("Content-Encoding", "gzip")])


def gzip_sse_bomb(conn, request):
    """200 text/event-stream, gzip (unasked for): one event whose data inflates to 1 GiB."""
    body = gzip_bomb(b'data: {"a":"', b'"}\n\n')
    conn.whole(200, body, "text/event-stream", [("Content-Encoding", "gzip")])


def _big_plain(size, chunked):
    def behaviour(conn, request):
        prefix = json.dumps(completion("@@")).encode().split(b'"@@')[0] + b'"'
        suffix = b'"' + json.dumps(completion("@@")).encode().split(b'@@"')[1]
        total = len(prefix) + size + len(suffix)
        if chunked:
            conn.head(200, [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")])
            conn.chunked(prefix)
            for _ in range(size // (64 * 1024)):
                conn.chunked(BLOCK[:64 * 1024])
            conn.chunked(suffix)
            conn.send(b"0\r\n\r\n")
        else:
            conn.head(200, [("Content-Type", "application/json"), ("Content-Length", total)])
            conn.send(prefix)
            for _ in range(size // (64 * 1024)):
                conn.send(BLOCK[:64 * 1024])
            conn.send(suffix)
        conn.keep_alive = True
    behaviour.__name__ = f"plain_{size // MiB}MB_{'chunked' if chunked else 'length'}"
    return behaviour


plain_300mb_length = _big_plain(300 * MiB, chunked=False)
plain_300mb_chunked = _big_plain(300 * MiB, chunked=True)


def _sse_head(conn):
    conn.head(200, [("Content-Type", "text/event-stream"), ("Connection", "close")])


def endless_event(conn, request):
    """A stream whose first event never ends: ``data: {"a":"xxxx...`` with no newline, ever."""
    _sse_head(conn)
    conn.send(b'data: {"a":"')
    piece = b"x" * (64 * 1024)
    while True:
        conn.send(piece)


def endless_lines(conn, request, value=b"x"):
    """A text chunk, then one event of ``data: x`` lines that never meets its blank line."""
    _sse_head(conn)
    conn.send(event(chunk({"role": "assistant", "content": ""})) + event(chunk({"content": "begun"})))
    piece = b"data: " + value + b"\n"
    piece *= 65536 // len(piece)
    while True:
        conn.send(piece)


def endless_short_lines(conn, request):
    """As ``endless_lines`` with two-byte values (``data: xy``): were each line kept as an object of
    its own, it would cost far more than its bytes (one-byte values are CPython singletons)."""
    endless_lines(conn, request, b"xy")


def endless_tool_arguments(conn, request):
    """A tool call whose arguments arrive in fragments forever, each fragment its own event."""
    _sse_head(conn)
    start = {"role": "assistant", "content": None,
             "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                             "function": {"name": "f", "arguments": '{"a":"'}}]}
    conn.send(event(chunk(start)))
    fragment = event(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "x" * 4096}}]}))
    batch = fragment * 16
    while True:
        conn.send(batch)


def _trickle(data, interval=0.5):
    def behaviour(conn, request):
        for byte in data:
            conn.send(bytes([byte]))
            conn.sleep(interval)
    return behaviour


def trickle_head(conn, request):
    """Even the status line arrives one byte every 0.5 s."""
    body = json.dumps(completion()).encode()
    _trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
             + body)(conn, request)


def trickle_body(conn, request):
    """Prompt headers, then the body one byte every 0.5 s."""
    body = json.dumps(completion()).encode()
    conn.head(200, [("Content-Type", "application/json"), ("Content-Length", len(body))])
    _trickle(body)(conn, request)


def status(code, location=None, body=None):
    """An answer with an unusual status; a valid completion body unless given another."""
    def behaviour(conn, request):
        headers = [("Location", location)] if location else []
        if code == 204:
            conn.head(204, headers)
            conn.keep_alive = True
            return
        answer = body if body is not None else (ok_stream_events() if _streaming(request) else completion())
        conn.whole(code, answer, "text/event-stream" if _streaming(request) and body is None else "application/json",
                   headers)
    behaviour.__name__ = f"status_{code}"
    return behaviour


# Answers that quote the key they were called with (what some upstreams do), whole or in part.

def key_in_error(conn, request):
    key = request["key"]
    conn.whole(401, {"error": {"message": f"Incorrect API key provided: {key}. You can find your API key at "
                                          "https://example.invalid/keys.", "type": "invalid_request_error",
                               "code": "invalid_api_key"}})


def key_cut_in_error(conn, request):
    conn.whole(401, {"error": {"message": f"Incorrect API key provided: {request['key'][:40]}"}})


def key_in_html_title(conn, request):
    conn.whole(403, f"<html><head><title>Forbidden: key {request['key']}</title></head><body>no</body></html>",
               "text/html")


def key_in_html_body(conn, request):
    conn.whole(403, f"<html><body><h1>Forbidden</h1><p>The key {request['key']} is revoked.</p></body></html>"
               .encode(), "text/html")


def key_in_plain_text(conn, request):
    conn.whole(400, f"bad key {request['key'][:40]}".encode(), "text/plain")


def key_in_stream_error_event(conn, request):
    key = request["key"]
    body = (event(chunk({"role": "assistant", "content": ""})) + event(chunk({"content": "partial"}))
            + b"event: error\ndata: " + json.dumps({"error": {"message": f"key {key} revoked", "code": 401}}).encode()
            + b"\n\n")
    conn.whole(200, body, "text/event-stream")


def key_in_stream_data_error(conn, request):
    key = request["key"]
    body = (event(chunk({"content": "partial"}))
            + event({"error": {"message": f"Incorrect API key provided: {key[:40]}", "code": "invalid_api_key"}}))
    conn.whole(200, body, "text/event-stream")


def key_as_model(conn, request):
    """The key in the ``model`` field, of a whole answer or of every stream chunk."""
    key = request["key"]
    if _streaming(request):
        conn.whole(200, ok_stream_events(model=key), "text/event-stream")
    else:
        conn.whole(200, completion(model=key))


def key_in_retry_after(conn, request):
    conn.whole(429, {"error": {"message": "slow down"}}, headers=[("Retry-After", request["key"])])


def surrogate_model(conn, request):
    """A lone UTF-16 surrogate (escaped, as JSON allows) in the ``model`` field, which the log
    line repeats as ``modelVersion``: no UTF-8 writer can write it as it is."""
    model = "qwen-\ud800-turbo"
    if _streaming(request):
        conn.whole(200, ok_stream_events(model=model), "text/event-stream")
    else:
        conn.whole(200, completion(model=model))


def endless_header(conn, request):
    """A status line, then one header line that never ends."""
    conn.send(b"HTTP/1.1 200 OK\r\nX-Endless: ")
    piece = b"x" * (64 * 1024)
    while True:
        conn.send(piece)


def endless_headers(conn, request):
    """A status line, then header after header, never the blank line."""
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    piece = b"".join(b"X-H%d: y\r\n" % n for n in range(4096))
    while True:
        conn.send(piece)


def huge_chunk_size(conn, request):
    """Chunked encoding announcing a 2**60-byte chunk, then sending it at full speed."""
    conn.head(200, [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")])
    conn.send(b"1000000000000000\r\n")
    piece = b"x" * (64 * 1024)
    while True:
        conn.send(piece)
