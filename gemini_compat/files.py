"""The File resource over our own store: get, list, delete (and the refused download) of an
owner's files, their expiry, and a ``fileData`` that names one of our files resolved into the
request as its bytes. The upload that stores a file: uploads.py.

Stored objects (storage.py): ``files/{owner}/{file_id}`` (the bytes; metadata displayName and
sha256Hash).
"""

import base64
import datetime
import re
import secrets
import string
import time
from urllib.parse import urlsplit

from . import clock, request_body
from .config import BYTE_COST
from .errors import FailedPrecondition, InvalidArgument, PermissionDenied, Unimplemented, field_path
from .responses import json_response
from .routing import RESOURCE_ID

NO_STORAGE = "This deployment has no storage: set STORAGE_BUCKET (deploy.sh --storage-bucket)"
GENERATED_ID_LENGTH = 16
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100

_ID_ALPHABET = string.ascii_lowercase + string.digits
_OUR_FILE_PATH = re.compile(r".*/(?:v1|v1beta|v1alpha)/files/([^/]+)")


class Files:
    def __init__(self, settings, store, request_memory):
        self.settings = settings
        self.store = store
        self.request_memory = request_memory

    # --- the routes ------------------------------------------------------------------------------

    def respond(self, request, route, caller, log):
        """get, list and delete of the caller's files; a download is refused (only generated files have one)."""
        self.require_store()
        if route.action == "listFiles":
            return json_response(self._page(caller.owner, request.args, self.public_base(request, route), route.version))
        log.fields["fileId"] = route.resource_id
        stored = self.stored_file(caller.owner, route.resource_id)
        if route.action == "deleteFile":
            self.store.delete(stored.name)
            return json_response({})
        if route.action == "downloadFile":
            raise FailedPrecondition("Only generated files can be downloaded.")
        return json_response(self.file_resource(stored, self.public_base(request, route), route.version))

    def require_store(self):
        """501 (NO_STORAGE) when this deployment has no store."""
        if self.store is None:
            raise Unimplemented(NO_STORAGE)

    # --- files -----------------------------------------------------------------------------------

    def stored_file(self, owner, file_id):
        """``owner``'s file ``file_id`` (a StoredObject), or Google's 403 when it is absent, someone
        else's or expired (an expired one is deleted on the way)."""
        name = f"files/{owner}/{file_id}"
        stored = self.store.head(name)
        if stored is not None and expired(stored, self.settings.file_ttl):
            self.store.delete(name)
            stored = None
        if stored is None:
            raise file_permission_denied(file_id)
        return stored

    def _page(self, owner, args, base, version):
        page_size = list_page_size(args.get("pageSize") or args.get("page_size"))
        token = args.get("pageToken") or args.get("page_token") or None
        objects, next_token = self.store.list(f"files/{owner}/", page_size, token)
        files = []
        for stored in objects:
            if expired(stored, self.settings.file_ttl):
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
        prefix = route.prefix
        if not prefix and self.settings.service_name and request.host.endswith(".cloudfunctions.net"):
            # Cloud Functions' own URL, https://REGION-PROJECT.cloudfunctions.net/NAME, hands the
            # function its path without /NAME (functions-framework-python#54).
            prefix = f"/{self.settings.service_name}"
        return f"{scheme}://{request.host}{prefix}"

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
        request_body.reserve_more(environ, self.request_memory, BYTE_COST * total,
                                  time.monotonic() + self.settings.client_body_timeout)
        for part, stored, file_id in resolving:
            data = b"".join(self.store.read(stored.name))
            if len(data) != stored.size:  # deleted or replaced meanwhile
                raise file_permission_denied(file_id)
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
            raise file_permission_denied(file_id)
        return stored


def expired(stored, file_ttl):
    """Whether the stored file has outlived FILE_TTL (``file_ttl`` seconds from its creation)."""
    return clock.now() >= stored.created + file_ttl


# --- pure helpers --------------------------------------------------------------------------------

def file_permission_denied(file_id):
    """Google's answer for a file that is absent, expired or another owner's: it does not tell which."""
    return PermissionDenied(f"You do not have permission to access the File {file_id} or it may not exist.")


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


def generated_id():
    """A new file ID: lowercase letters and digits only (the Python SDK reads an ID out of a URI
    with ``[a-z0-9]+``), ~82 random bits."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(GENERATED_ID_LENGTH))


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
