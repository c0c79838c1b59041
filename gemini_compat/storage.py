"""Where files and cached contents are kept: a folder (a local run, the tests, a mounted volume) or
a Cloud Storage bucket. Both hold named objects (bytes, a content type, string metadata), listed
by name prefix, and take large objects in resumable writes that may span requests and instances.

A name is a path of the store's own making (``files/{owner}/{id}``); nothing a client sends
becomes a name without being checked first (routing.RESOURCE_ID). A name is never the folder of
another (``a`` and ``a/b``): the folder backend could not hold both.

Resumable writes: ``start_write`` gives a session (a string the caller keeps, server-side only:
on Cloud Storage it is the upload session's URI, a capability). Each ``write`` appends one piece
of ``size`` bytes at ``offset`` (the size is told first: Cloud Storage's Content-Range names the
piece's last byte before the body goes), which must be what the store holds, else
``WriteConflict`` tells what it holds. A piece that does not finish the object must be a multiple
of GRANULARITY bytes (Cloud Storage's rule, which callers enforce: the folder would not notice).
The piece that finishes the object names its ``total`` instead. A session that is finished,
cancelled or unknown holds nothing: ``committed`` and ``write`` raise ``WriteConflict(0)``. After
a piece fails midway (the client's body broke off, the store failed), ``committed`` tells what
the store kept of it (the folder: nothing). Cloud Storage may acknowledge a piece that repeats
bytes it holds (keeping its own) where the folder raises WriteConflict.

Both backends run one contract suite (tests/test_storage.py).
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
# A resumable write's pieces, but the last, are multiples of this (Cloud Storage's rule).
GRANULARITY = 256 * 1024
# Objects asked for at a time when all under a prefix are read (quotas, a cache's deletion).
LIST_PAGE = 1000


class StoredObject(typing.NamedTuple):
    name: str
    size: int
    content_type: str
    created: float  # seconds since the epoch
    updated: float
    metadata: dict  # str -> str


class NameTaken(Exception):
    """``put(..., if_absent=True)`` or a write started with ``if_absent`` found the name taken."""


class WriteConflict(Exception):
    """A resumable write was given an offset other than what the store holds (``committed``), or
    its session is over (0)."""

    def __init__(self, committed):
        super().__init__(f"the store holds {committed} bytes")
        self.committed = committed


class StorageUnavailable(Unavailable):
    """The store failed (a bucket that answers 5xx, a full disk): 503, worth retrying."""


@contextlib.contextmanager
def folder_failures():
    """The folder's failures (a full disk, a permission, an I/O error) as StorageUnavailable; the
    message has the system's reason, not the path."""
    try:
        yield
    except OSError as error:
        raise StorageUnavailable(f"The file store failed: {error.strerror or type(error).__name__}.") from error


def piece_size(offset, total, size):
    """The bytes a resumable write's piece holds: ``size``, or ``total - offset`` for the last piece."""
    if total is not None:
        if size is None:
            size = total - offset
        if size != total - offset or size < 0:
            raise ValueError(f"a piece of {size} bytes at {offset} does not end at {total}")
    elif size is None:
        raise TypeError("a piece that does not finish the object needs its size")
    return size


def exactly(blocks, size):
    """The blocks, checked to come to ``size`` bytes (what the piece was announced to hold)."""
    sent = 0
    for block in blocks:
        sent += len(block)
        if sent > size:
            raise ValueError(f"the piece holds more than the {size} bytes announced")
        yield block
    if sent != size:
        raise ValueError(f"the piece holds {sent} bytes, not the {size} announced")


