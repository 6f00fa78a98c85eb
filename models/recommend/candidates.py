"""Replacement candidates for one word in its sentence, toward a target emotion.

Sources, merged per candidate lemma (a candidate may come from several):

- `wordnet`: synonyms, similar adjectives (`similar_tos`, `also_sees`) and antonyms of the
  word's senses in its part of speech; hypernyms and hyponyms for nouns and verbs.
- `glove`: nearest GloVe neighbours of the word (topical and contextual neighbours, which
  plain synonym lists lack: "sad" -> "happy", "lonely", "tragic").
- `lexicon`: the words Valence's data most associates with the target emotion, in the same
  part of speech, that GloVe puts near the word (cosine >= 0.4).
- `vader`: VADER words near the word (GloVe cosine >= 0.4) whose valence points the way the
  target does (joy up; anger, fear, sadness down).

Every candidate is inflected into the word's slot, given its letter case, and dropped when it
is rare (wordfreq Zipf of the lemma < `min_zipf`, of an inflected form < `min_zipf` - 0.5),
blocklisted, a multi-word lemma, not analysable in the
slot's part of speech (nonsense), or the word itself.

`support` is the evidence that does not come from Valence's model: the lexicon's and VADER's
agreement that the candidate is more of the target than the word it replaces. Ranking needs
support > 0 by default, so a suggestion is never carried by the model alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.recommend.inflection import (
    UPOS_TO_WORDNET,
    Slot,
    fits,
    inflect,
    match_case,
    readings,
)
from models.recommend.resources import Resources, zipf

# Direction of VADER valence that moves toward each emotion (surprise: none).
VADER_DIRECTION = {"joy": 1.0, "surprise": 0.0, "anger": -1.0, "fear": -1.0, "sadness": -1.0}
# Inflected forms are rarer than their lemmas: "sadder" (Zipf 2.95) is fine, "gladder" (1.3)
# is not. The lemma must reach `min_zipf`, the form `min_zipf` minus this.
INFLECTED_ZIPF_SLACK = 0.5
WORDNET_TO_UPOS = {"n": "NOUN", "v": "VERB", "a": "ADJ", "s": "ADJ", "r": "ADV"}


@dataclass
class Candidate:
    """One replacement of text[start:end]."""

    start: int
    end: int
    original: str
    replacement: str
    lemma: str
    sources: set[str] = field(default_factory=set)
    support: float = 0.0  # lexicon + VADER evidence toward the target (model-free)
    prior: float = 0.0  # support + relatedness: the order candidates are tried in


def _wordnet_lemmas(resources: Resources, slot: Slot) -> dict[str, set[str]]:
    """Lemma -> WordNet relation names, for the slot's part of speech."""
    wn = resources.wordnet
    found: dict[str, set[str]] = {}

    def add(name: str, relation: str, pos: str) -> None:
        if "_" in name or "-" in name or not name.isalpha():
            return
        found.setdefault(f"{name.lower()}|{WORDNET_TO_UPOS[pos]}", set()).add(relation)

    lookups = [(slot.lemma, slot.wordnet_pos)]
    if ("ADJ", "JJ") in slot.accepts and slot.word != slot.lemma:
        lookups.append((slot.word, "a"))  # "terrified" is also a WordNet adjective
    for word, pos in lookups:
        for synset in wn.synsets(word, pos=pos):
            related = [(synset, "synonym")]
            if pos == "a":
                related += [(s, "similar") for s in synset.similar_tos() + synset.also_sees()]
            elif pos in ("n", "v"):
                related += [(s, "hypernym") for s in synset.hypernyms()[:2]]
                related += [(s, "hyponym") for s in synset.hyponyms()[:6]]
            for related_synset, relation in related:
                for lemma in related_synset.lemmas():
                    add(lemma.name(), relation, related_synset.pos())
            for lemma in synset.lemmas():
                for antonym in lemma.antonyms():
                    add(antonym.name(), "antonym", antonym.synset().pos())
    return found


