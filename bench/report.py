"""The report: rows against the targets, the Markdown table with its notes, and the machine it ran on."""

import datetime
import importlib.metadata
import math
import os
import pathlib
import platform
import subprocess

import hotspots
from cpu import busy_cores
from processes import REPO

# Upper bounds for a 2-core machine, set on purpose near what the bare stack costs, measured this same way
# (a pass-through function of a few lines on functions-framework, gunicorn and urllib3: added p50
# 1.0 ms, p99 1.5 ms, 200-chunk stream +4.5 ms, cold start 220-270 ms, 74 MB for master + worker): on
# a pay-per-use platform every millisecond of CPU and every megabyte is billed, and a cold start is felt
# by the caller, so the function may cost little beyond the framework that serves it. The two CPU bounds
# are for our own work per request, which shows directly in the added latency.
TARGETS = {
    "added_p50_ms": 1.0,
    "added_p99_ms": 3.0,
    "stream_added_ttfb_ms": 2.0,
    "stream_added_total_ms": 10.0,
    "cold_start_ms": 500.0,
    "rss_mb": 85.0,
    "translation_us": 100.0,
    "validate_cli_us": 1000.0,
}


def machine_info():
    cpu = "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages = {}
    for name in ("functions-framework", "gunicorn", "flask", "werkzeug", "requests", "urllib3", "jsonschema"):
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = "absent"
    mem_kb = 0
    try:
        mem_kb = int(pathlib.Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        pass

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": packages,
        "threads": int(os.environ.get("THREADS") or (os.cpu_count() or 1) * 4),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "busy_cores_at_start": busy_cores(0.5),
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--", "main.py", "gemini_compat", "schemas")),
    }


def machine_line(m):
    packages = ", ".join(f"{name} {version}" for name, version in m["packages"].items())
    commit = m["commit"] + (" + uncommitted changes" if m["uncommitted_changes"] else "")
    return (f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Linux {m['kernel']}, Python {m['python']}; "
            f"{packages}; THREADS={m['threads']}; {m['date']}; commit {commit}")


def _fmt(value, unit, digits=2):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f} {unit}".strip()


def _measured(metric, value, unit, target_key=None, digits=2):
    """A row with ``value`` formatted: PASS/FAIL against ``TARGETS[target_key]``, else info."""
    if target_key is None:
        return (metric, _fmt(value, unit, digits), "", "info")
    target = TARGETS[target_key]
    ok = value is not None and not (isinstance(value, float) and math.isnan(value)) and value <= target
    return (metric, _fmt(value, unit, digits), f"≤ {target:g} {unit}", "PASS" if ok else "FAIL")


def _info(metric, text):
    return (metric, text, "", "info")


def report_rows(r):
    """(metric, value, target, result) rows; result is PASS/FAIL against a target, else info."""
    return [*_latency_rows(r), *_stream_rows(r), *_throughput_rows(r), *_start_and_memory_rows(r),
            *_translation_rows(r["translation"])]


def _latency_rows(r):
    lat, small = r["latency"], r["latency_small"]
    return [
        _measured(f"Added latency p50 (2 KB request, {lat['pairs']} pairs)", lat["added_p50_ms"], "ms",
                  "added_p50_ms"),
        _measured("Added latency p99", lat["added_p99_ms"], "ms", "added_p99_ms"),
        _info("  direct / through function p50", f"{lat['direct_p50_ms']:.2f} / {lat['function_p50_ms']:.2f} ms"),
        _info(f"  added p50 / p99, one-line request ({small['pairs']} pairs)",
              f"{small['added_p50_ms']:.2f} / {small['added_p99_ms']:.2f} ms"),
    ]


def _stream_rows(r):
    s, short, reuse = r["stream"], r["stream_short"], r["upstream_connections"]
    return [
        _measured(f"Stream {s['chunks']} chunks: added time to first chunk (p50 of {s['runs']})",
                  s["added_ttfb_p50_ms"], "ms", "stream_added_ttfb_ms"),
        _measured(f"Stream {s['chunks']} chunks: added total time (p50)", s["added_total_p50_ms"], "ms",
                  "stream_added_total_ms"),
        _info("  direct / through function total p50",
              f"{s['direct_total_p50_ms']:.2f} / {s['function_total_p50_ms']:.2f} ms"),
        _info(f"  {short['chunks']}-chunk answer: added time to first chunk / added total (p50)",
              f"{short['added_ttfb_p50_ms']:.2f} / {short['added_total_p50_ms']:.2f} ms"),
        _info("  upstream connections the function opened: non-streaming / streaming",
              f"{reuse['generate']['connections']} for {reuse['generate']['requests']} requests / "
              f"{reuse['stream']['connections']} for {reuse['stream']['requests']} streams"),
        ("Stream chunks arrived (min over runs: direct / function text / function events)",
         f"{s['direct_chunks_min']} / {s['function_text_chunks_min']} / {s['function_events_min']}",
         f"{s['chunks']} / {s['chunks']} / ≥ {s['chunks'] + 1}",
         "PASS" if s["all_chunks_arrived"] and short["all_chunks_arrived"] else "FAIL"),
    ]


