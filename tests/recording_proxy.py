"""A loopback HTTP proxy that records what passes through it, so that a test can compare what the
function answered with what a real upstream server itself sent (and what it was asked)."""

import http.client
import http.server
import json
import threading
import urllib.parse

from helpers import sse_data

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection",
               "content-length", "host"}


class Exchange:
    def __init__(self, method, path, request):
        self.method, self.path, self.request = method, path, request
        self.status, self.body = None, b""

    def json(self):
        return json.loads(self.body)

    def events(self):
        """The JSON payloads of an SSE answer, ``[DONE]`` left out."""
        return [json.loads(data) for data in sse_data(self.body) if data != b"[DONE]"]


class RecordingProxy:
    def __init__(self, target):
        self.target = urllib.parse.urlsplit(target)
        self.exchanges = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _relay(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                exchange = Exchange(self.command, self.path, json.loads(body) if body else None)
                proxy.exchanges.append(exchange)
                upstream = http.client.HTTPConnection(proxy.target.hostname, proxy.target.port, timeout=300)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    exchange.status = answer.status
                    self.send_response(answer.status)
                    for key, value in answer.getheaders():
                        if key.lower() not in _HOP_BY_HOP:
                            self.send_header(key, value)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    while piece := answer.read1(65536):
                        exchange.body += piece
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (OSError, http.client.HTTPException):
                    self.close_connection = True  # the server died mid-answer: so does this answer
                finally:
                    upstream.close()

            do_GET = do_POST = do_DELETE = _relay

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def last(self, path_end):
        """The most recent exchange whose path ends with ``path_end``."""
        return next(e for e in reversed(self.exchanges) if e.path.split("?")[0].endswith(path_end))

    def close(self):
        self._server.shutdown()
        self._server.server_close()
