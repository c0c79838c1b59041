"""The OpenAI-compatible upstream: one connection pool, retries, and failures as Gemini errors.

urllib3 (the transport under requests) is used directly: requests' session machinery costs about
0.5 ms per call, half of our whole budget (see the README's benchmark).
"""

import os
import random
import re
import time
import urllib.request
from urllib.parse import urlsplit

import urllib3

from .errors import GeminiError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from .response_translation import upstream_error
from .json_wire import dumps, loads

# A streaming request's error body is read only this far: enough for any message.
ERROR_BODY_LIMIT = 64 * 1024
READ_SIZE = 64 * 1024
DRAIN_SECONDS = 0.25
BACKOFF_BASE = 0.25  # seconds; attempt n waits a random time up to BACKOFF_BASE * 2**n
BACKOFF_CAP = 8.0
# A Retry-After longer than this is passed on to the client rather than waited out here.
RETRY_AFTER_CAP = 10.0


class Upstream:
    def __init__(self, settings):
        self.base_url = settings.upstream_base_url
        self.deadline_seconds = settings.upstream_timeout
        self.retries = settings.upstream_retries
        self.pool = connection_pool(settings)

    def with_retries(self, attempt):
        """``attempt()``, again after a backoff while it fails with a retryable error, within the
        retry budget and the overall timeout. Callers make sure nothing reached the client yet."""
        deadline = time.monotonic() + self.deadline_seconds
        for number in range(self.retries + 1):
            try:
                return attempt()
            except GeminiError as error:
                delay = retry_delay(error, number) if error.retryable and number < self.retries else None
                if delay is None or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)

    def post_json(self, path, payload, key):
        """POST ``payload`` to ``path`` under the base URL, with retries; the JSON answer."""
        return self.with_retries(lambda: json_answer(self.request("POST", path, key, payload)))

    def get_json(self, path, key):
        """GET ``path`` under the base URL, with retries; the JSON answer."""
        return self.with_retries(lambda: json_answer(self.request("GET", path, key)))

    def open_stream(self, payload, key):
        """The upstream's streaming response, status 200 checked, body unread. Close it with ``close``."""
        return self.request("POST", "/chat/completions", key, payload, stream=True)

    def request(self, method, path, key, payload=None, stream=False):
        headers = {"Authorization": f"Bearer {key}"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        if stream:
            headers["Accept"] = "text/event-stream"
        else:
            headers["Accept-Encoding"] = "gzip, deflate"  # a stream stays uncompressed: it would arrive in lumps
        try:
            response = self.pool.request(method, self.base_url + path, headers=headers,
                                         body=None if payload is None else dumps(payload),
                                         preload_content=not stream, redirect=False)
        except urllib3.exceptions.HTTPError as error:
            raise transport_error(error) from None
        if response.status != 200:
            try:
                raise _status_error(response, stream)
            finally:
                close(response)
        return response


def connection_pool(settings):
    """One pool for the process, sized to the server's threads; environment proxies and CA bundles
    are read here, once, not on every request."""
    options = {
        "maxsize": settings.threads,
        "retries": False,  # retrying is ours (with_retries), and only before the first byte
        "timeout": urllib3.Timeout(connect=settings.upstream_timeout, read=settings.upstream_timeout),
    }
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if ca_bundle:
        options["ca_certs"] = ca_bundle
    parts = urlsplit(settings.upstream_base_url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        return urllib3.ProxyManager(proxy, **options)
    return urllib3.PoolManager(**options)


def close(response, reuse=False):
    """Give the connection back to the pool, or close it if the answer was not read to its end.
    ``reuse``: the answer is complete (a stream after [DONE]); read what little is left of the
    body (the chunked encoding's last chunk), so that the connection can serve the next request
    instead of costing a new connection (a TLS handshake) per stream."""
    if reuse:
        connection = response.connection
        if connection is not None and connection.sock is not None:
            connection.sock.settimeout(DRAIN_SECONDS)  # what is left arrives at once, or not at all
        response.drain_conn()
    if not response.isclosed():
        response.close()
    response.release_conn()


def read_blocks(response):
    """The body of a streaming response in blocks as they arrive; transport failures as Gemini errors."""
    try:
        while True:
            block = response.read1(READ_SIZE)
            if not block:
                return
            yield block
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise transport_error(error) from None


def json_answer(response):
    """The parsed JSON body of an upstream answer; failures to read or parse it as Gemini errors."""
    try:
        raw = response.data
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise transport_error(error) from None
    finally:
        close(response)
    try:
        return loads(raw)
    except (ValueError, RecursionError):
        raise UpstreamError(f"The upstream answer is not valid JSON: {_excerpt(raw)}") from None


def retry_delay(error, number):
    """Seconds to wait before retry ``number`` (0-based): the upstream's Retry-After when it gave
    one (None if that is too long to wait here), else exponential backoff with full jitter."""
    if error.retry_after is not None:
        return error.retry_after if error.retry_after <= RETRY_AFTER_CAP else None
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** number))


def _status_error(response, stream):
    try:
        raw = response.read(ERROR_BODY_LIMIT) if stream else response.data
    except (urllib3.exceptions.HTTPError, OSError):
        raw = b""
    try:
        payload = loads(raw)
    except (ValueError, RecursionError):
        payload = _excerpt(raw) or response.reason or ""
    return upstream_error(response.status, payload, response.headers)


def transport_error(error):
    """The Gemini error for a failure to talk to the upstream."""
    # NewConnectionError (refused, no route, no DNS name) is a subclass of ConnectTimeoutError.
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return UpstreamUnavailable("The upstream is unreachable.", retryable=True)
    if isinstance(error, urllib3.exceptions.ConnectTimeoutError):
        return UpstreamUnavailable("The upstream did not accept a connection in time.", retryable=True)
    if isinstance(error, (urllib3.exceptions.TimeoutError, TimeoutError)):
        return UpstreamTimeout("The upstream did not answer in time.")
    if isinstance(error, urllib3.exceptions.ProtocolError) and error.args[:1] == ("Connection aborted.",):
        # Closed before answering, typically a pooled keep-alive connection the server had dropped.
        return UpstreamError("The upstream closed the connection before answering.", retryable=True)
    return UpstreamError("The upstream connection broke off before its answer was complete.")


def _excerpt(raw, limit=300):
    """A short plain-text excerpt of a non-JSON body (HTML tags dropped)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
    text = title.group(1) if title else re.sub(r"<[^>]+>", " ", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
