"""Where the gunicorn worker spends its CPU: py-spy samples of the worker under load, summarised.

Used by ``python bench/run.py --profile`` (``profile_worker``, after the measurements, so it does not
disturb them); ``python bench/hotspots.py FILE...`` summarises stacks recorded earlier.
Needs ``py-spy`` (``pip install py-spy``; not a project dependency) and the right to ptrace the worker
(root, or ptrace_scope 0). Samples are taken with ``--gil``: only the thread holding the GIL, which is
what limits one worker; system time in socket calls is not in them.
"""

import collections
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import time

import payloads
from client import FUNCTION_HEADERS, FUNCTION_PATH, FUNCTION_STREAM_PATH, Client

REPO = pathlib.Path(__file__).resolve().parent.parent

# The package a frame's file belongs to, in the order they are looked for (paths shortened by _name).
PACKAGES = ("gemini_compat/", "main.py", "jsonschema/", "referencing/", "requests/", "urllib3/", "werkzeug/",
            "flask/", "gunicorn/", "functions_framework/", "json/", "http/client", "email/", "socket",
            "selectors", "concurrent/", "threading", "logging/")


def py_spy():
    """The py-spy executable (next to this Python first), or None."""
    local = pathlib.Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def record(pid, seconds, out, rate=250):
    """Record ``pid`` for ``seconds`` into ``out`` (collapsed stacks); returns an error text or None."""
    executable = py_spy()
    if executable is None:
        return "py-spy is not installed (pip install py-spy)"
    result = subprocess.run(
        [executable, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate), "--gil",
         "--nonblocking", "--full-filenames", "--format", "raw", "-o", str(out)],
        capture_output=True, text=True)
    if result.returncode != 0:
        return f"py-spy failed: {result.stderr.strip()[-500:]}"
    return None


_SHORTEN = re.compile(r"\((?:[^()]*/site-packages/|[^()]*/lib/python3\.\d+/|" + re.escape(str(REPO)) + r"/)")


def _name(frame):
    """``function (path:line)`` -> ``function (short/path)``: functions, not lines; paths from the
    package (or the repository) down, so that our own files read ``gemini_compat/...``."""
    return _SHORTEN.sub("(", re.sub(r":\d+\)", ")", frame))


def _package(frame):
    for package in PACKAGES:
        if f"({package}" in frame:
            return "ours" if package in ("gemini_compat/", "main.py") else package.rstrip("/")
    return "other"


def summarise(path, top=20):
    """Shares of the samples: by the package of the innermost frame (self time), and inclusive per
    function (a function counts once per sample however deep it recurses)."""
    total = 0
    inclusive, own, packages = collections.Counter(), collections.Counter(), collections.Counter()
    for line in pathlib.Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        count = int(count)
        total += count
        frames = [_name(frame) for frame in stack.split(";")]
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
        packages[next((_package(f) for f in reversed(frames) if _package(f) != "other"), "other")] += count
    if not total:
        return {"samples": 0}

    def shares(counter, limit):
        return [(name, round(100 * value / total, 1)) for name, value in counter.most_common(limit)]

    # Inclusive shares of the layers worth acting on: our code and the libraries it calls.
    interesting = collections.Counter({name: value for name, value in inclusive.items()
                                       if any(p in name for p in ("(gemini_compat/", "(main.py",
                                                                  "(requests/sessions.py", "(jsonschema/_keywords.py",
                                                                  "(gunicorn/http/", "(werkzeug/wsgi.py",
                                                                  "(urllib3/poolmanager.py", "(flask/app.py"))})
    return {
        "samples": total,
        "note": "self_by_package: each sample goes to the package of its innermost frame that belongs to one",
        "self_by_package_pct": shares(packages, top),
        "inclusive_pct": shares(interesting, top),
        "self_pct": shares(own, top),
    }


def render(title, summary):
    if not summary.get("samples"):
        return f"{title}: no samples\n"
    lines = [f"{title} ({summary['samples']} samples with the GIL held)", "",
             "Self time by package: " + ", ".join(f"{name} {pct}%" for name, pct in summary["self_by_package_pct"]),
             "", "Inclusive (our code and the layers it calls):"]
    lines += [f"- {pct}% {name}" for name, pct in summary["inclusive_pct"]]
    lines += ["", "Self time, top functions:"]
    lines += [f"- {pct}% {name}" for name, pct in summary["self_pct"][:12]]
    return "\n".join(lines) + "\n"


def profile_worker(function, out_prefix, seconds):
    """py-spy on the worker under load: 16 clients of generateContent, then 4 clients of 200-chunk
    streams. Runs after the measurements; files ``<out>-profile-{generate,stream}.txt``."""
    pids = function.pids()
    if len(pids) < 2:
        return {"error": "no gunicorn worker found"}
    worker = pids[1]
    loads = {
        "generate": (FUNCTION_PATH, payloads.encode(payloads.typical()), 16, "post"),
        "stream": (FUNCTION_STREAM_PATH, payloads.encode(payloads.typical(chunks=200)), 4, "stream"),
    }
    profiles = {}
    for name, (path, body, clients, method) in loads.items():
        stop = threading.Event()

        def hammer(path, body, method, stop):  # this load's, not the loop's next one
            client = Client(function.port, path, FUNCTION_HEADERS)
            while not stop.is_set():
                try:
                    getattr(client, method)(body)
                except Exception:  # noqa: BLE001 - load only; the measurements above count errors
                    client.close()
            client.close()

        threads = [threading.Thread(target=hammer, args=(path, body, method, stop), daemon=True) for _ in range(clients)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            raw = pathlib.Path(f"{out_prefix}-profile-{name}.txt")
            error = record(worker, seconds, raw)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        profiles[name] = {"error": error} if error else {"file": str(raw), **summarise(raw)}
    return profiles


if __name__ == "__main__":
    for file in sys.argv[1:]:
        print(render(file, summarise(file)))
