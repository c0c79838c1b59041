"""Reliability: the hostile-caller and hostile-upstream cases of tests/test_hostile.py, and those of
the Files API and cachedContents (tests/test_files_hostile.py) that have a time or memory figure, run once each
against the function as deployed (functions-framework, gunicorn, THREADS=16), printed as the
Markdown table of the README's "Reliability" section.

    python bench/reliability.py            # about two minutes on 2 cores

Each memory figure is the gunicorn worker's peak RSS (VmHWM) above its RSS after one warm-up
request, in a fresh function process per case. The verdict column applies the bounds the tests
assert; this script reports, the tests decide.
"""

import contextlib
import io
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

TESTS = pathlib.Path(__file__).resolve().parent.parent / "tests"
sys.path[:0] = [str(TESTS), str(TESTS.parent)]  # the tests' helpers, and the function's package they use

import hostile_upstream as hu  # noqa: E402
import test_files_hostile as tf  # noqa: E402
import test_hostile as th  # noqa: E402
from fake_upstream import FakeUpstream  # noqa: E402
from helpers import hello  # noqa: E402

MiB = 1024 * 1024
rows = []


def row(case, count, seconds, up_mb, result, ok):
    rows.append((case, count, "" if seconds is None else f"{seconds:.2f} s",
                 "" if up_mb is None else f"{up_mb:.0f} MB", result, "PASS" if ok else "FAIL"))


def described(response):
    """Status and Gemini status of a requests or raw response."""
    if response is None:
        return "no answer"
    status = response.status_code if hasattr(response, "status_code") else response.status
    try:
        body = response.json() if hasattr(response, "json") else json.loads(response.body)
        error = body.get("error") if isinstance(body, dict) else None
    except ValueError:
        error = None
    return f"{status} {error['status']}" if error else str(status)


def attempt(case, count, run):
    """Run one case; a crash of the bench itself becomes a FAIL row, not a lost table."""
    try:
        run()
    except Exception as error:  # noqa: BLE001 - reported in the table
        row(case, count, None, None, f"bench error: {error!r}"[:120], False)


def caller_side(fake):
    fake.reset()
    with th.fresh_server(UPSTREAM_BASE_URL=fake.base_url, **th.TEAM_ENV, CLIENT_BODY_TIMEOUT="1") as team:
        assert th.post(team, key=th.ACCESS_KEY, body=hello()).status_code == 200
        for name, (_, _, _, expected) in th.REFUSALS.items():
            def run(name=name, expected=expected):
                result = th.refusal_case(team, name)
                response = result["response"]
                ok = (response is not None and response.status == expected and result["seconds"] < 1
                      and result["closed"] is not None)
                closed = "closed" if result["closed"] is not None else "left open"
                row(f"refused without the body: {name} (Content-Length 1 MB, no body sent)", 1, result["seconds"],
                    None, f"{described(response)}, connection {closed}", ok)
            attempt(name, 1, run)
        for trickle, label in ((None, "silent"), (0.2, "1 byte every 0.2 s")):
            def run(trickle=trickle, label=label):
                result = th.stalled_body_case(team, trickle)
                response = result["response"]
                ok = response is not None and response.status == 504 and 0.9 <= result["seconds"] <= 3
                row(f"body deadline (CLIENT_BODY_TIMEOUT=1): {label}", 1, result["seconds"], None,
                    described(response), ok)
            attempt(label, 1, run)
    for name in th.UPLOADS:
        def run(name=name):
            with th.fresh_server(UPSTREAM_BASE_URL=fake.base_url, **th.TEAM_ENV) as server:
                assert th.post(server, key=th.ACCESS_KEY, body=hello()).status_code == 200
                result = th.upload_case(server, name)
            response = result["response"]
            ok = (response is not None and response.status in th.UPLOADS[name][3] and result["sent"] < 4 * MiB
                  and result["closed"] is not None and result["up_mb"] <= 16)
            row(f"key-less 64 MiB upload, {name}", 1, result["seconds"], result["up_mb"],
                f"{described(response)} after {result['sent'] // 1024} KiB sent", ok)
        attempt(name, 1, run)

    def request_line():  # the container's command: functions-framework alone sets no limit
        with th.fresh_server(container=True, UPSTREAM_BASE_URL=fake.base_url, **th.TEAM_ENV) as server:
            assert th.post(server, key=th.ACCESS_KEY, body=hello()).status_code == 200
            result = th.long_request_line_case(server)
        response = result["response"]
        ok = (response is not None and 400 <= response.status < 500 and result["sent"] < 4 * MiB
              and result["up_mb"] <= 16)
        shown = (f"{described(response)} after {result['sent'] // 1024} KiB sent" if response is not None
                 else f"no answer; {result['sent'] // 1024} KiB sent before the 5 s bound")
        row("request line that never ends (GET /v1beta/aaaa..., up to 16 MiB; Dockerfile's command)", 1, result["seconds"],
            result["up_mb"], shown, ok)
    attempt("request line", 1, request_line)

    def stalled():
        with th.fresh_server(UPSTREAM_BASE_URL=fake.base_url, **th.TEAM_ENV) as server:
            result = th.stalled_uploads_case(server)
        row("valid request beside 32 stalled key-less uploads (THREADS=16)", 32, result["seconds"], None,
            str(result["status"]), result["status"] == 200 and result["seconds"] <= 3)
    attempt("stalled", 32, stalled)


