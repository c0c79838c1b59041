"""Small builders and readers shared by the tests."""

import base64
import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import time

KEY = "test-key-123"
# Variables that would point a Google client somewhere else (Vertex, another key, base URL or
# version), or send a framework's traces out (LangSmith).
_CLIENT_ENV = ("GOOGLE_GENAI_", "GOOGLE_GEMINI_", "GOOGLE_VERTEX_", "GOOGLE_CLOUD_", "GOOGLE_API_KEY",
               "GEMINI_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "LANGCHAIN_", "LANGSMITH_")


def client_env(**extra):
    """The environment for a client run as a subprocess: this one without _CLIENT_ENV, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CLIENT_ENV)}
    env.update(extra)
    return env


class Answer:
    """An HTTP answer read whole, with the bits of a requests.Response the tests use: from
    http.client (paths sent byte for byte) or from the in-process function's test client."""

    def __init__(self, status_code, headers, content):
        self.status_code = status_code
        self.headers = headers  # case-insensitive either way
        self.content = content

    @property
    def text(self):
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.content)


def hello(text="Hello"):
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def error_of(response):
    """The Gemini error of an HTTP response, checking the envelope on the way."""
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert error["code"] == response.status_code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["status"], str) and error["status"].isupper()
    return error


def sse_data(body):
    """The ``data:`` payloads of an SSE body, as bytes, with LF or CRLF framing (the function writes
    CRLF, the benchmark's fast upstream LF). Also used by bench/."""
    payloads = []
    for event in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                payloads.append(line[5:].strip())
    return payloads


def sse_chunks(response):
    """The JSON chunks of a Gemini SSE answer."""
    return [json.loads(data) for data in sse_data(response.content)]


def free_port():
    """A free loopback port, for a server a test or the bench starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_pids(pid):
    """The processes whose parent is ``pid`` (functions-framework's gunicorn master: its worker)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        children.append(int(entry))
            except (OSError, IndexError, ValueError):  # gone meanwhile
                pass
    return children


def status_kib(pid, field):
    """A memory figure of a process, in KiB: VmRSS, VmHWM... from /proc/PID/status, or Pss (resident
    pages, each shared one divided among the processes sharing it) from /proc/PID/smaps_rollup.
    Also used by bench/."""
    source = "smaps_rollup" if field == "Pss" else "status"
    with open(f"/proc/{pid}/{source}") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/{source}")


class StorageEmulator:
    """The Cloud Storage emulator (``gcp-storage-emulator``, objects in its memory) in a subprocess on
    a loopback port, with one bucket, writing to ``log`` (a path). Used by the tests and bench/uploads.py."""

    def __init__(self, bucket, log):
        self.port = free_port()
        self.host = f"http://127.0.0.1:{self.port}"
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(self.port),
                 "--default-bucket", bucket, "--in-memory", "--quiet"],
                stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the storage emulator did not start:\n{open(log, errors='replace').read()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)

    def stop(self):
        stop_process(self.process)


def stop_process(process):
    """Ends a server process a test started: asked to stop, killed after 10 s."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# The headers of a resumable upload's start request, as the SDKs send them.
UPLOAD_START_HEADERS = {"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"}


def google_sha256(data):
    """What Google's File.sha256Hash holds: base64 of the digest's lowercase hex string."""
    return base64.b64encode(hashlib.sha256(data).hexdigest().encode()).decode()
