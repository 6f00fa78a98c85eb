"""Split a text into sentences, as character spans that lose no text.

Sentences are the unit the model scores (see models/inference.py), so the splitter only has to
be good enough to keep segments short and topical; it must never drop text. Every
non-whitespace character of the input lies in exactly one returned span.
"""

from __future__ import annotations

import re

# A sentence ends after a run of . ! ? (or an ellipsis), optionally followed by closing quotes
# or brackets, when whitespace or the end of the text comes next; a line break always ends one.
_BOUNDARY = re.compile(r"(?:[.!?…]+[\"'”’)\]]*(?=\s|$))|\n")

# Words whose trailing period does not end a sentence. Kept short on purpose: a missed
# abbreviation costs one extra split, never lost text.
_ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "eg",
        "ie",
        "inc",
        "ltd",
        "co",
        "no",
        "approx",
        "dept",
        "fig",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "u.s",
        "u.k",
    }
)
# Longer runs of word characters and dots before a period are not abbreviations.
_LONGEST_RUN = 16


def _is_abbreviation(text: str, period_at: int) -> bool:
    """True when the period at `period_at` closes an abbreviation or a single initial.

    Walks back over the word before the period only, never further than `_LONGEST_RUN`: a
    regex searched from the text's start was quadratic in the text's length (half the event
    loop's time on long documents in the benchmark's profile)."""
    start = period_at
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "._"):
        start -= 1
        if period_at - start > _LONGEST_RUN:
            return False
    word = text[start:period_at].lower().rstrip(".")
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _strip_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span narrowed to its non-whitespace content, or None when there is none."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans `(start, end)` (end exclusive) in text order.

    Whitespace between sentences belongs to no span; all other characters belong to exactly
    one. An empty or all-whitespace text gives no spans.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        token = match.group(0)
        if token == "." and _is_abbreviation(text, match.start()):
            continue
        span = _strip_span(text, start, match.end())
        if span is not None:
            spans.append(span)
        start = match.end()
    tail = _strip_span(text, start, len(text))
    if tail is not None:
        spans.append(tail)
    return spans
