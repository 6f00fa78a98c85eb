"""Part of speech in context, inflection and letter case of a word and its replacement.

There is no POS tagger among Valence's permissively licensed resources, so the slot a word
fills is decided by `lemminflect` (MIT; its tables say which lemma and Penn tag each form can
be) plus a few context rules on the neighbouring words (a determiner before it makes it a
noun, `to`/a pronoun/a modal a verb, `feel`/`be`/`so`/`very` an adjective). Participles after
`feel`/`be` fill an adjective slot, so "i feel terrified" accepts "delighted" or "happy".

A replacement lemma is then inflected into the slot's tag ("happy" -> "happier" for JJR,
"cheer" -> "cheered" for VBD) and given the original's letter case ("Sad" -> "Glad").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import lemminflect

WORD_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


def words_set(text: str) -> frozenset[str]:
    """A set of the whitespace-separated words of `text`."""
    return frozenset(text.split())


UPOS_TO_WORDNET = {"NOUN": "n", "VERB": "v", "ADJ": "a", "ADV": "r"}
BASE_TAG = {"NOUN": "NN", "VERB": "VB", "ADJ": "JJ", "ADV": "RB"}
TAGS = {
    "NOUN": ("NN", "NNS"),
    "VERB": ("VB", "VBD", "VBG", "VBN", "VBP", "VBZ"),
    "ADJ": ("JJ", "JJR", "JJS"),
    "ADV": ("RB", "RBR", "RBS"),
}

# Never substituted: function words, pronouns, auxiliaries, negations, the contractions CARER
# writes without apostrophes, and the copula/feeling verbs that frame an emotion word.
STOPWORDS = words_set(
    """a an the and or but if then so as of at by for with about against between into through
    during before after above below to from up down in out on off over under again further
    once here there when where why how all any both each few more most other some such no nor
    not only own same than too very s t can will just don should now i me my myself we our ours
    ourselves you your yours yourself yourselves he him his himself she her hers herself it its
    itself they them their theirs themselves what which who whom this that these those am is
    are was were be been being have has had having do does did doing would could might must
    shall may im ive id ill youre youve theyre theyve dont didnt doesnt cant couldnt wouldnt
    shouldnt wont isnt arent wasnt werent hasnt havent hadnt thats whats lets its also even
    still really quite rather get got getting gets feel feeling feels felt seem seems seemed
    make makes made thing things something anything everything nothing one ones much many
    like just because while though although since until unless whether yet ever never
    always often sometimes again every way lot bit little"""
)

_DETERMINERS = words_set(
    "a an the my your his her our their its this that these those some any no every each "
    "another such what which whose"
)
_VERB_BEFORE = words_set("not never ll d")
_ADJ_BEFORE = words_set(
    "feel feeling feels felt am is are was were be been being so very too really quite "
    "more most less least pretty extremely incredibly become became becoming seem seems "
    "seemed look looks looked sound sounds im ive youre theyre rather somewhat totally "
    "completely utterly absolutely fairly kind sort"
)


@dataclass(frozen=True, slots=True)
class Slot:
    """What a word is in its sentence: lemma, part of speech, Penn tag, and the tags a
    replacement may take there (an adjective slot accepts JJ and participles)."""

    word: str
    lemma: str
    upos: str  # NOUN, VERB, ADJ or ADV
    tag: str
    accepts: frozenset[tuple[str, str]]  # (upos, tag) a replacement may fill it with

    @property
    def wordnet_pos(self) -> str:
        return UPOS_TO_WORDNET[self.upos]


@cache
def _inflection(lemma: str, tag: str) -> tuple[str, ...]:
    # lemminflect deep-copies its tables on every call: cache, it is hot in candidate loops.
    return tuple(lemminflect.getInflection(lemma, tag, inflect_oov=False))


@cache
def readings(word: str) -> frozenset[tuple[str, str, str]]:
    """Every (upos, Penn tag, lemma) lemminflect's tables allow for a lower-case word."""
    found: set[tuple[str, str, str]] = set()
    for upos, lemmas in lemminflect.getAllLemmas(word).items():
        if upos not in BASE_TAG:
            continue
        for lemma in lemmas:
            for tag in TAGS[upos]:
                # getAllInflections leaves out VBN when it equals VBD: ask tag by tag.
                if word in _inflection(lemma, tag):
                    found.add((upos, tag, lemma))
            if not any(r[0] == upos and r[2] == lemma for r in found) and lemma == word:
                found.add((upos, BASE_TAG[upos], lemma))
    return frozenset(found)


_PREPOSITIONS = words_set(
    "for of with without in on at from about into by through after before during against"
)
_PRONOUNS = words_set("i you we they he she it who")
_MODALS = words_set(
    "to will would can could should may might must shall dont didnt doesnt cant couldnt "
    "wouldnt wont shouldnt"
)


