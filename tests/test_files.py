"""The Files API (uploads.py, files.py, owners.py): the resumable upload as the SDKs speak it, files get/list/delete,
isolation between owners, quotas, expiry, and files used in generateContent. Most tests call the
function in process; those about sockets, processes and memory run it as deployed."""

import base64
import hashlib
import http.server
import json
import os
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from conftest import FunctionServer
from gemini_compat import files as files_module
from gemini_compat import storage
from helpers import KEY, UPLOAD_START_HEADERS, child_pids, error_of, google_sha256, hello, status_kib

GRANULE = 256 * 1024
MIB = 1024 * 1024
OTHER_KEY = "other-key-456"


@pytest.fixture
def store_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("files-store"))


@pytest.fixture
def app(in_process, store_dir, upstream):
    return in_process(STORAGE_DIR=store_dir)


@pytest.fixture
def protocol_app(in_process, storage_env, upstream):
    """The function on each storage backend: the folder, and Cloud Storage (its emulator)."""
    return in_process(**storage_env)


def start(app, size=None, mime="text/plain", body=None, key=KEY, path="/v1beta", headers=None):
    """The start request (as google-genai sends it, unless told otherwise); the answer."""
    sent = dict(UPLOAD_START_HEADERS)
    if size is not None:
        sent["X-Goog-Upload-Header-Content-Length"] = str(size)
    if mime is not None:
        sent["X-Goog-Upload-Header-Content-Type"] = mime
    sent.update(headers or {})
    return app.post(f"{path.rsplit('/', 1)[0]}/upload/{path.rsplit('/', 1)[1]}/files",
                    {"file": {"display_name": "notes"}} if body is None else body, key=key, headers=sent)


def upload_url(app, size=None, **kwargs):
    answer = start(app, size, **kwargs)
    assert answer.status_code == 200, answer.text
    return answer.headers["X-Goog-Upload-URL"]


def send(app, url, data=b"", offset=0, command="upload", headers=None):
    """A request on the upload URL, without a key (as the Python SDK sends its chunks). Every
    answer there carries X-Goog-Upload-Status."""
    parts = urlsplit(url)
    sent = {"X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset), "Content-Type": "application/json",
            **(headers or {})}
    sent = {name: value for name, value in sent.items() if value is not None}
    answer = app.post(f"{parts.path}?{parts.query}", data, key=None, headers=sent)
    assert answer.headers.get("X-Goog-Upload-Status") in ("active", "final", "cancelled"), (answer.status_code,
                                                                                            answer.text)
    return answer


def upload(app, data, mime="text/plain", piece=8 * MIB, key=KEY, **kwargs):
    """A whole upload in SDK-sized chunks: the File the last chunk answers."""
    url = upload_url(app, len(data), mime=mime, key=key, **kwargs)
    offset = 0
    while True:
        chunk = data[offset:offset + piece]
        last = offset + len(chunk) >= len(data)
        answer = send(app, url, chunk, offset, "upload, finalize" if last else "upload")
        assert answer.status_code == 200, answer.text
        offset += len(chunk)
        if last:
            assert answer.headers["X-Goog-Upload-Status"] == "final"
            return answer.json()["file"]
        assert answer.headers["X-Goog-Upload-Status"] == "active"


def file_id(file):
    return file["name"].removeprefix("files/")


# --- the start request ---------------------------------------------------------------------------

def test_the_start_answers_an_absolute_upload_url_and_the_upload_headers(app):
    answer = start(app, 10)
    assert answer.status_code == 200
    url = urlsplit(answer.headers["X-Goog-Upload-URL"])
    assert (url.scheme, url.netloc, url.path) == ("http", "localhost", "/upload/v1beta/files")
    query = parse_qs(url.query)
    assert query["upload_protocol"] == ["resumable"] and len(query["upload_id"][0]) == 43
    assert answer.headers["X-Goog-Upload-Status"] == "active"
    assert answer.headers["X-Goog-Upload-Chunk-Granularity"] == "262144"
    assert upload_id_not_logged(app, query["upload_id"][0])


def upload_id_not_logged(app, upload_id):
    return upload_id not in app.logs() and upload_id[:12] not in app.logs()


def test_the_upload_url_keeps_the_path_prefix_the_version_and_the_forwarded_scheme(app):
    url = upload_url(app, 3, path="/gemini/v1", headers={"X-Forwarded-Proto": "https"})
    assert url.startswith("https://localhost/gemini/upload/v1/files?upload_id=")
    file = send(app, url, b"abc", 0, "upload, finalize", headers={"X-Forwarded-Proto": "https"}).json()["file"]
    assert file["uri"] == f"https://localhost/gemini/v1/files/{file_id(file)}"


