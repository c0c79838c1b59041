#!/usr/bin/env python
"""Performance benchmark of the function, the way it is deployed. Not part of the test suite.

    python bench/run.py            # full run (about 30 s); writes bench/results.md and bench/results.json
    python bench/run.py --quick    # short run (about 10 s), noisier
    python bench/run.py --requests 5000 --out /tmp/results.md
    python bench/run.py --profile  # and then where the worker's CPU goes (needs py-spy)
    python bench/run.py --wait-idle 300  # start once other processes leave the CPU alone

It starts a fast OpenAI-compatible upstream (bench/fast_upstream.py, its own process) on loopback and
the function with ``functions-framework --target=gemini`` (gunicorn, 1 worker, THREADS threads), then
measures in one run:

- added latency: the same non-streaming request sent directly to the upstream (OpenAI format) and
  through the function (Gemini format), sequentially over keep-alive connections, the two paths
  interleaved (alternating which goes first) so machine noise hits both alike; p50/p99 of the per-pair
  difference;
- streaming: a 200-chunk answer directly vs through the function (``alt=sse``): added time to the first
  event and added total time, every chunk counted and the text compared;
- throughput: 16 concurrent keep-alive clients against one instance for a few seconds;
- cold start (process start to the first successful answer) and the import time of ``main``;
- memory: RSS of the gunicorn master and its worker after the load;
- CPU cost of the pure translation, in process (validation, request and response translation, per
  stream chunk, and validation of a 40 KB Gemini-CLI-like request).

The targets (``report.TARGETS``) are upper bounds for a 2-core machine, near what the bare
functions-framework stack costs measured the same way. Everything shares the same cores (client,
function, upstream), so absolute numbers vary by machine; the added-latency figures are differences
measured side by side and are the most comparable across runs.

This file is the order of the phases; the parts live beside it: ``processes.py`` (the servers),
``client.py`` (the keep-alive client), ``cpu.py`` (CPU accounting), ``measurements.py`` (over HTTP),
``microbenchmarks.py`` (in process), ``hotspots.py`` (``--profile``), ``report.py`` (the table).
"""

import argparse
import contextlib
import dataclasses
import json
import os
import pathlib
import signal
import sys
import time

BENCH = pathlib.Path(__file__).resolve().parent
REPO = BENCH.parent


def _ensure_venv():
    """Re-run under the project's venv when started with a Python that lacks the dependencies."""
    try:
        import functions_framework  # noqa: F401
    except ImportError:
        venv = REPO / ".venv"
        venv_python = venv / "bin" / "python"
        if venv_python.exists() and pathlib.Path(sys.prefix).resolve() != venv.resolve():
            os.execv(str(venv_python), [str(venv_python), *sys.argv])
        raise


_ensure_venv()
# The function's package (microbenchmarks), this folder, and the tests' /proc and SSE readers (helpers.py).
sys.path[:0] = [str(REPO), str(BENCH), str(REPO / "tests")]

import payloads  # noqa: E402
from client import DIRECT_HEADERS, DIRECT_PATH, FUNCTION_HEADERS, FUNCTION_PATH, FUNCTION_STREAM_PATH, Client  # noqa: E402
from cpu import CpuMeter, others_cores, wait_until_idle  # noqa: E402
from hotspots import profile_worker  # noqa: E402
from measurements import (  # noqa: E402
    function_connections,
    measure_added_latency,
    measure_cold_start,
    measure_import,
    measure_stream,
    measure_throughput,
)
from microbenchmarks import measure_translation  # noqa: E402
from processes import FunctionProcess, UpstreamProcess, memory_mb  # noqa: E402
from report import machine_info, render  # noqa: E402


def log(message):
    print(message, file=sys.stderr, flush=True)


