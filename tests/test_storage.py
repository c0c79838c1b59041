"""The store's contract (gemini_compat/storage.py), one suite on both backends: the folder
(LocalStore) and Cloud Storage (CloudStorage, against gcp-storage-emulator in a subprocess).

What the emulator (2026.7.19) does otherwise than Cloud Storage, as tried here, so that those
parts run on the folder only (marked ``emulator_differs``, which skips them on "gcs"):
- preconditions are not enforced: ``put(if_absent=True)`` overwrites a taken name (ifGenerationMatch=0
  is ignored; ``start_write`` refuses a taken name on both, as it looks first);
- list pages: ``maxResults`` is ignored and no nextPageToken comes: one page holds everything;
- an upload session that holds nothing answers ``Range: bytes=0-0`` (one byte), where Cloud
  Storage sends no Range (nothing held);
- an upload session cannot be cancelled (DELETE is not implemented: 501): it stays open;
- a piece that breaks off is kept as far as it came (Cloud Storage keeps whole 256 KiB units, the
  folder nothing of it);
- a metadata patch does not move ``updated``.
(It also replaces the metadata map where Cloud Storage merges: CloudStorage sends the whole map,
so merging is covered on both.)
"""

import http.server
import subprocess
import sys
import threading
import time
import tracemalloc

import pytest

from conftest import REPO
from gemini_compat import cloud_storage, config, storage
from gemini_compat.storage import GRANULARITY, READ_BLOCK, AlreadyExists, StorageUnavailable, WriteConflict
from helpers import free_port

emulator_differs = pytest.mark.emulator_differs
UNIT = GRANULARITY


def open_store(env, monkeypatch):
    """The store the function would open with this env."""
    if "STORAGE_EMULATOR_HOST" in env:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", env["STORAGE_EMULATOR_HOST"])
    return storage.open_store(config.Settings.from_env(env))


@pytest.fixture
def store(storage_env, request, monkeypatch):
    marker = request.node.get_closest_marker("emulator_differs")
    if marker and "STORAGE_BUCKET" in storage_env:
        pytest.skip("the emulator does not do this as Cloud Storage does (see the module's docstring)")
    return open_store(storage_env, monkeypatch)


@pytest.fixture
def reopen(storage_env, monkeypatch):
    """A new store object on the same folder or bucket prefix (another instance, after a restart)."""
    return lambda: open_store(storage_env, monkeypatch)


def blocks_of(size, block=64 * 1024, byte=b"x"):
    """``size`` bytes as a generator of blocks, made as they are taken."""
    for start in range(0, size, block):
        yield byte * min(block, size - start)


def test_the_function_opens_the_backend_its_settings_name(store, storage_env):
    expected = storage.LocalStore if "STORAGE_DIR" in storage_env else cloud_storage.CloudStorage
    assert type(store) is expected


def test_put_then_head_get_and_read(store):
    before = time.time()
    stored = store.put("files/a/one", b"hello", "text/plain", {"displayName": "greeting"})
    assert stored.name == "files/a/one" and stored.size == 5 and stored.content_type == "text/plain"
    assert stored.metadata == {"displayName": "greeting"}
    assert before - 2 <= stored.created == stored.updated <= time.time() + 2
    assert store.head("files/a/one") == stored
    assert store.get("files/a/one") == (b"hello", stored)
    assert b"".join(store.read("files/a/one")) == b"hello"


def test_an_absent_name(store):
    assert store.head("files/a/none") is None
    assert store.get("files/a/none") is None
    assert list(store.read("files/a/none")) == []
    assert store.delete("files/a/none") is False
    assert store.copy("files/a/none", "files/a/other") is None
    assert store.set_metadata("files/a/none", {"k": "v"}) is None


