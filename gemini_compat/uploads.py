"""The resumable upload (Google's protocol, as the SDKs speak it): the start request, then the
chunk, query, cancel and finalize requests on the upload URL it answers, which end in a stored
file (files.py).

Stored objects (storage.py): ``uploads/sessions/{upload key}`` (an unfinished upload's record, JSON)
and ``uploads/{owner}/{upload key}`` (its entry in the owner's index, for quotas). The upload key is
a digest of the upload_id: the capability itself is never stored, nor logged.
"""

import base64
import collections
import contextlib
import hashlib
import json
import mimetypes
import re
import secrets
import threading
import time
import typing

import flask

from . import clock, request_body
from .errors import AlreadyExists, GeminiError, InvalidArgument, NotFound
from .files import expired, generated_id
from .json_wire import JSON_CONTENT_TYPE
from .logs import internal_error
from .responses import json_response
from .routing import RESOURCE_ID
from .storage import GRANULARITY, NameTaken, WriteConflict

UPLOAD_STATUS = "X-Goog-Upload-Status"
# An unfinished upload is kept this long (a Cloud Storage resumable session's own lifetime).
UPLOAD_LIFETIME = 7 * 24 * 3600
# The start request's JSON ({"file": {...}}) is small.
START_BODY_LIMIT = 64 * 1024
# Past this, a file whose hash state another instance held is not read back: no sha256Hash.
SHA256_READBACK_MAX = 64 * 1024 * 1024
PROGRESS_KEPT = 256
MAX_DISPLAY_NAME = 512

_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_OFFSET = re.compile(r"[0-9]{1,19}")
_MIME_TYPE = re.compile(r"[\w!#$&^.+-]+/[\w!#$&^.+-]+(?:\s*;[ -~]*)?")
_COMMANDS = {"upload": False, "upload,finalize": True, "finalize": True}
# The start body's fields as the Python SDK spells them (model_dump, snake_case) -> as curl does.
_START_FIELDS = {"display_name": "displayName", "mime_type": "mimeType", "size_bytes": "sizeBytes", "name": "name"}


class Progress(typing.NamedTuple):
    """An upload as this process last wrote it: the SHA-256 of its bytes so far, and their count."""
    hasher: object
    count: int