def test_public_base_url_makes_the_upload_url_and_file_uris(in_process, store_dir, upstream):
    app = in_process(STORAGE_DIR=store_dir, PUBLIC_BASE_URL="https://files.example.test/fn/")
    url = upload_url(app, 3, path="/gemini/v1beta")
    assert url.startswith("https://files.example.test/fn/upload/v1beta/files?upload_id=")
    file = send(app, url, b"abc", 0, "upload, finalize").json()["file"]
    assert file["uri"] == f"https://files.example.test/fn/v1beta/files/{file_id(file)}"


def test_on_cloud_functions_own_url_the_upload_url_has_the_function_name(in_process, store_dir, upstream):
    """https://REGION-PROJECT.cloudfunctions.net/NAME hands the function its path without /NAME."""
    app = in_process(STORAGE_DIR=store_dir, K_SERVICE="gemini")
    host = {"Host": "us-central1-proj.cloudfunctions.net", "X-Forwarded-Proto": "https"}
    url = upload_url(app, 3, path="/v1beta", headers=host)
    assert url.startswith("https://us-central1-proj.cloudfunctions.net/gemini/upload/v1beta/files?upload_id=")
    # On its run.app URL, or where the path has the name, the path is taken as it is.
    assert upload_url(app, 3, path="/v1beta", headers={"Host": "gemini-abc-uc.a.run.app"}).startswith(
        "http://gemini-abc-uc.a.run.app/upload/v1beta/files?")
    assert upload_url(app, 3, path="/gemini/v1beta", headers=host).startswith(
        "https://us-central1-proj.cloudfunctions.net/gemini/upload/v1beta/files?")


@pytest.mark.parametrize("body, headers, mime, size", [
    ({"file": {"mime_type": "image/png", "size_bytes": 4, "display_name": "d"}}, {}, "image/png", 4),  # the SDK's
    ({"file": {"mimeType": "image/png", "sizeBytes": "4", "displayName": "d"}}, {}, "image/png", 4),  # curl's
    ({}, {"X-Goog-Upload-File-Name": "page.pdf"}, "application/pdf", None),  # size known at the end
    (b"", {"X-Goog-Upload-Header-Content-Type": "audio/wav", "X-Goog-Upload-Header-Content-Length": "4"},
     "audio/wav", 4),
])
def test_the_start_takes_its_fields_from_headers_or_either_body_spelling(app, body, headers, mime, size):
    url = upload_url(app, None, mime=None, body=body, headers=headers)
    if size is None:
        too_long = send(app, url, b"a" * GRANULE, 0)
        assert too_long.status_code == 200
        file = send(app, url, b"tail", GRANULE, "upload, finalize").json()["file"]
        assert file["sizeBytes"] == str(GRANULE + 4)
    else:
        assert send(app, url, b"12345", 0, "upload, finalize").status_code == 400  # past the declared size
        file = send(app, url, b"1234", 0, "upload, finalize").json()["file"]
        assert file["sizeBytes"] == "4"
    assert file["mimeType"] == mime


@pytest.mark.parametrize("headers, body, message", [
    ({"X-Goog-Upload-Protocol": "multipart"}, None, "X-Goog-Upload-Protocol: resumable"),
    ({"X-Goog-Upload-Command": "upload"}, None, "X-Goog-Upload-Command: start"),
    ({"X-Goog-Upload-Header-Content-Type": ""}, {"file": {}}, "MIME type is unknown"),
    ({"X-Goog-Upload-Header-Content-Type": "not a type"}, None, "file.mimeType"),
    ({"X-Goog-Upload-Header-Content-Length": "-1"}, None, "whole number"),
    ({"X-Goog-Upload-Header-Content-Length": str(3 * 1024 ** 3)}, None, "FILE_MAX_BYTES"),
    ({}, {"file": {"sizeBytes": True}}, "file.sizeBytes"),
    ({}, {"file": {"name": "files/Bad_Name"}}, "file.name"),
    ({}, {"file": {"display_name": "x" * 513}}, "file.displayName"),
    ({}, {"file": "text"}, "file"),
    ({}, [], "must be an object"),
    ({"Content-Type": "text/plain"}, None, "Content-Type"),
])
def test_a_bad_start_is_refused_with_a_400_naming_it(app, headers, body, message):
    sent = {"X-Goog-Upload-Header-Content-Length": "3", "X-Goog-Upload-Header-Content-Type": "text/plain", **headers}
    if "sizeBytes" in json.dumps(body) or "mime" in json.dumps(body):
        sent.pop("X-Goog-Upload-Header-Content-Length")
    answer = start(app, None, mime=None, body=body, headers=sent)
    assert answer.status_code == 400, answer.text
    assert message in error_of(answer)["message"]


