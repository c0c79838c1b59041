"""The Files API over our own store: the resumable upload, files get/list/delete, and a
``fileData`` that names one of our files resolved into the request as its bytes.

Stored objects (storage.py): ``files/{owner}/{file_id}`` (the bytes; metadata displayName and
sha256Hash), ``uploads/sessions/{upload key}`` (an unfinished upload's record, JSON) and
``uploads/{owner}/{upload key}`` (its entry in the owner's index, for quotas). The upload key is a
digest of the upload_id: the capability itself is never stored, nor logged.
"""

import base64
import collections
import contextlib
import datetime
import hashlib
import json
import mimetypes
import re
import secrets
import string
import threading
import time
import typing
from urllib.parse import urlsplit

import flask

from . import request_body
from .config import BYTE_COST
from .errors import GeminiError, InvalidArgument, NotFound, PermissionDenied, field_path
from .json_wire import JSON_CONTENT_TYPE, dumps
from .logs import internal_error
from .routing import RESOURCE_ID
from .storage import GRANULARITY, AlreadyExists, WriteConflict

NO_STORAGE = "This deployment has no storage: set STORAGE_BUCKET (deploy.sh --storage-bucket)"
UPLOAD_STATUS = "X-Goog-Upload-Status"
# An unfinished upload is kept this long (a Cloud Storage resumable session's own lifetime).
UPLOAD_LIFETIME = 7 * 24 * 3600
# The start request's JSON ({"file": {...}}) is small.
START_BODY_LIMIT = 64 * 1024
# Past this, a file whose hash state another instance held is not read back: no sha256Hash.
SHA256_READBACK_MAX = 64 * 1024 * 1024
PROGRESS_KEPT = 256
# A pass-through key the upstream accepted is not asked about again for this long.
KEY_CHECK_SECONDS = 600
KEYS_REMEMBERED = 1024
GENERATED_ID_LENGTH = 16
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
QUOTA_LIST_PAGE = 1000
MAX_DISPLAY_NAME = 512

_ID_ALPHABET = string.ascii_lowercase + string.digits
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_OFFSET = re.compile(r"[0-9]{1,19}")
_MIME_TYPE = re.compile(r"[\w!#$&^.+-]+/[\w!#$&^.+-]+(?:\s*;[ -~]*)?")
_OUR_FILE_PATH = re.compile(r".*/(?:v1|v1beta|v1alpha)/files/([^/]+)")
_COMMANDS = {"upload": False, "upload,finalize": True, "finalize": True}
# The start body's fields as the Python SDK spells them (model_dump, snake_case) -> as curl does.
_START_FIELDS = {"display_name": "displayName", "mime_type": "mimeType", "size_bytes": "sizeBytes", "name": "name"}


class Progress(typing.NamedTuple):
    """An upload as this process last wrote it: the SHA-256 of its bytes so far, and their count."""
    hasher: object
    count: int


