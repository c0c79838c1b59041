"""Fixtures: the loopback upstream, and the function served the way it is deployed
(``functions-framework --target=gemini``, gunicorn), in a subprocess per configuration."""

import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import requests

from fake_upstream import FakeUpstream
from helpers import KEY

REPO = pathlib.Path(__file__).resolve().parent.parent


class FunctionServer:
    def __init__(self, env):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="function-", suffix=".log", delete=False)
        full_env = {k: v for k, v in os.environ.items() if k not in ("UPSTREAM_API_KEY", "ACCESS_KEYS")}
        full_env.update(env)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "functions_framework", "--target=gemini", "--source", str(REPO / "main.py"),
             "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO, env=full_env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"function exited at start:\n{self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"function did not start:\n{self.logs()}")

    def logs(self):
        return pathlib.Path(self.log.name).read_text(errors="replace")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.unlink(self.log.name)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def upstream_server():
    fake = FakeUpstream()
    yield fake
    fake.close()


@pytest.fixture
def upstream(upstream_server):
    """The loopback upstream, with an empty script and record for this test."""
    upstream_server.reset()
    yield upstream_server
    upstream_server.reset()


@pytest.fixture(scope="session")
def serve(upstream_server):
    """serve(**env) -> a FunctionServer with that configuration (one process per distinct env)."""
    servers = {}

    def start(**env):
        env.setdefault("UPSTREAM_BASE_URL", upstream_server.base_url)
        key = tuple(sorted(env.items()))
        if key not in servers:
            servers[key] = FunctionServer(env)
        return servers[key]

    yield start
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def function(serve):
    """The function with the default configuration (pass-through keys)."""
    return serve()


@pytest.fixture
def gemini(function, upstream):
    """POST helper: gemini(path, body, key=KEY, **requests kwargs) -> requests.Response."""
    session = requests.Session()

    def post(path, body=None, key=KEY, headers=None, **kwargs):
        headers = dict(headers or {})
        if key is not None:
            headers.setdefault("x-goog-api-key", key)
        if body is not None and not isinstance(body, (bytes, str)):
            kwargs["json"] = body
        elif body is not None:
            kwargs["data"] = body
        return session.post(function.url + path, headers=headers, timeout=30, **kwargs)

    yield post
    session.close()