def upstream_side(hostile):
    for name in th.UPSTREAM_CASES:
        def run(name=name):
            result = th.upstream_memory_case(hostile, name)
            response = result["response"]
            try:
                error = th.failure_of(response, result["stream"]) if response is not None else None
            except AssertionError:
                error = None
            ok = (error is not None and error["code"] == 500 and result["seconds"] < 5 and result["up_mb"] <= 200
                  and result["after"] == 200)
            shape = ("error event in a 200 stream" if response is not None and response.status_code == 200
                     else described(response))
            sent = result["upstream_sent"] or 0
            shown = (f"{shape}; {result['attempts']} upstream attempt(s), the first cut off after "
                     f"{sent / 1e6:.1f} MB sent ({result['upstream_ended']})")
            row(f"upstream: {name}", 1, result["seconds"], result["up_mb"], shown, ok)
        attempt(name, 1, run)

    hostile.reset()
    with th.fresh_server(UPSTREAM_BASE_URL=hostile.base_url) as server:
        def statuses():
            seen, worst, ok = {}, 0.0, True
            for code, redirect in th.STATUSES.values():
                for stream in (False, True):
                    hostile.reset()
                    location = f"http://127.0.0.1:{hostile.port}/v1/chat/completions" if redirect else None
                    hostile.reply(hu.status(code, location))
                    started = time.monotonic()
                    response = th.post(server, th.STREAM_PATH if stream else th.PATH, hello())
                    worst = max(worst, time.monotonic() - started)
                    seen[described(response)] = seen.get(described(response), 0) + 1
                    ok &= response.status_code == 500 and len(hostile.requests) == 1
            ok &= th.post(server, th.PATH, hello()).status_code == 200
            codes = ", ".join(str(code) for code, _ in th.STATUSES.values())
            row(f"upstream status {codes} (generate and stream)", 2 * len(th.STATUSES), worst, None,
                ", ".join(f"{k} ×{v}" for k, v in seen.items()), ok)
        attempt("statuses", 14, statuses)

    with th.fresh_server(UPSTREAM_BASE_URL=hostile.base_url, UPSTREAM_TIMEOUT="3") as server:
        for name in th.TRICKLES:
            def run(name=name):
                result = th.trickle_case(server, hostile, name)
                response = result["response"]
                ok = response.status_code == 504 and result["seconds"] <= 5.5
                row(f"upstream trickle, 1 byte / 0.5 s, UPSTREAM_TIMEOUT=3: {name}", 1, result["seconds"], None,
                    described(response), ok)
            attempt(name, 1, run)

    for mode in ("team", "pass-through"):
        def keys(mode=mode):
            env = {"UPSTREAM_BASE_URL": hostile.base_url, **(th.TEAM_ENV if mode == "team" else {})}
            caller_key, upstream_key = (th.ACCESS_KEY, th.TEAM_KEY) if mode == "team" else (th.PASS_KEY, th.PASS_KEY)
            leaks, worst = [], 0.0
            with th.fresh_server(**env) as server:
                for name in th.KEY_QUOTES:
                    started = time.monotonic()
                    result = th.key_quote_case(server, hostile, name, caller_key)
                    worst = max(worst, time.monotonic() - started)
                    if th.key_leaks(result["seen"], upstream_key):
                        leaks.append(f"{name} (answer)")
                    if th.key_leaks(result["logs"], upstream_key):
                        leaks.append(f"{name} (log)")
            row(f"upstream quotes the 56-character key, {mode}: {len(th.KEY_QUOTES)} ways", len(th.KEY_QUOTES), worst,
                None, "no 8-character run of it anywhere" if not leaks else "leaked: " + "; ".join(leaks),
                not leaks)
        attempt(mode, len(th.KEY_QUOTES), keys)