def test_a_chosen_name_is_kept_and_a_taken_one_is_409(app):
    file = upload(app, b"abc", body={"file": {"name": "files/my-notes-1"}})
    assert file["name"] == "files/my-notes-1"
    answer = start(app, 3, body={"file": {"name": "my-notes-1"}})
    assert answer.status_code == 409 and error_of(answer)["status"] == "ALREADY_EXISTS"
    assert "already exists" in error_of(answer)["message"]


def test_generated_ids_are_lowercase_letters_and_digits(app):
    for _ in range(5):
        generated = file_id(upload(app, b"x"))
        assert 12 <= len(generated) <= 16 and generated.isalnum() and generated == generated.lower()


# --- the chunks ------------------------------------------------------------------------------------

def test_three_aligned_chunks_and_a_tail_make_the_file_with_its_sha256(protocol_app):
    data = bytes(range(256)) * (3 * GRANULE // 256) + b"the tail"
    file = upload(protocol_app, data, piece=GRANULE)
    assert file["sizeBytes"] == str(len(data)) and file["sha256Hash"] == google_sha256(data)
    assert file["state"] == "ACTIVE" and file["source"] == "UPLOADED" and file["displayName"] == "notes"
    assert file["createTime"].endswith("Z") and file["expirationTime"] > file["createTime"]
    assert protocol_app.get(f"/v1beta/{file['name']}").json() == file


def test_a_misaligned_chunk_that_is_not_the_last_is_refused_final(protocol_app):
    url = upload_url(protocol_app, GRANULE + 10)
    answer = send(protocol_app, url, b"a" * (GRANULE + 1), 0)
    assert answer.status_code == 400 and answer.headers["X-Goog-Upload-Status"] == "final"
    assert "multiple of 262144" in error_of(answer)["message"]


def test_a_retried_chunk_is_taken_once(protocol_app):
    first, second = b"a" * GRANULE, b"b" * GRANULE
    url = upload_url(protocol_app, 2 * GRANULE + 1)
    assert send(protocol_app, url, first, 0).headers["X-Goog-Upload-Status"] == "active"
    assert send(protocol_app, url, first, 0).headers["X-Goog-Upload-Status"] == "active"  # its answer was lost
    assert send(protocol_app, url, second, GRANULE).status_code == 200
    assert send(protocol_app, url, first + second, 0).status_code == 200  # an overlap of two
    file = send(protocol_app, url, b"c", 2 * GRANULE, "upload, finalize").json()["file"]
    assert file["sha256Hash"] == google_sha256(first + second + b"c")


def test_a_gap_is_refused_final_and_the_upload_can_resume(protocol_app):
    url = upload_url(protocol_app, 2 * GRANULE + 1)
    assert send(protocol_app, url, b"y" * GRANULE, 0).status_code == 200
    answer = send(protocol_app, url, b"x", 2 * GRANULE, "upload, finalize")
    assert answer.status_code == 400 and answer.headers["X-Goog-Upload-Status"] == "final"
    assert "chunk is missing" in error_of(answer)["message"]
    query = send(protocol_app, url, command="query")
    assert query.headers["X-Goog-Upload-Status"] == "active"
    assert query.headers["X-Goog-Upload-Size-Received"] == str(GRANULE)
    assert send(protocol_app, url, b"z" * GRANULE, GRANULE).status_code == 200
    file = send(protocol_app, url, b"x", 2 * GRANULE, "upload, finalize").json()["file"]
    assert file["sha256Hash"] == google_sha256(b"y" * GRANULE + b"z" * GRANULE + b"x")


@pytest.mark.parametrize("upload_id", ["A" * 43, "short", "../../etc"])
def test_an_unknown_upload_id_is_404_final(app, upload_id):
    answer = send(app, f"http://localhost/upload/v1beta/files?upload_id={upload_id}", b"abc", 0, "upload, finalize")
    assert answer.status_code == 404 and answer.headers["X-Goog-Upload-Status"] == "final"
    error_of(answer)


def test_cancel_ends_the_upload(app):
    url = upload_url(app, 2 * GRANULE)
    send(app, url, b"a" * GRANULE, 0)
    answer = send(app, url, command="cancel")
    assert answer.status_code == 200 and answer.headers["X-Goog-Upload-Status"] == "cancelled"
    assert send(app, url, b"a" * GRANULE, GRANULE, "upload, finalize").status_code == 404
    assert app.get("/v1beta/files").json() == {}


def test_finalize_alone_and_a_size_mismatch(app):
    url = upload_url(app)  # size unknown
    send(app, url, b"a" * GRANULE, 0)
    file = send(app, url, command="finalize", headers={"X-Goog-Upload-Offset": None}).json()["file"]
    assert file["sizeBytes"] == str(GRANULE)
    url = upload_url(app, GRANULE + 5)
    send(app, url, b"a" * GRANULE, 0)
    answer = send(app, url, b"abc", GRANULE, "upload, finalize")
    assert answer.status_code == 400 and "declared size was" in error_of(answer)["message"]
    assert send(app, url, command="query").status_code == 404  # a mismatch ends the upload


@pytest.mark.parametrize("headers, message", [
    ({"X-Goog-Upload-Command": "resume"}, "X-Goog-Upload-Command"),
    ({"X-Goog-Upload-Offset": "-4"}, "X-Goog-Upload-Offset"),
])
def test_a_bad_command_or_offset_is_refused_final(app, headers, message):
    answer = send(app, upload_url(app, 3), b"abc", 0, "upload, finalize", headers=headers)
    assert answer.status_code == 400 and message in error_of(answer)["message"]


def test_a_zero_byte_file(protocol_app):
    file = upload(protocol_app, b"")
    assert file["sizeBytes"] == "0" and file["sha256Hash"] == google_sha256(b"")


def test_the_store_holds_no_upload_record_once_the_file_is_made(app, store_dir):
    upload(app, b"abc")
    assert stored_files(store_dir + "/metadata/uploads") == []


def stored_files(folder):
    return [os.path.join(directory, name) for directory, _, names in os.walk(folder) for name in names]


# --- get, list, delete, download, expiry -------------------------------------------------------

def test_list_pages_to_the_end_and_delete(app):
    made = {file_id(upload(app, f"file {n}".encode())) for n in range(7)}
    seen, token, pages = set(), None, 0
    while True:
        page = app.get("/v1/files", params={"pageSize": 3, **({"pageToken": token} if token else {})}).json()
        seen |= {file_id(file) for file in page["files"]}
        pages += 1
        token = page.get("nextPageToken")
        if token is None:
            break
    assert seen == made and pages == 3
    for name in made:
        assert app.request("DELETE", f"/v1/files/{name}").json() == {}
    assert app.get("/v1/files").json() == {}
    assert app.get(f"/v1/files/{name}").status_code == 403


@pytest.mark.parametrize("size, expected", [("0", 10), ("-3", 10), ("1000", 100), ("", 10)])
def test_page_size_defaults_and_caps(app, size, expected):
    assert files_module.list_page_size(size) == expected


def test_a_page_size_that_is_no_integer_is_400(app):
    answer = app.get("/v1beta/files", params={"pageSize": "ten"})
    assert answer.status_code == 400 and "pageSize" in error_of(answer)["message"]


def test_an_uploaded_file_cannot_be_downloaded(app):
    name = upload(app, b"abc")["name"]
    answer = app.get(f"/v1beta/{name}:download", params={"alt": "media"})
    assert answer.status_code == 400 and error_of(answer)["status"] == "FAILED_PRECONDITION"
    assert error_of(answer)["message"] == "Only generated files can be downloaded."


def test_an_expired_file_is_gone_everywhere(app, monkeypatch):
    file = upload(app, b"abc")
    later = time.time() + 48 * 3600 + 1
    monkeypatch.setattr("gemini_compat.clock.now", lambda: later)
    assert app.get(f"/v1beta/{file['name']}").status_code == 403
    assert app.get("/v1beta/files").json() == {}
    assert app.request("DELETE", f"/v1beta/{file['name']}").status_code == 403
    body = {"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": file["uri"]}}]}]}
    assert app.post("/v1beta/models/m:generateContent", body).status_code == 403
    monkeypatch.undo()
    assert app.get(f"/v1beta/{file['name']}").status_code == 403  # deleted, not only hidden


