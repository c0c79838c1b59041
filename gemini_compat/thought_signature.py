"""A turn's reasoning carried in the ``thoughtSignature`` of its first functionCall part.

DeepSeek in thinking mode (and Kimi, GLM) needs the assistant's ``reasoning_content`` sent back on
tool-call turns, or answers 400 "The reasoning_content in the thinking mode must be passed back to
the API". A Gemini client sees the reasoning only with ``includeThoughts`` (false by default), but it
sends a functionCall part's ``thoughtSignature`` back unchanged (Gemini's own mechanism; the
google-genai SDKs and the Gemini CLI do). So the reasoning travels there, and comes back as that
same assistant message's ``reasoning_content``.

Format (version 1): standard base64 of ``b"gcR"`` (magic), ``b"\\x01"`` (version), then the
reasoning as zlib-compressed UTF-8, padded with zero bytes to at least a quarter of the text's size.
The padding makes the one rule a forged signature cannot break: a signature yields at most
``EXPANSION`` bytes of reasoning per byte of it (decompression stops there), so restored reasoning
costs no more than a few times what the client sent. A signature holds at most
``MAX_SIGNATURE_BYTES``; reasoning that does not fit (over ``MAX_REASONING_BYTES`` of UTF-8, or
compressing past the cap) gets no signature at all rather than a truncated one: a cut reasoning sent
back would pass for the model's own, and 128 KiB is far beyond a tool turn's usual reasoning.

A signature is not secret and not authenticated: anyone holding the conversation can read or forge
it. That is harmless, because a decoded signature only ever becomes ``reasoning_content`` of the
assistant message it came with, which the client could as well have sent as thought parts. Anything
else (Gemini's own opaque signatures, the Gemini CLI's ``skip_thought_signature_validator``,
garbage, a forged oversize one) decodes to None and is ignored.

>>> decode(encode("Paris first, then the weather."))
'Paris first, then the weather.'
>>> decode("skip_thought_signature_validator") is None
True
"""

import base64
import binascii
import zlib

from .proto_json import padded_base64

MAGIC = b"gcR"
VERSION = 1
HEADER = MAGIC + bytes([VERSION])
MAX_SIGNATURE_BYTES = 32 * 1024  # the decoded signature, header included
EXPANSION = 4  # at most this many bytes of reasoning per byte of compressed payload
MAX_REASONING_BYTES = EXPANSION * (MAX_SIGNATURE_BYTES - len(HEADER))
# Base64 text of the largest signature, padded; a few more characters for line breaks.
MAX_SIGNATURE_CHARS = 4 * -(-MAX_SIGNATURE_BYTES // 3) + 16


def encode(reasoning):
    """The thoughtSignature (standard base64) holding ``reasoning``, or None when there is none or
    it is too large to keep whole."""
    if not isinstance(reasoning, str) or not reasoning or len(reasoning) > MAX_REASONING_BYTES:
        return None
    text = reasoning.encode("utf-8", "replace")  # a lone surrogate from the upstream's JSON becomes "?"
    if len(text) > MAX_REASONING_BYTES:
        return None
    payload = zlib.compress(text, 9)
    payload += b"\0" * max(0, -(-len(text) // EXPANSION) - len(payload))
    if len(HEADER) + len(payload) > MAX_SIGNATURE_BYTES:
        return None
    return base64.b64encode(HEADER + payload).decode("ascii")


def decode(signature):
    """The reasoning in a thoughtSignature of ours; None for anything else. Never raises, and its
    work is bounded: at most MAX_SIGNATURE_CHARS are decoded and EXPANSION bytes produced per byte."""
    if not isinstance(signature, str) or not signature or len(signature) > MAX_SIGNATURE_CHARS:
        return None
    try:  # the Python SDK sends bytes back URL-safe; others as they got them (standard, padded)
        data = binascii.a2b_base64(padded_base64(signature), strict_mode=True)
    except ValueError:  # binascii.Error, or characters outside ASCII
        return None
    if len(data) > MAX_SIGNATURE_BYTES or not data.startswith(HEADER) or len(data) == len(HEADER):
        return None
    payload = memoryview(data)[len(HEADER):]
    limit = EXPANSION * len(payload)
    inflater = zlib.decompressobj()
    try:
        reasoning = inflater.decompress(payload, limit + 1)
    except zlib.error:
        return None
    if (len(reasoning) > limit or not inflater.eof or inflater.unconsumed_tail
            or inflater.unused_data.strip(b"\0")):
        return None
    try:
        return reasoning.decode("utf-8") or None
    except UnicodeDecodeError:
        return None
