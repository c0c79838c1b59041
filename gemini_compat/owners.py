"""Whose stored things are, and how much they may hold: a pass-through key is proved good by the
upstream before anything is stored for it, and each owner (auth.Caller.owner) has quotas over all
that is stored for them: files, cached contents and their copies of files, unfinished uploads.
"""

import collections
import hashlib
import threading
import time

from . import clock
from .errors import ResourceExhausted
from .files import expired
from .storage import every_object
from .uploads import UPLOAD_LIFETIME

# A pass-through key the upstream accepted is not asked about again for this long.
KEY_CHECK_SECONDS = 600
KEYS_REMEMBERED = 1024


class Owners:
    def __init__(self, settings, store, upstream, upload_records):
        self.settings = settings
        self.store = store
        self.upstream = upstream
        self.upload_records = upload_records  # uploads.UploadRecords: the quota count ends abandoned uploads
        self._lock = threading.Lock()
        self._good_keys = collections.OrderedDict()  # key digest -> monotonic time it is good until

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
            raise ResourceExhausted(f"This key's storage holds {used_objects} objects; STORAGE_QUOTA_OBJECTS allows "
                                    f"{settings.storage_quota_objects}. Delete files or cached contents first.")
        if used_bytes + added_bytes > settings.storage_quota_bytes:
            raise ResourceExhausted(f"This key's storage holds {used_bytes} bytes; with {added_bytes} more it would "
                                    f"pass STORAGE_QUOTA_BYTES ({settings.storage_quota_bytes}). Delete files or "
                                    "cached contents first.")

    def _usage(self, owner):
        """(bytes, objects) ``owner`` holds, counted up to just past the objects quota."""
        used_bytes = used_objects = 0
        for prefix in (f"files/{owner}/", f"cacheFiles/{owner}/", f"cachedContents/{owner}/", f"uploads/{owner}/"):
            for stored in every_object(self.store, prefix):
                if used_objects > self.settings.storage_quota_objects:
                    return used_bytes, used_objects
                if prefix.startswith("files/") and expired(stored, self.settings.file_ttl):
                    continue
                if prefix.startswith("uploads/") and clock.now() >= stored.created + UPLOAD_LIFETIME:
                    self.upload_records.record(stored.name.rsplit("/", 1)[1])  # an abandoned upload: this ends it
                    self.store.delete(stored.name)
                    continue
                used_objects += 1
                used_bytes += int(stored.metadata.get("size", 0)) if prefix.startswith("uploads/") else stored.size
        return used_bytes, used_objects