def parse_args():
    parser = argparse.ArgumentParser(description="Benchmark of the Gemini-compatible function (see the module doc).")
    parser.add_argument("--quick", action="store_true", help="short run (~20 s), noisier numbers")
    parser.add_argument("--requests", type=int, help="sequential request pairs for the added latency "
                                                     "(default 3000, quick 300)")
    parser.add_argument("--out", default=str(BENCH / "results.md"),
                        help="Markdown table to write (default bench/results.md); raw numbers go next to it as .json")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients for the throughput (default 16)")
    parser.add_argument("--duration", type=float, help="seconds of throughput load (default 5, quick 2)")
    parser.add_argument("--chunks", type=int, default=200, help="content chunks of the streamed answer (default 200)")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="first wait up to SECONDS for the machine to be idle (other processes using "
                             "under 0.15 cores for 3 s in a row), e.g. while test suites run")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, sample the worker under load with py-spy (must be installed) and "
                             "append where its CPU goes")
    return parser.parse_args()



def plan_for(args):
    """How much of each measurement: --quick, --requests and --duration applied."""
    quick = args.quick
    pairs = args.requests or (300 if quick else 3000)
    return {
        "pairs": pairs,
        "small_pairs": max(50, pairs // 4),
        "warmup": 30 if quick else 100,
        "stream_runs": 10 if quick else 50,
        "duration": args.duration or (2.0 if quick else 5.0),
        "direct_duration": 1.0 if quick else 3.0,
        "cold_runs": 2 if quick else 3,
        "import_runs": 2 if quick else 3,
        "micro_repeats": 3 if quick else 7,
        "profile_seconds": 3 if quick else 8,
    }


@dataclasses.dataclass
class Session:
    """What the phases share: the options, the plan, the results so far, the servers and open clients."""

    args: argparse.Namespace
    plan: dict
    results: dict
    stack: contextlib.ExitStack  # stops the servers and closes the clients at the end, in reverse order
    upstream: UpstreamProcess = None
    function: FunctionProcess = None
    servers: dict = None  # {"function": pids, "upstream": pids}: whose CPU the meters count
    idle_mb: float = None  # the function's RSS before any load
    clients: list = dataclasses.field(default_factory=list)

    def client(self, port, path, headers):
        client = Client(port, path, headers)
        self.clients.append(client)
        self.stack.callback(client.close)
        return client


# --- the phases, in order ------------------------------------------------------------------------

def translation_microbenchmarks(s):
    # In process, first, while nothing else runs on the machine.
    meter = CpuMeter({"upstream": [s.upstream.process.pid]})
    s.results["translation"] = measure_translation(s.plan["micro_repeats"])
    s.results["others_cores_microbenchmarks"] = others_cores(meter)


def import_time(s):
    s.results["import"] = measure_import(s.upstream.base_url, s.plan["import_runs"])


def cold_start(s):
    s.results["cold_start"] = measure_cold_start(s.upstream.base_url, s.plan["cold_runs"])


def function_start(s):
    """The instance the remaining phases measure."""
    s.function = FunctionProcess(s.upstream.base_url)
    s.stack.callback(s.function.stop)
    s.function.wait_until_answering(payloads.encode(payloads.typical()))
    s.idle_mb = memory_mb(s.function.pids())
    s.servers = {"function": s.function.pids(), "upstream": [s.upstream.process.pid]}
    s.results["others_cores"] = {}  # other processes' CPU during each timed phase
    s.results["upstream_connections"] = {}  # does the function reuse its upstream connections?


def added_latency(s):
    direct = s.client(s.upstream.port, DIRECT_PATH, DIRECT_HEADERS)
    through = s.client(s.function.port, FUNCTION_PATH, FUNCTION_HEADERS)
    before = s.upstream.stats()
    meter = CpuMeter(s.servers)
    s.results["latency"] = measure_added_latency(
        direct, through, payloads.encode(payloads.typical_openai()), payloads.encode(payloads.typical()),
        s.plan["pairs"], s.plan["warmup"])
    s.results["latency_small"] = measure_added_latency(
        direct, through, payloads.encode(payloads.small_openai()), payloads.encode(payloads.small()),
        s.plan["small_pairs"], s.plan["warmup"] // 2)
    s.results["others_cores"]["added latency"] = others_cores(meter)
    s.results["upstream_connections"]["generate"] = function_connections(before, s.upstream.stats(), direct)


def streaming(s):
    direct = s.client(s.upstream.port, DIRECT_PATH, DIRECT_HEADERS)
    through = s.client(s.function.port, FUNCTION_STREAM_PATH, FUNCTION_HEADERS)
    meter = CpuMeter(s.servers)
    before = s.upstream.stats()
    s.results["stream"] = measure_stream(direct, through, s.args.chunks, s.plan["stream_runs"],
                                         warmup=3 if s.args.quick else 5)
    s.results["others_cores"]["streaming"] = others_cores(meter)
    s.results["upstream_connections"]["stream"] = function_connections(before, s.upstream.stats(), direct)
    # The same with a 5-chunk answer: the per-request part of the time to first chunk, without the
    # effects of a 200-chunk burst (the previous stream's and the current one's).
    s.results["stream_short"] = measure_stream(direct, through, 5, s.plan["stream_runs"], warmup=3)
    for client in s.clients:  # idle keep-alive connections would occupy gunicorn during the load
        client.close()


def throughput_and_memory(s):
    pids = s.function.pids()
    s.results["throughput"] = measure_throughput(
        s.function.port, FUNCTION_PATH, FUNCTION_HEADERS, payloads.encode(payloads.typical()), s.args.clients,
        s.plan["duration"], b'{"candidates"', s.servers)
    s.results["others_cores"]["throughput"] = s.results["throughput"]["cpu_share_of_one_core"]["others"]
    s.results["memory"] = {
        "idle_mb": s.idle_mb,
        "after_load_mb": memory_mb(pids),
        "master_mb": memory_mb(pids[:1]),
        "workers_mb": memory_mb(pids[1:]),
        "pss_mb": memory_mb(pids, "Pss"),
        "processes": len(pids),
    }
    s.results["throughput_direct"] = measure_throughput(
        s.upstream.port, DIRECT_PATH, DIRECT_HEADERS, payloads.encode(payloads.typical_openai()), s.args.clients,
        s.plan["direct_duration"], b'{"id"', {"upstream": [s.upstream.process.pid]})


def profile(s):
    out = pathlib.Path(s.args.out)
    s.results["profile"] = profile_worker(s.function, str(out.parent / out.stem), s.plan["profile_seconds"])
    for name, result in s.results["profile"].items():
        log(f"  profile {name}: {result.get('error') or result['file']}")


PHASES = [
    ("translation microbenchmarks", translation_microbenchmarks),
    ("import time", import_time),
    ("cold start", cold_start),
    ("function start", function_start),
    ("added latency", added_latency),
    ("streaming", streaming),
    ("throughput and memory", throughput_and_memory),
]


def run(args):
    """The phases in order against a fresh fast upstream, each logging its duration; all servers are
    stopped at the end, also on an error or Ctrl-C."""
    plan = plan_for(args)
    phases = PHASES + ([("profile", profile)] if args.profile else [])
    with contextlib.ExitStack() as stack:
        s = Session(args, plan, {"machine": machine_info(), "plan": plan}, stack)
        s.upstream = UpstreamProcess()
        stack.callback(s.upstream.stop)
        log(f"fast upstream on port {s.upstream.port}")
        for name, phase in phases:
            started = time.perf_counter()
            phase(s)
            log(f"  {name}: {time.perf_counter() - started:.1f} s")
    return s.results


def main():
    args = parse_args()
    # A SIGTERM (e.g. from a CI timeout) unwinds through run()'s exit stack, which stops the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.wait_idle:
        log(f"waited {wait_until_idle(args.wait_idle):.0f} s for an idle machine")
    started = time.perf_counter()
    results = run(args)
    results["run_seconds"] = time.perf_counter() - started
    results["argv"] = sys.argv[1:]
    table = render(results)
    print(table)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# Benchmark results\n\n{table}")
    out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    log(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
