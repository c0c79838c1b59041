"""Where files and cached contents are kept: a folder (a local run, the tests, a mounted volume) or
a Cloud Storage bucket. Both hold named objects (bytes, a content type, string metadata), listed
by name prefix, and take large objects in resumable writes that may span requests and instances.

A name is a path of the store's own making (``files/{owner}/{id}``); nothing a client sends
becomes a name without being checked first (routing.RESOURCE_ID).
"""

import base64
import contextlib
import fcntl
import json
import os
import secrets
import time
import typing

from .errors import Unavailable

READ_BLOCK = 256 * 1024


class StoredObject(typing.NamedTuple):
    name: str
    size: int
    content_type: str
    created: float  # seconds since the epoch
    updated: float
    metadata: dict  # str -> str


class AlreadyExists(Exception):
    """``put(..., if_absent=True)`` or a write started with ``if_absent`` found the name taken."""


class WriteConflict(Exception):
    """A resumable write was given an offset other than what the store holds (``committed``)."""

    def __init__(self, committed):
        super().__init__(f"the store holds {committed} bytes")
        self.committed = committed


class StorageUnavailable(Unavailable):
    """The store failed (a bucket that answers 5xx, a full disk): 503, worth retrying."""


def open_store(settings):
    """The store the settings name, or None when they name none (on Cloud Run without a bucket)."""
    if settings.storage_bucket:
        from .cloud_storage import CloudStorage  # imported when used: plain generation never loads the library

        return CloudStorage(settings.storage_bucket)
    if settings.storage_dir:
        return LocalStore(settings.storage_dir)
    return None


def page_token(name):
    """An opaque token for the page after ``name``."""
    return base64.urlsafe_b64encode(name.encode()).decode()


def name_after(token):
    """The name a ``page_token`` was made from, or "" for an unreadable one (then the first page)."""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeError):
        return ""