class Uploads:
    """The protocol's requests: an upload started by its owner, then continued by whoever holds its URL."""

    def __init__(self, settings, store, records, files, owners, request_memory):
        self.settings = settings
        self.store = store
        self.records = records
        self.files = files
        self.owners = owners
        self.request_memory = request_memory

    def start(self, request, route, caller, log):
        """The start request, its owner's (with a key): the upload URL to send the bytes to."""
        self.files.require_store()
        headers = request.headers
        if headers.get("X-Goog-Upload-Protocol", "").strip().lower() != "resumable":
            raise InvalidArgument("Uploads take the resumable protocol: send X-Goog-Upload-Protocol: resumable.")
        if headers.get("X-Goog-Upload-Command", "").strip().lower() != "start":
            raise InvalidArgument("An upload starts with X-Goog-Upload-Command: start; its chunks go to the "
                                  "X-Goog-Upload-URL that answer gives.")
        request_body.check_content_type(headers)
        if caller.unverified:
            self.owners.verify_key(caller)
        fields = start_fields(self._start_body(request))
        size = declared_size(headers, fields, self.settings.file_max_bytes)
        mime_type = declared_mime_type(headers, fields)
        display_name = fields.get("displayName")
        if display_name is not None and (not isinstance(display_name, str) or len(display_name) > MAX_DISPLAY_NAME):
            raise InvalidArgument(f"must be a string of at most {MAX_DISPLAY_NAME} characters", field="file.displayName")
        file_id = requested_id(fields.get("name")) or generated_id()
        log.fields.update(fileId=file_id, size=size)
        self.owners.check_quota(caller.owner, size or 0)
        name = f"files/{caller.owner}/{file_id}"
        existing = self.store.head(name)
        if existing is not None and expired(existing, self.settings.file_ttl):
            self.store.delete(name)
        try:
            session = self.store.start_write(name, mime_type, {"displayName": display_name} if display_name else {})
        except NameTaken:
            raise AlreadyExists(f"File files/{file_id} already exists.") from None
        upload_id = secrets.token_urlsafe(32)
        key = upload_key(upload_id)
        record = {"owner": caller.owner, "fileId": file_id, "session": session, "size": size, "mimeType": mime_type,
                  "displayName": display_name, "created": clock.now()}
        self.records.add(key, record)
        url = (f"{self.files.public_base(request, route)}/upload/{route.version}/files"
               f"?upload_id={upload_id}&upload_protocol=resumable")
        return flask.Response(b"", 200, headers={"X-Goog-Upload-URL": url, UPLOAD_STATUS: "active",
                                                 "X-Goog-Upload-Chunk-Granularity": str(GRANULARITY)})

    def _start_body(self, request):
        if not request_body.has_body(request):
            return {}
        return request_body.read_json(request, START_BODY_LIMIT, self.settings.client_body_timeout,
                                      self.request_memory)

    def chunk(self, request, route, log):
        """A request on the upload URL. Every answer, errors too, carries X-Goog-Upload-Status:
        without it the Python SDK sends the same chunk three times and sleeps 7 s."""
        try:
            return self._chunk(request, route, log)
        except GeminiError as error:
            error.headers = {**error.headers, UPLOAD_STATUS: "final"}
            raise
        except Exception:  # a bug of ours, or the store failing unexpectedly: still final
            error = internal_error("unexpected error on an upload URL")
            error.headers = {UPLOAD_STATUS: "final"}
            raise error from None

    def _chunk(self, request, route, log):
        self.files.require_store()
        upload_id = request.args["upload_id"]
        key = upload_key(upload_id) if _UPLOAD_ID.fullmatch(upload_id) else None
        record = self.records.record(key) if key else None
        if record is None:
            raise NotFound("No upload with this upload_id: it was never started, or it finished, was cancelled "
                           "or expired. Start the upload again.")
        log.fields.update(fileId=record["fileId"], upload=key[:8])
        command = upload_command(request.headers)
        if command == "cancel":
            self.records.drop(key, record)
            return _upload_answer("cancelled")
        if command == "query":
            return _upload_answer("active", {"X-Goog-Upload-Size-Received": str(self._committed(key, record))})
        finalize = _COMMANDS[command]
        length, offset = chunk_extent(request)
        log.fields["size"] = length
        # What this process wrote last is what the store holds, unless another instance took a chunk
        # since: the store is asked only when the client's offset says something else.
        state = self.records.progress(key)
        committed = state.count if state is not None and offset in (None, state.count) else self._committed(key, record)
        offset = committed if offset is None and command == "finalize" else offset
        if offset is None:
            raise InvalidArgument("An upload chunk needs X-Goog-Upload-Offset: the position of its first byte.")
        end = offset + length
        self._check_chunk(key, record, committed, offset, end, finalize)
        if finalize and record["size"] is None:  # a size not declared at the start counts from now on
            self.owners.check_quota(record["owner"], end, added_objects=0)
        written = self._write(request, key, record, state, committed, offset, end, finalize)
        if not finalize:
            return _upload_answer("active", {"X-Goog-Upload-Size-Received": str(written)})
        self.records.end(key, record)
        resource = self.files.file_resource(written, self.files.public_base(request, route), route.version)
        return json_response({"file": resource}, {UPLOAD_STATUS: "final"})

    def _committed(self, key, record):
        """The bytes of the upload the store holds."""
        try:
            return self.store.committed(record["session"])
        except WriteConflict:  # the store lost the session (its own lifetime ended)
            self.records.end(key, record)
            raise NotFound("This upload's session has expired. Start the upload again.") from None

    def _check_chunk(self, key, record, committed, offset, end, finalize):
        """Refuses a chunk that leaves a gap, breaks the granularity or goes past the file's size. A
        finalize at another size than the declared one ends the upload (it cannot be completed)."""
        if offset > committed:
            raise InvalidArgument(f"X-Goog-Upload-Offset {offset} is past the {committed} bytes received: a chunk is "
                                  "missing. Ask with X-Goog-Upload-Command: query and resume from there.")
        if not finalize and (end - offset) % GRANULARITY:
            raise InvalidArgument(f"A chunk other than the last must be a multiple of {GRANULARITY} bytes "
                                  f"(X-Goog-Upload-Chunk-Granularity); this one has {end - offset}.")
        declared = record["size"]
        if declared is not None and end > declared:
            raise InvalidArgument(f"The upload's bytes go past its declared size ({declared} bytes).")
        if end > self.settings.file_max_bytes:
            raise InvalidArgument(f"The file exceeds FILE_MAX_BYTES ({self.settings.file_max_bytes} bytes).")
        if finalize and end < committed:
            raise InvalidArgument(f"The last chunk ends at byte {end}, before the {committed} bytes received.")
        if finalize and declared is not None and end != declared:
            self.records.drop(key, record)
            raise InvalidArgument(f"The upload ended at {end} bytes; its declared size was {declared}.")

    def _write(self, request, key, record, state, committed, offset, end, finalize):
        """Streams the chunk's bytes past ``committed`` (a retried chunk's overlap is thrown away)
        into the store, hashing them on the way: the bytes held, or the file once finalized."""
        if state is not None and state.count == committed:
            hasher = state.hasher.copy()  # a copy: a concurrent retry of the same chunk hashes its own
        else:
            hasher = hashlib.sha256() if committed == 0 else None
        deadline = time.monotonic() + self.settings.client_body_timeout
        blocks = request_body.body_blocks(request, end - offset, deadline, self.settings.client_body_timeout)
        with contextlib.closing(blocks):
            pieces = new_bytes(blocks, committed - offset, end - offset, hasher)
            try:
                written = self._store_piece(key, record, pieces, committed, end, finalize)
            except BaseException:
                self.records.forget_progress(key, state)  # the store may have kept part of it: ask it next time
                raise
        request.environ[request_body.BODY_READ] = True
        if not finalize:
            self.records.keep_progress(key, Progress(hasher, written) if hasher is not None else None)
            return written
        digest = hasher.hexdigest() if hasher is not None else self._read_back_digest(written)
        if digest is None:
            return written
        # Google's sha256Hash: base64 of the lowercase hex digest.
        return self.store.set_metadata(written.name, {"sha256Hash": base64.b64encode(digest.encode()).decode()}) \
            or written

    def _store_piece(self, key, record, pieces, committed, end, finalize):
        if end <= committed and not finalize:  # all of it held already: read and thrown away
            for _ in pieces:
                pass
            return committed
        try:
            return self.store.write(record["session"], committed, pieces, total=end if finalize else None,
                                    size=end - committed)
        except WriteConflict as conflict:
            raise GeminiError(f"The store holds {conflict.committed} bytes of this upload, not {committed}: another "
                              "request moved it meanwhile. Ask with X-Goog-Upload-Command: query and resume from "
                              "there.", code=409) from None
        except NameTaken:
            self.records.drop(key, record)
            raise AlreadyExists(f"File files/{record['fileId']} already exists.") from None

    def _read_back_digest(self, stored):
        """When another instance took earlier chunks: the hex SHA-256 of the stored file, read back
        if it is small enough, else None (the field is then left out)."""
        if stored.size > SHA256_READBACK_MAX:
            return None
        hasher = hashlib.sha256()
        for block in self.store.read(stored.name):
            hasher.update(block)
        return hasher.hexdigest()


