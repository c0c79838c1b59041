"""The servers under measurement, each in its own process group: the fast upstream and the function as
deployed; and their memory, read from /proc with the tests' reader (tests/ is on sys.path, see run.py)."""

import http.client
import json
import os
import pathlib
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

from client import FUNCTION_HEADERS, MODEL, generate_path
from helpers import child_pids, free_port, status_kib

REPO = pathlib.Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
# Settings that would switch the function out of pass-through mode (the caller's key goes upstream).
PASS_THROUGH_UNSET = ("UPSTREAM_API_KEY", "ACCESS_KEYS", "ALLOW_UNAUTHENTICATED")


class UpstreamProcess:
    """The fast upstream in its own process; it exits by itself if our stdin pipe closes."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH / "fast_upstream.py"), "--port", "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        )
        ready, _, _ = select.select([self.process.stdout], [], [], 10)
        line = self.process.stdout.readline().decode() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"fast upstream did not start (said {line!r})")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stats(self):
        """Connections accepted and requests served so far."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/stats")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def stop(self):
        _stop_group(self.process, signal.SIGTERM)


class FunctionProcess:
    """``functions-framework --target=gemini`` as deployed: gunicorn master (our child) + 1 worker."""

    def __init__(self, upstream_url, port=None, env=None):
        self.port = port or free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="bench-function-", suffix=".log", delete=False)
        env = {**function_env(upstream_url), **(env or {})}
        script = pathlib.Path(sys.executable).parent / "functions-framework"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "functions_framework"]
        command += ["--target=gemini", "--source", "main.py", "--host", "127.0.0.1", "--port", str(self.port)]
        self.started = time.perf_counter()
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_until_answering(self, body, timeout=30.0, model=MODEL):
        """Seconds from Popen to the first 200 answer to ``body`` (a generateContent request for ``model``)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"function exited at start:\n{self.logs()}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                conn.request("POST", generate_path(model), body, FUNCTION_HEADERS)
                response = conn.getresponse()
                data = response.read()
                if response.status == 200:
                    return time.perf_counter() - self.started
                raise RuntimeError(f"function answered {response.status}: {data[:500]!r}\n{self.logs()}")
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
                time.sleep(0.002)  # not listening yet: gunicorn binds, then forks the worker
            finally:
                conn.close()
        raise RuntimeError(f"function did not answer within {timeout} s:\n{self.logs()}")

    def wait_until_listening(self, timeout=30.0):
        """Once the worker accepts connections (for a bench that needs no upstream)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"function exited at start:\n{self.logs()}")
            if child_pids(self.process.pid):
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    pass
            time.sleep(0.02)
        raise RuntimeError(f"function did not listen within {timeout} s:\n{self.logs()}")

    def pids(self):
        """The gunicorn master and its children (the worker)."""
        return [self.process.pid] + child_pids(self.process.pid)

    def logs(self):
        return pathlib.Path(self.log.name).read_text(errors="replace")[-4000:]

    def stop(self):
        try:
            _stop_group(self.process, signal.SIGINT)  # SIGINT: gunicorn's quick shutdown
        finally:
            self.log.close()
            os.unlink(self.log.name)


def function_env(upstream_url):
    """The environment as is (THREADS etc. apply), in pass-through mode: the caller's key goes upstream."""
    env = {name: value for name, value in os.environ.items() if name not in PASS_THROUGH_UNSET}
    env["UPSTREAM_BASE_URL"] = upstream_url
    return env


def _stop_group(process, sig):
    """Signal the process (only the leader: a gunicorn 27 worker that gets the signal from the group
    and again from its master can deadlock in its quit handler), wait briefly, then kill the group."""
    try:
        if process.stdin:
            process.stdin.close()
        if process.poll() is None:
            process.send_signal(sig)
            process.wait(5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    finally:  # even when interrupted (a second Ctrl-C) while waiting
        try:
            os.killpg(process.pid, signal.SIGKILL)  # also stray workers if the master went first
        except ProcessLookupError:
            pass
        process.wait()
        if process.stdout:
            process.stdout.close()


def memory_mb(pids, field="VmRSS"):
    """A memory figure (VmRSS, Pss) summed over processes, in MiB; a process gone meanwhile counts 0."""
    total_kib = 0
    for pid in pids:
        try:
            total_kib += status_kib(pid, field)
        except OSError:
            pass
    return total_kib / 1024
