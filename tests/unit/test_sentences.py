"""models.sentences: spans are ordered, trimmed, and cover every non-whitespace character."""

from __future__ import annotations

import random

import pytest

from models.sentences import split_sentences


def _texts(text: str) -> list[str]:
    return [text[start:end] for start, end in split_sentences(text)]


def _assert_covers(text: str) -> None:
    spans = split_sentences(text)
    covered = [False] * len(text)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        assert not text[start].isspace() and not text[end - 1].isspace()
        for index in range(start, end):
            covered[index] = True
        previous_end = end
    for index, char in enumerate(text):
        assert covered[index] or char.isspace(), f"character {index} ({char!r}) lost"


def test_splits_on_terminal_punctuation() -> None:
    assert _texts("Hello world. How are you? Fine!") == ["Hello world.", "How are you?", "Fine!"]


def test_keeps_punctuation_runs_and_closing_quotes() -> None:
    assert _texts('He said "stop!" Then left... Why?!') == [
        'He said "stop!"',
        "Then left...",
        "Why?!",
    ]


def test_newlines_end_sentences() -> None:
    assert _texts("first line\nsecond line\n\n  third") == ["first line", "second line", "third"]


def test_simple_abbreviations_do_not_split() -> None:
    assert _texts("Dr. Smith met Mr. J. Doe today. It went well.") == [
        "Dr. Smith met Mr. J. Doe today.",
        "It went well.",
    ]


def test_decimals_and_urls_do_not_split() -> None:
    assert _texts("It costs 3.50 at example.com today. Ok") == [
        "It costs 3.50 at example.com today.",
        "Ok",
    ]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t"])
def test_blank_text_has_no_spans(text: str) -> None:
    assert split_sentences(text) == []


def test_text_without_punctuation_is_one_span() -> None:
    text = "  no punctuation at all here  "
    assert split_sentences(text) == [(2, len(text) - 2)]


def test_random_texts_are_fully_covered() -> None:
    rng = random.Random(7)
    alphabet = ["word", "Dr.", "a.", ".", "!", "?", "...", "\n", " ", "  ", "é", "🙂", '"', ")"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) + rng.choice(["", " "]) for _ in range(40))
        _assert_covers(text)


def _split_with_the_regex_lookback(text: str) -> list[tuple[int, int]]:
    r"""The splitter as it was before the bounded look-back: the word before a period found
    by a regex searched from the text's start (quadratic in the length), kept as an oracle.
    (`\Z`, not the old `$`, which also matched before a line break: "etc.\n." was read
    as an abbreviation.)"""
    import re

    import models.sentences as sentences

    word_before = re.compile(r"([\w.]+)\Z")

    def is_abbreviation(text: str, period_at: int) -> bool:
        match = word_before.search(text, 0, period_at)
        if match is None:
            return False
        word = match.group(1).lower().rstrip(".")
        return word in sentences._ABBREVIATIONS or (len(word) == 1 and word.isalpha())

    original = sentences._is_abbreviation
    sentences._is_abbreviation = is_abbreviation
    try:
        return sentences.split_sentences(text)
    finally:
        sentences._is_abbreviation = original


def test_the_bounded_look_back_splits_as_the_regex_did() -> None:
    rng = random.Random(11)
    alphabet = ["word", "Dr.", "e.g.", "U.S.", "etc.", "a.", "x", ".", "..", "!", "\n", " ", "é"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) + rng.choice(["", " "]) for _ in range(30))
        assert split_sentences(text) == _split_with_the_regex_lookback(text), text