def _lexicon_rows(
    resources: Resources, target: str, pos: str, k: int
) -> tuple[list[str], np.ndarray]:
    """The lexicon's top-k words of the target in a part of speech, with GloVe vectors."""
    cache = resources.__dict__.setdefault("_lexicon_rows", {})
    key = (target, pos, k)
    if key not in cache:
        words = [w for w, _ in resources.lexicon.top(target, pos, k) if w in resources.glove.index]
        matrix = (
            np.stack([resources.glove.vectors[resources.glove.index[w]] for w in words])
            if words
            else np.zeros((0, resources.glove.vectors.shape[1]), np.float32)
        )
        cache[key] = (words, matrix)
    return cache[key]


def _upos_of(word: str, resources: Resources) -> set[str]:
    letters = resources.lexicon.pos.get(word)
    if letters is None:
        letters = "".join({s.pos() for s in resources.wordnet.synsets(word)})
    return {WORDNET_TO_UPOS[c] for c in letters if c in WORDNET_TO_UPOS}


def generate(
    resources: Resources,
    text: str,
    start: int,
    end: int,
    slot: Slot,
    target: str,
    *,
    glove_neighbours: int = 40,
    lexicon_words: int = 300,
) -> list[Candidate]:
    """All acceptable candidates for text[start:end] (filled slot), best prior first."""
    original = text[start:end]
    glove = resources.glove
    lexicon = resources.lexicon
    slot_upos = {upos for upos, _ in slot.accepts}
    pool: dict[str, set[str]] = _wordnet_lemmas(resources, slot)

    def add(word: str, source: str) -> None:
        for upos in _upos_of(word, resources) & slot_upos:
            pool.setdefault(f"{word}|{upos}", set()).add(source)

    anchors = {slot.word, slot.lemma}
    neighbours: dict[str, float] = {}
    for anchor in anchors:
        for rank, (word, sim) in enumerate(glove.neighbours(anchor, 200)):
            neighbours[word] = max(sim, neighbours.get(word, -1.0))
            if rank < glove_neighbours:
                add(word, "glove")
    anchor_vectors = [v for v in (glove.vector(a) for a in anchors) if v is not None]
    if anchor_vectors:
        for upos in slot_upos:
            words, matrix = _lexicon_rows(resources, target, UPOS_TO_WORDNET[upos], lexicon_words)
            if not words:
                continue
            sims = (matrix @ np.stack(anchor_vectors).T).max(axis=1)
            for word, sim in zip(words, sims, strict=True):
                if sim >= 0.4:
                    pool.setdefault(f"{word}|{upos}", set()).add("lexicon")
    direction = VADER_DIRECTION[target]
    if direction:
        for word, sim in neighbours.items():
            if sim >= 0.4 and direction * resources.vader.get(word, 0.0) > 0:
                add(word, "vader")

    base_assoc = max(lexicon.association(w, target) for w in anchors)
    base_vader = resources.vader.get(slot.word, resources.vader.get(slot.lemma, 0.0))
    out: dict[str, Candidate] = {}
    for key, sources in pool.items():
        lemma, upos = key.split("|")
        if lemma in anchors or lemma in resources.blocklist:
            continue
        form = inflect(lemma, upos, slot)
        if form is None or form == slot.word or not form.isalpha() or len(form) < 3:
            continue
        if form in resources.blocklist or zipf(lemma) < resources.min_zipf:
            continue
        if form != lemma and zipf(form) < resources.min_zipf - INFLECTED_ZIPF_SLACK:
            continue
        if not fits(form, slot) or not readings(form):
            continue
        # The form's own association when the data has it; a lemma's association carries
        # over at half weight ("braved" does not inherit all of adjective "brave"'s joy).
        if form in lexicon.scores:
            assoc = lexicon.association(form, target)
        else:
            assoc = 0.5 * lexicon.association(lemma, target)
        vader = resources.vader.get(form, resources.vader.get(lemma, 0.0))
        support = (assoc - base_assoc) + 0.25 * direction * (vader - base_vader) / 4.0
        related = max(neighbours.get(lemma, 0.0), neighbours.get(form, 0.0))
        prior = support + 0.15 * related + (0.05 if sources & {"synonym", "similar"} else 0.0)
        replacement = match_case(original, form)
        candidate = out.get(replacement)
        if candidate is None or prior > candidate.prior:
            out[replacement] = Candidate(
                start, end, original, replacement, lemma, set(sources), support, prior
            )
        else:
            candidate.sources |= sources
    return sorted(out.values(), key=lambda c: (-c.prior, c.replacement))
