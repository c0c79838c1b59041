#!/usr/bin/env python
"""What the function adds to a file upload (the Files API's resumable upload), and what it holds in
memory while the chunks pass through it to the store. Not part of the test suite.

    python bench/uploads.py               # both stores, about a minute
    python bench/uploads.py --pairs 5     # quicker, noisier
    python bench/uploads.py --store local

For each store (a local folder; Cloud Storage, as gcp-storage-emulator on loopback):

- one 8 MiB file in one chunk (the SDKs' chunk size), written to the store by this process itself
  (the store's own resumable write) and uploaded through the function (the start request, then one
  ``upload, finalize`` chunk), in interleaved pairs: the time the function adds, p50 and p90;
- sixteen clients each uploading an 8 MiB file at once: the worker's peak RSS (VmHWM) before and after;
- a 64 MiB file uploaded with google-genai's ``files.upload`` (eight chunks): seconds and MiB/s.

The function runs in team mode (an access key), so no upstream is involved.
"""

import argparse
import concurrent.futures
import http.client
import io
import os
import pathlib
import statistics
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import run  # noqa: E402,F401  (re-runs this under .venv when needed, and puts tests/ on sys.path)
from gemini_compat.config import Settings  # noqa: E402
from gemini_compat.storage import open_store  # noqa: E402
from helpers import StorageEmulator, status_kib  # noqa: E402
from measurements import percentile  # noqa: E402
from processes import FunctionProcess  # noqa: E402

KEY = "bench-access-key"
MIB = 1024 * 1024
CHUNK = 8 * MIB
BLOCK = 64 * 1024
BUCKET = "bench-uploads"


def upload_through(port, data, name="bench.bin"):
    """Seconds to upload ``data`` through the function in one chunk (start + upload, finalize)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start = time.perf_counter()
    conn.request("POST", "/upload/v1beta/files", b'{"file": {"displayName": "%s"}}' % name.encode(), {
        "x-goog-api-key": KEY, "Content-Type": "application/json", "X-Goog-Upload-Protocol": "resumable",
        "X-Goog-Upload-Command": "start", "X-Goog-Upload-Header-Content-Length": str(len(data)),
        "X-Goog-Upload-Header-Content-Type": "application/octet-stream"})
    response = conn.getresponse()
    response.read()
    url = urllib.parse.urlsplit(response.headers["X-Goog-Upload-URL"])
    conn.request("POST", f"{url.path}?{url.query}", data, {
        "X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0", "Content-Length": str(len(data))})
    response = conn.getresponse()
    body = response.read()
    seconds = time.perf_counter() - start
    conn.close()
    if response.status != 200 or response.headers.get("X-Goog-Upload-Status") != "final":
        raise RuntimeError(f"upload answered {response.status}: {body[:300]!r}")
    return seconds


def write_directly(store, data, number):
    """Seconds for this process to write ``data`` to the store the way the function does."""
    start = time.perf_counter()
    session = store.start_write(f"bench/direct-{number}", "application/octet-stream")
    store.write(session, 0, (data[i:i + BLOCK] for i in range(0, len(data), BLOCK)), total=len(data))
    return time.perf_counter() - start


def added_time(function, store, pairs):
    data = os.urandom(CHUNK)
    direct, through = [], []
    for i in range(pairs + 2):  # two warm-up pairs
        order = (0, 1) if i % 2 == 0 else (1, 0)
        times = {}
        for side in order:
            times[side] = write_directly(store, data, i) if side == 0 else upload_through(function.port, data)
        if i >= 2:
            direct.append(times[0])
            through.append(times[1])
    added = [t - d for d, t in zip(direct, through, strict=True)]
    return {"direct_p50_ms": 1000 * statistics.median(direct), "through_p50_ms": 1000 * statistics.median(through),
            "added_p50_ms": 1000 * percentile(added, 50), "added_p90_ms": 1000 * percentile(added, 90)}


def concurrent_peak(function, clients):
    data = os.urandom(CHUNK)
    worker = function.pids()[-1]
    before = status_kib(worker, "VmHWM") / 1024
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        seconds = list(pool.map(lambda n: upload_through(function.port, data, f"c{n}.bin"), range(clients)))
    return {"worker_peak_before_mb": before, "worker_peak_after_mb": status_kib(worker, "VmHWM") / 1024,
            "slowest_s": max(seconds)}


def sdk_upload(function, size):
    from google import genai
    from google.genai import types

    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=f"http://127.0.0.1:{function.port}"))
    start = time.perf_counter()
    uploaded = client.files.upload(file=io.BytesIO(os.urandom(size)), config={"mime_type": "application/pdf"})
    seconds = time.perf_counter() - start
    if int(uploaded.size_bytes) != size:
        raise RuntimeError(f"the SDK's upload came back as {uploaded.size_bytes} bytes")
    return {"sdk_seconds": seconds, "sdk_mib_per_s": size / MIB / seconds}


def measure(store_name, env, pairs, clients, sdk_mib):
    os.environ.update(env)  # the direct writes use the same store, in this process
    store = open_store(Settings.from_env())
    function = FunctionProcess("http://127.0.0.1:9/v1", env={
        **env, "UPSTREAM_API_KEY": "unused", "ACCESS_KEYS": KEY, "THREADS": str(clients)})
    try:
        function.wait_until_listening()
        upload_through(function.port, b"warm-up")  # the first storage use loads the storage library
        result = {"store": store_name, **added_time(function, store, pairs), **concurrent_peak(function, clients),
                  **sdk_upload(function, sdk_mib * MIB)}
    finally:
        function.stop()
        for name in env:
            del os.environ[name]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--sdk-mib", type=int, default=64)
    parser.add_argument("--store", choices=("local", "gcs", "both"), default="both")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-uploads-") as folder:
        if args.store in ("local", "both"):
            results.append(measure("local folder", {"STORAGE_DIR": folder}, args.pairs, args.clients, args.sdk_mib))
        if args.store in ("gcs", "both"):
            emulator = StorageEmulator(BUCKET, pathlib.Path(folder) / "emulator.log")
            try:
                env = {"STORAGE_BUCKET": f"gs://{BUCKET}/bench", "STORAGE_EMULATOR_HOST": emulator.host}
                results.append(measure("Cloud Storage (emulator)", env, args.pairs, args.clients, args.sdk_mib))
            finally:
                emulator.stop()
    print(f"| store | 8 MiB: direct p50 | through the function p50 | added p50 / p90 | worker peak RSS, before → "
          f"after {args.clients} concurrent 8 MiB uploads | {args.sdk_mib} MiB by `files.upload` |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['store']} | {r['direct_p50_ms']:.0f} ms | {r['through_p50_ms']:.0f} ms | "
              f"{r['added_p50_ms']:.0f} / {r['added_p90_ms']:.0f} ms | {r['worker_peak_before_mb']:.1f} → "
              f"{r['worker_peak_after_mb']:.1f} MB | {r['sdk_seconds']:.2f} s ({r['sdk_mib_per_s']:.0f} MiB/s) |")


if __name__ == "__main__":
    main()
