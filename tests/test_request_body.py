"""The request body's pure parts, table-driven: content types, strict UTF-8 JSON, the token count,
and the memory budget's waiting and refusals. (Reading from a socket, deadlines and closing after an
unread body are proved over real connections in test_hostile.)"""

import socket
import threading
import time

import pytest

from gemini_compat import request_body
from gemini_compat.errors import InvalidArgument, Unavailable


@pytest.mark.parametrize("content_type", [
    "", "application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json",
])
def test_json_content_types_pass(content_type):
    request_body.check_content_type({"Content-Type": content_type} if content_type else {})


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx",
])
def test_other_content_types_are_a_400_naming_json(content_type):
    with pytest.raises(InvalidArgument) as caught:
        request_body.check_content_type({"Content-Type": content_type})
    assert caught.value.code == 400 and "application/json" in caught.value.message


@pytest.mark.parametrize("raw, message", [
    (b'"\xed\xa0\x80"', "not valid UTF-8"),  # a raw surrogate, which json.loads(bytes) accepts
    (b'{"a": "\xff"}', "not valid UTF-8"),
    (b'\xef\xbb\xbf{}', "Invalid JSON payload"),  # a byte order mark
])
def test_bytes_that_are_not_strict_utf8_json_are_refused(raw, message):
    with pytest.raises(InvalidArgument) as caught:
        request_body.parse_json(request_body.utf8_text(raw))
    assert message in caught.value.message


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("  \n", "empty"), ("[1,", "Invalid JSON payload"), ('"\\ud800"', "lone UTF-16 surrogate"),
    ('{"a": NaN}', "Invalid JSON payload"), ("[" * 5000 + "]" * 5000, "nested too deeply"),
])
def test_text_that_is_not_json_is_refused(text, message):
    with pytest.raises(InvalidArgument) as caught:
        request_body.parse_json(text)
    assert message in caught.value.message


def test_a_surrogate_pair_escape_is_fine():
    assert request_body.parse_json('{"a": "\\ud83d\\ude00"}') == {"a": "\U0001F600"}


@pytest.mark.parametrize("raw, count", [
    (b'{}', 1),
    (b'{"text": "a, b, c"}', 5),  # the quick count: commas inside strings too
    (b'[' + b'1,' * 60_000 + b'1]', 60_001),  # above the quick count's threshold: counted one by one
    (b'["' + b'{,[' * 200_000 + b'"]', 2),  # punctuation inside one string is no value
])
def test_tokens_are_counted(raw, count):
    assert request_body.count_tokens(raw) == count


@pytest.mark.parametrize("raw", [
    b"[" + b"{}," * 600_000 + b"{}]", b"[" + b"[]," * 600_000 + b"[]]", b"[" + b'"",' * 600_000 + b'""]',
    b'"a"' * 600_000,  # not JSON, but the walk must stop all the same
    b"[" + b"1," * 500_001 + b'\\"' * 1_000_000 + b"1]",  # unclosed strings: each was retried to the end
])
def test_more_tokens_than_any_request_needs_are_refused_quickly(raw):
    started = time.process_time()
    with pytest.raises(InvalidArgument) as caught:
        request_body.count_tokens(raw)
    assert "more than 500000 JSON values" in caught.value.message
    assert time.process_time() - started < 2


def test_the_budget_lets_requests_in_while_they_fit_and_the_next_waits_for_room():
    budget = request_body.MemoryBudget(100)
    budget.acquire(60, time.monotonic() + 1)
    entered = threading.Event()

    def second():
        budget.acquire(50, time.monotonic() + 5)
        entered.set()

    waiting = threading.Thread(target=second)
    waiting.start()
    assert not entered.wait(0.2)  # 60 + 50 > 100: it waits
    budget.release(60)
    assert entered.wait(2)
    waiting.join()
    assert budget.used == 50


def test_the_budget_refuses_at_the_deadline_and_what_can_never_fit_at_once():
    budget = request_body.MemoryBudget(100)
    budget.acquire(100, time.monotonic() + 1)
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        budget.acquire(1, time.monotonic() + 0.2)
    assert caught.value.code == 503 and caught.value.headers == {"Retry-After": "1"}
    assert 0.15 < time.monotonic() - started < 1
    with pytest.raises(InvalidArgument, match="REQUEST_MEMORY_BYTES"):
        budget.acquire(101, time.monotonic() + 5)


def test_a_request_holds_its_largest_reservation_and_gives_it_back_once():
    budget, environ = request_body.MemoryBudget(100), {}
    request_body.reserve(environ, budget, 30, time.monotonic() + 1)
    request_body.reserve(environ, budget, 20, time.monotonic() + 1)  # already held
    assert budget.used == 30
    request_body.reserve(environ, budget, 50, time.monotonic() + 1)
    assert budget.used == 50
    request_body.release(environ)
    request_body.release(environ)
    assert budget.used == 0


def test_a_request_that_needs_more_waits_holding_nothing():
    # Two requests holding 40 each and both wanting more would otherwise wait for each other.
    budget, first, second = request_body.MemoryBudget(90), {}, {}
    request_body.reserve(first, budget, 40, time.monotonic() + 1)
    request_body.reserve(second, budget, 40, time.monotonic() + 1)
    grown = threading.Event()

    def grow_second():
        request_body.reserve(second, budget, 60, time.monotonic() + 5)
        grown.set()

    waiting = threading.Thread(target=grow_second)
    waiting.start()
    time.sleep(0.1)
    assert budget.used == 40  # the second let go of its 40 while it waits
    request_body.reserve(first, budget, 50, time.monotonic() + 1)  # so the first grows at once
    request_body.release(first)
    assert grown.wait(2)
    waiting.join()
    assert budget.used == 60


def test_a_read_past_its_deadline_is_woken_with_an_end_of_file_and_a_finished_one_is_left_alone():
    deadlines = request_body.Deadlines()
    late, late_peer = socket.socketpair()
    done, done_peer = socket.socketpair()
    with late, late_peer, done, done_peer:
        deadlines.cancel(deadlines.watch(done, time.monotonic() + 0.1))
        watch = deadlines.watch(late, time.monotonic() + 0.3)
        started = time.monotonic()
        assert late.recv(10) == b""  # the blocked read ends at its deadline
        assert 0.25 < time.monotonic() - started < 2
        deadlines.cancel(watch)  # the reader's own cancel, after its deadline fired: nothing left to do
        time.sleep(0.1)
        done_peer.sendall(b"x")
        assert done.recv(10) == b"x"  # the finished read's socket was not shut


def test_finished_reads_do_not_pile_up():
    deadlines = request_body.Deadlines()
    with socket.socket() as sock:
        for _ in range(10_000):
            deadlines.cancel(deadlines.watch(sock, time.monotonic() + 60))
    assert len(deadlines._heap) <= 64 and not deadlines._sockets


def test_strings_that_never_close_are_counted_in_linear_time():
    raw = b"[" + b"1," * 60_000 + b'\\"' * 110_000 + b"1]"  # took 208 s when each quote was retried to the end
    started = time.process_time()
    assert request_body.count_tokens(raw) == 60_002  # the opening, the commas, the string that never closes
    assert time.process_time() - started < 1