class Files:
    clock = staticmethod(time.time)  # what "now" is for expiry; tests move it

    def __init__(self, settings, store, upstream, request_memory):
        self.settings = settings
        self.store = store
        self.upstream = upstream
        self.request_memory = request_memory
        self._lock = threading.Lock()
        self._written = collections.OrderedDict()  # upload key -> Progress, of the uploads this process wrote
        self._good_keys = collections.OrderedDict()  # key digest -> monotonic time it is good until

    # --- the routes ------------------------------------------------------------------------------

    def respond(self, request, route, caller, log):
        self.require_store()
        if route.action == "uploadFile":
            return self._start(request, route, caller, log)
        if route.action == "listFiles":
            return _answer(self._page(caller.owner, request.args, self.public_base(request, route), route.version))
        log.fields["fileId"] = route.resource_id
        stored = self.stored_file(caller.owner, route.resource_id)
        if route.action == "deleteFile":
            self.store.delete(stored.name)
            return _answer({})
        if route.action == "downloadFile":
            raise InvalidArgument("Only generated files can be downloaded.")
        return _answer(self.file_resource(stored, self.public_base(request, route), route.version))

    def upload_chunk(self, request, route, log):
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

    def require_store(self):
        if self.store is None:
            raise GeminiError(NO_STORAGE, code=501)

    # --- the upload ------------------------------------------------------------------------------

    def _start(self, request, route, caller, log):
        headers = request.headers
        if headers.get("X-Goog-Upload-Protocol", "").strip().lower() != "resumable":
            raise InvalidArgument("Uploads take the resumable protocol: send X-Goog-Upload-Protocol: resumable.")
        if headers.get("X-Goog-Upload-Command", "").strip().lower() != "start":
            raise InvalidArgument("An upload starts with X-Goog-Upload-Command: start; its chunks go to the "
                                  "X-Goog-Upload-URL that answer gives.")
        request_body.check_content_type(headers)
        if caller.unverified:
            self.verify_key(caller)
        fields = start_fields(self._start_body(request))
        size = declared_size(headers, fields, self.settings.file_max_bytes)
        mime_type = declared_mime_type(headers, fields)
        display_name = fields.get("displayName")
        if display_name is not None and (not isinstance(display_name, str) or len(display_name) > MAX_DISPLAY_NAME):
            raise InvalidArgument(f"must be a string of at most {MAX_DISPLAY_NAME} characters", field="file.displayName")
        file_id = requested_id(fields.get("name")) or generated_id()
        log.fields.update(fileId=file_id, size=size)
        self.check_quota(caller.owner, size or 0)
        name = f"files/{caller.owner}/{file_id}"
        existing = self.store.head(name)
        if existing is not None and self._expired(existing):
            self.store.delete(name)
        try:
            session = self.store.start_write(name, mime_type, {"displayName": display_name} if display_name else {})
        except AlreadyExists:
            raise GeminiError(f"File files/{file_id} already exists.", code=409) from None
        upload_id = secrets.token_urlsafe(32)
        key = upload_key(upload_id)
        record = {"owner": caller.owner, "fileId": file_id, "session": session, "size": size, "mimeType": mime_type,
                  "displayName": display_name, "created": self.clock()}
        self.store.put(f"uploads/{caller.owner}/{key}", b"", "application/octet-stream", {"size": str(size or 0)})
        self.store.put(f"uploads/sessions/{key}", json.dumps(record).encode(), JSON_CONTENT_TYPE)
        self._keep_progress(key, Progress(hashlib.sha256(), 0))
        url = (f"{self.public_base(request, route)}/upload/{route.version}/files"
               f"?upload_id={upload_id}&upload_protocol=resumable")
        return flask.Response(b"", 200, headers={"X-Goog-Upload-URL": url, UPLOAD_STATUS: "active",
                                                 "X-Goog-Upload-Chunk-Granularity": str(GRANULARITY)})

    def _start_body(self, request):
        if not request_body.has_body(request):
            return {}
        return request_body.read_json(request, START_BODY_LIMIT, self.settings.client_body_timeout,
                                      self.request_memory)

    def _chunk(self, request, route, log):
        self.require_store()
        upload_id = request.args["upload_id"]
        key = upload_key(upload_id) if _UPLOAD_ID.fullmatch(upload_id) else None
        record = self._record(key) if key else None
        if record is None:
            raise NotFound("No upload with this upload_id: it was never started, or it finished, was cancelled "
                           "or expired. Start the upload again.")
        log.fields.update(fileId=record["fileId"], upload=key[:8])
        command = upload_command(request.headers)
        if command == "cancel":
            self._drop_upload(key, record)
            return _upload_answer("cancelled")
        if command == "query":
            return _upload_answer("active", {"X-Goog-Upload-Size-Received": str(self._committed(key, record))})
        finalize = _COMMANDS[command]
        length, offset = chunk_extent(request)
        log.fields["size"] = length
        # What this process wrote last is what the store holds, unless another instance took a chunk
        # since: the store is asked only when the client's offset says something else.
        state = self._progress(key)
        committed = state.count if state is not None and offset in (None, state.count) else self._committed(key, record)
        offset = committed if offset is None and command == "finalize" else offset
        if offset is None:
            raise InvalidArgument("An upload chunk needs X-Goog-Upload-Offset: the position of its first byte.")
        end = offset + length
        self._check_chunk(key, record, committed, offset, end, finalize)
        if finalize and record["size"] is None:  # a size not declared at the start counts from now on
            self.check_quota(record["owner"], end, added_objects=0)
        written = self._write(request, key, record, state, committed, offset, end, finalize)
        if not finalize:
            return _upload_answer("active", {"X-Goog-Upload-Size-Received": str(written)})
        self._end_upload(key, record)
        return _answer({"file": self.file_resource(written, self.public_base(request, route), route.version)},
                       {UPLOAD_STATUS: "final"})

    def _committed(self, key, record):
        """The bytes of the upload the store holds."""
        try:
            return self.store.committed(record["session"])
        except WriteConflict:  # the store lost the session (its own lifetime ended)
            self._end_upload(key, record)
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
            self._drop_upload(key, record)
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
                self._forget_progress(key, state)  # the store may have kept part of it: ask it next time
                raise
        request.environ[request_body.BODY_READ] = True
        if not finalize:
            self._keep_progress(key, Progress(hasher, written) if hasher is not None else None)
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
        except AlreadyExists:
            self._drop_upload(key, record)
            raise GeminiError(f"File files/{record['fileId']} already exists.", code=409) from None

    def _progress(self, key):
        """The upload's Progress as this process last wrote it, or None."""
        with self._lock:
            return self._written.get(key)

    def _keep_progress(self, key, progress):
        with self._lock:
            self._written.pop(key, None)
            if progress is not None:
                self._written[key] = progress
            while len(self._written) > PROGRESS_KEPT:
                self._written.popitem(last=False)

    def _forget_progress(self, key, progress):
        with self._lock:
            if progress is None or self._written.get(key) is progress:  # not a newer one another request kept
                self._written.pop(key, None)

    def _read_back_digest(self, stored):
        """When another instance took earlier chunks: the hex SHA-256 of the stored file, read back
        if it is small enough, else None (the field is then left out)."""
        if stored.size > SHA256_READBACK_MAX:
            return None
        hasher = hashlib.sha256()
        for block in self.store.read(stored.name):
            hasher.update(block)
        return hasher.hexdigest()

    def _record(self, key):
        """The unfinished upload's record, or None (never started, finished, or expired)."""
        found = self.store.get(f"uploads/sessions/{key}")
        if found is None:
            return None
        record = json.loads(found[0])
        if self.clock() >= record["created"] + UPLOAD_LIFETIME:
            self._drop_upload(key, record)
            return None
        return record

    def _drop_upload(self, key, record):
        """Ends an upload that will not be finished: its bytes so far, its record."""
        self.store.cancel_write(record["session"])
        self._end_upload(key, record)

    def _end_upload(self, key, record):
        self.store.delete(f"uploads/sessions/{key}")
        self.store.delete(f"uploads/{record['owner']}/{key}")
        self._forget_progress(key, None)

    # --- owners: their keys and their quotas -----------------------------------------------------

    def verify_key(self, caller):
        """A pass-through key must be one the upstream accepts before anything is stored for it:
        otherwise anyone could store files under invented keys. A good key is remembered (by its
        digest) for KEY_CHECK_SECONDS."""
        digest = hashlib.sha256(caller.key.encode()).digest()
        now = time.monotonic()
        with self._lock:
            if self._good_keys.get(digest, 0) > now:
                return
        self.upstream.get_json("/models", caller.key)  # raises the upstream's error for a bad key
        with self._lock:
            self._good_keys[digest] = now + KEY_CHECK_SECONDS
            self._good_keys.move_to_end(digest)
            while len(self._good_keys) > KEYS_REMEMBERED:
                self._good_keys.popitem(last=False)

    def check_quota(self, owner, added_bytes, added_objects=1):
        """429 when ``owner`` storing ``added_bytes`` more in ``added_objects`` more objects would pass
        STORAGE_QUOTA_BYTES or STORAGE_QUOTA_OBJECTS (files, cached contents and their file copies,
        unfinished uploads at their declared sizes)."""
        used_bytes, used_objects = self._usage(owner)
        settings = self.settings
        if used_objects + added_objects > settings.storage_quota_objects:
            raise GeminiError(f"This key's storage holds {used_objects} objects; STORAGE_QUOTA_OBJECTS allows "
                              f"{settings.storage_quota_objects}. Delete files or cached contents first.", code=429)
        if used_bytes + added_bytes > settings.storage_quota_bytes:
            raise GeminiError(f"This key's storage holds {used_bytes} bytes; with {added_bytes} more it would pass "
                              f"STORAGE_QUOTA_BYTES ({settings.storage_quota_bytes}). Delete files or cached "
                              "contents first.", code=429)

    def _usage(self, owner):
        """(bytes, objects) ``owner`` holds, counted up to just past the objects quota."""
        used_bytes = used_objects = 0
        for prefix in (f"files/{owner}/", f"cacheFiles/{owner}/", f"cachedContents/{owner}/", f"uploads/{owner}/"):
            token = ""
            while token is not None and used_objects <= self.settings.storage_quota_objects:
                objects, token = self.store.list(prefix, QUOTA_LIST_PAGE, token or None)
                for stored in objects:
                    if prefix.startswith("files/") and self._expired(stored):
                        continue
                    if prefix.startswith("uploads/") and self.clock() >= stored.created + UPLOAD_LIFETIME:
                        self._record(stored.name.rsplit("/", 1)[1])  # an abandoned upload: this ends it
                        self.store.delete(stored.name)
                        continue
                    used_objects += 1
                    used_bytes += int(stored.metadata.get("size", 0)) if prefix.startswith("uploads/") else stored.size
        return used_bytes, used_objects

    # --- files -----------------------------------------------------------------------------------

    def stored_file(self, owner, file_id):
        """``owner``'s file ``file_id`` (a StoredObject), or Google's 403 when it is absent, someone
        else's or expired (an expired one is deleted on the way)."""
        name = f"files/{owner}/{file_id}"
        stored = self.store.head(name)
        if stored is not None and self._expired(stored):
            self.store.delete(name)
            stored = None
        if stored is None:
            raise PermissionDenied(f"You do not have permission to access the File {file_id} or it may not exist.")
        return stored

    def _expired(self, stored):
        return self.clock() >= stored.created + self.settings.file_ttl

    def _page(self, owner, args, base, version):
        page_size = list_page_size(args.get("pageSize") or args.get("page_size"))
        token = args.get("pageToken") or args.get("page_token") or None
        objects, next_token = self.store.list(f"files/{owner}/", page_size, token)
        files = []
        for stored in objects:
            if self._expired(stored):
                self.store.delete(stored.name)
            else:
                files.append(self.file_resource(stored, base, version))
        page = {"files": files} if files else {}
        if next_token:
            page["nextPageToken"] = next_token
        return page

    def file_resource(self, stored, base, version):
        """The File (file.proto) for a stored ``files/{owner}/{id}``."""
        file_id = stored.name.rsplit("/", 1)[1]
        resource = {"name": f"files/{file_id}"}
        if stored.metadata.get("displayName"):
            resource["displayName"] = stored.metadata["displayName"]
        resource.update(mimeType=stored.content_type, sizeBytes=str(stored.size), createTime=rfc3339(stored.created),
                        updateTime=rfc3339(stored.updated),
                        expirationTime=rfc3339(stored.created + self.settings.file_ttl))
        if stored.metadata.get("sha256Hash"):
            resource["sha256Hash"] = stored.metadata["sha256Hash"]
        resource.update(uri=f"{base}/{version}/files/{file_id}", state="ACTIVE", source="UPLOADED")
        return resource

    def public_base(self, request, route):
        """Where clients reach this function: PUBLIC_BASE_URL, else the request's own scheme (as the
        proxy in front saw it), host and path prefix."""
        if self.settings.public_base_url:
            return self.settings.public_base_url
        forwarded = request.headers.get("X-Forwarded-Proto", "").partition(",")[0].strip().lower()
        scheme = forwarded if forwarded in ("http", "https") else request.scheme
        return f"{scheme}://{request.host}{route.prefix}"

    # --- files used in a request -----------------------------------------------------------------

    def resolved(self, body, caller, environ):
        """``body`` (a validated generate or countTokens request) with every fileData part that
        names one of the caller's files replaced by its bytes (inlineData), in place:

        ``{"fileData": {"fileUri": "https://host/v1beta/files/abc123", "mimeType": "image/png"}}``
        -> ``{"inlineData": {"mimeType": "<the stored type>", "data": "<base64 of the file>"}}``
        """
        if self.store is None:
            return body  # no file is ours: fileData keeps its plain meaning
        found = []
        for part, path in file_data_parts(body):
            named = self._named_object(part["fileData"].get("fileUri", ""), caller.owner)
            if named is not None:
                found.append((part, path, named))
        if not found:
            return body
        total, resolving = 0, []
        for part, path, (name, file_id) in found:
            stored = self.stored_file(caller.owner, file_id) if name is None else self._cache_file(name, file_id)
            total += stored.size
            if total > self.settings.max_resolved_file_bytes:
                raise InvalidArgument(f"the stored files this request uses come to more than MAX_RESOLVED_FILE_BYTES "
                                      f"({self.settings.max_resolved_file_bytes} bytes)",
                                      field=field_path(path + ["fileData"]))
            resolving.append((part, stored, file_id))
        held = environ.get(request_body.RESERVED, (None, 0))[1]  # the body's own reservation, if any
        request_body.reserve(environ, self.request_memory, held + BYTE_COST * total,
                             time.monotonic() + self.settings.client_body_timeout)
        for part, stored, file_id in resolving:
            data = b"".join(self.store.read(stored.name))
            if len(data) != stored.size:  # deleted or replaced meanwhile
                raise PermissionDenied(f"You do not have permission to access the File {file_id} or it may not exist.")
            blob = {"mimeType": stored.content_type, "data": base64.b64encode(data).decode("ascii")}
            if stored.metadata.get("displayName"):
                blob["displayName"] = stored.metadata["displayName"]
            del part["fileData"]
            part["inlineData"] = blob
        return body

    def _named_object(self, uri, owner):
        """(None, file_id) for a URI naming one of our files, (store name, file_id) for a cache's
        copy ``cacheFiles/{cache_id}/{file_id}``, None for any other URI."""
        cache_id, slash, file_id = uri.removeprefix("cacheFiles/").partition("/")
        if uri.startswith("cacheFiles/") and slash and RESOURCE_ID.fullmatch(cache_id) and RESOURCE_ID.fullmatch(file_id):
            return f"cacheFiles/{owner}/{cache_id}/{file_id}", file_id
        file_id = file_uri_id(uri)
        return None if file_id is None else (None, file_id)

    def _cache_file(self, name, file_id):
        stored = self.store.head(name)
        if stored is None:
            raise PermissionDenied(f"You do not have permission to access the File {file_id} or it may not exist.")
        return stored


