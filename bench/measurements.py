"""The measurements over HTTP: added latency, streaming, throughput, cold start and import time."""

import collections
import gc
import json
import math
import statistics
import subprocess
import sys
import threading
import time

import payloads
from client import Client
from cpu import CpuMeter
from helpers import sse_data
from processes import REPO, FunctionProcess, function_env


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def measure_added_latency(direct, function, direct_body, gemini_body, pairs, warmup):
    """Sequential pairs, interleaved and alternating order; the added latency is per-pair."""
    for _ in range(warmup):
        _expect_ok(direct.post(direct_body), "direct")
        _expect_ok(function.post(gemini_body), "function")
    direct_times, function_times, added = [], [], []
    gc.disable()  # a client-side collection would land on one side of a pair only
    try:
        for i in range(pairs):
            if i % 2:
                f = _expect_ok(function.post(gemini_body), "function")
                d = _expect_ok(direct.post(direct_body), "direct")
            else:
                d = _expect_ok(direct.post(direct_body), "direct")
                f = _expect_ok(function.post(gemini_body), "function")
            direct_times.append(d)
            function_times.append(f)
            added.append(f - d)
    finally:
        gc.enable()
    ms = 1000
    return {
        "pairs": pairs,
        "added_p50_ms": statistics.median(added) * ms,
        "added_p90_ms": percentile(added, 90) * ms,
        "added_p99_ms": percentile(added, 99) * ms,
        "direct_p50_ms": statistics.median(direct_times) * ms,
        "direct_p99_ms": percentile(direct_times, 99) * ms,
        "function_p50_ms": statistics.median(function_times) * ms,
        "function_p99_ms": percentile(function_times, 99) * ms,
    }


def _expect_ok(result, what):
    status, data, seconds = result
    if status != 200:
        raise RuntimeError(f"{what} answered {status}: {data[:500]!r}")
    return seconds


def check_direct_stream(data):
    """(events, content chunks, text) of the upstream's own stream."""
    events = sse_data(data)
    texts = []
    for payload in events:
        if payload != b"[DONE]":
            for choice in json.loads(payload).get("choices", []):
                if choice.get("delta", {}).get("content"):
                    texts.append(choice["delta"]["content"])
    return len(events), len(texts), "".join(texts)


def check_function_stream(data):
    """(events, text chunks, text, has a final chunk) of the function's Gemini stream."""
    events = sse_data(data)
    texts, final = [], False
    for payload in events:
        chunk = json.loads(payload)
        if "error" in chunk:
            raise RuntimeError(f"function stream carried an error: {chunk}")
        for candidate in chunk.get("candidates", []):
            text = "".join(part.get("text", "") for part in candidate.get("content", {}).get("parts", []))
            if text:
                texts.append(text)
            final = final or bool(candidate.get("finishReason"))
    return len(events), len(texts), "".join(texts), final


def measure_stream(direct, function, chunks, runs, warmup):
    """``runs`` pairs of ``chunks``-chunk streams, direct and through the function, alternating order."""
    direct_body = payloads.encode(payloads.typical_openai(stream=True, chunks=chunks))
    gemini_body = payloads.encode(payloads.typical(chunks=chunks))
    for _ in range(warmup):
        direct.stream(direct_body)
        function.stream(gemini_body)
    rows = []
    problems = []
    gc.disable()
    try:
        for i in range(runs):
            order = (direct, function) if i % 2 == 0 else (function, direct)
            result = {client: client.stream(direct_body if client is direct else gemini_body) for client in order}
            rows.append((result[direct], result[function]))
    finally:
        gc.enable()
    ttfb_added, total_added, direct_totals, function_totals = [], [], [], []
    direct_chunks, function_chunks, function_events = [], [], []
    for (d_status, d_first, d_total, d_data), (f_status, f_first, f_total, f_data) in rows:
        if d_status != 200 or f_status != 200:
            problems.append(f"status direct {d_status}, function {f_status}: {f_data[:300]!r}")
            continue
        try:
            _, d_count, d_text = check_direct_stream(d_data)
            f_events, f_count, f_text, final = check_function_stream(f_data)
        except (ValueError, RuntimeError) as error:  # not JSON, or an error event: counted, not fatal
            problems.append(f"unreadable stream: {error}"[:300])
            continue
        if d_count != chunks or f_count != chunks or not final or f_text != d_text:
            problems.append(f"direct {d_count} chunks, function {f_count} text chunks (final: {final}), "
                            f"same text: {f_text == d_text}")
        direct_chunks.append(d_count)
        function_chunks.append(f_count)
        function_events.append(f_events)
        ttfb_added.append(f_first - d_first)
        total_added.append(f_total - d_total)
        direct_totals.append(d_total)
        function_totals.append(f_total)
    ms = 1000
    return {
        "runs": runs,
        "chunks": chunks,
        "added_ttfb_p50_ms": statistics.median(ttfb_added) * ms if ttfb_added else float("nan"),
        "added_total_p50_ms": statistics.median(total_added) * ms if total_added else float("nan"),
        "added_total_max_ms": max(total_added) * ms if total_added else float("nan"),
        "direct_total_p50_ms": statistics.median(direct_totals) * ms if direct_totals else float("nan"),
        "function_total_p50_ms": statistics.median(function_totals) * ms if function_totals else float("nan"),
        "direct_chunks_min": min(direct_chunks, default=0),
        "function_text_chunks_min": min(function_chunks, default=0),
        "function_events_min": min(function_events, default=0),
        "problems": problems[:5],
        "all_chunks_arrived": not problems and len(rows) == runs,
    }