def test_an_upload_expires_after_seven_days(in_process, store_dir, upstream, monkeypatch):
    app = in_process(STORAGE_DIR=store_dir, STORAGE_QUOTA_OBJECTS="1")
    url = upload_url(app, 3)
    abandoned = upload_url(app, 3, key=OTHER_KEY)
    assert start(app, 3).status_code == 429
    later = time.time() + 7 * 24 * 3600 + 1
    monkeypatch.setattr("gemini_compat.clock.now", lambda: later)
    assert send(app, url, b"abc", 0, "upload, finalize").status_code == 404
    assert start(app, 3, key=OTHER_KEY).status_code == 200  # the abandoned upload no longer counts
    assert send(app, abandoned, command="query").status_code == 404
    assert len(stored_files(store_dir + "/writes")) == 3  # the new upload's bytes, plan and count held, no more


# --- who may see what ------------------------------------------------------------------------------

def test_one_keys_file_is_another_keys_403_everywhere(app, upstream):
    file = upload(app, b"secret", key=KEY)
    for answer in (app.get(f"/v1beta/{file['name']}", key=OTHER_KEY),
                   app.request("DELETE", f"/v1beta/{file['name']}", key=OTHER_KEY),
                   app.post("/v1beta/models/m:generateContent",
                            {"contents": [{"parts": [{"fileData": {"fileUri": file["name"]}}]}]}, key=OTHER_KEY)):
        assert answer.status_code == 403
        assert error_of(answer)["message"] == (f"You do not have permission to access the File {file_id(file)} "
                                               "or it may not exist.")
    assert app.get("/v1beta/files", key=OTHER_KEY).json() == {}
    assert app.get(f"/v1beta/{file['name']}").status_code == 200


