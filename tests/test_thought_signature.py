"""The reasoning kept in a functionCall part's thoughtSignature: encoding, and decoding anything a
client may send back (ours, Gemini's, garbage, forgeries) without ever failing or working unboundedly."""

import base64
import os
import random
import string
import time
import tracemalloc
import zlib

import pytest

from gemini_compat.thought_signature import (
    EXPANSION,
    HEADER,
    MAX_REASONING_BYTES,
    MAX_SIGNATURE_BYTES,
    MAX_SIGNATURE_CHARS,
    decode,
    encode,
)


def signature_of(payload):
    """A signature with our header around any payload (what a forger would make)."""
    return base64.b64encode(HEADER + payload).decode()


def random_text(size, seed=1):
    """Letters and digits at random: about 6 bits a byte, so it compresses to about 3/4."""
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(size))


@pytest.mark.parametrize("reasoning", [
    "Paris first, then the weather.",
    "x",
    "用户想知道巴黎的天气，我应该调用 get_weather。🌧️\n\tDone.",
    "Let me think. " * 5000,  # very compressible: padded to a quarter of its size
    random_text(20_000),
])
def test_round_trip(reasoning):
    signature = encode(reasoning)
    assert decode(signature) == reasoning
    data = base64.b64decode(signature, validate=True)  # standard base64, as Gemini's bytes fields are
    assert data.startswith(b"gcR\x01") and len(data) <= MAX_SIGNATURE_BYTES
    assert len(data) - len(HEADER) >= len(reasoning.encode()) / EXPANSION


def test_url_safe_and_unpadded_as_the_python_sdk_sends_it_back():
    reasoning = random_text(301, seed=7) + "??>>~~"
    signature = encode(reasoning)
    url_safe = base64.urlsafe_b64encode(base64.b64decode(signature)).decode()
    assert decode(url_safe) == reasoning and decode(url_safe.rstrip("=")) == reasoning
    assert decode("\n".join(signature[i:i + 76] for i in range(0, len(signature), 76))) == reasoning


def test_a_lone_surrogate_from_the_upstream_is_replaced():
    assert decode(encode("a\ud800b")) == "a?b"


@pytest.mark.parametrize("reasoning", [None, "", 5, ["x"]])
def test_nothing_to_keep(reasoning):
    assert encode(reasoning) is None


def test_too_long_reasoning_gets_no_signature_rather_than_a_cut_one():
    assert encode("a" * MAX_REASONING_BYTES) is not None
    assert encode("a" * (MAX_REASONING_BYTES + 1)) is None
    assert encode("é" * (MAX_REASONING_BYTES // 2 + 1)) is None  # counted in UTF-8 bytes
    assert encode(random_text(2 * MAX_SIGNATURE_BYTES)) is None  # does not compress into the cap


@pytest.mark.parametrize("signature", [
    "skip_thought_signature_validator",  # the Gemini CLI's synthetic signature
    base64.b64encode(os.urandom(300)).decode(),  # Gemini's own: opaque bytes
    base64.b64encode(b"\x12\x0a" + os.urandom(64)).decode(),
    "c2ln", "", "=", "====", "not base64!", "é" * 8, "gcR", "Z2NS",
    None, 5, b"gcR\x01",
    signature_of(b""),  # the header alone
    base64.b64encode(b"gcR\x02" + zlib.compress(b"future version")).decode(),
    signature_of(b"garbage that is not zlib"),
    signature_of(zlib.compress(b"cut")[:-3]),  # an unfinished stream
    signature_of(zlib.compress(b"x") + b"trailing"),  # not our zero padding
    signature_of(zlib.compress(b"\xff\xfe not UTF-8")),
    signature_of(zlib.compress(b"")),
    signature_of(zlib.compressobj(wbits=-15).compress(b"raw deflate") + zlib.compressobj(wbits=-15).flush()),
    signature_of(base64.b64decode(encode("two streams"))[len(HEADER):] * 2),
], ids=lambda value: repr(value)[:40])
def test_signatures_not_ours_are_ignored(signature):
    assert decode(signature) is None


def test_oversize_signatures_are_refused_before_any_work():
    reasoning = "a" * 1000
    payload = zlib.compress(reasoning.encode()) + b"\0" * MAX_SIGNATURE_BYTES  # valid, but over the cap
    assert decode(signature_of(payload)) is None
    assert decode("A" * (MAX_SIGNATURE_CHARS + 1)) is None


@pytest.mark.parametrize("inflated", [10 * 1024 * 1024, 30 * 1024 * 1024])
def test_a_zip_bomb_stops_at_the_expansion_limit(inflated):
    compressor = zlib.compressobj(9)
    block = b"\0" * (1024 * 1024)
    payload = b"".join(compressor.compress(block) for _ in range(inflated // len(block))) + compressor.flush()
    assert len(HEADER) + len(payload) <= MAX_SIGNATURE_BYTES  # a forgery within every size check
    signature = signature_of(payload)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        assert decode(signature) is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 1
    assert peak < 2 * 1024 * 1024  # at most EXPANSION times the payload (here under 1 MiB), never the bomb


def test_the_largest_signature_decodes_within_its_bounds():
    reasoning = random_text(43_000)
    signature = encode(reasoning)
    assert len(base64.b64decode(signature)) > MAX_SIGNATURE_BYTES - 1024
    assert len(signature) <= MAX_SIGNATURE_CHARS
    assert decode(signature) == reasoning