class UploadRecords:
    """The unfinished uploads: each one's record and index entry in the store, and (per process)
    how far this process wrote each. Quotas (owners.py) end the abandoned ones through it too."""

    def __init__(self, store):
        self.store = store
        self._lock = threading.Lock()
        self._written = collections.OrderedDict()  # upload key -> Progress, of the uploads this process wrote

    def add(self, key, record):
        """Stores a started upload's record, and its entry in its owner's index at its declared size."""
        self.store.put(f"uploads/{record['owner']}/{key}", b"", "application/octet-stream",
                       {"size": str(record["size"] or 0)})
        self.store.put(f"uploads/sessions/{key}", json.dumps(record).encode(), JSON_CONTENT_TYPE)
        self.keep_progress(key, Progress(hashlib.sha256(), 0))

    def record(self, key):
        """The unfinished upload's record, or None (never started, finished, or expired)."""
        found = self.store.get(f"uploads/sessions/{key}")
        if found is None:
            return None
        record = json.loads(found[0])
        if clock.now() >= record["created"] + UPLOAD_LIFETIME:
            self.drop(key, record)
            return None
        return record

    def drop(self, key, record):
        """Ends an upload that will not be finished: its bytes so far, its record."""
        self.store.cancel_write(record["session"])
        self.end(key, record)

    def end(self, key, record):
        """Forgets an upload: its record, its index entry, its progress here (not its bytes)."""
        self.store.delete(f"uploads/sessions/{key}")
        self.store.delete(f"uploads/{record['owner']}/{key}")
        self.forget_progress(key, None)

    def progress(self, key):
        """The upload's Progress as this process last wrote it, or None."""
        with self._lock:
            return self._written.get(key)

    def keep_progress(self, key, progress):
        """Remembers how far this process wrote the upload (None: forgets it), for the PROGRESS_KEPT latest."""
        with self._lock:
            self._written.pop(key, None)
            if progress is not None:
                self._written[key] = progress
            while len(self._written) > PROGRESS_KEPT:
                self._written.popitem(last=False)

    def forget_progress(self, key, progress):
        """Forgets the upload's ``progress``, unless a newer one was kept meanwhile (None: whichever is kept)."""
        with self._lock:
            if progress is None or self._written.get(key) is progress:  # not a newer one another request kept
                self._written.pop(key, None)