def every_object(store, prefix):
    """Every object whose name starts with ``prefix``, page by page (leave the loop to stop early).
    Deleting what it yielded is safe: a page token names a place in name order."""
    token = None
    while True:
        found, token = store.list(prefix, LIST_PAGE, token)
        yield from found
        if not token:
            return


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
    (create-if-absent, finishing a write), across threads and processes. The folder's own failures
    once it is made (a full disk, a permission) are StorageUnavailable."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        for folder in ("objects", "metadata", "writes", "tmp"):
            os.makedirs(os.path.join(self.root, folder), exist_ok=True)

    @folder_failures()
    def put(self, name, data, content_type, metadata=None, if_absent=False):
        with self._temporary() as temporary:
            with open(temporary, "wb") as file:
                file.write(data)
            return self._publish(temporary, name, content_type, metadata or {}, if_absent)

    @folder_failures()
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

    @folder_failures()
    def head(self, name):
        try:
            with open(self._path("metadata", name), encoding="utf-8") as file:
                return StoredObject(name=name, **json.load(file))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read(self, name):
        """The object's bytes in blocks of at most READ_BLOCK; empty if it is gone."""
        with folder_failures():
            try:
                file = open(self._path("objects", name), "rb")
            except FileNotFoundError:
                return
            with file:
                while block := file.read(READ_BLOCK):
                    yield block

    @folder_failures()
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

    @folder_failures()
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

    @folder_failures()
    def copy(self, source, destination):
        """The destination's StoredObject (content type and metadata as the source's), or None
        when there is no source."""
        stored = self.head(source)
        if stored is None:
            return None
        with self._temporary() as temporary:
            with open(temporary, "wb") as file:
                for block in self.read(source):
                    file.write(block)
            return self._publish(temporary, destination, stored.content_type, stored.metadata, if_absent=False)

    @folder_failures()
    def set_metadata(self, name, metadata):
        """Adds to (or replaces entries of) the object's metadata; None when there is no object."""
        with self._locked():
            stored = self.head(name)
            if stored is None:
                return None
            updated = stored._replace(metadata={**stored.metadata, **metadata}, updated=time.time())
            self._write_metadata(updated)
            return updated

    @folder_failures()
    def start_write(self, name, content_type, metadata=None, if_absent=True):
        """A session (a string, kept by the caller between requests) for writing ``name`` in pieces."""
        if if_absent and self.head(name) is not None:
            raise NameTaken(name)
        session = secrets.token_hex(16)
        plan = {"name": name, "content_type": content_type, "metadata": metadata or {}, "if_absent": if_absent}
        with open(self._path("writes", session + ".json"), "w", encoding="utf-8") as file:
            json.dump(plan, file)
        open(self._path("writes", session), "wb").close()
        self._set_held(session, 0)
        return session

    @folder_failures()
    def committed(self, session):
        """How many bytes of the write the store holds: those of finished pieces (``writes/{session}.held``),
        not those of a piece still being written, which is truncated away if it fails."""
        try:
            with open(self._path("writes", session + ".held"), encoding="ascii") as file:
                return int(file.read())
        except FileNotFoundError:
            raise WriteConflict(0) from None

    def write(self, session, offset, blocks, total=None, size=None):
        """Appends ``blocks`` (an iterable of bytes; ``size`` of them, or ``total - offset`` for the
        piece that finishes the object) at ``offset``, which must be what the store holds; with
        ``total`` (the object's whole size), finishes the object, which then exists. Returns the
        bytes held (offset + size), or the StoredObject once finished. A piece that fails midway
        is not kept. The blocks' own errors pass through as they are."""
        size = piece_size(offset, total, size)
        path = self._path("writes", session)
        with folder_failures():
            try:
                file = open(path, "r+b")
            except FileNotFoundError:
                raise WriteConflict(0) from None
        with file:
            with folder_failures():
                fcntl.flock(file, fcntl.LOCK_EX)  # one writer per session; a retried piece waits
                held = file.seek(0, os.SEEK_END)
            if held != offset:
                raise WriteConflict(held)
            try:
                for block in exactly(blocks, size):
                    with folder_failures():
                        file.write(block)
            except BaseException:
                with folder_failures():
                    file.truncate(offset)
                raise
            self._set_held(session, offset + size)  # while still locked: the next piece sees it
        if total is None:
            return offset + size
        with folder_failures():
            with open(path + ".json", encoding="utf-8") as file:
                plan = json.load(file)
            try:
                return self._publish(path, plan["name"], plan["content_type"], plan["metadata"], plan["if_absent"])
            finally:
                if not os.path.exists(path):  # published, or refused (a taken name): the session is over
                    os.unlink(path + ".json")
                    os.unlink(path + ".held")

    @folder_failures()
    def cancel_write(self, session):
        for suffix in ("", ".json", ".held"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path("writes", session + suffix))

    def _set_held(self, session, count):
        with self._temporary() as temporary:
            with open(temporary, "w", encoding="ascii") as file:
                file.write(str(count))
            os.replace(temporary, self._path("writes", session + ".held"))

    def _publish(self, temporary, name, content_type, metadata, if_absent):
        """Moves the bytes at ``temporary`` to ``name`` and writes its metadata, which makes it exist:
        a new object (created now), as Cloud Storage makes a new generation of a name written again."""
        with self._locked():
            if if_absent and self.head(name) is not None:
                os.unlink(temporary)
                raise NameTaken(name)
            target = self._path("objects", name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            size = os.path.getsize(temporary)
            os.replace(temporary, target)
            now = time.time()
            stored = StoredObject(name, size, content_type, now, now, dict(metadata))
            self._write_metadata(stored)
        return stored

    def _write_metadata(self, stored):
        path = self._path("metadata", stored.name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with self._temporary() as temporary:
            with open(temporary, "w", encoding="utf-8") as file:
                json.dump({field: value for field, value in stored._asdict().items() if field != "name"}, file)
            os.replace(temporary, path)

    @contextlib.contextmanager
    def _temporary(self):
        """A path under ``tmp`` to write and then move; removed if it is still there afterwards
        (the write failed), so a full disk leaves nothing behind."""
        path = self._path("tmp", secrets.token_hex(8))
        try:
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _path(self, folder, name):
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"not a store name: {name!r}")
        return os.path.join(self.root, folder, name)

    @contextlib.contextmanager
    def _locked(self):
        with open(os.path.join(self.root, "lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
