"""The store in a Cloud Storage bucket (STORAGE_BUCKET=gs://bucket[/prefix]): LocalStore's interface
and semantics (storage.py), through google-cloud-storage, which is imported on first use, never at
start: the function makes its store when it starts, and plain generation keeps its cold start and
memory. STORAGE_EMULATOR_HOST, read when the store is made, points it at an emulator (the tests).

Resumable writes are Cloud Storage's own upload sessions: the session string is the session's URI
(a capability: whoever holds it can write the object, so it stays server-side, and no message
names it). Pieces are PUT to it as they come from the caller's iterable, never joined: memory is
a block per write, whatever the piece's size.

Cloud Storage's failures (5xx, 429, no connection, after the library's retries) are
StorageUnavailable naming the bucket; so is any other refusal (a 403: the service account lacks
access), with its kind.
"""

import contextlib
import functools
import json
import os
import typing
from datetime import datetime

import urllib3

from .storage import READ_BLOCK, AlreadyExists, StorageUnavailable, StoredObject, WriteConflict, exactly, piece_size

# Seconds: one request to Cloud Storage (connecting, or waiting for a read), and the library's
# retries of a failed idempotent request, in all, before the store answers 503.
TIMEOUT = 30
RETRY_SECONDS = 20
# The largest answer read from an upload session: an object resource (JSON) or an error.
MAX_SESSION_ANSWER = 1024 * 1024
RESUME_INCOMPLETE = 308
FINISHED = (200, 201)
# An upload session that is finished, gone, or cancelled (499) answers one of these.
SESSION_OVER = (*FINISHED, 404, 410, 499)
_RAISE = object()


class _Library(typing.NamedTuple):
    bucket: typing.Any  # google.cloud.storage.Bucket
    retry: typing.Any  # google.api_core.retry.Retry
    not_found: type
    precondition_failed: type
    failures: tuple  # what else a call may raise when Cloud Storage fails or refuses


