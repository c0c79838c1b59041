"""The <think> splitter: each case whole, and cut into two and into three pieces at every place."""

import itertools
import time

import pytest

from gemini_compat.think_tags import DEFAULT_LIMIT, ThinkSplitter, split_think_tags

# (content, reasoning, answer, needs_preopened): the last is True where the answer depends on text
# held before a lone closing tag, which a splitter without ``preopened`` releases at a piece's end.
CASES = [
    ("<think>Six times seven.</think>42", "Six times seven.", "42", False),
    (" \n <think>\nSix times seven.\n</think>\n\n42", "Six times seven.\n", "42", False),
    ("<think>\n\n</think>\n\n42", "", "42", False),
    ("<think></think>42", "", "42", False),
    ("<thinking>Plan it.</thinking>\nDone.", "Plan it.", "Done.", False),
    ("<thinking>a</think>b</thinking>c", "a</think>b", "c", False),
    ("<think><think>x</think>y", "<think>x", "y", False),
    ("<think>a</think>b<think>c</think> d", "a", "b<think>c</think> d", False),
    ("<think>a</think>\n\n", "a", "", False),
    ("<think>never closed", "never closed", "", False),
    ("<think>cut at </thin", "cut at </thin", "", False),
    ("</think>\n\n42", "", "42", False),
    ("\n</thinking>42", "", "42", False),
    ("Six times seven.</think>\n\n42", "Six times seven.", "42", True),
    ("Intro\n</thinking>Body", "Intro\n", "Body", True),
    ("a</think>b</think>c", "a", "b</think>c", True),
    ("<b>bold</b>\n</think>x", "<b>bold</b>\n", "x", True),
    ("42 is <think>x</think> here", "", "42 is <think>x</think> here", False),
    ("Okay <think>deep</think> answer", "", "Okay <think>deep</think> answer", False),
    ("Answer.\n<think>later</think>", "", "Answer.\n<think>later</think>", False),
    ("<b>bold</b>", "", "<b>bold</b>", False),
    ("<th is not a tag", "", "<th is not a tag", False),
    ("<thinker>x</thinker>", "", "<thinker>x</thinker>", False),
    ("</thought>x", "", "</thought>x", False),
    ("<", "", "<", False),
    ("<think", "", "<think", False),
    ("\n\nplain answer\n", "", "\n\nplain answer\n", False),
    ("  ", "", "  ", False),
    ("", "", "", False),
]


def run(pieces, preopened=True, limit=DEFAULT_LIMIT):
    splitter = ThinkSplitter(preopened=preopened, limit=limit)
    results = [splitter.feed(piece) for piece in pieces] + [splitter.finish()]
    return "".join(r for r, _ in results), "".join(a for _, a in results)


def splits(text):
    """``text`` whole, and cut into two and three pieces in every way (empty pieces included)."""
    yield [text]
    for i in range(len(text) + 1):
        yield [text[:i], text[i:]]
    for i, j in itertools.combinations_with_replacement(range(len(text) + 1), 2):
        yield [text[:i], text[i:j], text[j:]]


@pytest.mark.parametrize("content,reasoning,answer,needs_preopened", CASES)
def test_every_split_gives_the_same_reasoning_and_answer(content, reasoning, answer, needs_preopened):
    assert split_think_tags(content) == (reasoning, answer)
    for preopened in (True, False) if not needs_preopened else (True,):
        for pieces in splits(content):
            assert run(pieces, preopened) == (reasoning, answer), (pieces, preopened)


@pytest.mark.parametrize("content,reasoning,answer,needs_preopened", [case for case in CASES if case[3]])
def test_without_preopened_a_lone_closing_tag_counts_in_the_first_piece_only(content, reasoning, answer,
                                                                            needs_preopened):
    assert run([content], preopened=False) == (reasoning, answer)
    splitter = ThinkSplitter()
    first = content[:2]
    assert splitter.feed(first) == ("", first)  # released at once: a plain answer streams
    assert splitter.feed(content[2:]) == ("", content[2:])  # the tag is answer text now
    assert splitter.finish() == ("", "")