def test_files_scope_team_shares_the_files(in_process, store_dir, upstream):
    app = in_process(STORAGE_DIR=store_dir, FILES_SCOPE="team")
    file = upload(app, b"shared")
    assert app.get(f"/v1beta/{file['name']}", key=OTHER_KEY).json()["sha256Hash"] == google_sha256(b"shared")


def test_team_mode_keeps_files_per_access_key(in_process, store_dir, upstream):
    app = in_process(STORAGE_DIR=store_dir, UPSTREAM_API_KEY="team-upstream", ACCESS_KEYS=f"alice={KEY},bob={OTHER_KEY}")
    file = upload(app, b"alice's")
    assert app.get(f"/v1beta/{file['name']}").status_code == 200
    assert app.get(f"/v1beta/{file['name']}", key=OTHER_KEY).status_code == 403
    assert app.get(f"/v1beta/{file['name']}", key="nobody").status_code == 400  # not an access key
    assert not [r for r in upstream.requests if r["path"].endswith("/models")]  # team keys need no check


@pytest.fixture
def refusing_upstream():
    """An upstream that refuses every key, as a real one refuses an invented key."""

    class Refusing(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def test_a_pass_through_key_the_upstream_refuses_cannot_store(in_process, store_dir, refusing_upstream):
    app = in_process(STORAGE_DIR=store_dir, UPSTREAM_BASE_URL=refusing_upstream)
    answer = start(app, 3, key="invented-key")
    assert answer.status_code == 400 and "X-Goog-Upload-URL" not in answer.headers
    assert error_of(answer)["details"][0]["reason"] == "API_KEY_INVALID"  # as for generateContent
    assert stored_files(store_dir + "/metadata") == []


def test_a_pass_through_key_is_checked_once(app, upstream):
    upload(app, b"a", key="checked-once-key")
    upload(app, b"b", key="checked-once-key")
    assert len([r for r in upstream.requests if r["path"].endswith("/models")]) == 1


def test_quotas_of_objects_and_bytes_are_429_naming_the_setting(in_process, store_dir, upstream):
    app = in_process(STORAGE_DIR=store_dir, STORAGE_QUOTA_OBJECTS="2", STORAGE_QUOTA_BYTES="100")
    upload(app, b"a" * 60)
    answer = start(app, 41)
    assert answer.status_code == 429 and "STORAGE_QUOTA_BYTES" in error_of(answer)["message"]
    upload_url(app, 40)  # unfinished: counts as an object, with its declared size
    answer = start(app, 0)
    assert answer.status_code == 429 and "STORAGE_QUOTA_OBJECTS" in error_of(answer)["message"]
    assert error_of(answer)["status"] == "RESOURCE_EXHAUSTED"
    assert start(app, 0, key=OTHER_KEY).status_code == 200  # another owner's quota
    undeclared = upload_url(app, key=OTHER_KEY)
    answer = send(app, undeclared, b"a" * 101, 0, "upload, finalize")
    assert answer.status_code == 429 and "STORAGE_QUOTA_BYTES" in error_of(answer)["message"]
    assert answer.headers["X-Goog-Upload-Status"] == "final"


# --- files in generateContent ----------------------------------------------------------------------

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
WAV = (b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00\x80>\x00\x00"
       b"\x02\x00\x10\x00data\x00\x00\x00\x00")


def test_files_reach_the_upstream_as_their_bytes(app, upstream):
    image = upload(app, PNG, mime="image/png")
    text = upload(app, "Grüße".encode(), mime="text/plain")
    audio = upload(app, WAV, mime="audio/wav")
    pdf = upload(app, b"%PDF-1.4 tiny", mime="application/pdf", body={"file": {"displayName": "report.pdf"}})
    parts = [{"text": "Look:"},
             {"fileData": {"fileUri": image["uri"], "mimeType": "image/jpeg"}},  # the stored type wins
             {"fileData": {"fileUri": text["name"]}},
             {"fileData": {"fileUri": f"https://elsewhere.example/v1alpha/files/{file_id(audio)}"}},
             {"fileData": {"fileUri": pdf["uri"]}}]
    answer = app.post("/v1beta/models/m:generateContent", {"contents": [{"role": "user", "parts": parts}]})
    assert answer.status_code == 200, answer.text
    content = upstream.last["messages"][-1]["content"]
    assert content[1] == {"type": "image_url",
                          "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}}
    assert content[2] == {"type": "text", "text": "Grüße"}
    assert content[3] == {"type": "input_audio", "input_audio": {"data": base64.b64encode(WAV).decode(),
                                                                 "format": "wav"}}
    assert content[4] == {"type": "file", "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,"
                                                   + base64.b64encode(b"%PDF-1.4 tiny").decode()}}


def test_files_in_function_responses_and_count_tokens_are_resolved(app, upstream):
    image = upload(app, PNG, mime="image/png")
    body = {"contents": [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "snap", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "snap", "response": {"ok": True},
                                                         "parts": [{"fileData": {"fileUri": image["name"]}}]}}]}]}
    assert app.post("/v1beta/models/m:generateContent", body).status_code == 200
    sent = json.dumps(upstream.last)
    assert "data:image/png;base64," + base64.b64encode(PNG).decode() in sent
    assert app.post("/v1beta/models/m:countTokens", {"contents": [
        {"parts": [{"fileData": {"fileUri": image["uri"]}}]}]}).status_code == 200
    assert "data:image/png;base64," in json.dumps(upstream.last)


