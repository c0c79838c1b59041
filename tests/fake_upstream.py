"""A real OpenAI-compatible HTTP server on loopback, for tests: it records every request it gets and
answers from a script the test sets up, or, with no script, with a faithful default answer.

Script items are replies: ``Json`` (any status), ``Raw`` (any bytes and content type) and ``Stream``
(SSE written piece by piece, chunked or close-delimited, with pauses and abrupt disconnects).
"""

import collections
import http.server
import json
import sys
import threading
import time


class Json:
    def __init__(self, body, status=200, headers=None):
        self.body, self.status, self.headers = body, status, headers or {}


class Raw:
    def __init__(self, data, status=200, content_type="text/plain", headers=None):
        self.data = data if isinstance(data, bytes) else data.encode()
        self.status, self.content_type, self.headers = status, content_type, headers or {}


class Pause:
    """In a Stream: wait for ``until`` (a threading.Event) or sleep ``seconds``."""

    def __init__(self, seconds=None, until=None, timeout=10):
        self.seconds, self.until, self.timeout = seconds, until, timeout


class Disconnect:
    """In a Stream: drop the connection here, without finishing the response."""


class Hangup:
    """A reply that is no reply: the connection is closed before any byte of a response
    (what a pooled keep-alive connection that the server has dropped looks like)."""


class Stream:
    """SSE reply. Items: dict (one ``data:`` event), "[DONE]", raw bytes/str written as they are,
    Pause and Disconnect."""

    def __init__(self, items, chunked=True, status=200, content_type="text/event-stream", headers=None):
        self.items, self.chunked, self.status = list(items), chunked, status
        self.content_type, self.headers = content_type, headers or {}


# --- OpenAI wire format builders ---------------------------------------------------------------

def usage(prompt=5, completion=7, reasoning=None, cached=None):
    value = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if reasoning is not None:
        value["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    if cached is not None:
        value["prompt_tokens_details"] = {"cached_tokens": cached}
    return value


def completion(content="Hello!", finish="stop", tool_calls=None, model="qwen-turbo", usage_=None, **message_extra):
    message = {"role": "assistant", "content": content, **message_extra}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-test123", "object": "chat.completion", "created": 1767000000, "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage_ if usage_ is not None else usage(),
    }


def tool_call(name, arguments, call_id="call_abc", index=None):
    call = {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}}
    if index is not None:
        call["index"] = index
    return call


def chunk(delta=None, finish=None, index=0, model="qwen-turbo", usage_=None, choices=None):
    value = {"id": "chatcmpl-stream1", "object": "chat.completion.chunk", "created": 1767000000, "model": model}
    if choices is not None:
        value["choices"] = choices
    else:
        value["choices"] = [{"index": index, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]
    if usage_ is not None:
        value["usage"] = usage_
    return value


def text_stream(pieces, finish="stop", usage_=None):
    """The OpenAI shape: role chunk, content chunks, finish chunk, usage chunk, [DONE]."""
    items = [chunk({"role": "assistant", "content": ""})]
    items += [chunk({"content": piece}) for piece in pieces]
    items.append(chunk({}, finish=finish))
    items.append(chunk(choices=[], usage_=usage_ or usage()))
    items.append("[DONE]")
    return items


# --- the server --------------------------------------------------------------------------------

class FakeUpstream:
    def __init__(self):
        self.requests = []  # each: {"method", "path", "headers", "json"}
        self.script = collections.deque()
        self.disconnects = []  # monotonic times at which a client closed a stream early
        self.models = [{"id": "qwen-turbo", "object": "model", "created": 1767000000, "owned_by": "nexusflow"}]
        self.responder = None  # body -> reply, for chat completions once the script is empty (a whole conversation)
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"upstream": self})
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.server_port}/v1"

    def reply(self, *replies):
        """Queue replies for the next chat-completions requests, in order."""
        self.script.extend(replies)

    def reset(self):
        self.script.clear()
        self.responder = None
        del self.requests[:]
        del self.disconnects[:]

    @property
    def chat_requests(self):
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    @property
    def last(self):
        """The JSON body of the last chat-completions request."""
        return self.chat_requests[-1]["json"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A client that closed a connection with part of an answer unread (a cap, a deadline) resets it.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None  # set per server

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._record(None)
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": self.upstream.models})
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "not_found_error", "code": 404}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self._record(body)
        with self.upstream.lock:
            scripted = self.upstream.script.popleft() if self.upstream.script else None
        if self.path.endswith("/embeddings") and scripted is None:
            scripted = Json(_default_embeddings(body))
        if scripted is None and self.upstream.responder is not None:
            scripted = self.upstream.responder(body)
        if scripted is None:
            scripted = _default_reply(body)
        if callable(scripted) and not isinstance(scripted, (Json, Raw, Stream, Hangup)):
            scripted = scripted(body)
        self._send(scripted)

    def _record(self, body):
        self.upstream.requests.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "json": body}
        )

    def _send(self, reply):
        if isinstance(reply, Hangup):
            self.close_connection = True
            self.connection.shutdown(2)
        elif isinstance(reply, Json):
            self._send_json(reply.status, reply.body, reply.headers)
        elif isinstance(reply, Raw):
            self._send_bytes(reply.status, reply.data, reply.content_type, reply.headers)
        else:
            self._send_stream(reply)

    def _send_json(self, status, body, headers=None):
        self._send_bytes(status, json.dumps(body).encode(), "application/json", headers)

    def _send_bytes(self, status, data, content_type, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, reply):
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            for item in reply.items:
                if isinstance(item, Pause):
                    if item.until is not None:
                        item.until.wait(item.timeout)
                    else:
                        time.sleep(item.seconds)
                    continue
                if isinstance(item, Disconnect):
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._write(_encode_item(item), reply.chunked)
            if reply.chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.upstream.disconnects.append(time.monotonic())
            self.close_connection = True

    def _write(self, data, chunked):
        if chunked:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        self.wfile.write(data)
        self.wfile.flush()


def _encode_item(item):
    if isinstance(item, dict):
        return b"data: " + json.dumps(item).encode() + b"\n\n"
    if item == "[DONE]":
        return b"data: [DONE]\n\n"
    return item if isinstance(item, bytes) else item.encode()


def _last_user_text(body):
    for message in reversed((body or {}).get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def _default_reply(body):
    """Echo the last user message, streamed word by word when asked to stream."""
    text = "echo: " + _last_user_text(body)
    if (body or {}).get("stream"):
        words = text.split(" ")
        return Stream(text_stream([w if i == 0 else " " + w for i, w in enumerate(words)]))
    return Json(completion(text))


def _default_embeddings(body):
    inputs = (body or {}).get("input", [])
    inputs = [inputs] if isinstance(inputs, str) else inputs
    size = (body or {}).get("dimensions") or 4
    return {
        "object": "list", "model": (body or {}).get("model"),
        "data": [{"object": "embedding", "index": i, "embedding": [float(len(text) % 7 + k) / 10 for k in range(size)]}
                 for i, text in enumerate(inputs)],
        "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
    }