class LocalStore:
    """Objects as files under ``root/objects``, their content type, times and metadata as JSON under
    ``root/metadata``; a name exists once its metadata does (written last, by rename). Resumable
    writes append to ``root/writes/{session}``. A lock file serialises what must not interleave
    (create-if-absent, finishing a write), across threads and processes."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        for folder in ("objects", "metadata", "writes", "tmp"):
            os.makedirs(os.path.join(self.root, folder), exist_ok=True)

    def put(self, name, data, content_type, metadata=None, if_absent=False):
        temporary = self._temporary()
        with open(temporary, "wb") as file:
            file.write(data)
        return self._publish(temporary, name, content_type, metadata or {}, if_absent)

    def get(self, name):
        """(bytes, StoredObject), or None: for small objects (records), read whole."""
        stored = self.head(name)
        if stored is None:
            return None
        try:
            with open(self._path("objects", name), "rb") as file:
                return file.read(), stored
        except FileNotFoundError:
            return None

    def head(self, name):
        try:
            with open(self._path("metadata", name), encoding="utf-8") as file:
                return StoredObject(name=name, **json.load(file))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read(self, name):
        """The object's bytes in blocks of at most READ_BLOCK; empty if it is gone."""
        try:
            file = open(self._path("objects", name), "rb")
        except FileNotFoundError:
            return
        with file:
            while block := file.read(READ_BLOCK):
                yield block

    def list(self, prefix, page_size, token=None):
        """(up to ``page_size`` objects whose names start with ``prefix``, in name order; the token
        of the next page or None)."""
        after = name_after(token) if token else ""
        folder = self._path("metadata", prefix.rpartition("/")[0]) if "/" in prefix else self._path("metadata", "")
        names = []
        for directory, _, files in os.walk(folder):
            relative = os.path.relpath(directory, os.path.join(self.root, "metadata"))
            for file in files:
                name = file if relative == "." else f"{relative}/{file}"
                if name.startswith(prefix) and name > after:
                    names.append(name)
        names.sort()
        found = [stored for stored in map(self.head, names[:page_size]) if stored is not None]
        return found, page_token(names[page_size - 1]) if len(names) > page_size else None

    def delete(self, name):
        """True if it was there."""
        with self._locked():
            try:
                os.unlink(self._path("metadata", name))
            except FileNotFoundError:
                return False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path("objects", name))
        return True

    def copy(self, source, destination):
        stored = self.head(source)
        if stored is None:
            return None
        temporary = self._temporary()
        with open(temporary, "wb") as file:
            for block in self.read(source):
                file.write(block)
        return self._publish(temporary, destination, stored.content_type, stored.metadata, if_absent=False)

    def set_metadata(self, name, metadata):
        """Adds to (or replaces entries of) the object's metadata."""
        with self._locked():
            stored = self.head(name)
            if stored is None:
                return None
            updated = stored._replace(metadata={**stored.metadata, **metadata}, updated=time.time())
            self._write_metadata(updated)
            return updated

    def start_write(self, name, content_type, metadata=None, if_absent=True):
        """A session (a string, kept by the caller between requests) for writing ``name`` in parts."""
        if if_absent and self.head(name) is not None:
            raise AlreadyExists(name)
        session = secrets.token_hex(16)
        plan = {"name": name, "content_type": content_type, "metadata": metadata or {}, "if_absent": if_absent}
        with open(self._path("writes", session + ".json"), "w", encoding="utf-8") as file:
            json.dump(plan, file)
        open(self._path("writes", session), "wb").close()
        return session

    def committed(self, session):
        """How many bytes of the write the store holds."""
        try:
            return os.path.getsize(self._path("writes", session))
        except FileNotFoundError:
            raise WriteConflict(0) from None

    def write(self, session, offset, blocks, total=None):
        """Appends ``blocks`` (an iterable of bytes) at ``offset``, which must be what the store holds;
        with ``total`` (the object's whole size), finishes the object, which then exists. Returns the
        bytes held (the StoredObject once finished)."""
        path = self._path("writes", session)
        try:
            file = open(path, "r+b")
        except FileNotFoundError:
            raise WriteConflict(0) from None
        with file:
            fcntl.flock(file, fcntl.LOCK_EX)  # one writer per session; a retried chunk waits
            held = file.seek(0, os.SEEK_END)
            if held != offset:
                raise WriteConflict(held)
            for block in blocks:
                file.write(block)
            held = file.tell()
        if total is None:
            return held
        if held != total:
            raise WriteConflict(held)
        with open(path + ".json", encoding="utf-8") as file:
            plan = json.load(file)
        stored = self._publish(path, plan["name"], plan["content_type"], plan["metadata"], plan["if_absent"])
        os.unlink(path + ".json")
        return stored

    def cancel_write(self, session):
        for suffix in ("", ".json"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path("writes", session + suffix))

    def _publish(self, temporary, name, content_type, metadata, if_absent):
        """Moves the bytes at ``temporary`` to ``name`` and writes its metadata, which makes it exist."""
        with self._locked():
            if if_absent and self.head(name) is not None:
                os.unlink(temporary)
                raise AlreadyExists(name)
            target = self._path("objects", name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            size = os.path.getsize(temporary)
            os.replace(temporary, target)
            now = time.time()
            previous = self.head(name)
            stored = StoredObject(name, size, content_type, previous.created if previous else now, now, dict(metadata))
            self._write_metadata(stored)
        return stored

    def _write_metadata(self, stored):
        path = self._path("metadata", stored.name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = self._temporary()
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump({field: value for field, value in stored._asdict().items() if field != "name"}, file)
        os.replace(temporary, path)

    def _temporary(self):
        return self._path("tmp", secrets.token_hex(8))

    def _path(self, folder, name):
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"not a store name: {name!r}")
        return os.path.join(self.root, folder, name)

    @contextlib.contextmanager
    def _locked(self):
        with open(os.path.join(self.root, "lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