def test_a_caches_copy_of_a_file_is_resolved_in_its_owner_only(app, store_dir, upstream):
    """What the caches helper writes into a cache's contents: ``cacheFiles/{cache_id}/{file_id}``."""
    owner = hashlib.sha256(KEY.encode()).hexdigest()[:32]
    storage.LocalStore(store_dir).put(f"cacheFiles/{owner}/cache1/file1", b"kept by the cache", "text/plain")
    body = {"contents": [{"parts": [{"fileData": {"fileUri": "cacheFiles/cache1/file1"}}]}]}
    assert app.post("/v1beta/models/m:generateContent", body).status_code == 200
    assert upstream.last["messages"][-1]["content"] == "kept by the cache"
    assert app.post("/v1beta/models/m:generateContent", body, key=OTHER_KEY).status_code == 403


def test_a_count_tokens_generate_content_request_has_its_files_resolved(app, upstream):
    name = upload(app, b"counted text")["name"]
    body = {"generateContentRequest": {"model": "models/m", "contents": [{"parts": [{"fileData": {"fileUri": name}}]}]}}
    assert app.post("/v1beta/models/m:countTokens", body).status_code == 200
    assert upstream.last["messages"][-1]["content"] == "counted text"


def test_other_uris_are_left_alone_and_a_video_file_is_refused(app, upstream):
    body = {"contents": [{"parts": [{"fileData": {"fileUri": "https://example.test/cat.png"}}]}]}
    assert app.post("/v1beta/models/m:generateContent", body).status_code == 200
    assert upstream.last["messages"][-1]["content"][0]["image_url"]["url"] == "https://example.test/cat.png"
    video = upload(app, b"\x00\x00\x00\x18ftypmp42", mime="video/mp4")
    answer = app.post("/v1beta/models/m:generateContent",
                      {"contents": [{"parts": [{"fileData": {"fileUri": video["name"]}}]}]})
    assert answer.status_code == 400 and "video/mp4" in error_of(answer)["message"]


