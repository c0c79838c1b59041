"""Fixtures: the loopback upstream, and the function served the way it is deployed
(``functions-framework --target=gemini``, gunicorn), in a subprocess per configuration."""

import contextlib
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


def dockerfile_command():
    """The Dockerfile's CMD (shell form, continuation lines joined), as the string `sh -c` runs."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    commands = [line[len("CMD "):].strip() for line in text.splitlines() if line.startswith("CMD ")]
    assert len(commands) == 1, commands
    return commands[0]


class FunctionServer:
    """The function as Cloud Functions runs it (``functions-framework --target=gemini``), or with
    ``container=True`` as the Dockerfile runs it (gunicorn with functions-framework's app)."""

    def __init__(self, env, container=False):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="function-", suffix=".log", delete=False)
        full_env = {k: v for k, v in os.environ.items() if k not in ("UPSTREAM_API_KEY", "ACCESS_KEYS")}
        full_env.update(env)
        if container:
            full_env.update(PORT=str(self.port), HOST="127.0.0.1", WORKERS="1", THREADS=full_env.get("THREADS", "16"),
                            PATH=os.path.dirname(sys.executable) + os.pathsep + full_env.get("PATH", ""))
            command = ["sh", "-c", dockerfile_command()]
        else:
            command = [sys.executable, "-m", "functions_framework", "--target=gemini", "--source", str(REPO / "main.py"),
                       "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(command, cwd=REPO, env=full_env, stdout=self.log, stderr=subprocess.STDOUT)
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test shows the logs of the servers it used (the function's, llama-server's)."""
    report = yield
    if report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            for method in ("logs", "log"):
                if callable(getattr(value, method, None)):
                    with contextlib.suppress(OSError):
                        report.sections.append((f"log of {name} ({type(value).__name__})", getattr(value, method)()))
                    break
    return report


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