def _choose(options: set[tuple[str, str, str]], prev: str, nxt: str) -> tuple[str, str, str]:
    """The reading the context makes likeliest, by an ordered preference of (upos, tag)."""
    if prev in _DETERMINERS:
        # "a better person": before a word that can be a noun, an adjective is likelier.
        before_noun = nxt in _NOUNISH or (
            nxt not in STOPWORDS and any(r[0] == "NOUN" for r in readings(nxt))
        )
        order = ["ADJ:JJ", "ADJ:JJR", "ADJ:JJS"] if before_noun else []
        order += ["NOUN:NN", "NOUN:NNS", "ADJ:JJ", "ADJ:JJR", "ADJ:JJS", "VERB:VBG"]
    elif prev in _PREPOSITIONS:
        order = ["NOUN:NN", "NOUN:NNS", "VERB:VBG", "ADJ:JJ"]
    elif prev in _ADJ_BEFORE:
        order = ["ADJ:JJ", "ADJ:JJR", "ADJ:JJS", "VERB:VBN", "VERB:VBG", "ADV:RB", "NOUN:NN"]
    elif prev in _MODALS:
        order = ["VERB:VB", "VERB:VBP", "ADV:RB"]
    elif prev in _PRONOUNS or prev in _VERB_BEFORE:
        order = ["VERB:VBD", "VERB:VBZ", "VERB:VBP", "VERB:VB", "ADV:RB"]
    else:
        order = []
    order += [
        "ADJ:JJ",
        "ADJ:JJR",
        "ADJ:JJS",
        "NOUN:NN",
        "NOUN:NNS",
        "VERB:VBD",
        "VERB:VBG",
        "VERB:VBN",
        "VERB:VBZ",
        "VERB:VBP",
        "VERB:VB",
        "ADV:RB",
        "ADV:RBR",
        "ADV:RBS",
    ]
    rank = {key: i for i, key in reversed(list(enumerate(order)))}
    return min(sorted(options), key=lambda o: rank.get(f"{o[0]}:{o[1]}", len(order)))


# Words that are almost always nouns: after "the X Y", X is then an adjective.
_NOUNISH = words_set("day time people life person friend friends world job work way")


def analyse(words: list[str], index: int) -> Slot | None:
    """The slot of `words[index]` (any case), or None for a word not worth replacing."""
    word = words[index].lower()
    if word in STOPWORDS or len(word) < 3 or not word.isalpha():
        return None
    options = set(readings(word))
    if not options:
        return None
    prev = words[index - 1].lower() if index > 0 else ""
    nxt = words[index + 1].lower() if index + 1 < len(words) else ""
    upos, tag, lemma = _choose(options, prev, nxt)
    if upos == "VERB" and tag == "VBG" and prev in ("am", "is", "are", "was", "were", "im"):
        accepts = frozenset({("VERB", "VBG")})  # progressive: "i am crying"
    elif prev in _ADJ_BEFORE and (upos, tag) in (("ADJ", "JJ"), ("VERB", "VBN")):
        # Predicative: "i feel terrified" takes "delighted" (VBN) or "glad" (JJ).
        accepts = frozenset({("ADJ", "JJ"), ("VERB", "VBN")})
    else:
        accepts = frozenset({(upos, tag)})
    return Slot(word=word, lemma=lemma, upos=upos, tag=tag, accepts=accepts)


def inflect(lemma: str, upos: str, slot: Slot) -> str | None:
    """`lemma` (of part of speech `upos`) in the form the slot needs, or None if it can't."""
    for slot_upos, tag in sorted(slot.accepts):
        if slot_upos != upos:
            continue
        forms = _inflection(lemma, tag)
        if forms:
            return forms[0]
        if tag == BASE_TAG[upos]:
            return lemma
    return None


def inflect_as(lemma: str, tag: str) -> str | None:
    """`lemma` with the fine-grained tag `tag` ("plunge", "VBD" -> "plunged"), or None."""
    forms = _inflection(lemma, tag)
    return forms[0] if forms else None


def fits(replacement: str, slot: Slot) -> bool:
    """True when the replacement can be read with a tag the slot accepts (the POS check)."""
    return any((upos, tag) in slot.accepts for upos, tag, _ in readings(replacement.lower()))


def match_case(original: str, replacement: str) -> str:
    """The replacement with the original's case: SAD -> GLAD, Sad -> Glad, sad -> glad."""
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def words_with_spans(text: str, start: int = 0, end: int | None = None) -> list[re.Match[str]]:
    """The words of `text[start:end]` as regex matches (offsets into `text`)."""
    return list(WORD_RE.finditer(text, start, len(text) if end is None else end))