# --- pure helpers --------------------------------------------------------------------------------

def file_uri_id(uri):
    """The ID of our file a fileUri names, or None: ``files/abc123``, or any http(s) URL whose path
    ends in ``/{v1|v1beta|v1alpha}/files/abc123`` (the host is not checked: the function answers
    under several). ``https://x/v1beta/files/abc123`` -> ``abc123``; ``https://x/cat.png`` -> None."""
    if uri.startswith("files/"):
        file_id = uri[len("files/"):]
    else:
        try:
            parts = urlsplit(uri)
        except ValueError:  # "http://[x": no URL at all
            return None
        match = _OUR_FILE_PATH.fullmatch(parts.path) if parts.scheme in ("http", "https") else None
        file_id = match[1] if match else ""
    return file_id if RESOURCE_ID.fullmatch(file_id) else None


def file_data_parts(body):
    """(part, path) of every fileData part of ``body``'s contents (a countTokens body's
    generateContentRequest's too), functionResponse parts included."""
    for prefix, request in (([], body), (["generateContentRequest"], body.get("generateContentRequest") or {})):
        for content_index, content in enumerate(request.get("contents", [])):
            for part_index, part in enumerate(content.get("parts", [])):
                path = [*prefix, "contents", content_index, "parts", part_index]
                if "fileData" in part:
                    yield part, path
                for held_index, held in enumerate(part.get("functionResponse", {}).get("parts", [])):
                    if "fileData" in held:
                        yield held, path + ["functionResponse", "parts", held_index]


