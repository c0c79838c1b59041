#!/usr/bin/env python
"""Added latency in front of a real inference server: llama.cpp's llama-server with Gemma 3 270M
(built and cached by tests/llama_server.py), the same request sent directly (OpenAI format) and
through the function (Gemini format), in interleaved pairs that alternate which goes first.

    python bench/real_upstream.py               # about two minutes on 2 cores, after the build
    python bench/real_upstream.py --pairs 10    # quicker, noisier

Two cases: a short non-streamed answer (16 tokens) and a streamed answer of up to 200 tokens
(greedy, so both sides of a pair generate the same tokens; the text is compared). The model runs on
the same two cores as the function, so the differences include the function's CPU competing with
the model's. Prints a Markdown table.
"""

import argparse
import json
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import run  # noqa: E402,F401  (re-runs this under .venv when needed, and puts tests/ on sys.path)
from client import FUNCTION_HEADERS, Client, generate_path  # noqa: E402
from helpers import sse_data  # noqa: E402
from llama_server import LlamaServer  # noqa: E402
from measurements import measure_added_latency, percentile  # noqa: E402
from processes import FunctionProcess  # noqa: E402

MODEL = "gemma-chat"
PROMPT = "Write a long story about a lighthouse keeper and the sea."


def bodies(max_tokens, stream):
    direct = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": max_tokens,
              "temperature": 0, "seed": 1, "stream": stream}
    if stream:
        direct["stream_options"] = {"include_usage": True}
    gemini = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
              "generationConfig": {"maxOutputTokens": max_tokens, "temperature": 0, "seed": 1}}
    return json.dumps(direct).encode(), json.dumps(gemini).encode()


def streamed_text(data, gemini):
    text = []
    for event in (json.loads(payload) for payload in sse_data(data) if payload != b"[DONE]"):
        if gemini:
            text += [p.get("text", "") for c in event.get("candidates", []) for p in c["content"]["parts"]]
        elif event.get("choices"):
            text.append(event["choices"][0]["delta"].get("content") or "")
    return "".join(text)


def stream_pairs(direct, function, pairs):
    direct_body, gemini_body = bodies(200, stream=True)
    first, total, totals, lengths = [], [], [], []
    for i in range(pairs + 2):  # two warm-up pairs
        order = (direct, function) if i % 2 == 0 else (function, direct)
        result = {client: client.stream(direct_body if client is direct else gemini_body) for client in order}
        (d_status, d_first, d_total, d_data), (f_status, f_first, f_total, f_data) = result[direct], result[function]
        d_text, f_text = streamed_text(d_data, False), streamed_text(f_data, True)
        if (d_status, f_status) != (200, 200) or d_text != f_text:
            raise RuntimeError(f"pair {i}: status {d_status}/{f_status}, same text: {d_text == f_text}")
        if i >= 2:
            first.append(f_first - d_first)
            total.append(f_total - d_total)
            totals.append(d_total)
            lengths.append(len(d_text))
    return first, total, totals, lengths


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=30, help="timed pairs per case (default 30)")
    args = parser.parse_args()
    llama = LlamaServer()
    function = None
    try:
        llama.load()
        function = FunctionProcess(llama.url + "/v1")
        direct_body, gemini_body = bodies(16, stream=False)
        function.wait_until_answering(gemini_body, timeout=120, model=MODEL)
        path = generate_path(MODEL)
        direct = Client(llama.port, "/v1/chat/completions", {"Content-Type": "application/json"})
        through = Client(function.port, path, FUNCTION_HEADERS)
        whole = measure_added_latency(direct, through, direct_body, gemini_body, args.pairs, warmup=2)
        through.path = path.replace(":generateContent", ":streamGenerateContent?alt=sse")
        first, total, totals, lengths = stream_pairs(direct, through, args.pairs)
    finally:
        if function:
            function.stop()
        llama.stop()
    ms = 1000
    print(f"| case ({args.pairs} interleaved pairs) | direct p50 | added p50 | added p90 |")
    print("|---|---|---|---|")
    print(f"| generateContent, 16 tokens | {whole['direct_p50_ms']:.1f} ms | {whole['added_p50_ms']:.2f} ms "
          f"| {whole['added_p90_ms']:.2f} ms |")
    print(f"| streamGenerateContent (SSE), {min(lengths)}–{max(lengths)} characters: first event "
          f"| {statistics.median(totals) * ms:.0f} ms in all | {statistics.median(first) * ms:.2f} ms "
          f"| {percentile(first, 90) * ms:.2f} ms |")
    print(f"| streamGenerateContent (SSE): last byte | | {statistics.median(total) * ms:.2f} ms "
          f"| {percentile(total, 90) * ms:.2f} ms |")


if __name__ == "__main__":
    main()