FINISH = "(finish)"  # a step that ends the stream: finish() instead of feed()


# Piece by piece: what each piece of a stream releases, as (reasoning, answer).
@pytest.mark.parametrize("preopened, steps", [
    (False, [("\n", ("", "")),  # leading whitespace: held until something visible
             ("Hel", ("", "\nHel")), ("lo <think>", ("", "lo <think>")), ("</think>", ("", "</think>")),
             (FINISH, ("", ""))]),
    # a possible tag is held only at the start
    (False, [("<", ("", "")), ("th", ("", "")), ("e answer", ("", "<the answer")), (" <thi", ("", " <thi"))]),
    # reasoning leaves as it arrives, but for a possible closing tag
    (False, [("<thi", ("", "")), ("nk>\n", ("", "")), ("Let me", ("Let me", "")), (" see.</", (" see.", "")),
             ("b>", ("</b>", "")), ("\n</thi", ("\n", "")), ("nk>\n", ("", "")),
             ("\n", ("", "")),  # the whitespace after the block is nobody's
             ("42", ("", "42")), (" <think>", ("", " <think>"))]),
    # preopened holds the start until the closing tag
    (True, [("Okay, ", ("", "")), ("six times seven.</th", ("", "")),
            ("ink>\n\nIt is 42.", ("Okay, six times seven.", "It is 42.")), (" Really.", ("", " Really."))]),
    # preopened without a closing tag: answer at the end
    (True, [("Just an answer", ("", "")), (FINISH, ("", "Just an answer"))]),
], ids=["answer-as-it-arrives", "possible-tag-at-the-start-only", "reasoning-as-it-arrives",
        "preopened-until-the-closing-tag", "preopened-without-closing-tag"])
def test_each_piece_releases_what_it_can(preopened, steps):
    splitter = ThinkSplitter(preopened=preopened)
    for piece, released in steps:
        assert (splitter.finish() if piece is FINISH else splitter.feed(piece)) == released, piece


@pytest.mark.parametrize("content,reasoning,answer,needs_preopened", [
    ("abc</think>x", "abc", "x", True),
    ("abcdefgh</think>x", "abcdefgh", "x", True),  # the tag ends at 16: within the limit
    ("abcdefghi</think>x", "", "abcdefghi</think>x", False),  # at 17: past it, answer text
    ("  abcdefgh</think>x", "", "  abcdefgh</think>x", False),  # leading whitespace counts
    ("abcdefghijklmnopqrstuvwxyz</think>x", "", "abcdefghijklmnopqrstuvwxyz</think>x", False),
    ("                    x", "", "                    x", False),  # whitespace is held up to the limit
    ("<think>" + "x" * 40 + "</think>y", "x" * 40, "y", False),  # an open block is not held: no limit
])
def test_the_held_start_is_bounded(content, reasoning, answer, needs_preopened):
    for preopened in (True, False) if not needs_preopened else (True,):
        for pieces in splits(content):
            assert run(pieces, preopened, limit=16) == (reasoning, answer), (pieces, preopened)


def test_the_default_limit_releases_a_long_start_as_answer_while_it_streams():
    splitter = ThinkSplitter(preopened=True)
    thoughts = "word " * (DEFAULT_LIMIT // 5)
    assert splitter.feed(thoughts) == ("", "")
    reasoning, answer = splitter.feed("more words")
    assert reasoning == "" and answer == thoughts + "more words"
    assert splitter.feed("</think>x") == ("", "</think>x")


def test_holding_is_linear_in_the_text_held():
    for preopened, text in ((True, "x"), (False, " ")):
        splitter = ThinkSplitter(preopened=preopened)
        began = time.process_time()
        released = [splitter.feed(text)[1] for _ in range(DEFAULT_LIMIT + 10)]
        assert released[DEFAULT_LIMIT - 2] == "" and len(released[DEFAULT_LIMIT - 1]) == DEFAULT_LIMIT
        assert released[DEFAULT_LIMIT:] == [text] * 10  # released at the limit, then passed along
        assert time.process_time() - began < 2
