"""What the benchmark sends: a realistic mix of text lengths, and simulated editing sessions.

Sentences come from the validation splits under `data/` (CARER, TweetEval, GoEmotions: real
short texts by real people); a seeded generator stands in when `data/` is absent (an installed
wheel). Everything is seeded, so two runs send the same texts.

The mix (by event count) follows what an editor plugin sends: mostly the sentence or
paragraph being typed, some whole pages, a few long documents.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from stream.cli.client import editor_event

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
_SOURCES = ("emotion/validation.jsonl", "sentiment/validation.jsonl", "goemotions/validation.jsonl")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class TextKind:
    name: str
    share: float  # of events
    sentences: tuple[int, int]  # inclusive range


MIX: tuple[TextKind, ...] = (
    TextKind("sentence", 0.50, (1, 1)),
    TextKind("paragraph", 0.30, (2, 6)),
    TextKind("page", 0.15, (8, 20)),
    TextKind("document", 0.05, (25, 60)),
)


def _normalise(text: str) -> str | None:
    text = _SPACES.sub(" ", text).strip()
    if len(text) < 8:
        return None
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…\"'" else text + "."


def sentence_pool(data_dir: Path = DATA_DIR, seed: int = 0) -> list[str]:
    """Distinct single-line sentences (a few thousand), in a seeded order."""
    seen: set[str] = set()
    for name in _SOURCES:
        path = data_dir / name
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            text = _normalise(str(orjson.loads(line).get("text", "")))
            if text:
                seen.add(text)
    pool = sorted(seen) or _generated_pool(seed)
    random.Random(seed).shuffle(pool)
    return pool


def _generated_pool(seed: int, size: int = 3000) -> list[str]:
    rng = random.Random(seed)
    subjects = ["I", "We", "My editor", "The team", "Our client", "She", "He", "Everyone"]
    verbs = ["loved", "hated", "finished", "rewrote", "questioned", "celebrated", "feared"]
    objects = ["the draft", "the launch", "the new chapter", "the review", "the ending"]
    tails = ["today", "again", "at last", "without warning", "after the meeting", "too soon"]
    return sorted(
        {
            f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} {rng.choice(tails)}"
            f" {rng.randint(1, 10_000)}."
            for _ in range(size)
        }
    )


def _document(rng: random.Random, pool: Sequence[str], sentences: int) -> str:
    chosen = [pool[rng.randrange(len(pool))] for _ in range(sentences)]
    paragraphs: list[str] = []
    while chosen:
        size = rng.randint(3, 6)
        paragraphs.append(" ".join(chosen[:size]))
        chosen = chosen[size:]
    return "\n\n".join(paragraphs)


def realistic_texts(count: int, pool: Sequence[str], seed: int = 1) -> list[str]:
    """`count` texts drawn from `MIX` (shares by event count), in a seeded random order."""
    rng = random.Random(seed)
    kinds = rng.choices(MIX, weights=[kind.share for kind in MIX], k=count)
    return [_document(rng, pool, rng.randint(*kind.sentences)) for kind in kinds]


def short_texts(count: int, pool: Sequence[str], seed: int = 1, chars: int = 220) -> list[str]:
    """`count` texts of about `chars` characters (~60 tokens): the GPU targets' 64-token case."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        text = ""
        while len(text) < chars:
            text = f"{text} {pool[rng.randrange(len(pool))]}".strip()
        out.append(text[:chars].rsplit(" ", 1)[0])
    return out


def texts_for(workload: str, count: int, pool: Sequence[str], seed: int) -> list[str]:
    """The named workload: `mix` (the realistic length mix) or `short` (~64 tokens each)."""
    if workload == "short":
        return short_texts(count, pool, seed)
    if workload == "mix":
        return realistic_texts(count, pool, seed)
    raise ValueError(f"unknown workload {workload!r}")


# --- editing sessions --------------------------------------------------------------------------
# Each session yields the full text after each revision, as an editor resends it.


def _typing(rng: random.Random, pool: Sequence[str]) -> Iterator[str]:
    """Typing a paragraph after some existing text, resent every few words."""
    before = _document(rng, pool, rng.randint(0, 6)) if rng.random() < 0.6 else ""
    words = _document(rng, pool, rng.randint(3, 8)).split(" ")
    typed = 0
    while typed < len(words):
        typed = min(len(words), typed + rng.randint(3, 8))
        new = " ".join(words[:typed])
        yield f"{before}\n\n{new}" if before else new


def _pasting(rng: random.Random, pool: Sequence[str]) -> Iterator[str]:
    """Pasting blocks of sentences into a document."""
    paragraphs = _document(rng, pool, rng.randint(5, 15)).split("\n\n")
    yield "\n\n".join(paragraphs)
    for _ in range(rng.randint(2, 5)):
        block = _document(rng, pool, rng.randint(2, 6))
        paragraphs.insert(rng.randint(0, len(paragraphs)), block)
        yield "\n\n".join(paragraphs)


_EDIT_WORDS = ("really", "quite", "not", "very", "still", "never", "finally", "truly")


def _editing(rng: random.Random, pool: Sequence[str]) -> Iterator[str]:
    """Small edits (one word inserted into one sentence) to a long document."""
    sentences = [pool[rng.randrange(len(pool))] for _ in range(rng.randint(20, 50))]
    yield " ".join(sentences)
    for _ in range(rng.randint(4, 12)):
        at = rng.randrange(len(sentences))
        words = sentences[at].split(" ")
        words.insert(rng.randint(1, len(words)), rng.choice(_EDIT_WORDS))
        sentences[at] = " ".join(words)
        yield " ".join(sentences)


SESSION_KINDS = {"typing": _typing, "pasting": _pasting, "editing": _editing}


@dataclass(frozen=True, slots=True)
class Revision:
    session: str  # doc id of the session
    kind: str
    revision: int
    text: str


def editing_sessions(
    sessions: int, pool: Sequence[str], seed: int = 2, concurrent: int = 8
) -> list[Revision]:
    """Revisions of `sessions` simulated sessions (kinds in equal shares), `concurrent` at a
    time interleaved round-robin, as several writers' editors would send them."""
    rng = random.Random(seed)
    kinds = list(SESSION_KINDS)
    queue = [(f"session-{i}", kinds[i % len(kinds)]) for i in range(sessions)]
    active: list[tuple[str, str, Iterator[str], list[int]]] = []
    out: list[Revision] = []
    while queue or active:
        while queue and len(active) < concurrent:
            doc, kind = queue.pop(0)
            active.append((doc, kind, SESSION_KINDS[kind](rng, pool), [0]))
        for entry in list(active):
            doc, kind, texts, counter = entry
            text = next(texts, None)
            if text is None:
                active.remove(entry)
                continue
            counter[0] += 1
            out.append(Revision(doc, kind, counter[0], text))
    return out


def as_events(texts: Iterable[str], prefix: str) -> list[dict[str, Any]]:
    """Editor events (schema v1) for `texts`, ids `<prefix>-<n>`; doc ids spread over keys."""
    return [
        editor_event(text, doc_id=f"{prefix}-doc-{i % 97}", revision=i, event_id=f"{prefix}-{i}")
        for i, text in enumerate(texts)
    ]


def revision_events(revisions: Iterable[Revision], prefix: str) -> list[dict[str, Any]]:
    return [
        editor_event(rev.text, doc_id=rev.session, revision=rev.revision, event_id=f"{prefix}-{i}")
        for i, rev in enumerate(revisions)
    ]
