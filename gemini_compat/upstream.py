"""The OpenAI-compatible upstream: one pooled HTTP session, retries, and failures as Gemini errors."""

import email.utils
import json
import os
import random
import re
import time

import requests
import urllib3

from .errors import GeminiError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from .response_translation import upstream_error
from .sse import dumps

# An error body is read only this far: enough for any message, never a memory hazard.
ERROR_BODY_LIMIT = 64 * 1024
READ_SIZE = 64 * 1024
BACKOFF_BASE = 0.25  # seconds; attempt n waits a random time up to BACKOFF_BASE * 2**n
BACKOFF_CAP = 8.0
# A Retry-After longer than this is passed on to the client rather than waited out here.
RETRY_AFTER_CAP = 10.0


class Upstream:
    def __init__(self, settings, pool_size=None):
        self.url = settings.chat_completions_url
        self.base_url = settings.upstream_base_url
        self.timeout = (settings.upstream_timeout, settings.upstream_timeout)
        self.retries = settings.upstream_retries
        session = requests.Session()
        # Environment proxies and CA bundles are read once here, not looked up on every request.
        session.trust_env = False
        session.proxies = requests.utils.get_environ_proxies(self.url)
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        size = pool_size or int(os.environ.get("THREADS") or (os.cpu_count() or 1) * 4)
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=size)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.session = session

    def with_retries(self, attempt):
        """``attempt()``, again after a backoff while it fails with a retryable error, within the
        retry budget and the overall timeout. Callers make sure nothing reached the client yet."""
        deadline = time.monotonic() + self.timeout[1]
        for number in range(self.retries + 1):
            try:
                return attempt()
            except GeminiError as error:
                delay = retry_delay(error, number) if error.retryable and number < self.retries else None
                if delay is None or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)

    def post_json(self, path, payload, key):
        """POST ``payload`` to ``path`` under the base URL; the JSON answer."""
        return json_answer(self.post(path, payload, key))

    def get_json(self, path, key):
        try:
            response = self.session.get(self.base_url + path, headers={"Authorization": f"Bearer {key}"},
                                        timeout=self.timeout)
        except requests.RequestException as error:
            raise _transport_error(error) from None
        return json_answer(self._checked(response, stream=False))

    def open_stream(self, payload, key):
        """The upstream's streaming response, status 200 checked, body unread."""
        return self.post("/chat/completions", payload, key, stream=True)

    def post(self, path, payload, key, stream=False):
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        if stream:
            headers["Accept"] = "text/event-stream"
            headers["Accept-Encoding"] = "identity"  # a compressed stream arrives in lumps
        body = dumps(payload)
        try:
            response = self.session.post(self.base_url + path, data=body, headers=headers,
                                         timeout=self.timeout, stream=stream)
        except requests.RequestException as error:
            raise _transport_error(error) from None
        return self._checked(response, stream)

    @staticmethod
    def _checked(response, stream):
        if response.status_code == 200:
            return response
        with response:
            raise _status_error(response, stream)


def json_answer(response):
    """The parsed JSON body of an upstream answer; failures to read or parse it as Gemini errors."""
    try:
        return json.loads(response.content)
    except ValueError:
        raise UpstreamError(f"The upstream answer is not valid JSON: {_excerpt(response.content)}") from None
    except requests.RequestException as error:
        raise _transport_error(error) from None


def retry_delay(error, number):
    """Seconds to wait before retry ``number`` (0-based): the upstream's Retry-After when it gave
    one (None if that is too long to wait here), else exponential backoff with full jitter."""
    retry_after = _retry_after_seconds(error.headers)
    if retry_after is not None:
        return retry_after if retry_after <= RETRY_AFTER_CAP else None
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** number))


def _retry_after_seconds(headers):
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def read_blocks(response):
    """The body of a streaming response in blocks as they arrive; transport failures as Gemini errors."""
    try:
        while True:
            block = response.raw.read1(READ_SIZE)
            if not block:
                return
            yield block
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as error:
        raise _transport_error(error) from None


def _status_error(response, stream):
    try:
        raw = response.raw.read(ERROR_BODY_LIMIT, decode_content=True) if stream else response.content
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError):
        raw = b""
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = _excerpt(raw) or response.reason or ""
    return upstream_error(response.status_code, payload, response.headers)


def _transport_error(error):
    if isinstance(error, requests.ConnectTimeout):
        return UpstreamUnavailable("The upstream did not accept a connection in time.", retryable=True)
    if isinstance(error, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
        return UpstreamTimeout("The upstream did not answer in time.")
    # requests wraps a failure to connect in MaxRetryError; a connection lost later is a ProtocolError.
    cause = error.args[0] if isinstance(error, requests.ConnectionError) and error.args else None
    if isinstance(cause, urllib3.exceptions.TimeoutError):  # a body read that timed out, as requests wraps it
        return UpstreamTimeout("The upstream did not answer in time.")
    if isinstance(cause, urllib3.exceptions.MaxRetryError):
        return UpstreamUnavailable("The upstream is unreachable.", retryable=True)
    if isinstance(cause, urllib3.exceptions.ProtocolError):
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