def measure_throughput(port, path, headers, body, clients, duration, expect_prefix, cpu_pids=None):
    """``clients`` threads, each a keep-alive connection, as fast as answers come, for ``duration`` s.

    The clients are threads of this process: they spend their time blocked in socket calls (GIL
    released), and http.client costs ~0.2 ms of CPU per request, a small share next to the function's
    (the CPU accounting below shows it). The main thread only waits meanwhile.
    ``cpu_pids``: {name: [pids]} whose CPU time (user + system) per answered request is reported, so
    that the machine-independent cost per request is seen, not only the rate."""
    meter = CpuMeter(cpu_pids or {})
    stop_at = [0.0]
    barrier = threading.Barrier(clients + 1)
    results = []
    lock = threading.Lock()

    def run():
        client = Client(port, path, headers)
        ok = errors = 0
        latencies = []
        error_examples = []
        barrier.wait()
        while time.perf_counter() < stop_at[0]:
            try:
                status, data, seconds = client.post(body)
                if status == 200 and data.startswith(expect_prefix):
                    ok += 1
                    latencies.append(seconds)
                else:
                    errors += 1
                    error_examples.append(f"{status}: {data[:200]!r}")
            except Exception as error:  # noqa: BLE001 - counted, and the connection is renewed
                errors += 1
                error_examples.append(repr(error))
                client.close()
        client.close()
        with lock:
            results.append((ok, errors, latencies, error_examples[:3]))

    threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    stop_at[0] = start + duration
    barrier.wait()
    for thread in threads:
        thread.join(duration + 60)
    elapsed = time.perf_counter() - start
    cpu_used, _ = meter.read()
    ok = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    latencies = [x for r in results for x in r[2]]
    return {
        "clients": clients,
        "seconds": elapsed,
        "ok": ok,
        "errors": errors,
        "rps": ok / elapsed,
        "latency_p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "latency_p99_ms": percentile(latencies, 99) * 1000 if latencies else float("nan"),
        "error_examples": [e for r in results for e in r[3]][:5],
        "cpu_ms_per_request": {name: used * 1000 / max(ok, 1) for name, used in cpu_used.items()},
        "cpu_share_of_one_core": {name: used / elapsed for name, used in cpu_used.items()},
    }


def measure_cold_start(upstream_url, runs):
    """Popen of functions-framework to the first successful generateContent answer."""
    body = payloads.encode(payloads.typical())
    times = []
    for _ in range(runs):
        server = FunctionProcess(upstream_url)
        try:
            times.append(server.wait_until_answering(body) * 1000)
        finally:
            server.stop()
    return {"runs_ms": times, "median_ms": statistics.median(times)}


def measure_import(upstream_url, runs):
    """Import time of ``main`` in fresh interpreters: timed inside the process (perf_counter around
    the import), and as wall time of ``python -c 'import main'`` minus ``python -c pass``; plus the
    RSS after the import and where the import time goes (``-X importtime``, self time by package)."""
    env = function_env(upstream_url)
    probe = ("import time; t = time.perf_counter(); import main; t = time.perf_counter() - t\n"
             "rss = [l for l in open('/proc/self/status') if l.startswith('VmRSS:')][0].split()[1]\n"
             "print(t * 1000, int(rss) / 1024)")
    inside, rss = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True,
                             check=True).stdout.split()
        inside.append(float(out[0]))
        rss.append(float(out[1]))

    def wall(code):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, capture_output=True)
        return (time.perf_counter() - start) * 1000

    bare = statistics.median(wall("pass") for _ in range(runs))
    with_main = statistics.median(wall("import main") for _ in range(runs))
    profile = subprocess.run([sys.executable, "-X", "importtime", "-c", "import main"], cwd=REPO, env=env,
                             capture_output=True, text=True, check=True).stderr
    by_package = collections.Counter()
    for line in profile.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line[len("import time:"):].split("|")
        by_package[name.strip().split(".")[0]] += int(self_us)
    # What an interpreter pays when no valid .pyc is cached (PYTHONDONTWRITEBYTECODE=1, as in the
    # Dockerfile, with no compileall step): compiling the project's own sources.
    sources = [REPO / "main.py", *sorted((REPO / "gemini_compat").glob("*.py"))]
    texts = [(str(path), path.read_text()) for path in sources]
    start = time.perf_counter()
    for name, text in texts:
        compile(text, name, "exec")
    compile_ms = (time.perf_counter() - start) * 1000
    return {
        "compile_own_sources_ms": compile_ms,
        "inside_ms": statistics.median(inside),
        "wall_minus_bare_ms": with_main - bare,
        "python_startup_ms": bare,
        "rss_after_import_mb": statistics.median(rss),
        "self_time_by_package_ms": {name: us / 1000 for name, us in by_package.most_common(10)},
    }


def function_connections(before, after, direct_client):
    """Upstream connections the function opened, and its upstream requests, between two /stats."""
    return {"connections": after["connections"] - before["connections"] - direct_client.connects,
            "requests": after["requests"] - before["requests"] - direct_client.requests}