def upload_key(upload_id):
    """What names an upload in the store: a digest of its upload_id, the capability itself."""
    return hashlib.sha256(upload_id.encode()).hexdigest()[:32]


def generated_id():
    """A new file ID: lowercase letters and digits only (the Python SDK reads an ID out of a URI
    with ``[a-z0-9]+``), ~82 random bits."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(GENERATED_ID_LENGTH))


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


def list_page_size(raw):
    """pageSize: 10 when absent or not positive, at most 100 (larger is coerced, as Google does).
    (Unlike models' pageSize, catalogue.page_query, where a negative one is refused.)"""
    try:
        size = int(raw or DEFAULT_PAGE_SIZE)
    except ValueError:
        raise InvalidArgument(f"{raw!r} is not an integer", field="pageSize") from None
    return min(size, MAX_PAGE_SIZE) if size > 0 else DEFAULT_PAGE_SIZE


def rfc3339(seconds):
    """``1743425467.280031`` -> ``2025-03-31T12:51:07.280031Z``."""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _answer(value, headers=None):
    return flask.Response(dumps(value), 200, headers=headers, content_type=JSON_CONTENT_TYPE)


def _upload_answer(status, headers=None):
    return flask.Response(b"", 200, headers={UPLOAD_STATUS: status, **(headers or {})})
