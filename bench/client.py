"""The benchmark's client side: where requests go (paths, headers, key), and a keep-alive client that
times each exchange and reads a stream incrementally."""

import http.client
import time

KEY = "bench-key-123"
MODEL = "qwen-turbo"  # any name does: the fast upstream answers them all, and the function forwards it

DIRECT_PATH = "/v1/chat/completions"
DIRECT_HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
FUNCTION_HEADERS = {"Content-Type": "application/json", "x-goog-api-key": KEY}


def generate_path(model):
    return f"/v1beta/models/{model}:generateContent"


FUNCTION_PATH = generate_path(MODEL)
FUNCTION_STREAM_PATH = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"


class Client:
    """One keep-alive connection (http.client: the least client overhead in Python). A request that
    meets a connection the server closed meanwhile is retried once on a new one; only the successful
    attempt is timed, and connecting happens outside the timed region."""

    RETRY = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, http.client.BadStatusLine)

    def __init__(self, port, path, headers):
        self.port, self.path, self.headers = port, path, headers
        self.conn = None
        self.connects = self.requests = 0

    def _connection(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.conn.connect()
            self.connects += 1
        self.requests += 1
        return self.conn

    def post(self, body):
        """(status, body bytes, seconds)."""
        return self._exchange(body, lambda response, start: (response.status, response.read(),
                                                             time.perf_counter() - start))

    def stream(self, body):
        """(status, seconds to the first event, seconds to the last byte, body bytes), read incrementally."""
        return self._exchange(body, _read_stream)

    def _exchange(self, body, read):
        """POST ``body`` and ``read(response, start)`` it, once more on a fresh connection if needed."""
        for attempt in (0, 1):
            conn = self._connection()
            try:
                start = time.perf_counter()
                conn.request("POST", self.path, body, self.headers)
                return read(conn.getresponse(), start)
            except self.RETRY:
                self.close()
                if attempt:
                    raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _read_stream(response, start):
    first, blocks = None, []
    while True:
        block = response.read1(65536)
        if not block:
            break
        if first is None and b"data:" in block:
            first = time.perf_counter()
        blocks.append(block)
    end = time.perf_counter()
    return response.status, (first or end) - start, end - start, b"".join(blocks)