class CloudStorage:
    def __init__(self, bucket_and_prefix):
        bucket, _, prefix = bucket_and_prefix.partition("/")
        self.bucket_name = bucket
        self.root = prefix.strip("/") + "/" if prefix.strip("/") else ""
        # Read now, like every setting: the library reads it only when its client is made.
        self.emulator_host = os.environ.get("STORAGE_EMULATOR_HOST", "")

    @functools.cached_property
    def _library(self):
        """The bucket, the retry policy and the errors to map, made on first use."""
        import google.auth.exceptions
        import requests
        from google.api_core import exceptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage
        from google.cloud.storage.retry import DEFAULT_RETRY

        if self.emulator_host:
            client = storage.Client(project=None, credentials=AnonymousCredentials(),
                                    client_options={"api_endpoint": self.emulator_host})
        else:
            client = storage.Client(project=None)  # objects need no project: none is looked up
        failures = (exceptions.GoogleAPICallError, exceptions.RetryError, requests.RequestException,
                    google.auth.exceptions.TransportError, google.auth.exceptions.RefreshError)
        return _Library(client.bucket(self.bucket_name), DEFAULT_RETRY.with_timeout(RETRY_SECONDS),
                        exceptions.NotFound, exceptions.PreconditionFailed, failures)

    @functools.cached_property
    def _sessions(self):
        """The connections for upload sessions, whose URIs need no credentials."""
        return urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=TIMEOUT, read=TIMEOUT))

    def put(self, name, data, content_type, metadata=None, if_absent=False):
        blob = self._blob(name, metadata)
        self._call(blob.upload_from_string, data, content_type=content_type,
                   if_generation_match=0 if if_absent else None, taken=name)
        return self._stored(blob)

    def get(self, name):
        """(bytes, StoredObject), or None: for small objects (records), read whole."""
        blob = self._head(name)
        data = None if blob is None else self._call(blob.download_as_bytes, absent=None)  # of that generation
        return None if data is None else (data, self._stored(blob))

    def head(self, name):
        blob = self._head(name)
        return None if blob is None else self._stored(blob)

    def read(self, name):
        """The object's bytes in blocks of at most READ_BLOCK; empty if it is gone."""
        blob = self._head(name)
        if blob is None:
            return
        # One streamed GET of that generation, through the library's authorised session (its
        # reader would ask once per block).
        try:
            with blob.client._http.get(blob.media_link, stream=True, timeout=TIMEOUT) as response:
                if response.status_code == 404:
                    return
                if response.status_code != 200:
                    raise self._unavailable(f"answered {response.status_code}")
                yield from response.iter_content(READ_BLOCK)
        except self._library.failures as error:
            raise self._failed(error) from None

    def list(self, prefix, page_size, token=None):
        """(up to ``page_size`` objects whose names start with ``prefix``, in name order; the token
        of the next page or None). The tokens are Cloud Storage's own."""
        return self._call(self._page, self.root + prefix, page_size, token)

    def delete(self, name):
        """True if it was there."""
        return self._call(self._library.bucket.delete_blob, self.root + name, absent=False) is None

    def copy(self, source, destination):
        """The destination's StoredObject (content type and metadata as the source's), or None
        when there is no source. Cloud Storage copies within the bucket."""
        bucket = self._library.bucket
        copied = self._call(bucket.copy_blob, self._blob(source), bucket, self.root + destination, absent=None)
        return None if copied is None else self._stored(copied)

    def set_metadata(self, name, metadata):
        """Adds to (or replaces entries of) the object's metadata; None when there is no object."""
        blob = self._head(name)
        if blob is None:
            return None
        # The whole map is sent: Cloud Storage would merge the new entries, the emulator replaces.
        blob.metadata = {**(blob.metadata or {}), **metadata}
        return None if self._call(blob.patch, absent=False) is False else self._stored(blob)

    def start_write(self, name, content_type, metadata=None, if_absent=True):
        """An upload session's URI (kept by the caller between requests) for writing ``name`` in pieces.
        With ``if_absent``, a taken name is refused now, before any byte is sent, and again when the
        object would be made (the session's precondition)."""
        if if_absent and self._head(name) is not None:
            raise AlreadyExists(name)
        blob = self._blob(name, metadata)
        return self._call(blob.create_resumable_upload_session, content_type=content_type, checksum=None,
                          if_generation_match=0 if if_absent else None, taken=name)

    def committed(self, session):
        """How many bytes of the write the store holds."""
        status, headers, _ = self._put(session, "bytes */*", b"", 0)
        if status == RESUME_INCOMPLETE:
            return held_bytes(headers)
        if status in SESSION_OVER:
            raise WriteConflict(0)
        raise self._unavailable(f"answered {status}")

    def write(self, session, offset, blocks, total=None, size=None):
        """Appends ``blocks`` (an iterable of bytes; ``size`` of them, or ``total - offset`` for the
        piece that finishes the object) at ``offset``, which must be what the store holds; with
        ``total``, finishes the object. Returns the bytes held (offset + size), or the StoredObject
        once finished. Cloud Storage may acknowledge a piece that repeats bytes it holds (it keeps
        its own), where the folder raises WriteConflict."""
        size = piece_size(offset, total, size)
        if size == 0 and total is None:  # nothing to send: a range cannot name an empty piece
            held = self.committed(session)
            if held != offset:
                raise WriteConflict(held)
            return held
        end = "*" if total is None else str(total)
        content_range = f"bytes {offset}-{offset + size - 1}/{end}" if size else f"bytes */{end}"
        try:
            status, headers, answer = self._put(session, content_range, _carried(exactly(blocks, size)), size)
        except _BlocksFailed as failed:
            raise failed.__cause__ from None
        if status in FINISHED and total is not None:
            return self._stored(json.loads(answer))
        if status == RESUME_INCOMPLETE:
            held = held_bytes(headers)
            if total is None and held == offset + size:
                return held
            raise WriteConflict(held)
        if status == 412:
            raise AlreadyExists("the object this session writes")
        if status in SESSION_OVER:
            raise WriteConflict(0)
        if 400 <= status < 500:  # a piece that does not start where the session holds: refused
            raise WriteConflict(self.committed(session))
        raise self._unavailable(f"answered {status}")

    def cancel_write(self, session):
        """Cancels the session, as far as Cloud Storage can be reached: one left open ends by itself
        within a week, and what it holds never becomes the object unless its URI, which the
        caller drops, is used again."""
        with contextlib.suppress(StorageUnavailable):
            self._send("DELETE", session, b"", {"Content-Length": "0"})

    def _put(self, session, content_range, body, size):
        return self._send("PUT", session, body, {"Content-Range": content_range, "Content-Length": str(size)})

    def _send(self, method, session, body, headers):
        """(status, headers, the answer's first bytes) of a request to the upload session; the
        connection goes back to the pool when the answer was read whole."""
        try:
            response = self._sessions.urlopen(method, session, body=body, headers=headers, redirect=False,
                                              preload_content=False)
            with response:
                answer = response.read(MAX_SESSION_ANSWER)
        except urllib3.exceptions.HTTPError as error:
            raise self._unavailable(f"failed ({type(error).__name__})") from None
        if response.status == 429 or response.status >= 500:
            raise self._unavailable(f"answered {response.status}")
        return response.status, response.headers, answer

    def _page(self, prefix, page_size, token, **options):
        blobs = self._library.bucket.client.list_blobs(self._library.bucket, prefix=prefix, page_size=page_size,
                                                       page_token=token, **options)
        return [self._stored(blob) for blob in next(blobs.pages, ())], blobs.next_page_token

    def _blob(self, name, metadata=None):
        blob = self._library.bucket.blob(self.root + name)
        blob.metadata = metadata or None
        return blob

    def _head(self, name):
        """The blob with its properties (one request), or None."""
        return self._call(self._library.bucket.get_blob, self.root + name, absent=None)

    def _call(self, method, *args, absent=_RAISE, taken=None, **kwargs):
        """``method(*args, **kwargs)`` with the store's timeout and retries: "not found" gives
        ``absent`` (when given), a failed precondition is AlreadyExists(``taken``), any other
        failure StorageUnavailable."""
        library = self._library
        try:
            return method(*args, timeout=TIMEOUT, retry=library.retry, **kwargs)
        except library.not_found as error:
            if absent is _RAISE:
                raise self._failed(error) from None
            return absent
        except library.precondition_failed:
            raise AlreadyExists(taken) from None
        except library.failures as error:
            raise self._failed(error) from None

    def _failed(self, error):
        """StorageUnavailable for what the library raised, by its kind (the last try's, after
        retries): never its text, which holds URLs."""
        return self._unavailable(f"failed ({type(getattr(error, 'cause', None) or error).__name__})")

    def _unavailable(self, what):
        return StorageUnavailable(f"Cloud Storage (bucket {self.bucket_name}) {what}.")

    def _stored(self, blob_or_resource):
        """StoredObject from an object resource (JSON, as Cloud Storage answers it), or from a blob,
        which keeps the last one it was given."""
        resource = getattr(blob_or_resource, "_properties", blob_or_resource)
        return StoredObject(
            name=resource["name"].removeprefix(self.root), size=int(resource.get("size") or 0),
            content_type=resource.get("contentType") or "application/octet-stream",
            created=timestamp(resource["timeCreated"]), updated=timestamp(resource["updated"]),
            metadata=dict(resource.get("metadata") or {}))


class _BlocksFailed(Exception):
    """What the caller's blocks raised, carried through urllib3, which would take an OSError (the
    client's body breaking off) for its own connection's and report it as a ProtocolError."""


def _carried(blocks):
    try:
        yield from blocks
    except Exception as error:
        raise _BlocksFailed() from error


def held_bytes(headers):
    """The bytes an upload session holds, from its 308's ``Range: bytes=0-{last}`` (none: 0).
    ``{"Range": "bytes=0-262143"}`` -> 262144."""
    held = headers.get("Range", "")
    return int(held.rpartition("-")[2]) + 1 if held else 0


def timestamp(rfc3339):
    """Seconds since the epoch: "2026-12-02T18:05:58.123Z" -> 1796234758.123."""
    return datetime.fromisoformat(rfc3339).timestamp()