def test_read_gives_blocks_of_at_most_read_block(store):
    data = bytes(range(256)) * (3 * READ_BLOCK // 256 + 7)
    store.put("files/a/big", data, "application/octet-stream")
    blocks = list(store.read("files/a/big"))
    assert b"".join(blocks) == data
    assert all(len(block) <= READ_BLOCK for block in blocks)


def test_put_again_makes_a_new_object(store):
    store.put("cachedContents/a/c", b"old", "application/json", {"k": "old"})
    time.sleep(0.01)
    stored = store.put("cachedContents/a/c", b"new!", "application/json")
    assert store.get("cachedContents/a/c") == (b"new!", stored)
    assert stored.metadata == {} and stored.created == stored.updated


@emulator_differs
def test_put_if_absent_refuses_a_taken_name(store):
    store.put("files/a/one", b"first", "text/plain")
    with pytest.raises(AlreadyExists):
        store.put("files/a/one", b"second", "text/plain", if_absent=True)
    assert store.get("files/a/one")[0] == b"first"
    assert store.put("files/a/two", b"", "text/plain", if_absent=True).size == 0


def test_list_is_in_name_order_and_keeps_to_its_prefix(store):
    for name in ("files/a/2", "files/a/1", "files/ab/1", "files/b/1", "files/a/3"):
        store.put(name, name.encode(), "text/plain")
    objects, token = store.list("files/a/", 100)
    assert [stored.name for stored in objects] == ["files/a/1", "files/a/2", "files/a/3"]
    assert token is None
    assert objects[0] == store.head("files/a/1")
    assert store.list("files/c/", 100) == ([], None)


@emulator_differs
def test_list_pages_to_the_end(store):
    names = [f"files/a/{number:02d}" for number in range(7)]
    for name in names:
        store.put(name, b"x", "text/plain")
    store.put("files/ab/00", b"x", "text/plain")
    seen, token, pages = [], None, 0
    while True:
        objects, token = store.list("files/a/", 3, token)
        assert len(objects) <= 3
        seen += [stored.name for stored in objects]
        pages += 1
        if token is None:
            break
    assert seen == names and pages == 3


def test_another_root_holds_other_objects(store, storage_env, monkeypatch):
    store.put("files/a/one", b"x", "text/plain")
    if "STORAGE_DIR" in storage_env:
        other = {"STORAGE_DIR": storage_env["STORAGE_DIR"] + "-other"}
    else:
        other = {**storage_env, "STORAGE_BUCKET": storage_env["STORAGE_BUCKET"] + "-other"}
    assert open_store(other, monkeypatch).list("files/", 10) == ([], None)


def test_delete(store):
    store.put("files/a/one", b"x", "text/plain")
    store.put("files/a/two", b"y", "text/plain")
    assert store.delete("files/a/one") is True
    assert store.head("files/a/one") is None
    assert store.delete("files/a/one") is False
    assert [stored.name for stored in store.list("files/a/", 10)[0]] == ["files/a/two"]


def test_copy_keeps_the_bytes_type_and_metadata(store):
    store.put("files/a/f", b"contents", "application/pdf", {"displayName": "doc", "sha256Hash": "abc"})
    copied = store.copy("files/a/f", "cacheFiles/a/c/f")
    assert copied.name == "cacheFiles/a/c/f" and copied.size == 8
    assert copied.content_type == "application/pdf"
    assert copied.metadata == {"displayName": "doc", "sha256Hash": "abc"}
    assert store.get("cacheFiles/a/c/f") == (b"contents", copied)
    store.delete("files/a/f")
    assert store.get("cacheFiles/a/c/f")[0] == b"contents"


def test_set_metadata_adds_and_replaces_entries(store):
    store.put("files/a/f", b"x", "text/plain", {"displayName": "doc", "state": "PROCESSING"})
    updated = store.set_metadata("files/a/f", {"state": "ACTIVE", "sha256Hash": "abc"})
    assert updated.metadata == {"displayName": "doc", "state": "ACTIVE", "sha256Hash": "abc"}
    assert store.head("files/a/f") == updated
    assert store.get("files/a/f")[0] == b"x"


@emulator_differs
def test_set_metadata_moves_updated(store):
    created = store.put("files/a/f", b"x", "text/plain")
    time.sleep(0.01)
    updated = store.set_metadata("files/a/f", {"k": "v"})
    assert updated.created == created.created and updated.updated > created.updated


def test_a_write_in_pieces(store):
    tail = b"the end"
    session = store.start_write("files/a/up", "application/pdf", {"displayName": "paper"})
    assert store.head("files/a/up") is None
    for number in range(3):
        assert store.write(session, number * UNIT, [bytes([number]) * UNIT], size=UNIT) == (number + 1) * UNIT
        assert store.committed(session) == (number + 1) * UNIT
    assert store.head("files/a/up") is None
    stored = store.write(session, 3 * UNIT, [tail], total=3 * UNIT + len(tail))
    assert stored.name == "files/a/up" and stored.size == 3 * UNIT + len(tail)
    assert stored.content_type == "application/pdf" and stored.metadata == {"displayName": "paper"}
    assert store.head("files/a/up") == stored
    assert b"".join(store.read("files/a/up")) == b"\0" * UNIT + b"\1" * UNIT + b"\2" * UNIT + tail


def test_a_piece_sent_again_is_a_conflict_with_what_is_held(store):
    session = store.start_write("files/a/up", "text/plain")
    store.write(session, 0, [b"a" * UNIT], size=UNIT)
    with pytest.raises(WriteConflict) as conflict:
        store.write(session, 0, [b"a" * UNIT], size=UNIT)
    assert conflict.value.committed == UNIT
    assert store.write(session, UNIT, [b"b"], total=UNIT + 1).size == UNIT + 1


def test_a_gap_is_a_conflict_with_what_is_held(store):
    session = store.start_write("files/a/up", "text/plain")
    store.write(session, 0, [b"a" * UNIT], size=UNIT)
    for offset, total in ((2 * UNIT, None), (3 * UNIT, 3 * UNIT + 1)):
        with pytest.raises(WriteConflict) as conflict:
            store.write(session, offset, [b"c" * (total - offset if total else UNIT)], total=total,
                        size=None if total else UNIT)
        assert conflict.value.committed == UNIT
    assert store.committed(session) == UNIT
    assert store.head("files/a/up") is None


def test_a_piece_names_its_size(store):
    session = store.start_write("files/a/up", "text/plain")
    with pytest.raises(TypeError):
        store.write(session, 0, [b"a" * UNIT])
    with pytest.raises(ValueError):
        store.write(session, 0, [b"a"], total=2, size=5)
    with pytest.raises(ValueError):
        store.write(session, 0, [b"a" * (UNIT + 1)], size=UNIT)
    assert store.head("files/a/up") is None


def broken_off():
    """The blocks of a client's body that breaks off."""
    yield b"a" * 1000
    raise ConnectionResetError("the client went away")


def test_the_blocks_own_errors_pass_through(store):
    session = store.start_write("files/a/up", "text/plain")
    with pytest.raises(ConnectionResetError, match="went away"):
        store.write(session, 0, broken_off(), size=UNIT)
    assert store.head("files/a/up") is None


@emulator_differs
def test_a_piece_that_breaks_off_is_not_kept(store):
    session = store.start_write("files/a/up", "text/plain")
    assert store.committed(session) == 0
    with pytest.raises(ConnectionResetError, match="went away"):
        store.write(session, 0, broken_off(), size=UNIT)
    with pytest.raises(ValueError):
        store.write(session, 0, [b"a" * 1000], size=UNIT)
    assert store.committed(session) == 0


def test_a_write_goes_on_after_a_restart(store, reopen):
    session = store.start_write("files/a/up", "text/plain", {"displayName": "d"})
    store.write(session, 0, [b"a" * UNIT, b"b" * UNIT], size=2 * UNIT)
    restarted = reopen()
    assert restarted is not store
    assert restarted.committed(session) == 2 * UNIT
    stored = restarted.write(session, 2 * UNIT, [b"c"], total=2 * UNIT + 1)
    assert stored.metadata == {"displayName": "d"}
    assert store.get("files/a/up")[0] == b"a" * UNIT + b"b" * UNIT + b"c"


def test_start_write_refuses_a_taken_name(store):
    store.put("files/a/one", b"x", "text/plain")
    with pytest.raises(AlreadyExists):
        store.start_write("files/a/one", "text/plain")
    session = store.start_write("files/a/one", "text/markdown", if_absent=False)
    assert store.write(session, 0, [b"# new"], total=5).content_type == "text/markdown"
    assert store.get("files/a/one")[0] == b"# new"


@emulator_differs
def test_the_name_taken_while_writing_is_refused_at_the_end(store):
    session = store.start_write("files/a/one", "text/plain")
    store.put("files/a/one", b"first", "text/plain")
    with pytest.raises(AlreadyExists):
        store.write(session, 0, [b"second"], total=6)
    assert store.get("files/a/one")[0] == b"first"
    with pytest.raises(WriteConflict):
        store.committed(session)


def test_a_finished_session_is_over(store):
    session = store.start_write("files/a/up", "text/plain")
    store.write(session, 0, [b"abc"], total=3)
    with pytest.raises(WriteConflict) as conflict:
        store.committed(session)
    assert conflict.value.committed == 0


def test_cancel(store):
    session = store.start_write("files/a/up", "text/plain")
    store.write(session, 0, [b"a" * UNIT], size=UNIT)
    store.cancel_write(session)
    store.cancel_write(session)
    assert store.head("files/a/up") is None


@emulator_differs
def test_a_cancelled_session_is_over(store):
    session = store.start_write("files/a/up", "text/plain")
    store.write(session, 0, [b"a" * UNIT], size=UNIT)
    store.cancel_write(session)
    for attempt in (lambda: store.committed(session), lambda: store.write(session, UNIT, [b"b"], total=UNIT + 1)):
        with pytest.raises(WriteConflict) as conflict:
            attempt()
        assert conflict.value.committed == 0
    assert store.head("files/a/up") is None


def test_an_empty_object(store):
    session = store.start_write("files/a/empty", "text/plain", {"displayName": "nothing"})
    stored = store.write(session, 0, [], total=0)
    assert stored.size == 0 and stored.metadata == {"displayName": "nothing"}
    assert store.get("files/a/empty") == (b"", stored)
    assert list(store.read("files/a/empty")) == []
    assert store.put("files/a/empty2", b"", "text/plain").size == 0


@emulator_differs
def test_a_new_session_holds_nothing(store):
    session = store.start_write("files/a/up", "text/plain")
    assert store.committed(session) == 0
    assert store.write(session, 0, [], size=0) == 0
    with pytest.raises(WriteConflict) as conflict:
        store.write(session, 1, [], size=0)
    assert conflict.value.committed == 0


def test_a_20_mib_write_streams_without_holding_it(store):
    """20 MiB in two 8 MiB pieces and a 4 MiB tail, each from a generator of 64 KiB blocks: the
    Python heap never grows by a piece (the bytes go to a file, or out on the socket)."""
    piece, size = 8 * 1024 * 1024, 20 * 1024 * 1024
    session = store.start_write("files/a/big", "application/octet-stream")
    store.committed(session)  # the library and the connections are made before measuring
    tracemalloc.start()
    try:
        for offset in (0, piece):
            store.write(session, offset, blocks_of(piece), size=piece)
        stored = store.write(session, 2 * piece, blocks_of(size - 2 * piece), total=size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stored.size == size
    assert peak < 2 * 1024 * 1024, peak
    assert sum(map(len, store.read("files/a/big"))) == size


def test_the_folders_failures_are_unavailable(tmp_path):
    local = storage.LocalStore(tmp_path / "store")
    (tmp_path / "store" / "tmp").rmdir()
    (tmp_path / "store" / "tmp").write_text("not a folder")  # as a full disk: the file cannot be made
    with pytest.raises(StorageUnavailable) as failure:
        local.put("files/a/one", b"x", "text/plain")
    assert failure.value.code == 503 and str(tmp_path) not in failure.value.message
    assert local.head("files/a/one") is None


class _Failing(http.server.BaseHTTPRequestHandler):
    """Cloud Storage having a bad day: every request answers 503."""

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def failing_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def failing_storage(failing_server, monkeypatch):
    """The loopback URL of a server that answers 503 to everything, retried for at most 0.5 s."""
    monkeypatch.setattr(cloud_storage, "RETRY_SECONDS", 0.5)
    return failing_server


OPERATIONS = {
    "head": lambda store, session: store.head("files/a/one"),
    "list": lambda store, session: store.list("files/", 10),
    "put": lambda store, session: store.put("files/a/one", b"x", "text/plain"),
    "start_write": lambda store, session: store.start_write("files/a/one", "text/plain"),
    "committed": lambda store, session: store.committed(session),
    "write": lambda store, session: store.write(session, 0, [b"x"], total=1),
}


@pytest.mark.parametrize("listening", [True, False], ids=["answers 503", "not listening"])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_cloud_storage_failures_are_unavailable_naming_the_bucket(failing_storage, monkeypatch, listening, operation):
    host = failing_storage if listening else f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", host)
    bucket = cloud_storage.CloudStorage("the-bucket/prefix")
    session = f"{host}/upload/storage/v1/b/the-bucket/o?uploadType=resumable&upload_id=secret-capability"
    with pytest.raises(StorageUnavailable, match="bucket the-bucket") as failure:
        OPERATIONS[operation](bucket, session)
    assert failure.value.code == 503 and "secret-capability" not in failure.value.message
    bucket.cancel_write(session)  # best effort: nothing to report


def test_the_library_is_imported_on_first_use_only():
    """The function makes its store at start: that must not load google-cloud-storage (nor what it
    brings: google-auth, api-core, requests)."""
    script = ("import sys; from gemini_compat import config, storage; "
              "store = storage.open_store(config.Settings.from_env({'STORAGE_BUCKET': 'gs://bucket/prefix'})); "
              "assert type(store).__name__ == 'CloudStorage'; "
              "print(sorted(name for name in sys.modules "
              "if name.startswith(('google.cloud.', 'google.auth', 'google.api_core', 'requests'))))")
    loaded = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout
