"""The agent frameworks' own virtual environment, for tests/test_frameworks.py: made from
tests/frameworks/requirements.txt (google-genai 2.x, which ADK, pydantic-ai and LlamaIndex pin,
while the main test environment keeps 3.x) and kept under
``~/.cache/gemini-compat-frameworks/venv-<hash>/``, the hash of that file and of the Python that
makes it; later runs reuse it. A change of the file makes a new one.

    python tests/framework_venv.py      # make or reuse it, then print its Python
"""

import fcntl
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys

REQUIREMENTS = pathlib.Path(__file__).resolve().parent / "frameworks" / "requirements.txt"
ROOT = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "gemini-compat-frameworks"


class Unavailable(RuntimeError):
    """The environment cannot be made here (no index, no venv module, a dependency conflict...)."""


def location():
    identity = REQUIREMENTS.read_bytes() + f"\n{sys.version}\n{os.path.realpath(sys.base_prefix)}".encode()
    return ROOT / f"venv-{hashlib.sha256(identity).hexdigest()[:12]}"


def ensure():
    """Make or reuse the environment; return its Python."""
    venv = location()
    python = venv / "bin" / "python"
    ROOT.mkdir(parents=True, exist_ok=True)
    with open(ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once make it once
        if (venv / ".complete").exists() and python.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)  # an earlier attempt that did not finish
        _run([sys.executable, "-m", "venv", str(venv)], "making the virtual environment")
        # Every package is pinned there, dependencies included: no resolution (a minute saved), and
        # pip check then proves the set complete and consistent.
        _run([str(python), "-m", "pip", "install", "--no-input", "-q", "--no-deps", "-r", str(REQUIREMENTS)],
             f"installing {REQUIREMENTS.name}")
        _run([str(python), "-m", "pip", "check"], "checking that the installed versions agree")
        (venv / ".complete").write_text("")
    return python


def _run(command, what):
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Unavailable(f"{what} failed: {error}") from error
    if done.returncode:
        output = done.stdout + done.stderr
        errors = [line for line in output.splitlines() if "error" in line.lower()]
        raise Unavailable(f"{what} failed ({' '.join(command)}):\n" + ("\n".join(errors) or output)[-3000:])


if __name__ == "__main__":
    print(ensure())
