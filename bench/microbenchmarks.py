"""The CPU cost of the function's own work, in process: validation, request and response translation,
and the stream path per chunk (no server, no network)."""

import inspect
import io
import json
import statistics
import time

import fast_upstream
import payloads
from client import KEY, MODEL


def per_call_us(fn, make_arg=None, repeats=7, sample_seconds=0.02):
    """Microseconds per call: the best of ``repeats`` timed loops (timeit's advice: slower loops are
    other processes interfering, not the code), the median kept too. With ``make_arg``, every call
    gets a fresh argument, built before the timed loop (validation normalises its body in place)."""
    def sample(n):
        args = [make_arg() for _ in range(n)] if make_arg else None
        start = time.perf_counter()
        if args is None:
            for _ in range(n):
                fn()
        else:
            for arg in args:
                fn(arg)
        return time.perf_counter() - start

    n = 1
    while True:
        seconds = sample(n)
        if seconds >= sample_seconds or n >= 1 << 20:
            break
        n = max(n * 2, int(n * sample_seconds / max(seconds, 1e-9)))
    samples = [sample(n) / n * 1e6 for _ in range(repeats)]
    return {"us": min(samples), "median_us": statistics.median(samples), "calls_per_sample": n}


class _NullLog:
    def __init__(self):
        self.fields = {}

    def write(self, *args, **kwargs):
        pass


class _EventBlocks(io.RawIOBase):
    """A response body that gives one SSE event per read1(), as when tokens arrive one by one."""

    def __init__(self, blocks):
        self._blocks = iter(blocks)

    def readable(self):
        return True

    def read1(self, size=-1):
        return next(self._blocks, b"")

    def readinto(self, buffer):
        data = next(self._blocks, b"")
        buffer[:len(data)] = data
        return len(data)


def _upstream_stream_response(blocks):
    """What Upstream.open_stream returns (an EventStream on a urllib3 response, body unread), over
    in-memory blocks."""
    import urllib3

    from gemini_compat.config import Settings
    from gemini_compat.upstream import EventStream

    response = urllib3.HTTPResponse(body=_EventBlocks(blocks), headers={"Content-Type": "text/event-stream"},
                                    status=200, preload_content=False, decode_content=False)
    return EventStream(response, KEY, Settings())


def measure_translation(repeats):
    from gemini_compat.request_translation import chat_request
    from gemini_compat.response_translation import StreamTranslator, gemini_response
    from gemini_compat.validation import GENERATE_CONTENT

    def dumps(value):  # as the function encodes bodies
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

    raw_typical = payloads.encode(payloads.typical())
    raw_small = payloads.encode(payloads.small())
    validated = GENERATE_CONTENT.validate(json.loads(raw_typical))
    raw_validated = dumps(validated)
    _, options = chat_request(json.loads(raw_validated), MODEL, stream=False)
    stream_payload, stream_options = chat_request(json.loads(raw_validated), MODEL, stream=True)
    raw_completion = dumps(fast_upstream.completion())
    events = [e.encode() for e in fast_upstream.stream_events(200)]
    raw_text_chunk = events[5]
    raw_cli = payloads.encode(payloads.cli_like())
    raw_cli_validated = dumps(GENERATE_CONTENT.validate(json.loads(raw_cli)))

    translator = StreamTranslator(stream_options, stream_payload.get("n", 1))
    cases = {
        "validate_2k": lambda: per_call_us(GENERATE_CONTENT.validate, lambda: json.loads(raw_typical), repeats),
        "chat_request_2k": lambda: per_call_us(lambda body: chat_request(body, MODEL, stream=False),
                                               lambda: json.loads(raw_validated), repeats),
        "gemini_response": lambda: per_call_us(lambda c: gemini_response(c, options),
                                               lambda: json.loads(raw_completion), repeats),
        "stream_translate_chunk": lambda: per_call_us(translator.translate, lambda: json.loads(raw_text_chunk),
                                                      repeats),
        "validate_cli_40k": lambda: per_call_us(GENERATE_CONTENT.validate, lambda: json.loads(raw_cli), repeats),
        "chat_request_cli_40k": lambda: per_call_us(lambda body: chat_request(body, MODEL, stream=False),
                                                    lambda: json.loads(raw_cli_validated), repeats),
        # What the function does with a request body before calling the upstream, all in.
        "request_path_2k": lambda: per_call_us(
            lambda: dumps(chat_request(GENERATE_CONTENT.validate(json.loads(raw_typical)), MODEL, stream=False)[0]),
            None, repeats),
        "request_path_small": lambda: per_call_us(
            lambda: dumps(chat_request(GENERATE_CONTENT.validate(json.loads(raw_small)), MODEL, stream=False)[0]),
            None, repeats),
        # ... and with the upstream's answer.
        "response_path": lambda: per_call_us(lambda: dumps(gemini_response(json.loads(raw_completion), options)),
                                             None, repeats),
        "stream_path_per_chunk": lambda: _stream_path_per_chunk(events, stream_options, stream_payload, repeats),
    }
    results = {}
    for name, case in cases.items():
        try:
            results[name] = case()
        except Exception as error:  # noqa: BLE001 - the code under test is being changed by others
            results[name] = {"error": f"{type(error).__name__}: {error}"}
    results["sizes_bytes"] = {"typical": len(raw_typical), "cli_like": len(raw_cli)}
    if "us" in results["chat_request_2k"] and "us" in results["gemini_response"]:
        results["translation_us"] = results["chat_request_2k"]["us"] + results["gemini_response"]["us"]
    return results


def _stream_path_per_chunk(events, options, payload, repeats):
    """gateway.stream_body over a 200-chunk upstream stream (SSE parse, JSON, translate, SSE encode),
    per content chunk. One event per block read, as when tokens arrive one by one."""
    from gemini_compat.gateway import stream_body
    from gemini_compat.response_translation import StreamTranslator

    blocks = [b"data: " + event + b"\n\n" for event in events]
    count = len(events) - 3  # content chunks
    # Arguments by name, as the signature is still moving. The request log, written once per stream
    # (not per chunk), is a stub.
    known = {"stream": None, "translator": None, "sse": True, "log": _NullLog()}
    parameters = inspect.signature(stream_body).parameters
    unknown = [name for name, p in parameters.items() if name not in known and p.default is p.empty]
    if unknown:
        raise TypeError(f"stream_body takes arguments this benchmark does not know: {unknown}")

    def run(response):
        arguments = {name: value for name, value in known.items() if name in parameters}
        arguments.update(stream=response, translator=StreamTranslator(options, payload.get("n", 1)))
        out = list(stream_body(**arguments))
        if len(out) != count + 1:
            raise RuntimeError(f"stream_body gave {len(out)} chunks for {count} content chunks")

    result = per_call_us(run, lambda: _upstream_stream_response(blocks), repeats)
    return {key: value / count if key.endswith("us") else value for key, value in result.items()}
