"""Fixtures: the loopback upstream, and the function served the way it is deployed
(``functions-framework --target=gemini``, gunicorn), in a subprocess per configuration, or the same
app called in this process through Flask's test client, for the tests that need no real socket."""

import contextlib
import io
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

import functions_framework
import pytest
import requests

from fake_upstream import FakeUpstream
from helpers import KEY, Answer, free_port

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
        self.port = free_port()
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


class InProcessFunction:
    """The app ``functions-framework --target=gemini`` serves (its own ``create_app``), called in this
    process through Flask's test client: no socket, no gunicorn. main.py reads its configuration when
    create_app executes it (a fresh module each time), so each configuration is its own app, created
    with its environment applied. What the function writes (its log lines, a traceback) is kept."""

    def __init__(self, env):
        self.output = io.StringIO()
        saved = dict(os.environ)
        for name in ("UPSTREAM_API_KEY", "ACCESS_KEYS"):  # as for the subprocess: only what ``env`` says
            os.environ.pop(name, None)
        os.environ.update(env)
        try:
            with self._captured():
                self.client = functions_framework.create_app(target="gemini", source=str(REPO / "main.py")).test_client()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    @contextlib.contextmanager
    def _captured(self):
        with contextlib.redirect_stdout(self.output), contextlib.redirect_stderr(self.output):
            yield

    def request(self, method, path, body=None, key=KEY, headers=None, params=None):
        """Like the ``gemini`` helper: a dict ``body`` is sent as JSON (as requests sends it), bytes
        or str as they are; the answer is read whole (a stream too: its log line is then written)."""
        # a header sent as bytes reaches a WSGI app decoded as latin-1 (PEP 3333), as the server hands it over
        headers = {name: value.decode("latin-1") if isinstance(value, bytes) else value
                   for name, value in (headers or {}).items()}
        if key is not None:
            headers.setdefault("x-goog-api-key", key)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body, allow_nan=False)
            headers.setdefault("Content-Type", "application/json")
        with self._captured():
            response = self.client.open(path, method=method, data=body, headers=headers, query_string=params,
                                        buffered=True)
        return Answer(response.status_code, response.headers, response.get_data())

    def post(self, path, body=None, **kwargs):
        return self.request("POST", path, body, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def logs(self):
        return self.output.getvalue()


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


def _one_per_configuration(make, upstream_server):
    """(get, made): get(**env) -> make(env) for that configuration, made once per distinct env."""
    made = {}

    def get(**env):
        env.setdefault("UPSTREAM_BASE_URL", upstream_server.base_url)
        key = tuple(sorted(env.items()))
        if key not in made:
            made[key] = make(env)
        return made[key]

    return get, made


@pytest.fixture(scope="session")
def serve(upstream_server):
    """serve(**env) -> a FunctionServer with that configuration (one process per distinct env)."""
    start, servers = _one_per_configuration(FunctionServer, upstream_server)
    yield start
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def in_process(upstream_server):
    """in_process(**env) -> an InProcessFunction with that configuration (one app per distinct env)."""
    return _one_per_configuration(InProcessFunction, upstream_server)[0]


@pytest.fixture(scope="session")
def app(in_process):
    """The function in process with the default configuration (pass-through keys)."""
    return in_process()


@pytest.fixture
def post(app, upstream):
    """The ``gemini`` helper in process: post(path, body, key=KEY, headers=None) -> helpers.Answer."""
    return app.post


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



EMULATOR_BUCKET = "gemini-compat-test"


def pytest_configure(config):
    config.addinivalue_line("markers", "emulator_differs: a store test the Cloud Storage emulator cannot pass "
                                       "(it does otherwise than Cloud Storage): the storage_env fixture's 'gcs' "
                                       "case skips it (tests/test_storage.py says what differs)")


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory):
    """The Cloud Storage emulator (``gcp-storage-emulator``, objects in its memory) in a subprocess on
    a loopback port, with one bucket: the env a function needs to use it, under a prefix of its own.
    A subprocess, not a thread: what it holds stays out of this process's memory measurements."""
    port = free_port()
    log = tmp_path_factory.mktemp("gcs-emulator") / "emulator.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port),
             "--default-bucket", EMULATOR_BUCKET, "--in-memory", "--quiet"],
            stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the storage emulator did not start:\n{log.read_text(errors='replace')}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.05)
        yield {"STORAGE_BUCKET": f"gs://{EMULATOR_BUCKET}/{tmp_path_factory.mktemp('gcs').name}",
               "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(params=["local", "gcs"])
def storage_env(request, tmp_path_factory):
    """A fresh, empty store for one test, as the env of a function (``serve(**storage_env)``,
    ``in_process(**storage_env)``): a folder of its own, or a prefix of its own in the emulator's bucket."""
    if request.param == "local":
        return {"STORAGE_DIR": str(tmp_path_factory.mktemp("store"))}
    emulator = request.getfixturevalue("gcs_emulator")
    return {**emulator, "STORAGE_BUCKET": f"gs://{EMULATOR_BUCKET}/{tmp_path_factory.mktemp('gcs').name}"}