def bodies(fake):
    for name, (_, allowed) in th.BODIES.items():
        def run(name=name, allowed=allowed):
            result = th.body_memory_case(fake, name)
            response = result["response"]
            bound = (5 if response.status_code == 200 else 1) * result["size_mb"] + 30
            ok = response.status_code in allowed and result["up_mb"] <= bound and result["after"] == 200
            row(f"accepted body: {name} ({result['size_mb']:.1f} MB)", 1, result["seconds"], result["up_mb"],
                f"{described(response)} (bound {bound:.0f} MB)", ok)
        attempt(name, 1, run)

    def concurrent():
        result = th.concurrent_images_case(fake)
        ok = result["statuses"] == [200] * 16 and result["up_mb"] <= 256
        row(f"16 one-image requests of {result['size_mb']:.0f} MB at once (THREADS=16, REQUEST_MEMORY_BYTES 256 MiB)",
            16, result["seconds"], result["up_mb"], f"{result['statuses'].count(200)} × 200 (bound 256 MB)", ok)
    attempt("concurrent images", 16, concurrent)


def files_side(fake):
    """The upload URL, the upload's start, cachedContents and files in a request, each case in a
    fresh function process (team mode, THREADS=16, CLIENT_BODY_TIMEOUT=1 unless told)."""
    for trickle, label in ((None, "silent"), (0.2, "1 byte every 0.2 s")):
        def stalled_chunk(trickle=trickle, label=label):
            with tf.fresh_files_server(fake.base_url) as server:
                result = tf.stalled_chunk_case(server, trickle)
            beside = result["beside"]
            row(f"upload chunk of 1 MiB, {label} (CLIENT_BODY_TIMEOUT=1)", 1, result["seconds"], None,
                f"{described(result['response'])}, upload final; a request beside it: {beside.get('status')} in "
                f"{beside.get('seconds', 0):.2f} s; query: {result['received']} bytes held, resumed: "
                f"{result['resumed']}", tf.stalled_chunk_ok(result))
        attempt(label, 1, stalled_chunk)
    for name in tf.UNREAD:
        def unread(name=name):
            with tf.fresh_files_server(fake.base_url) as server:
                result = tf.unread_case(server, name)
            response = result["response"]
            final = ", upload final" if response is not None and "x-goog-upload-status" in response.headers else ""
            row(f"{name} (64 MiB offered in 64 KiB pieces)", 1, result["seconds"], result["up_mb"],
                f"{described(response)}{final} after {result['sent'] // 1024} KiB sent", tf.unread_ok(name, result))
        attempt(name, 1, unread)
    for known, label in ((False, "unknown upload_ids, 60 s body deadline"),
                         (True, "live upload URLs, CLIENT_BODY_TIMEOUT=1")):
        def stalled_uploads(known=known, label=label):
            env = {} if known else {"CLIENT_BODY_TIMEOUT": "60"}
            with tf.fresh_files_server(fake.base_url, **env) as server:
                result = tf.stalled_uploads_case(server, known=known)
            row(f"valid request beside 32 stalled 1 MiB chunks on {label} (THREADS=16)", 32,
                result.get("seconds"), None, str(result.get("status")), tf.stalled_uploads_ok(result, known))
        attempt(label, 32, stalled_uploads)

    def guessing():
        with tf.fresh_files_server(fake.base_url) as server:
            result = tf.guessing_case(server)
            logged = [guess for guess in result["guesses"] if guess[:12] in server.logs()]
        answers = {f"{status} {upload_status}" for status, upload_status in result["answers"]}
        row("200 guessed well-formed upload_ids (the slowest answer)", 200, result["worst"], None,
            f"{', '.join(sorted(answers))}; {len(logged)} logged",
            answers == {"404 final"} and result["worst"] < 0.5 and not logged)
    attempt("guessing", 200, guessing)

    def files_past_the_budget():
        with tf.fresh_files_server(fake.base_url) as server:
            result = tf.files_past_the_budget_case(server)
        row(f"generateContent naming 50 stored files of 1 MiB ({result['files_mb']:.0f} MB; MAX_RESOLVED_FILE_BYTES "
            "20 MiB)", 1, result["seconds"], result["up_mb"],
            f"{described(result['response'])} naming {tf.FIRST_PAST_THE_BUDGET.rstrip(': ')} (bound 8 MB)",
            tf.files_past_the_budget_ok(result))
    attempt("files past the budget", 1, files_past_the_budget)

    def cache_at_the_cap():
        result = tf.cache_at_the_cap_case(fake.base_url)
        bound = 5 * result["size_mb"] + 30
        ok = result["response"].status_code == 200 and result["up_mb"] <= bound and result["after"] == 200
        row(f"cachedContents create of {result['size_mb']:.1f} MB (one image; MAX_REQUEST_BYTES)", 1,
            result["seconds"], result["up_mb"], f"{described(result['response'])} (bound {bound:.0f} MB)", ok)
    attempt("cache at the cap", 1, cache_at_the_cap)

    def concurrent_caches():
        result = tf.concurrent_caches_case(fake.base_url)
        ok = result["statuses"] == [200] * 16 and result["up_mb"] <= 256
        row(f"16 cachedContents creates of {result['size_mb']:.0f} MB at once (THREADS=16, REQUEST_MEMORY_BYTES "
            "256 MiB)", 16, result["seconds"], result["up_mb"],
            f"{result['statuses'].count(200)} × 200 (bound 256 MB)", ok)
    attempt("concurrent caches", 16, concurrent_caches)


def main():
    started = time.monotonic()
    fake, hostile = FakeUpstream(), hu.HostileUpstream()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            caller_side(fake)
            upstream_side(hostile)
            bodies(fake)
            files_side(fake)
    finally:
        fake.close()
        hostile.close()
    elapsed = time.monotonic() - started
    print("| Case | Count | Time to answer | Worker peak RSS up | Result | Verdict |")
    print("|---|---|---|---|---|---|")
    for case in rows:
        print("| " + " | ".join(str(cell) for cell in case) + " |")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=TESTS.parent).stdout.strip()
    print()
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; THREADS=16; commit {commit or 'unknown'} (plus uncommitted changes, if any); "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print()
    print(f"Run: `python bench/reliability.py`, {elapsed:.0f} s. The same cases, with their bounds asserted: "
          "`python3 -m pytest -q tests/test_hostile.py tests/test_files_hostile.py`.")
    return 0 if all(case[-1] == "PASS" for case in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