def test_max_resolved_file_bytes_caps_a_request_naming_the_part(in_process, store_dir, upstream):
    app = in_process(STORAGE_DIR=store_dir, MAX_RESOLVED_FILE_BYTES="10")
    names = [upload(app, b"123456", mime="text/plain")["name"] for _ in range(2)]
    body = {"contents": [{"parts": [{"fileData": {"fileUri": name}} for name in names]}]}
    answer = app.post("/v1beta/models/m:generateContent", body)
    assert answer.status_code == 400
    assert error_of(answer)["message"].startswith("contents[0].parts[1].fileData: ")
    assert "MAX_RESOLVED_FILE_BYTES" in error_of(answer)["message"]


def test_a_file_uri_helper_knows_our_files():
    assert files_module.file_uri_id("files/abc123") == "abc123"
    assert files_module.file_uri_id("https://x.example/fn/v1beta/files/abc-9") == "abc-9"
    assert files_module.file_uri_id("http://x/v1/files/abc?alt=media") == "abc"
    for other in ("http://[x/v1/files/abc", "https://x/cat.png", "https://x/v2/files/abc", "files/Ab",
                  "ftp://x/v1/files/abc", "files/"):
        assert files_module.file_uri_id(other) is None


# --- a deployment without storage ------------------------------------------------------------------

def test_without_storage_every_files_route_is_501(in_process, upstream):
    app = in_process(K_SERVICE="gemini")
    for answer in (start(app, 3), app.get("/v1beta/files"), app.get("/v1beta/files/abc"),
                   app.request("DELETE", "/v1beta/files/abc"),
                   send(app, "http://localhost/upload/v1beta/files?upload_id=" + "a" * 43, b"abc", 0)):
        assert answer.status_code == 501
        assert error_of(answer)["message"] == ("This deployment has no storage: set STORAGE_BUCKET "
                                               "(deploy.sh --storage-bucket)")
    assert app.post("/v1beta/models/m:generateContent", hello()).status_code == 200