# --- pure helpers --------------------------------------------------------------------------------

def upload_key(upload_id):
    """What names an upload in the store: a digest of its upload_id, the capability itself."""
    return hashlib.sha256(upload_id.encode()).hexdigest()[:32]


def start_fields(body):
    """The start body's ``file``, its keys as curl spells them, nulls dropped:
    ``{"file": {"display_name": "a", "size_bytes": 3}}`` -> ``{"displayName": "a", "sizeBytes": 3}``."""
    if not isinstance(body, dict):
        raise InvalidArgument("Invalid JSON payload received. The body must be an object: {\"file\": {...}}.")
    given = body.get("file")
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise InvalidArgument("must be an object", field="file")
    return {_START_FIELDS.get(key, key): value for key, value in given.items() if value is not None}


def declared_size(headers, fields, limit):
    """The file's size as the start request declares it (header, else file.sizeBytes), or None."""
    header = headers.get("X-Goog-Upload-Header-Content-Length")
    value, where = (header.strip(), "X-Goog-Upload-Header-Content-Length") if header is not None else (
        fields.get("sizeBytes"), "file.sizeBytes")
    if value is None:
        return None
    if isinstance(value, str) and _OFFSET.fullmatch(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgument(f"{where} must be a whole number of bytes")
    if value > limit:
        raise InvalidArgument(f"The file's {value} bytes exceed FILE_MAX_BYTES ({limit} bytes).")
    return value


def declared_mime_type(headers, fields):
    """X-Goog-Upload-Header-Content-Type, else file.mimeType, else a guess from X-Goog-Upload-File-Name."""
    mime_type = headers.get("X-Goog-Upload-Header-Content-Type") or fields.get("mimeType")
    if mime_type is None and headers.get("X-Goog-Upload-File-Name"):
        mime_type = mimetypes.guess_type(headers["X-Goog-Upload-File-Name"])[0]
    if mime_type is None:
        raise InvalidArgument("The file's MIME type is unknown: send X-Goog-Upload-Header-Content-Type or "
                              "file.mimeType.")
    if not isinstance(mime_type, str) or len(mime_type) > 255 or not _MIME_TYPE.fullmatch(mime_type.strip()):
        raise InvalidArgument("is not a MIME type (type/subtype)", field="file.mimeType")
    return mime_type.strip()


def requested_id(name):
    """The ID of a requested ``files/{id}`` (or bare ``{id}``), or None when none is asked for."""
    if name is None or name == "":
        return None
    file_id = name.removeprefix("files/") if isinstance(name, str) else ""
    if not RESOURCE_ID.fullmatch(file_id):
        raise InvalidArgument("must be files/{id}: up to 40 lowercase letters, digits and dashes, not at either end",
                              field="file.name")
    return file_id


def upload_command(headers):
    """X-Goog-Upload-Command, as one of upload, "upload,finalize", finalize, query, cancel."""
    command = ",".join(word.strip() for word in headers.get("X-Goog-Upload-Command", "").lower().split(","))
    if command not in _COMMANDS and command not in ("query", "cancel"):
        raise InvalidArgument("X-Goog-Upload-Command must be upload, \"upload, finalize\", finalize, query or cancel.")
    return command


def chunk_extent(request):
    """(length, X-Goog-Upload-Offset or None) of a chunk. A body without Content-Length is empty,
    unless chunked: the length must be known before it is read."""
    if request.content_length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        raise InvalidArgument("An upload chunk needs a Content-Length (not a chunked body).")
    offset = request.headers.get("X-Goog-Upload-Offset")
    if offset is not None and not _OFFSET.fullmatch(offset.strip()):
        raise InvalidArgument("X-Goog-Upload-Offset must be the position of the chunk's first byte.")
    return request.content_length or 0, None if offset is None else int(offset)


def new_bytes(blocks, skip, length, hasher):
    """``blocks`` (a chunk of ``length`` bytes) without its first ``skip`` bytes, which the store
    already holds (the chunk is a retry); what passes is added to ``hasher`` (if any)."""
    seen = 0
    for block in blocks:
        seen += len(block)
        if skip > 0:
            block, skip = block[skip:], skip - len(block)
        if block:
            if hasher is not None:
                hasher.update(block)
            yield block
    if seen < length:
        raise InvalidArgument("The request body ended before it was complete.")


def _upload_answer(status, headers=None):
    return flask.Response(b"", 200, headers={UPLOAD_STATUS: status, **(headers or {})})
