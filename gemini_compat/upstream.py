"""The OpenAI-compatible upstream: one pooled HTTP session, and its failures as Gemini errors."""

import json
import os
import re

import requests
import urllib3

from .errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from .response_translation import upstream_error

# An error body is read only this far: enough for any message, never a memory hazard.
ERROR_BODY_LIMIT = 64 * 1024
READ_SIZE = 64 * 1024


class Upstream:
    def __init__(self, settings, pool_size=None):
        self.url = settings.chat_completions_url
        self.timeout = (settings.upstream_timeout, settings.upstream_timeout)
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

    def complete(self, payload, key):
        """A whole chat completion, as parsed JSON."""
        response = self._post(payload, key, stream=False)
        try:
            return json.loads(response.content)
        except ValueError:
            raise UpstreamError(f"The upstream answer is not valid JSON: {_excerpt(response.content)}") from None
        except requests.RequestException as error:
            raise _transport_error(error) from None

    def open_stream(self, payload, key):
        """The upstream's streaming response, status 200 checked, body unread."""
        return self._post(payload, key, stream=True)

    def _post(self, payload, key, stream):
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        if stream:
            headers["Accept"] = "text/event-stream"
            headers["Accept-Encoding"] = "identity"  # a compressed stream arrives in lumps
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            response = self.session.post(self.url, data=body, headers=headers, timeout=self.timeout, stream=stream)
        except requests.RequestException as error:
            raise _transport_error(error) from None
        if response.status_code != 200:
            with response:
                raise _status_error(response)
        return response


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


def _status_error(response):
    try:
        raw = response.raw.read(ERROR_BODY_LIMIT, decode_content=True)
    except (urllib3.exceptions.HTTPError, OSError):
        raw = b""
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = _excerpt(raw) or response.reason or ""
    return upstream_error(response.status_code, payload, response.headers)


def _transport_error(error):
    if isinstance(error, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
        return UpstreamTimeout("The upstream did not answer in time.")
    # requests wraps a failure to connect in MaxRetryError; a connection lost later is a ProtocolError.
    cause = error.args[0] if isinstance(error, requests.ConnectionError) and error.args else None
    if isinstance(cause, urllib3.exceptions.MaxRetryError):
        return UpstreamUnavailable("The upstream is unreachable.")
    return UpstreamError("The upstream connection broke off before its answer was complete.")


def _excerpt(raw, limit=300):
    """A short plain-text excerpt of a non-JSON body (HTML tags dropped)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
    text = title.group(1) if title else re.sub(r"<[^>]+>", " ", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