def test_cors_lets_a_page_upload(in_process, store_dir, upstream):
    app = in_process(STORAGE_DIR=store_dir, CORS_ORIGINS="https://app.example")
    preflight = app.request("OPTIONS", "/upload/v1beta/files", key=None, headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert "DELETE" in preflight.headers["Access-Control-Allow-Methods"]
    assert "x-goog-upload-command" in preflight.headers["Access-Control-Allow-Headers"]
    answer = start(app, 3, headers={"Origin": "https://app.example"})
    assert "X-Goog-Upload-URL" in answer.headers["Access-Control-Expose-Headers"]


# --- as deployed: sockets, processes, memory -----------------------------------------------------

def raw_upload(session, base, data, path="/v1beta"):
    answer = session.post(f"{base}/upload/{path.strip('/')}/files", headers={
        **UPLOAD_START_HEADERS, "x-goog-api-key": KEY, "X-Goog-Upload-Header-Content-Length": str(len(data)),
        "X-Goog-Upload-Header-Content-Type": "application/octet-stream"}, json={}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.headers["X-Goog-Upload-URL"]


def raw_chunk(session, url, data, offset, command):
    return session.post(url, data=data, timeout=60, headers={"X-Goog-Upload-Command": command,
                                                              "X-Goog-Upload-Offset": str(offset)})


def test_errors_on_the_upload_url_close_without_reading_the_chunk(serve, store_dir, upstream):
    function = serve(STORAGE_DIR=store_dir)
    with requests.Session() as session:
        url = raw_upload(session, function.url, b"x" * (4 * MIB))
        started = time.monotonic()
        answer = raw_chunk(session, url.replace("upload_id=", "upload_id=A"), b"x" * (4 * MIB), 0, "upload")
        assert answer.status_code == 404 and answer.headers["X-Goog-Upload-Status"] == "final"
        assert answer.headers.get("Connection") == "close" and time.monotonic() - started < 10
        answer = raw_chunk(session, url, b"x" * (GRANULE + 1), 0, "upload")  # misaligned, before reading
        assert answer.status_code == 400 and answer.headers["X-Goog-Upload-Status"] == "final"
        answer = raw_chunk(session, url, iter([b"x" * GRANULE]), 0, "upload")  # chunked: no Content-Length
        assert answer.status_code == 400 and "Content-Length" in error_of(answer)["message"]
        assert answer.headers["X-Goog-Upload-Status"] == "final"
        answer = raw_chunk(session, url, b"x" * (4 * MIB), 0, "upload, finalize")
        assert answer.status_code == 200 and answer.json()["file"]["sizeBytes"] == str(4 * MIB)


def test_an_upload_goes_on_after_the_instance_restarts(storage_env, upstream_server, upstream):
    env = {**storage_env, "UPSTREAM_BASE_URL": upstream_server.base_url}
    first = FunctionServer(env)
    try:
        with requests.Session() as session:
            data = b"0123456789abcdef" * (GRANULE // 8)  # two granules
            url = raw_upload(session, first.url, data + b"end")
            assert raw_chunk(session, url, data[:GRANULE], 0, "upload").headers["X-Goog-Upload-Status"] == "active"
    finally:
        first.stop()
    second = FunctionServer(env)
    try:
        with requests.Session() as session:
            url = url.replace(first.url, second.url)
            assert raw_chunk(session, url, data[GRANULE:], GRANULE, "upload").status_code == 200
            answer = raw_chunk(session, url, b"end", 2 * GRANULE, "upload, finalize")
            file = answer.json()["file"]
            assert file["sha256Hash"] == google_sha256(data + b"end")  # read back: the hash state was lost
    finally:
        second.stop()


def test_a_20_mib_chunk_streams_to_the_store(storage_env, upstream_server, upstream):
    """The worker's peak RSS grows by at most 8 MB while it takes a 20 MiB chunk."""
    server = FunctionServer({**storage_env, "UPSTREAM_BASE_URL": upstream_server.base_url})
    try:
        with requests.Session() as session:
            warm = raw_upload(session, server.url, b"w" * MIB)  # every code path once
            assert raw_chunk(session, warm, b"w" * MIB, 0, "upload, finalize").status_code == 200
            (worker,) = child_pids(server.process.pid)
            data = bytes(range(256)) * (20 * MIB // 256)
            url = raw_upload(session, server.url, data)
            before = peak_reset(worker)
            answer = raw_chunk(session, url, data, 0, "upload, finalize")
            after = status_kib(worker, "VmHWM")
        assert answer.status_code == 200 and answer.json()["file"]["sha256Hash"] == google_sha256(data)
        assert (after - before) * 1024 <= 8_000_000, f"peak RSS grew by {after - before} KiB"
    finally:
        server.stop()


def peak_reset(pid):
    """The process's VmHWM, reset to its VmRSS first where the kernel allows it (``clear_refs`` 5)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass
    return status_kib(pid, "VmHWM")


@pytest.mark.parametrize("api_version", [None, "v1beta"], ids=["sdk-default", "v1beta"])
def test_the_python_sdk_uploads_lists_uses_and_deletes(serve, storage_env, upstream, tmp_path, api_version):
    from google import genai

    function = serve(**storage_env)
    path = tmp_path / "notes.txt"
    data = (b"line of notes\n" * (9 * MIB // 14 + 1))[:9 * MIB + 7]  # two chunks of the SDK's 8 MiB
    path.write_bytes(data)
    options = {"base_url": function.url, **({"api_version": api_version} if api_version else {})}
    client = genai.Client(api_key=KEY, http_options=options)
    file = client.files.upload(file=str(path))
    assert file.size_bytes == len(data) and file.mime_type == "text/plain" and file.display_name is None
    assert base64.b64decode(file.sha256_hash).decode() == hashlib.sha256(data).hexdigest()
    assert file.uri.startswith(f"{function.url}/{api_version or 'v1'}/files/")
    assert client.files.get(name=file.name).uri == file.uri
    assert file.name in [listed.name for listed in client.files.list(config={"page_size": 1})]
    (tmp_path / "small.txt").write_bytes(b"Bonjour")
    small = client.files.upload(file=str(tmp_path / "small.txt"), config={"display_name": "greeting"})
    assert small.display_name == "greeting"
    client.models.generate_content(model="m", contents=[small, "Translate."])
    assert upstream.last["messages"][-1]["content"] == "Bonjour\nTranslate."
    client.files.delete(name=file.name)
    client.files.delete(name=small.name)
    assert list(client.files.list()) == []
