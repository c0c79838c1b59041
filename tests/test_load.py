"""Load on loopback: 64 concurrent streams through one served instance (THREADS=64, matching a Cloud
Run concurrency of 64), zero errors, every chunk delivered, memory bounded."""

import threading

import requests

from fake_upstream import Pause, Stream, chunk, usage
from helpers import KEY, child_pids, hello, sse_chunks, status_kib

STREAMS = 64
CHUNKS = 20


def rss_kib(root_pid):
    """Resident memory of a process and its children (gunicorn master + worker), in KiB."""
    return sum(status_kib(pid, "VmRSS") for pid in [root_pid, *child_pids(root_pid)])


def slow_stream(body):
    items = [chunk({"role": "assistant", "content": ""})]
    for number in range(CHUNKS):
        items += [chunk({"content": f"{number} "}), Pause(seconds=0.01)]
    return Stream(items + [chunk({}, finish="stop"), chunk(choices=[], usage_=usage()), "[DONE]"])


def run_round(server):
    results, errors = [], []

    def one_stream():
        try:
            response = requests.post(server.url + "/v1beta/models/qwen-turbo:streamGenerateContent?alt=sse",
                                     json=hello(), headers={"x-goog-api-key": KEY}, timeout=60)
            events = sse_chunks(response)
            results.append((response.status_code, events))
        except Exception as error:  # noqa: BLE001 - counted as a failure below
            errors.append(repr(error))

    threads = [threading.Thread(target=one_stream) for _ in range(STREAMS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_64_concurrent_streams(serve, upstream_server):
    server = serve(THREADS=str(STREAMS))
    upstream_server.reset()
    upstream_server.reply(*[slow_stream] * (3 * STREAMS))
    expected = "".join(f"{n} " for n in range(CHUNKS))
    rounds = []
    for _ in range(3):
        results, errors = run_round(server)
        assert errors == []
        assert len(results) == STREAMS
        for status, events in results:
            assert status == 200
            assert "".join(p.get("text", "") for e in events for p in e["candidates"][0]["content"]["parts"]) == expected
            assert len(events) == CHUNKS + 1 and events[-1]["candidates"][0]["finishReason"] == "STOP"
        rounds.append(rss_kib(server.process.pid))
    # Bounded: under 150 MB for master and worker, and not growing from round to round.
    assert rounds[-1] < 150 * 1024, rounds
    assert rounds[2] - rounds[1] < 8 * 1024, rounds
    assert len(upstream_server.chat_requests) == 3 * STREAMS
