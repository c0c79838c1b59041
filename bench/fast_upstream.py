"""A minimal, fast OpenAI-compatible upstream for the benchmark (loopback only).

Run as its own process (``python bench/fast_upstream.py --port 0``) so that it does not share a GIL
with the benchmark client or the function. It prints ``PORT <n>`` once it listens, and exits when its
stdin closes (so it never outlives the benchmark, even if the benchmark is killed).

It answers ``GET /stats`` (connections accepted and requests served so far) and
``POST /v1/chat/completions``:
- without ``"stream": true``: a fixed chat completion (with usage), prebuilt bytes;
- with ``"stream": true``: N content chunks as SSE events in chunked transfer encoding, then a finish
  chunk, a usage chunk and ``data: [DONE]``. N comes from a ``chunks:N`` marker anywhere in the body
  (the function forwards only the body, so the marker rides in the last user message), else the
  ``X-Bench-Chunks`` header, else 200. Each event is written on its own, as a real server would.

Written on ``asyncio.Protocol`` (not streams, not http.server): no per-request objects beyond a few
bytes slices, so an answer costs a few tens of microseconds and the upstream stays far below the
function's cost.
"""

import argparse
import asyncio
import json
import os
import re
import sys
import threading

MODEL = "qwen-turbo"
DEFAULT_CHUNKS = 200
ANSWER = (
    "The capital of France is Paris. It has been the country's capital since the late tenth century, "
    "and today it is also its largest city, with about two million inhabitants within the city limits "
    "and more than twelve million in the metropolitan area."
)
USAGE = {"prompt_tokens": 412, "completion_tokens": 57, "total_tokens": 469}


def completion():
    """The fixed non-streaming answer (also used by run.py for the response-translation microbenchmark)."""
    return {
        "id": "chatcmpl-bench0001", "object": "chat.completion", "created": 1767000000, "model": MODEL,
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": USAGE,
    }


def stream_events(count):
    """The JSON texts of a streamed answer with ``count`` content chunks (OpenAI's shape)."""
    base = {"id": "chatcmpl-bench0002", "object": "chat.completion.chunk", "created": 1767000000, "model": MODEL,
            "system_fingerprint": "fp_bench"}
    events = []
    for i in range(count):
        delta = {"content": f"tok{i} "}
        if i == 0:
            delta = {"role": "assistant", "content": f"tok{i} "}
        events.append(json.dumps({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                        "finish_reason": None}]}, separators=(",", ":")))
    events.append(json.dumps({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]},
                             separators=(",", ":")))
    events.append(json.dumps({**base, "choices": [], "usage": USAGE}, separators=(",", ":")))
    events.append("[DONE]")
    return events


def _chunk_frame(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


_COMPLETION_BODY = json.dumps(completion(), separators=(",", ":")).encode()
_COMPLETION_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(_COMPLETION_BODY)
    + _COMPLETION_BODY
)
_STREAM_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
_STREAM_END = b"0\r\n\r\n"
_NOT_FOUND_BODY = b'{"error":{"message":"not found","type":"invalid_request_error","code":404}}'
_NOT_FOUND = (b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
              % len(_NOT_FOUND_BODY) + _NOT_FOUND_BODY)
_CHUNKS_MARKER = re.compile(rb"chunks:(\d+)")
_GAP_MARKER = re.compile(rb"gap:(\d+)ms")
_stream_frames = {}  # count -> list of chunk-encoded SSE events, built once per count


def _frames(count):
    frames = _stream_frames.get(count)
    if frames is None:
        frames = [_chunk_frame(b"data: " + event.encode() + b"\n\n") for event in stream_events(count)]
        _stream_frames[count] = frames
    return frames


def _header(lower_head, name):
    """Value of header ``name`` (lower-case bytes, with its colon) in the lower-cased head, or None."""
    start = lower_head.find(b"\r\n" + name)
    if start < 0:
        return None
    start += 2 + len(name)
    end = lower_head.find(b"\r\n", start)
    return lower_head[start:end if end >= 0 else len(lower_head)].strip()


STATS = {"connections": 0, "requests": 0}  # GET /stats: does the function reuse its connections?


class Connection(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""
        STATS["connections"] += 1

    def data_received(self, data):
        self.buffer += data
        while True:  # pipelined or split requests: handle every complete one in the buffer
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            lower = self.buffer[:head_end].lower()
            length = int(_header(lower, b"content-length:") or 0)
            total = head_end + 4 + length
            if len(self.buffer) < total:
                return
            request_line = lower[:lower.find(b"\r\n")] if b"\r\n" in lower else lower
            body = self.buffer[head_end + 4:total]
            self.buffer = self.buffer[total:]
            self.respond(request_line, lower, body)
            if _header(lower, b"connection:") == b"close":
                self.transport.close()
                return

    def respond(self, request_line, lower, body):
        method, _, rest = request_line.partition(b" ")
        path = rest.partition(b" ")[0]
        if method == b"get" and path == b"/stats":
            body = json.dumps(STATS).encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                 % (len(body), body))
            return
        STATS["requests"] += 1
        if method != b"post" or not path.endswith(b"/chat/completions"):
            self.transport.write(_NOT_FOUND)
            return
        if b'"stream":true' not in body and b'"stream": true' not in body:
            self.transport.write(_COMPLETION_RESPONSE)
            return
        marker = _CHUNKS_MARKER.search(body)
        header = _header(lower, b"x-bench-chunks:")
        count = int(marker.group(1)) if marker else int(header) if header else DEFAULT_CHUNKS
        gap = _GAP_MARKER.search(body)
        frames = _frames(count)
        self.transport.write(_STREAM_HEAD)
        if gap:  # the first event, then a pause (a model's time to its second token), then the rest
            self.transport.write(frames[0])
            asyncio.get_running_loop().call_later(int(gap.group(1)) / 1000, self._write_all, frames[1:])
        else:
            self._write_all(frames)

    def _write_all(self, frames):
        if self.transport.is_closing():
            return
        write = self.transport.write
        for frame in frames:
            write(frame)
        write(_STREAM_END)


def _exit_when_stdin_closes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


async def serve(host, port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Connection, host, port, backlog=1024)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-stdin-watch", action="store_true", help="keep running when stdin closes")
    args = parser.parse_args()
    if not args.no_stdin_watch:
        threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
