"""Rewrite proposals for one text: where to edit, and what to put there.

Positions come from the parse and the attribution (ranking.py, step 1): editable words
(grammar.editable) not under a negation, that carry affect, ordered by leverage (how much
they hold the text away from the target, or, when the target is already the text's
emotion, how much of it they carry). Three kinds of rewrite:

- `word`: the word swapped for a candidate with the same fine-grained tag (candidates.py).
- `phrase`: a hedge around an emotion word dropped, with the word kept or strengthened
  ("a bit tired" -> "tired" / "exhausted"); or a stance adverb placed after the first
  auxiliary of a plain statement ("The meeting was unexpectedly moved").
- `sentence_adverb`: an adverb carrying the target opens a declarative sentence
  ("Sadly, the concert was cancelled."), never a question or an imperative.

Every proposal is only a candidate: ranking.py rescores, re-parses and fits them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from models.base import TextScore
from models.recommend.attribution import Occlusion
from models.recommend.budget import Budget
from models.recommend.candidates import generate
from models.recommend.grammar import TAG_TO_UPOS, Edit, editable
from models.recommend.inflection import Slot
from models.recommend.resources import Resources
from models.recommend.scales import FEELING_BY_WORD, OPINION_BY_WORD, PROPERTIES

# Sentence adverbs that carry each emotion, most neutral in register first.
SENTENCE_ADVERBS: dict[str, tuple[str, ...]] = {
    "joy": ("Happily", "Thankfully", "Fortunately"),
    # None for surprise: read on the graded set, 2 of 17 sentence-initial ones were good
    # ("Surprisingly, our waiter, Tom, was friendly" comments on the whole sentence); in
    # mid-position ("was unexpectedly moved") or before a property ("surprisingly quiet")
    # surprise reads well.
    "surprise": (),
    "anger": ("Frustratingly", "Annoyingly", "Outrageously"),
    "fear": ("Worryingly", "Alarmingly", "Ominously"),
    "sadness": ("Sadly", "Unfortunately", "Regrettably"),
}
# Past this P(target) the text states the emotion clearly: a stance adverb only restates it
# ("Happily, the team won the final", read as weak by the independent reader in round 6);
# more of the same comes from the writer's own words (modifiers.py) or not at all.
_STANCE_CEILING = 0.95
# The same stance, placed after the first auxiliary ("was unexpectedly moved"); "happily"
# there would read as the manner of the verb, and "was surprisingly moved" as odd (round 6).
VERB_ADVERBS: dict[str, tuple[str, ...]] = {
    "joy": ("thankfully", "fortunately"),
    "surprise": ("unexpectedly",),
    "anger": ("annoyingly", "frustratingly"),
    "fear": ("worryingly", "alarmingly"),
    "sadness": ("sadly", "unfortunately"),
}
# Hedges that soften an emotion word; dropping one strengthens it.
HEDGES = frozenset(
    {"a bit", "a little", "a little bit", "slightly", "somewhat", "kind of", "sort of", "rather"}
)
# Entities whose first word keeps its capital after an adverb ("Sadly, Mill Road ...");
# dates and numbers do not ("Worryingly, last night ...").
_NAME_ENTITIES = frozenset(
    {"PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW"}
)
# Formulas that open a sentence and take no adverb before them ("Thank you", "Please").
_NO_ADVERB_LEMMAS = frozenset({"thank", "thanks", "please", "sorry", "welcome", "congratulations"})
# First words after which a sentence adverb does not read well.
_NO_ADVERB_BEFORE = frozenset({"RB", "RBR", "RBS", "UH", "CC", "WRB", "WP", "WDT", "IN", "VB"})


@dataclass(frozen=True)
class RewriteContext:
    text: str
    score: TextScore
    target: str
    occlusion: Occlusion
    docs: list[Any]  # spaCy parse of each of the occlusion's segments
    emotion_labels: tuple[str, ...]
    resources: Resources
    budget: Budget


@dataclass
class Rewrite:
    """One proposed edit of sentence `segment` of the text."""

    segment: int
    doc: Any  # the sentence's parse, before the edit
    edit: Edit  # offsets within the sentence
    offset: int  # where the sentence starts in the text
    kind: str
    sources: set[str] = field(default_factory=set)
    support: float = 0.0
    inserts: bool = False  # adds a word and replaces none (its fit is the validation score)
    # A feeling swapped for another feeling ("angry" -> "happy") reads further from the
    # original by design: it gets this lower context-fit floor instead of the budget's.
    fit_floor: float | None = None
    # How the re-parse is checked: "structure" (grammar.structure_kept), "tags"
    # (grammar.tags_kept, for swaps along the hand-made scales) or "modifier"
    # (grammar.modifier_kept, for a degree word before an adjective or adverb),
    # "extension" (grammar.extension_kept, "Thanks" -> "Thanks so much") or "word"
    # (grammar.word_kept, a set phrase's word or an interjection: "Tired of" -> "Sick of")
    # or "opener" (grammar.opener_kept, an interjection opening a chat message).
    parse_rule: str = "structure"
    # A stronger word of the same emotion from the hand-made scales (ranking._gains).
    intensifies: bool = False

    @property
    def start(self) -> int:
        return self.offset + self.edit.start

    @property
    def end(self) -> int:
        return self.offset + self.edit.end

    @property
    def replacement(self) -> str:
        return self.edit.replacement

    @property
    def sentence_after(self) -> str:
        return self.edit.apply(self.doc.text)


@dataclass
class _Position:
    segment: int
    token: Any
    leverage: float


def propose(ctx: RewriteContext, scaled: Sequence[Rewrite] = ()) -> list[Rewrite]:
    """Rewrites of the text within the budget: stance adverbs (at most two of each kind),
    then the edits from the hand-made scales (`scaled`, modifiers.py, at most half the
    budget), then word and phrase edits round-robin over the best positions."""
    budget = ctx.budget
    adverbs: list[Rewrite] = []
    if ctx.score.emotion.probabilities[ctx.target] < _STANCE_CEILING:
        adverbs = _verb_adverbs(ctx)[:2] + _sentence_adverbs(ctx)[:2]
    adverbs += list(scaled)[: budget.candidates // 2]
    per_position: list[list[Rewrite]] = []
    for position in _positions(ctx)[: budget.max_positions]:
        found = _edits_at(ctx, position)
        if found:
            per_position.append(found)
    out = list(adverbs)
    depth = 0
    while len(out) < budget.candidates and any(depth < len(found) for found in per_position):
        for found in per_position:
            if depth < len(found) and len(out) < budget.candidates:
                out.append(found[depth])
        depth += 1
    return out


def current_emotion(ctx: RewriteContext) -> str:
    probabilities = ctx.score.emotion.probabilities
    return max(probabilities, key=lambda label: probabilities[label])


def affective(resources: Resources, word: str, upos: str) -> bool:
    """Does the word carry affect by itself, by human-made resources (not our model)?

    Adjectives and adverbs: VADER's human ratings (|valence| >= 1 on its -4..4 scale).
    Verbs and nouns: a most frequent WordNet sense among the emotion verbs / feeling nouns
    ("love", "dread", "joy"). Verbs and nouns of events ("crashes", "destroyed", "warning")
    describe facts, whatever their valence; "boils", "works", "arrive", "hot" or "team" carry
    no affect at all: swapping them moves a classifier, not the writer's tone.
    """
    lexname = _EMOTION_LEXNAMES.get(upos)
    if lexname is None:
        return abs(resources.vader.get(word, 0.0)) >= 1.0
    pos = "v" if upos == "VERB" else "n"
    senses = resources.wordnet.synsets(word, pos=pos)
    return bool(senses) and senses[0].lexname() == lexname


_PEOPLE_PRONOUNS = frozenset(
    [
        "i",
        "me",
        "we",
        "us",
        "you",
        "he",
        "him",
        "she",
        "her",
        "they",
        "them",
        "someone",
        "everyone",
        "anyone",
        "nobody",
    ]
)


def holder_is_sentient(resources: Resources, token: Any) -> bool | None:
    """Who an adjective describes: a person (True), a thing (False), or unknown (None)."""
    if token.dep_ == "amod":
        holder = token.head
    else:
        # A predicate's subject: of its copula ("I'm worried"), or its own ("they are
        # frustrated by" is a passive, the root of its clause or a clause of "say").
        verb = token.head if token.dep_ in ("acomp", "attr", "oprd") else token
        # An object predicative describes the object: "keep your account secure".
        relations = ("dobj",) if token.dep_ == "oprd" else ("nsubj", "nsubjpass")
        holder = next((c for c in verb.children if c.dep_ in relations), None)
        if holder is None:
            return None
    if holder.lower_ in _PEOPLE_PRONOUNS or holder.ent_type_ in ("PERSON", "NORP"):
        return True
    # The small model tags a capitalised opening noun NNP ("Commuters faced delays").
    opening_noun = holder.i == 0 and holder.tag_ in ("NNP", "NNPS") and not holder.ent_type_
    if holder.tag_ in ("NN", "NNS") or opening_noun:
        senses = resources.wordnet.synsets(holder.lemma_.lower(), pos="n")
        # The two most frequent senses: "commuter" is first a train, then a person.
        return any(s.lexname() in ("noun.person", "noun.group") for s in senses[:2])
    return None


# Adjectives WordNet ties to a feeling but that say what a thing does to us ("scary" is
# "scare"), like the -ing participles: "I'm scary that ..." is not fear.
_THING_FEELINGS = frozenset(
    ["scary", "creepy", "spooky", "eerie", "dreadful", "frightful", "fearsome", "awful"]
)


def _describes_feeling(resources: Resources, word: str, *, first_sense: bool = False) -> bool:
    """An adjective for how someone feels ("afraid", "furious", "thrilled"), not for what a
    thing is like ("awful", "disappointing", "delicious"): WordNet ties it to a feeling."""
    if word.endswith("ing") or word in _THING_FEELINGS:
        return False
    senses = resources.wordnet.synsets(word, pos="a")  # adjectives and satellites
    # `first_sense`: only the most frequent one ("still" is not "stillness" of feeling).
    for synset in senses[:1] if first_sense else senses:
        for lemma in synset.lemmas():
            for related in lemma.derivationally_related_forms():
                if related.synset().lexname() in ("noun.feeling", "verb.emotion"):
                    return True
    if word in FEELING_BY_WORD:
        return True
    # A participle of an emotion verb: WordNet ties "excited" to no feeling noun, but
    # "excite" is an emotion verb (a set phrase read "we are so awesome to share it").
    if word.endswith("ed"):
        verbs = resources.wordnet.synsets(word, pos="v")
        return any(v.lexname() == "verb.emotion" for v in verbs[:1])
    return False


def _fits_holder(resources: Resources, token: Any, replacement: str) -> bool:
    """A feeling adjective needs someone to feel it ("a broken screen" is not "an afraid
    screen"); a person is not "thrilling" about something."""
    if TAG_TO_UPOS.get(token.tag_) != "ADJ":
        return True
    sentient = holder_is_sentient(resources, token)
    word = replacement.lower()
    if sentient is False and _describes_feeling(resources, word):
        return False
    if (
        sentient is True
        and token.dep_ != "amod"
        and _describes_feeling(resources, token.lower_)
        and not _describes_feeling(resources, word)
    ):
        return False  # "I'm so angry" -> "I'm so nasty" says who I am, not how I feel
    return not (sentient is True and token.dep_ != "amod" and word.endswith("ing"))


_EMOTION_LEXNAMES = {"VERB": "verb.emotion", "NOUN": "noun.feeling"}
# Parts of speech whose words are swapped. Adverbs are degree words or sentence adverbs
# ("pretty slow", "Sadly,"), and verb swaps rarely keep the sentence's sense ("wish me
# luck" -> "desire me luck"): read on the graded set, they were nearly all bad.
_SWAPPABLE = frozenset({"ADJ", "NOUN"})
# Evaluative words with a common non-evaluative sense ("if you're free", "sure").
_POLYSEMOUS = frozenset(
    [
        "free",
        "fine",
        "well",
        "right",
        "sure",
        "clear",
        "fair",
        "pretty",
        "okay",
        "ok",
        "like",
        "kind",
        "mean",
        "cool",
        "hot",
        "sick",
    ]
)
# WordNet relations close enough that a swap keeps the sentence's sense (antonyms included:
# "terrified" -> "thrilled" is a rewrite toward joy); otherwise GloVe must put them this close.
_CLOSE_RELATIONS = frozenset({"synonym", "similar", "antonym"})
_MIN_GLOVE_SIMILARITY = 0.5
_MIN_FEELING_SIMILARITY = 0.35


def _related(resources: Resources, original: str, candidate: Any) -> bool:
    if candidate.sources & _CLOSE_RELATIONS:
        return True
    similarity = resources.glove.similarity(original, candidate.lemma)
    if similarity >= _MIN_GLOVE_SIMILARITY:
        return True
    # One feeling for another ("terrified" -> "thrilled", "angry" -> "happy"): WordNet
    # rarely lists them as antonyms, and GloVe puts them only loosely together.
    return (
        similarity >= _MIN_FEELING_SIMILARITY
        and _describes_feeling(resources, original)
        and _describes_feeling(resources, candidate.replacement.lower())
    )


# VADER's direction for each target (surprise has none: the lexicon decides alone).
_VADER_DIRECTION = {"joy": 1.0, "surprise": 0.0, "anger": -1.0, "fear": -1.0, "sadness": -1.0}


def _filed_under(ctx: RewriteContext, word: str) -> bool:
    """The lexicon files the word under the target ("upsetting" is sadness, not anger)."""
    lexicon = ctx.resources.lexicon
    row = lexicon.scores.get(word)
    if row is None:
        return False
    return lexicon.labels[int(max(range(len(row)), key=lambda i: row[i]))] == ctx.target


def _stronger(ctx: RewriteContext, original: str, candidate: str) -> bool:
    """For intensification: the candidate is more of the target than the original, by
    VADER's intensity in the target's direction, and the lexicon still files it under the
    target ("annoyed" -> "furious", not "annoyed" -> "racist")."""
    lexicon = ctx.resources.lexicon
    if not _filed_under(ctx, candidate):
        return False
    direction = _VADER_DIRECTION[ctx.target]
    if direction == 0:
        return lexicon.association(candidate, ctx.target) > lexicon.association(
            original, ctx.target
        )
    vader = ctx.resources.vader
    return direction * (vader.get(candidate, 0.0) - vader.get(original, 0.0)) >= 0.3


def _flips_facts(resources: Resources, token: Any, candidate: str) -> bool:
    """An antonym of a word that describes things ("clean" -> "dirty", "good" -> "bad")
    changes what the sentence says, not how it feels; an antonym of a feeling
    ("terrified" -> "thrilled") is the rewrite the writer asked for. A feeling word said of
    a thing describes the thing ("keep your account secure" -> "insecure": held-out set 4)."""
    vader = resources.vader
    original = token.lower_
    flipped = vader.get(original, 0.0) * vader.get(candidate, 0.0) < 0
    if not flipped:
        return False
    return not _describes_feeling(resources, original) or (
        TAG_TO_UPOS.get(token.tag_) == "ADJ" and holder_is_sentient(resources, token) is False
    )


def _governs_preposition(token: Any) -> bool:
    """An adjective or verb that takes its own preposition ("tired of", "proud of",
    "interested in"): a swap would need the preposition changed too, which we never do."""
    return TAG_TO_UPOS.get(token.tag_) in ("ADJ", "VERB") and any(
        child.dep_ == "prep" and child.i == token.i + 1 for child in token.children
    )


def _governs_infinitive(token: Any) -> bool:
    """A feeling before its infinitive ("so excited to share it", "scared to use it"): the
    pair is a set phrase, and a neighbour from the resources breaks it ("so awesome to share
    it", "angry to use it"; held-out set 5). The hand-made scales know which feelings take
    which complement (modifiers.py)."""
    return TAG_TO_UPOS.get(token.tag_) == "ADJ" and any(
        child.dep_ == "xcomp" and any(c.dep_ == "aux" and c.lower_ == "to" for c in child.children)
        for child in token.children
    )


def negated(token: Any) -> bool:
    """Under a negation ("not happy", "don't like"): a swap there reads backwards."""
    return any(child.dep_ == "neg" for child in (*token.children, *token.head.children))


def _positions(ctx: RewriteContext) -> list[_Position]:
    occlusion = ctx.occlusion
    lexicon = ctx.resources.lexicon
    vader = ctx.resources.vader
    labels = list(ctx.emotion_labels)
    t = labels.index(ctx.target)
    current = current_emotion(ctx)
    intensify = current == ctx.target
    other = (
        current
        if not intensify
        else max(
            (label for label in labels if label != ctx.target),
            key=lambda label: ctx.score.emotion.probabilities[label],
        )
    )
    d = labels.index(other)
    word_at = {start: w for w, (start, _) in enumerate(occlusion.words)}
    found: list[_Position] = []
    for k, doc in enumerate(ctx.docs):
        offset = occlusion.segments[k][0]
        for token in doc:
            if not editable(doc, token) or negated(token):
                continue
            word = token.lower_
            if TAG_TO_UPOS[token.tag_] not in _SWAPPABLE or word in _POLYSEMOUS:
                continue
            if not affective(ctx.resources, word, TAG_TO_UPOS[token.tag_]) and not affective(
                ctx.resources, token.lemma_.lower(), TAG_TO_UPOS[token.tag_]
            ):
                continue
            w = word_at.get(offset + token.idx)
            drop_d = float(occlusion.emotion_drop[w, d]) if w is not None else 0.0
            drop_t = float(occlusion.emotion_drop[w, t]) if w is not None else 0.0
            affect = max(
                abs(drop_t if intensify else drop_d),
                max((abs(v) for v in lexicon.scores.get(word, ())), default=0.0),
                0.25 * abs(vader.get(word, 0.0)),
            )
            if affect < ctx.budget.min_affect:
                continue
            if intensify:
                leverage = drop_t + lexicon.association(word, ctx.target)
            else:
                leverage = (drop_d - drop_t) + (
                    lexicon.association(word, other) - lexicon.association(word, ctx.target)
                )
            found.append(_Position(k, token, leverage))
    found.sort(key=lambda p: -p.leverage)
    return found


def _slot(token: Any) -> Slot:
    upos = TAG_TO_UPOS[token.tag_]
    return Slot(
        word=token.lower_,
        lemma=token.lemma_.lower(),
        upos=upos,
        tag=token.tag_,
        accepts=frozenset({(upos, token.tag_)}),
    )


def _hedge(token: Any) -> tuple[int, int] | None:
    """The sentence span of a hedge right before `token` ("a bit" in "a bit tired")."""
    for child in token.children:
        if child.dep_ not in ("advmod", "npadvmod", "amod") or child.i >= token.i:
            continue
        span = child.doc[child.left_edge.i : child.right_edge.i + 1]
        if span.text.lower() in HEDGES and child.right_edge.i == token.i - 1:
            return span.start_char, span.end_char
    return None


def _edits_at(ctx: RewriteContext, position: _Position) -> list[Rewrite]:
    token = position.token
    doc = ctx.docs[position.segment]
    offset = ctx.occlusion.segments[position.segment][0]
    start, end = token.idx, token.idx + len(token.text)
    swaps = generate(
        ctx.resources, doc.text, start, end, _slot(token), ctx.target
    )  # offsets within the sentence
    intensify = current_emotion(ctx) == ctx.target
    if intensify:
        swaps = [c for c in swaps if _stronger(ctx, token.lower_, c.replacement.lower())]
    elif ctx.budget.require_support:
        swaps = [c for c in swaps if c.support > 0 and _filed_under(ctx, c.replacement.lower())]
    upos = TAG_TO_UPOS[token.tag_]
    swaps = [
        c
        for c in swaps
        if _related(ctx.resources, token.lower_, c)
        and _fits_holder(ctx.resources, token, c.replacement)
        and not _flips_facts(ctx.resources, token, c.replacement.lower())
        and not _governs_preposition(token)
        and not _governs_infinitive(token)
        and (
            affective(ctx.resources, c.replacement.lower(), upos)
            or affective(ctx.resources, c.lemma, upos)
        )
    ]
    feeling = _describes_feeling(ctx.resources, token.lower_)
    out = [
        Rewrite(
            position.segment,
            doc,
            Edit(start, end, c.replacement),
            offset,
            "word",
            set(c.sources),
            c.support,
            fit_floor=ctx.budget.min_feeling_fit
            if not intensify
            and feeling
            and _describes_feeling(ctx.resources, c.replacement.lower())
            else None,
        )
        for c in swaps
    ]
    hedge = _hedge(token)
    if hedge is not None:
        # Drop the hedge and keep the word, or drop it and take the strongest swaps.
        phrase = [Rewrite(position.segment, doc, Edit(hedge[0], end, token.text), offset, "phrase")]
        phrase += [
            Rewrite(
                position.segment,
                doc,
                Edit(hedge[0], end, r.edit.replacement),
                offset,
                "phrase",
                r.sources,
                r.support,
            )
            for r in out[:3]
        ]
        out = phrase + out
    return out


# Which way a sentence adverb of each target points; it must not contradict the sentence
# ("Happily, the soup was bland" reads as sarcasm, not joy).
_ADVERB_VALENCE = {"joy": 1, "surprise": 0, "anger": -1, "fear": -1, "sadness": -1}


def carries_affect(ctx: RewriteContext, doc: Any) -> bool:
    """The sentence names a feeling of its own ("sorry", "afraid", "pleasantly surprised",
    "frustrated"): an adverb would repeat it or argue with it. Evaluative words that are not
    feelings ("won", "late", "best") leave room for one."""
    resources = ctx.resources
    return any(
        t.lower_ in _FEELINGS
        or (
            t.tag_ in ("JJ", "JJR", "JJS", "VBN")
            and (
                _describes_feeling(resources, t.lower_, first_sense=True)
                or (
                    abs(resources.vader.get(t.lower_, 0.0)) >= 1.0
                    and max(resources.lexicon.scores.get(t.lower_, (0.0,))) >= 0.5
                )
            )
        )
        or (t.tag_.startswith("VB") and affective(resources, t.lemma_.lower(), "VERB"))
        for t in doc
        if t.is_alpha and t.lower_ not in _POLYSEMOUS and t.lower_ not in _STATES_OF_AFFAIRS
    )


# Words the emotion lexicon rates highly that state a fact a reader could check (GRADING.md:
# "late", "sold out", "safe and well"), not a feeling: "Annoyingly, ... I'm stuck in
# Frankfurt", "Unexpectedly, the missing hiker was found safe and well".
_STATES_OF_AFFAIRS = frozenset(
    ["stuck", "lost", "missing", "safe", "delayed", "cancelled", "canceled", "broken", "closed"]
)
# Feeling words WordNet does not tie to a feeling noun or emotion verb.
_FEELINGS = frozenset(
    ["sorry", "afraid", "proud", "bland", "unfortunately", "sadly", "luckily", "hopefully"]
)


# Emoji that say how the writer feels about what they wrote; the model may miss them.
_SOUR_EMOJI = frozenset("🙄😒😡😠😤😞😢😭😩😫🤬👎😔😟😕💀")
_GLAD_EMOJI = frozenset("😂🤣😊😄😁😃😀🥳🎉😍🥰👍🙌✨💕😆")
# Harm to people: an irritation adverb there trivialises it ("Three people were annoyingly
# injured", "300 workers will be laid off": held-out readings, session 8). Not to things:
# "My phone annoyingly died".
_HARM_VERBS = frozenset(
    {"injure", "kill", "hurt", "die", "wound", "harm", "murder", "drown", "stab", "shoot"}
)
_HARM_NOUNS = frozenset(
    {"death", "injury", "victim", "casualty", "fatality", "layoff", "redundancy"}
)


def reports_harm(resources: Resources, doc: Any) -> bool:
    return any(
        t.lemma_.lower() in _HARM_NOUNS
        or t.lemma_.lower() == "evict"
        or (t.lemma_.lower() == "lay" and any(c.lower_ == "off" for c in t.children))
        or (
            t.tag_.startswith("VB")
            and t.lemma_.lower() in _HARM_VERBS
            and holder_is_sentient(resources, t) is not False
        )
        for t in doc
    )


def contradicts(ctx: RewriteContext, k: int) -> bool:
    """The model reads the sentence the other way ("Sadly, ... should finally open"), or the
    writer's emoji do ("Happily, we're out again 🙄")."""
    direction = _ADVERB_VALENCE[ctx.target]
    segments = ctx.score.segments
    if direction == 0 or k >= len(segments):
        return False
    emoji = set(ctx.docs[k].text) if k < len(ctx.docs) else set()
    if emoji & (_SOUR_EMOJI if direction > 0 else _GLAD_EMOJI):
        return True
    probabilities = segments[k].sentiment.probabilities
    lean = probabilities.get("positive", 0.0) - probabilities.get("negative", 0.0)
    return direction * lean < -0.3


_NO_ADVERB_AFTER = frozenset(
    {"to", "do", "does", "did", "can", "could", "may", "might", "must", "should", "got", "get"}
)
_PERCEIVING = frozenset({"expect", "spot", "see", "notice", "hear", "show"})
REPORTING = frozenset({"say", "warn", "announce", "report", "tell", "claim", "explain", "ask"})


# What the writer does by saying it, or what they think: a stance adverb before "we
# apologise" or "I can't believe" comments on the speaker's own words (graded weak).
_SPEAKERS_OWN = frozenset(
    {"apologise", "apologize", "thank", "regret", "believe", "think", "hope", "wish", "appreciate"}
)


def _fits_an_adverb(ctx: RewriteContext, doc: Any, k: int) -> bool:
    if not declarative(doc) or carries_affect(ctx, doc) or contradicts(ctx, k):
        return False
    if ctx.target == "anger" and reports_harm(ctx.resources, doc):
        return False
    root = next(t for t in doc if t.dep_ == "ROOT")
    by_writer = any(c.dep_ == "nsubj" and c.lower_ in ("i", "we") for c in root.children)
    # "Happily, I've escalated your ticket", "Happily, I finally finished the marathon":
    # relief about one's own act reads stilted (independent readers, rounds 6 and 8).
    if by_writer and (root.lemma_.lower() in _SPEAKERS_OWN or ctx.target == "joy"):
        return False
    if ctx.target in ("joy", "fear") and _the_readers_affairs(ctx, root):
        # "Happily, your order has shipped", "Worryingly, your subscription will renew",
        # "Worryingly, we noticed a sign-in to your account": the writer's delight or alarm
        # at the reader's own affairs reads as filler or alarmism (held-out sets 1-4: 6 of 6
        # weak; on the graded set 2 good, 3 weak). Regret reads right there ("Sadly, your
        # flight has been cancelled"), and a warning about things in general too
        # ("Worryingly, cheap chargers can overheat and damage your phone").
        return False
    if ctx.target == "joy" and about_the_writer(root, ("my", "our")):
        # "Happily, our new travel mug keeps coffee hot": a seller's delight in its own
        # product reads as filler (three held-out sets, all weak).
        return False
    if ctx.target == "fear" and about_the_writer(root, ("my",)):
        # "Worryingly, my exam results come out on 15 August", "Worryingly, last night I
        # heard footsteps": an observer's word for the writer's own life (graded weak, round
        # 8); there a writer says how they feel instead.
        return False
    if ctx.target == "surprise":
        # "Unexpectedly, I start on Monday" / "Unexpectedly, astronomers say": surprise is
        # about the event, not the writer's own plans or someone's report of it.
        subject = next((c for c in root.children if c.dep_.startswith("nsubj")), None)
        if root.lemma_.lower() in REPORTING or (
            subject is not None and subject.lower_ in ("i", "we")
        ):
            return False
    return True


READER = frozenset({"you", "your", "u", "ur"})


def _the_readers_affairs(ctx: RewriteContext, root: Any) -> bool:
    """The main clause is about the reader or what is theirs ("your refund", "you can
    track it"), or, for fear, a notice from "we" to the reader ("we noticed a sign-in to
    your account")."""
    subject = next((c for c in root.children if c.dep_ in ("nsubj", "nsubjpass")), None)
    if subject is None:
        return False
    if subject.lower_ in READER or any(
        c.dep_ == "poss" and c.lower_ in READER for c in subject.children
    ):
        return True
    return ctx.target == "fear" and subject.lower_ == "we" and addresses_the_reader(ctx)


def addresses_the_reader(ctx: RewriteContext) -> bool:
    """The text names its reader ("you", "your"): a notice or a reply to someone."""
    return any(t.lower_ in READER for doc in ctx.docs for t in doc)


def about_the_writer(root: Any, owners: tuple[str, ...]) -> bool:
    """The main clause's subject is "I" or something of the writer's ("my exam results",
    with `owners` ("my", "our") the possessives that count)."""
    subject = next((c for c in root.children if c.dep_ in ("nsubj", "nsubjpass")), None)
    if subject is None:
        return False
    return subject.lower_ == "i" or any(
        c.dep_ == "poss" and c.lower_ in owners for c in subject.children
    )


def _verb_adverbs(ctx: RewriteContext) -> list[Rewrite]:
    """A stance adverb in mid-position, inside the sentence, where a writer often puts it:
    after the first auxiliary ("The meeting was unexpectedly moved", "The mugs have sadly
    sold out"), after a copula ("The red version is sadly no longer available"), or before
    a verb that has no auxiliary ("The app annoyingly crashes"). The clause is the main one,
    or the one that says what happened when the main verb only reports finding it out
    ("just found out the concert is sadly sold out")."""
    out: list[Rewrite] = []
    for k, doc in enumerate(ctx.docs):
        if doc.text.rstrip().endswith("?") or carries_affect(ctx, doc) or contradicts(ctx, k):
            continue
        if ctx.target == "anger" and reports_harm(ctx.resources, doc):
            continue
        verb = _stance_clause(ctx, doc)
        if verb is None:
            continue
        place = _mid_position(ctx, doc, verb)
        if place is None:
            continue
        token, goes_after = place
        for adverb in VERB_ADVERBS[ctx.target]:
            replacement = f"{token.text} {adverb}" if goes_after else f"{adverb} {token.text}"
            out.append(
                Rewrite(
                    k,
                    doc,
                    Edit(token.idx, token.idx + len(token.text), replacement),
                    ctx.occlusion.segments[k][0],
                    "phrase",
                    {"verb_adverb"},
                    inserts=True,
                )
            )
    return out


# Main verbs that only say how the writer learnt what the next clause tells.
_FINDING_OUT = frozenset({"find", "hear", "learn", "discover", "realise", "realize", "see"})


def _stance_clause(ctx: RewriteContext, doc: Any) -> Any | None:
    """The verb of the clause a mid-position adverb comments on, or None."""
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    if root is None or not root.tag_.startswith("VB"):
        return None
    verb = root
    if root.lemma_.lower() in _FINDING_OUT:
        found = next((c for c in root.children if c.dep_ == "ccomp"), None)
        if found is not None and found.tag_.startswith("VB"):
            verb = found
    subject = next((c for c in verb.children if c.dep_ in ("nsubj", "nsubjpass", "expl")), None)
    if subject is None:
        return None
    if ctx.target in ("surprise", "joy") and subject.lower_ in ("i", "we"):
        # Surprise is about the event, not the writer's own plans; relief about one's own
        # act reads oddly ("I've thankfully escalated your ticket", held-out reading).
        return None
    if negated(verb) or verb.lemma_.lower() in REPORTING | _PERCEIVING:
        return None  # "is alarmingly expected", "was fortunately spotted"
    if affective(ctx.resources, verb.lower_, "VERB") or _describes_feeling(
        ctx.resources, verb.lower_
    ):
        return None  # "was sadly annoyed" reads as the manner of a feeling
    return verb


def _mid_position(ctx: RewriteContext, doc: Any, root: Any) -> tuple[Any, bool] | None:
    """Where a mid-position adverb goes: (token, whether it goes after the token rather
    than before it), or None where no place reads well.

    Read on three held-out sets by independent readers (session 8), mid-position adverbs
    were mostly weak: only sadness after an auxiliary or copula ("will sadly be
    discontinued", "is sadly no longer available"), surprise in a passive ("was
    unexpectedly moved") and irritation before a bare verb ("The app annoyingly crashes")
    read well; joy and fear there ("has fortunately been processed", "will worryingly
    test") and irritation after an auxiliary ("have annoyingly risen", "is annoyingly the
    third time") did not. Those get the sentence-initial place or nothing."""
    if ctx.target in ("joy", "fear"):
        return None
    auxes = [c for c in root.children if c.dep_ in ("aux", "auxpass") and c.i < root.i]
    if auxes:
        if auxes[-1].i != root.i - 1 or ctx.target == "anger":
            return None
        if ctx.target == "surprise" and not any(c.dep_ == "auxpass" for c in auxes):
            return None  # "they're unexpectedly giving us friday off" reads stiff
        if root.tag_ == "VBG":
            return None  # "work is sadly running late"
        # After the first auxiliary: "will sadly be closed", "was unexpectedly moved"; not
        # after a modal of ability or possibility ("can alarmingly restart a car battery",
        # held-out reading), nor after "got" ("got sadly moved", read as stilted twice).
        first = min(auxes, key=lambda t: t.i)
        if first.lower_ in _NO_ADVERB_AFTER or first.i + 1 >= len(doc):
            return None
        after = doc[first.i + 1]
        if after.dep_ not in ("aux", "auxpass") and after.i != root.i:
            return None
        return after, False
    subject = next((c for c in root.lefts if c.dep_ in ("nsubj", "nsubjpass")), None)
    if subject is None or subject.right_edge.i != root.i - 1 or root.i + 1 >= len(doc):
        return None  # something between the subject and the verb already
    if root.lemma_ == "be":
        if ctx.target != "sadness":
            return None  # "This is annoyingly the third time", "I'm annoyingly stuck"
        # After a copula: "is sadly no longer available" (not before: "sadly is"), but not
        # before a degree word ("is annoyingly a bit slow").
        nxt = doc[root.i + 1]
        if (nxt.tag_.startswith("RB") and nxt.lower_ != "no") or nxt.dep_ == "npadvmod":
            return None
        if root.lower_ in ("'s", "'re", "'m") or nxt.lower_ in ("not", "n't", "a"):
            return None
        return root, True
    # Before a verb without auxiliary only irritation reads well ("The app annoyingly
    # crashes"); "The lift worryingly stopped", "Shares sadly fell" read as editorial asides
    # (graded weak, round 5), and after a person the adverb reads as the manner of what they
    # did ("We sadly waited"). Those get the sentence-initial place instead.
    if ctx.target != "anger" or holder_is_sentient(ctx.resources, root) is not False:
        return None
    if root.tag_ not in ("VBD", "VBZ", "VBP") or root.lemma_ in ("have", "do", "get"):
        return None
    return root, False


def _sentence_adverbs(ctx: RewriteContext) -> list[Rewrite]:
    """Sentence-adverb openings for the declarative sentences of the text, heaviest first."""
    order = sorted(
        range(len(ctx.docs)), key=lambda k: -ctx.occlusion.segment_weight[k]
    )  # the sentence that weighs most in the text moves it most
    out: list[Rewrite] = []
    for k in order:
        doc = ctx.docs[k]
        if not _fits_an_adverb(ctx, doc, k):
            continue
        contrast = _contrast(ctx, doc)
        if contrast is not None:
            # "X, but Y" where X leans away from the target: the stance is about Y. Opening
            # the sentence it would be about X ("Annoyingly, the coffee was decent, but
            # ...", graded weak twice); after "but" it reads right ("..., but annoyingly
            # the muffin was dry"). Not for surprise, which has no direction.
            if _ADVERB_VALENCE[ctx.target] != 0:
                out.extend(
                    Rewrite(
                        k,
                        doc,
                        Edit(
                            contrast.idx,
                            contrast.idx + len(contrast.text),
                            f"{contrast.text} {adverb}",
                        ),
                        ctx.occlusion.segments[k][0],
                        "phrase",
                        {"verb_adverb"},
                        inserts=True,
                    )
                    for adverb in VERB_ADVERBS[ctx.target]
                )
            continue
        first = doc[0]
        opening = first.text
        keep_case = first.tag_ != "DT" and (  # "the Riverside Library", not "The"
            (first.tag_ in ("NNP", "NNPS") and not _capitalised_common_noun(doc))
            or first.text == "I"
            or first.ent_type_ in _NAME_ENTITIES
            or (len(first.text) > 1 and first.text.isupper())
        )
        if not keep_case:
            opening = opening[:1].lower() + opening[1:]
        for adverb in _openings(ctx, doc, k):
            out.append(
                Rewrite(
                    k,
                    doc,
                    Edit(0, len(first.text), f"{adverb}, {opening}"),
                    ctx.occlusion.segments[k][0],
                    "sentence_adverb",
                    {"sentence_adverb"},
                    inserts=True,
                )
            )
    return out


# Surprise at good news that happened: "Astonishingly, local teenager Maya Ortiz won the
# national spelling bee" (the model reads "Remarkably" as barely more surprised).
_GOOD_NEWS_SURPRISE = ("Astonishingly", "Remarkably")


# Outcomes that can beat the odds: a win, a find, a rescue, a record.
_FEATS = frozenset(
    {"win", "beat", "find", "discover", "spot", "survive", "rescue", "break", "recover", "solve"}
)


def _openings(ctx: RewriteContext, doc: Any, k: int) -> tuple[str, ...]:
    """The sentence adverbs for the target. Surprise has none in general (SENTENCE_ADVERBS),
    but "Astonishingly," reads well before good news of a feat that happened, told by
    someone other than the writer (a win, a find, a rescue in the past or perfect, that the
    model reads as good news)."""
    if ctx.target != "surprise":
        return SENTENCE_ADVERBS[ctx.target]
    segments = ctx.score.segments
    if k >= len(segments):
        return ()
    probabilities = segments[k].sentiment.probabilities
    if probabilities.get("positive", 0.0) - probabilities.get("negative", 0.0) <= 0.3:
        return ()  # good news only: "police found a body" is no feat
    root = next(t for t in doc if t.dep_ == "ROOT")
    if root.lemma_.lower() not in _FEATS:
        return ()  # "Astonishingly, the museum's new wing opened" is no feat
    done = any(c.dep_ in ("aux", "auxpass") for c in root.children)
    if root.tag_ != "VBD" and not (root.tag_ == "VBN" and done):
        return ()
    return _GOOD_NEWS_SURPRISE


def _capitalised_common_noun(doc: Any) -> bool:
    """ "City council voted": the small model tags an opening capital NNP; followed by a
    lower-case common noun and outside any entity, it is a common noun ("city council")."""
    first = doc[0]
    if first.ent_type_ or len(doc) < 2:
        return False
    nxt = doc[1]
    return nxt.tag_ in ("NN", "NNS") and nxt.text.islower()


_JOINS = frozenset({"but", "and", "yet"})


def _contrast(ctx: RewriteContext, doc: Any) -> Any | None:
    """The "but" (or "and") that joins a main clause leaning away from the target (by
    VADER: "The coffee was decent" for anger) to a second clause with its own subject."""
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    if root is None:
        return None
    but = next((c for c in root.children if c.dep_ == "cc" and c.lower_ in _JOINS), None)
    if but is None:
        return None
    clause = next((c for c in root.children if c.dep_ == "conj" and c.i > but.i), None)
    if clause is None or not any(c.dep_ in ("nsubj", "nsubjpass") for c in clause.lefts):
        return None
    lean = sum(_polarity(ctx.resources, t.lower_) for t in doc if t.i < but.i)
    return but if lean * _ADVERB_VALENCE[ctx.target] < 0 else None


def _polarity(resources: Resources, word: str) -> float:
    """VADER's rating, or the sign of an opinion or property on the hand-made scales
    ("decent" +1, "slow" -1)."""
    rating = resources.vader.get(word)
    if rating is not None:
        return float(rating)
    opinion = OPINION_BY_WORD.get(word)
    if opinion is not None:
        return float(opinion.polarity)
    kinds = PROPERTIES.get(word, frozenset())
    return float(("pleasant" in kinds) - ("nuisance" in kinds))


def declarative(doc: Any) -> bool:
    """A statement with a subject: not a question, an imperative or a fragment."""
    if len(doc) < 3 or doc.text.rstrip().endswith("?"):
        return False
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    if root is None or not any(c.dep_ in ("nsubj", "nsubjpass", "expl") for c in root.children):
        return False
    first = doc[0]
    return (
        first.tag_ not in _NO_ADVERB_BEFORE
        and first.is_alpha
        and first.lemma_.lower() not in _NO_ADVERB_LEMMAS
    )