def _throughput_rows(r):
    t, td = r["throughput"], r["throughput_direct"]
    cpu, share = t["cpu_ms_per_request"], t["cpu_share_of_one_core"]
    return [
        _info(f"Throughput, {t['clients']} concurrent clients, {t['seconds']:.0f} s",
              f"{t['rps']:.0f} req/s ({t['ok']} ok)"),
        ("  errors under load", str(t["errors"]), "0", "PASS" if t["errors"] == 0 else "FAIL"),
        _info("  latency under load p50 / p99", f"{t['latency_p50_ms']:.1f} / {t['latency_p99_ms']:.1f} ms"),
        _info("  CPU per request under load: function / upstream / client",
              f"{cpu['function']:.2f} / {cpu['upstream']:.2f} / {cpu['client']:.2f} ms "
              f"(function at {share['function'] * 100:.0f}% of a core; other processes: "
              f"{share.get('others', 0) * 100:.0f}%)"),
        _info(f"  direct to the upstream, {td['clients']} clients (reference)", f"{td['rps']:.0f} req/s"),
    ]


def _start_and_memory_rows(r):
    c, imp, m = r["cold_start"], r["import"], r["memory"]
    return [
        _measured(f"Cold start: process start to first answer (median of {len(c['runs_ms'])})", c["median_ms"],
                  "ms", "cold_start_ms", digits=0),
        _info("  import time of main (in process / wall minus bare python); RSS after import",
              f"{imp['inside_ms']:.0f} / {imp['wall_minus_bare_ms']:.0f} ms; {imp['rss_after_import_mb']:.1f} MB"),
        _info("  of which compiling main.py + gemini_compat, when no .pyc is cached",
              f"{imp['compile_own_sources_ms']:.0f} ms"),
        _measured("RSS after load, gunicorn master + worker", m["after_load_mb"], "MB", "rss_mb", digits=1),
        _info("  master / worker RSS; PSS total; RSS before load",
              f"{m['master_mb']:.1f} / {m['workers_mb']:.1f} MB; {m['pss_mb']:.1f} MB; {m['idle_mb']:.1f} MB"),
    ]


def _translation_rows(tr):
    def us(name):
        case = tr.get(name, {})
        return case.get("us") if isinstance(case, dict) else None

    size = tr["sizes_bytes"]["cli_like"] / 1000
    return [
        _measured("Translation CPU per request (chat_request + gemini_response, 2 KB)", tr.get("translation_us"),
                  "µs", "translation_us", digits=1),
        _measured("  validation, 2 KB request", us("validate_2k"), "µs", digits=1),
        _info("  chat_request / gemini_response",
              f"{_fmt(us('chat_request_2k'), 'µs', 1)} / {_fmt(us('gemini_response'), 'µs', 1)}"),
        _measured("  full request path (json.loads + validate + chat_request + json.dumps)", us("request_path_2k"),
                  "µs", digits=1),
        _measured("  full request path, one-line request", us("request_path_small"), "µs", digits=1),
        _measured("  full response path (json.loads + gemini_response + json.dumps)", us("response_path"), "µs",
                  digits=1),
        _measured("  stream: StreamTranslator.translate per text chunk", us("stream_translate_chunk"), "µs",
                  digits=1),
        _measured("  stream: gateway.stream_body per chunk (SSE parse + JSON + translate + encode)",
                  us("stream_path_per_chunk"), "µs", digits=1),
        _measured(f"Validation of a {size:.0f} KB Gemini-CLI-like request (23 tools, 11 turns)",
                  us("validate_cli_40k"), "µs", "validate_cli_us", digits=0),
        _measured("  chat_request of the same request", us("chat_request_cli_40k"), "µs", digits=0),
    ]


def render(results):
    lines = ["| Metric | Value | Target | Result |", "|---|---|---|---|"]
    for metric, value, target, outcome in report_rows(results):
        lines.append(f"| {metric} | {value} | {target} | {outcome} |")
    lines.append("")
    lines.append(f"Machine: {machine_line(results['machine'])}")
    phases = {"before the run": results["machine"]["busy_cores_at_start"],
              "microbenchmarks": results["others_cores_microbenchmarks"], **results["others_cores"]}
    busy = {phase: cores for phase, cores in phases.items() if cores > 0.15}
    if busy:
        lines.append("")
        lines.append("Warning: other processes used the CPU ("
                     + ", ".join(f"{cores:.2f} cores during {phase}" if phase != "before the run"
                                 else f"{cores:.2f} cores {phase}" for phase, cores in busy.items())
                     + "); they compete with the measurement and inflate the figures. Rerun on an idle "
                       "machine (--wait-idle).")
    lines.append("")
    imp = results["import"]["self_time_by_package_ms"]
    lines.append("Import self time by top-level package (`-X importtime`): "
                 + ", ".join(f"{name} {ms:.0f} ms" for name, ms in imp.items()))
    errors = {name: case["error"] for name, case in results["translation"].items()
              if isinstance(case, dict) and "error" in case}
    for name, error in errors.items():
        lines.append(f"\nMicrobenchmark {name} failed: {error}")
    for problem in results["stream"]["problems"] + results["stream_short"]["problems"]:
        lines.append(f"\nStream problem: {problem}")
    for example in results["throughput"]["error_examples"]:
        lines.append(f"\nThroughput error: {example}")
    for name, profile in results.get("profile", {}).items():
        lines.append("")
        if "error" in profile:
            lines.append(f"Profile {name}: {profile['error']}")
        else:
            lines.append("#### " + hotspots.render(f"Worker profile under {name} load", profile).rstrip())
    lines.append("")
    command = " ".join(["python bench/run.py", *results["argv"]])
    lines.append(f"Run: `{command}`, {results['run_seconds']:.0f} s.")
    return "\n".join(lines) + "\n"
