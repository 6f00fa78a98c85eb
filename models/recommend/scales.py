"""Hand-made word scales for rewrites a writer would keep (issue 10, items 2 and 4).

WordNet and GloVe neighbours relate words, but say nothing about how strong a feeling word
is, which preposition it takes, or which degree adverb a property adjective goes with
("dangerously narrow", "painfully slow", "eerily quiet", but not "dangerously friendly").
Those are facts of English usage that a short, reviewed table states better than any
similarity score we could compute here, so they are written down:

- `FEELINGS`: adjectives (and participles) for how a person feels, per emotion, with an
  intensity (1 mild, 2 clear, 3 strong) and the complements each takes ("furious with / at /
  about / that ...", never "furious by"). A swap keeps the original's complement.
- `OPINIONS`: evaluative adjectives about things ("decent", "excellent", "disappointing",
  "infuriating"), with their polarity, the emotion they lean to, if any, and an intensity.
- `PROPERTIES`: gradable adjectives that describe things, with the kinds of degree adverb
  they take, and `DEGREE_ADVERBS`: the adverbs of each kind, per target emotion.

Every entry is a common word of everyday English (wordfreq Zipf >= 3). The tables are the
source of candidates only: the model, the parser and the context fit still decide.
"""

from __future__ import annotations

from dataclasses import dataclass

# Complement kinds: "" (none), a preposition ("of", "by", ...), "to" (to-infinitive),
# "that" (a clause, with or without "that").
_BASIC = frozenset({"", "that", "to"})


@dataclass(frozen=True, slots=True)
class Feeling:
    word: str
    emotion: str
    intensity: int
    complements: frozenset[str]
    attributive: bool = True  # can stand before a noun ("an angry customer"; not "afraid")
    # Offered as a replacement: "shocked" is read and strengthened ("shocked" -> "stunned")
    # but never offered, since it turns a pleasant surprise sour ("shocked by how comfortable").
    offered: bool = True


def _f(word: str, emotion: str, intensity: int, extra: str = "", **kw: bool) -> Feeling:
    return Feeling(word, emotion, intensity, _BASIC | frozenset(extra.split()), **kw)


FEELINGS: tuple[Feeling, ...] = (
    _f("glad", "joy", 1, "about", attributive=False),
    _f("pleased", "joy", 1, "with about by"),
    _f("happy", "joy", 1, "with about for"),
    _f("delighted", "joy", 2, "with about by at"),
    _f("thrilled", "joy", 3, "with about by at"),
    _f("overjoyed", "joy", 3, "at"),
    _f("disappointed", "sadness", 1, "with by in about"),
    _f("sad", "sadness", 1, "about"),
    _f("upset", "sadness", 2, "about by with"),
    _f("heartbroken", "sadness", 3, "by about"),
    _f("devastated", "sadness", 3, "by"),
    _f("annoyed", "anger", 1, "by with at about"),
    _f("irritated", "anger", 1, "by with at"),
    _f("frustrated", "anger", 1, "by with at about"),
    _f("angry", "anger", 2, "with at about"),
    _f("furious", "anger", 3, "with at about"),
    _f("outraged", "anger", 3, "by at"),
    _f("infuriated", "anger", 3, "by at"),
    _f("nervous", "fear", 1, "about"),
    _f("uneasy", "fear", 1, "about"),
    _f("worried", "fear", 2, "about by for"),
    _f("anxious", "fear", 2, "about for"),
    _f("scared", "fear", 2, "of"),
    _f("afraid", "fear", 2, "of", attributive=False),
    _f("frightened", "fear", 2, "of by"),
    _f("terrified", "fear", 3, "of by"),
    _f("surprised", "surprise", 1, "by at"),
    _f("amazed", "surprise", 2, "by at"),
    _f("shocked", "surprise", 2, "by at", offered=False),
    _f("astonished", "surprise", 3, "by at"),
    _f("stunned", "surprise", 3, "by"),
)
FEELING_BY_WORD = {f.word: f for f in FEELINGS}
# Hedges and mild words in front of a feeling that a stronger one replaces with them.
FEELING_HEDGES = frozenset({"kinda", "kind of", "sort of", "a bit", "a little", "slightly"})


@dataclass(frozen=True, slots=True)
class Opinion:
    word: str
    polarity: int  # +1 or -1
    emotion: str | None  # the emotion it leans to, beyond its polarity
    intensity: int


OPINIONS: tuple[Opinion, ...] = (
    Opinion("okay", 1, None, 0),
    Opinion("decent", 1, None, 1),
    Opinion("good", 1, None, 1),
    Opinion("nice", 1, "joy", 1),
    Opinion("pleasant", 1, "joy", 1),
    Opinion("great", 1, "joy", 2),
    Opinion("lovely", 1, "joy", 2),
    Opinion("excellent", 1, "joy", 3),
    Opinion("wonderful", 1, "joy", 3),
    Opinion("fantastic", 1, "joy", 3),
    Opinion("superb", 1, "joy", 3),
    Opinion("delicious", 1, "joy", 3),  # food only (FOOD_NOUNS)
    Opinion("amazing", 1, "surprise", 3),
    Opinion("incredible", 1, "surprise", 3),
    Opinion("remarkable", 1, "surprise", 2),
    Opinion("poor", -1, None, 1),
    Opinion("bad", -1, None, 1),
    Opinion("disappointing", -1, "sadness", 2),
    Opinion("depressing", -1, "sadness", 2),
    Opinion("heartbreaking", -1, "sadness", 3),
    Opinion("annoying", -1, "anger", 2),
    Opinion("frustrating", -1, "anger", 2),
    Opinion("infuriating", -1, "anger", 3),
    Opinion("maddening", -1, "anger", 3),
    Opinion("creepy", -1, "fear", 2),
    Opinion("scary", -1, "fear", 2),
    Opinion("alarming", -1, "fear", 2),
    Opinion("frightening", -1, "fear", 3),
    Opinion("terrifying", -1, "fear", 3),
    Opinion("suspicious", -1, "fear", 1),
    # Odd, not yet good or bad: a writer who wants fear reads them as a threat ("a random
    # text from an unknown number" -> "a creepy text"). Not "unusual": "an unusual sign-in"
    # is what a system measured, a fact ("an alarming sign-in" read as weak).
    Opinion("random", 0, None, 0),
    Opinion("strange", 0, None, 0),
    Opinion("odd", 0, None, 0),
    Opinion("weird", 0, None, 0),
    Opinion("surprising", 0, "surprise", 1),
    Opinion("astonishing", 0, "surprise", 3),
    Opinion("shocking", -1, "surprise", 3),
)
OPINION_BY_WORD = {o.word: o for o in OPINIONS}
FOOD_NOUNS = frozenset(
    [
        "pastries",
        "pastry",
        "food",
        "coffee",
        "soup",
        "meal",
        "pizza",
        "cake",
        "cakes",
        "bread",
        "dinner",
        "lunch",
        "breakfast",
        "dessert",
        "curry",
        "pie",
        "sandwich",
        "sandwiches",
        "dish",
        "dishes",
    ]
)

# Gradable adjectives that describe things, and the kinds of degree adverb they take:
# pleasant (joy), nuisance (anger), risk (fear), eerie (fear), sad and hopeless (sadness:
# "hopelessly confusing", never "hopelessly loud"). Every one of
# them takes a surprise adverb ("surprisingly quiet").
PROPERTIES: dict[str, frozenset[str]] = {
    word: frozenset(kinds.split())
    for word, kinds in {
        "quiet": "pleasant eerie",
        "comfortable": "pleasant",
        "friendly": "pleasant",
        "clean": "pleasant",
        "fresh": "pleasant",
        "simple": "pleasant",
        "easy": "pleasant",
        "quick": "pleasant",
        "cheap": "pleasant",
        "bright": "pleasant",
        "warm": "pleasant",
        "soft": "pleasant",
        "smooth": "pleasant",
        "spacious": "pleasant",
        "cosy": "pleasant",
        "cozy": "pleasant",
        "helpful": "pleasant",
        "tiny": "",
        "rare": "",
        "popular": "",
        "slow": "nuisance sad",
        "noisy": "nuisance",
        "loud": "nuisance",
        "expensive": "nuisance",
        "complicated": "nuisance hopeless",
        "confusing": "nuisance hopeless",
        "vague": "nuisance hopeless",
        "thin": "nuisance",
        "short": "nuisance",
        "busy": "nuisance",
        "crowded": "nuisance",
        "dirty": "nuisance",
        "rude": "nuisance",
        "clumsy": "nuisance",
        "unreliable": "nuisance hopeless",
        "outdated": "nuisance hopeless",
        "bland": "nuisance",
        "cold": "nuisance risk",
        "hot": "nuisance risk",
        "high": "nuisance risk",
        "low": "nuisance risk",
        "steep": "risk",
        "narrow": "risk",
        "close": "risk",
        "deep": "risk",
        "fast": "risk",
        "strong": "risk",
        "weak": "risk",
        "fragile": "risk",
        "dark": "eerie",
        "empty": "eerie sad",
        "silent": "eerie",
        "small": "sad",
    }.items()
}

# Degree adverbs per target and kind, the most common first.
DEGREE_ADVERBS: dict[str, dict[str, tuple[str, ...]]] = {
    "joy": {"pleasant": ("wonderfully", "beautifully", "delightfully")},
    "surprise": {"*": ("surprisingly", "remarkably", "incredibly")},
    "anger": {"nuisance": ("frustratingly", "ridiculously", "annoyingly")},
    "fear": {"risk": ("dangerously", "alarmingly", "worryingly"), "eerie": ("eerily",)},
    "sadness": {"sad": ("sadly", "painfully"), "hopeless": ("hopelessly",)},
}
# Words already at the top of their scale (and a few others, at the end), the emotions they
# can carry, and the degree adverbs that strengthen them: extreme adjectives take
# "absolutely" or "utterly", never "very" ("absolutely furious", "utterly heartbroken",
# "I feel absolutely awful").
EXTREMES: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    word: (frozenset(emotions.split()), tuple(adverbs.split()))
    for word, emotions, adverbs in (
        ("thrilled", "joy", "absolutely"),
        ("overjoyed", "joy", "absolutely"),
        ("delighted", "joy", "absolutely"),
        ("wonderful", "joy", "absolutely"),
        ("fantastic", "joy", "absolutely"),
        ("delicious", "joy", "absolutely"),
        ("heartbroken", "sadness", "utterly absolutely"),
        ("devastated", "sadness", "utterly absolutely"),
        ("heartbreaking", "sadness", "utterly"),
        ("miserable", "sadness", "utterly"),
        ("furious", "anger", "absolutely"),
        ("outraged", "anger", "absolutely"),
        ("infuriating", "anger", "absolutely"),
        ("ridiculous", "anger", "absolutely"),
        ("terrified", "fear", "absolutely"),
        ("terrifying", "fear", "absolutely"),
        ("petrified", "fear", "absolutely"),
        ("astonished", "surprise", "absolutely"),
        ("stunned", "surprise", "absolutely"),
        ("astonishing", "surprise", "absolutely"),
        ("amazing", "surprise joy", "absolutely"),
        ("incredible", "surprise joy", "absolutely"),
        # Absolute words take "completely" ("made my visit completely painless").
        ("painless", "joy", "completely"),
        ("effortless", "joy", "completely"),
        ("seamless", "joy", "completely"),
        ("spotless", "joy", "completely"),
        ("flawless", "joy", "completely"),
        ("useless", "anger", "completely"),
        ("pointless", "anger", "completely"),
        ("awful", "sadness anger fear", "absolutely"),
        ("terrible", "sadness anger fear", "absolutely"),
        ("horrible", "sadness anger fear", "absolutely"),
        # Not extremes, but words with one fixed strengthener each: gratitude takes "truly"
        # ("things you are truly grateful for"), an apology "so" ("I'm so sorry").
        ("grateful", "joy", "truly"),
        ("thankful", "joy", "truly"),
        ("sorry", "sadness", "so truly"),
    )
}
# Comparatives of words that lean to an emotion, strengthened by "far" when the writer
# wants more of it ("scarier than I expected" -> "far scarier than I expected").
COMPARATIVES: dict[str, frozenset[str]] = {
    word: frozenset(emotions.split())
    for word, emotions in (
        ("scarier", "fear"),
        ("creepier", "fear"),
        ("worse", "sadness anger fear"),
        ("sadder", "sadness"),
        ("angrier", "anger"),
        ("happier", "joy"),
        ("better", "joy"),
        ("nicer", "joy"),
        ("stranger", "surprise"),
    )
}
# Superlatives that "by far" strengthens, and the emotions they carry ("that was by far the
# worst film I've seen all year").
SUPERLATIVES: dict[str, frozenset[str]] = {
    "worst": frozenset({"anger", "sadness"}),
    "best": frozenset({"joy"}),
    "scariest": frozenset({"fear"}),
    "saddest": frozenset({"sadness"}),
    "happiest": frozenset({"joy"}),
}
# Adverbs of manner or speed that an exclamative "how" grades ("how quickly this year has
# gone"): a surprise degree adverb goes between them ("how incredibly quickly").
EXCLAMATIVE_ADVERBS = frozenset({"quickly", "fast", "slowly", "easily", "quietly", "smoothly"})
# Hedges a writer puts before a word; for more of the same feeling, "really" replaces them
# ("kinda nervous" -> "really nervous", "a bit creepy" -> "really creepy").
HEDGE_STRENGTHENER = "really"


def extreme_adverbs(word: str, target: str) -> tuple[str, ...]:
    """The degree adverbs that strengthen `word` at the top of its scale toward `target`."""
    entry = EXTREMES.get(word)
    if entry is None or target not in entry[0]:
        return ()
    return entry[1]


def comparative_leans_to(word: str, target: str) -> bool:
    return target in COMPARATIVES.get(word, ())


# Degree words already in front of an adjective that a stance-carrying adverb replaces.
REPLACEABLE_DEGREE = frozenset(
    {"very", "really", "pretty", "quite", "rather", "fairly", "a bit", "a little", "kinda"}
)


def degree_adverbs(adjective: str, target: str) -> tuple[str, ...]:
    """The degree adverbs that carry `target` and go with `adjective` (empty if none)."""
    kinds = PROPERTIES.get(adjective)
    if kinds is None:
        return ()
    by_kind = DEGREE_ADVERBS[target]
    found: list[str] = list(by_kind.get("*", ()))
    for kind in sorted(kinds):
        found.extend(by_kind.get(kind, ()))
    return tuple(dict.fromkeys(found))


def feelings_toward(target: str, original: Feeling, *, intensify: bool) -> list[Feeling]:
    """Target feelings that can replace `original` keeping its complement (checked by the
    caller): stronger ones of the same emotion to intensify, else the target's feelings, the
    clearest first."""
    offered = [f for f in FEELINGS if f.offered and f.emotion == target]
    if intensify:
        pool = [f for f in offered if f.intensity > original.intensity]
    else:
        # Across emotions at most one step stronger: "kinda nervous about meeting his
        # parents" -> "heartbroken about" read as nonsense (held-out reading, session 8).
        ceiling = max(original.intensity + 1, 2)
        pool = [f for f in offered if 2 <= f.intensity <= ceiling]
    return sorted(pool, key=lambda f: (abs(f.intensity - max(original.intensity, 2)), f.word))


def opinions_toward(target: str, original: Opinion, *, head_noun: str | None) -> list[Opinion]:
    """Stronger evaluative words of the same polarity that lean to `target`: "decent" ->
    "excellent" (joy), "disappointing" -> "infuriating" (anger). Never across polarity: "the
    screen is lovely" -> "the screen is infuriating" would reverse the writer's opinion."""
    out = []
    if original.polarity == 0 and original.emotion is None and target != "fear":
        return []  # "a strange noise" -> "a wonderful noise" changes what was heard
    for o in OPINIONS:
        if o.word == original.word or o.intensity <= original.intensity:
            continue
        if o.polarity != original.polarity and original.polarity != 0:
            continue
        if o.emotion != target and not (target == "joy" and o.polarity > 0 and o.emotion is None):
            continue
        if o.word == "delicious" and head_noun not in FOOD_NOUNS:
            continue
        out.append(o)
    return sorted(out, key=lambda o: (o.intensity, o.word))


@dataclass(frozen=True, slots=True)
class ToneVerb:
    """A verb that carries an emotion, and the stronger verbs of the same emotion that can
    take its place in the same tense ("fell 12%" -> "plunged 12%", "made me cry" -> "made me
    sob", "I like how it looks" -> "I love how it looks")."""

    lemma: str
    emotion: str
    stronger: tuple[str, ...]
    # What the clause must have for the stronger verb to read right: "object" ("it scares
    # me"; "I worry about it" has none, and "I terrify about it" is nonsense) or "measure"
    # (an amount: "fell 12%", never "the vase plunged").
    needs: str = ""


TONE_VERBS: dict[str, ToneVerb] = {
    v.lemma: v
    for v in (
        ToneVerb("like", "joy", ("love",), "object"),
        ToneVerb("enjoy", "joy", ("love",), "object"),
        ToneVerb("cry", "sadness", ("sob",)),
        ToneVerb("fall", "sadness", ("plunge", "slump"), "measure"),
        ToneVerb("drop", "sadness", ("plunge", "slump"), "measure"),
        ToneVerb("dislike", "anger", ("hate",), "object"),
        ToneVerb("annoy", "anger", ("infuriate",), "object"),
        ToneVerb("irritate", "anger", ("infuriate",), "object"),
        ToneVerb("bother", "anger", ("infuriate",), "object"),
        ToneVerb("scare", "fear", ("terrify",), "object"),
        ToneVerb("frighten", "fear", ("terrify",), "object"),
        ToneVerb("worry", "fear", ("frighten", "terrify"), "object"),
        ToneVerb("surprise", "surprise", ("amaze", "astonish"), "object"),
    )
}
# Apology verbs and the adverb that makes them fuller: "We apologise for the confusion" ->
# "We sincerely apologise for the confusion" (more sorrow; "deeply" reads as more formal).
APOLOGY_ADVERBS: dict[str, tuple[str, ...]] = {
    "apologise": ("sincerely", "deeply"),
    "apologize": ("sincerely", "deeply"),
}
# Set phrases: a feeling word that takes a fixed complement, and the word of the target that
# takes the same one. "Tired of paying" -> "Sick of paying" (anger); "sorry to say" -> "sad
# to say" (sadness), only before verbs of telling or learning ("sorry to bother you" is
# politeness, and "sad to bother you" nonsense).
SET_PHRASES: dict[tuple[str, str], dict[str, str]] = {
    ("tired", "of"): {"anger": "sick"},
    ("sorry", "to"): {"sadness": "sad"},
}
TELLING_VERBS = frozenset({"say", "tell", "inform", "announce", "report", "hear", "learn", "see"})
# Laughter that opens a chat message, and the interjection that carries the target in its
# place ("lol that was the worst film" -> "ugh that was the worst film").
LAUGHTER = frozenset({"lol", "haha", "hahaha", "lmao"})
INTERJECTIONS: dict[str, str] = {"anger": "ugh", "surprise": "omg"}
# Interjections that open a chat message with the target's feeling, where it has none yet:
# "ugh, who left the fridge door open again?" (anger), "eek, heading to the dentist, wish me
# luck" (fear). Chat writers put their tone there; an editor's sentence adverb reads stiff
# in a text message. Several per target: the model and the context fit choose.
CHAT_OPENERS: dict[str, tuple[str, ...]] = {
    "joy": ("yay",),
    "surprise": ("wow", "omg"),
    "anger": ("ugh",),
    "fear": ("eek", "yikes"),
    "sadness": ("sigh",),
}
# A message that already opens with one of these has its tone word (or greets).
OPENING_INTERJECTIONS = frozenset(
    {
        "omg",
        "wow",
        "ugh",
        "yay",
        "eek",
        "yikes",
        "sigh",
        "aw",
        "aww",
        "oh",
        "ah",
        "hey",
        "hi",
        "hello",
        "wait",
        "ok",
        "okay",
        "whoa",
        "woah",
        "damn",
        "dang",
        "ooh",
        "oops",
        "yes",
        "yeah",
        "yep",
        "no",
        "nope",
        "nooo",
        "hmm",
        "um",
        "uh",
        "argh",
        "omfg",
        "lol",
        "haha",
        "hahaha",
        "lmao",
        "welp",
        "meh",
        "dear",
        "god",
        "gosh",
        "phew",
        "yo",
        "so",
        "well",
    }
)
# Words and spellings that mark a text message rather than edited prose.
CHAT_MARKERS = frozenset(
    {
        "lol",
        "omg",
        "tbh",
        "btw",
        "idk",
        "imo",
        "ngl",
        "u",
        "ur",
        "gonna",
        "wanna",
        "kinda",
        "pls",
        "plz",
        "thx",
        "lmao",
        "rn",
        "tho",
        "ya",
        "bc",
        "cuz",
        "gotta",
        "mins",
    }
)
# The writer's own feeling, said after what happened to them in personal writing: "My exam
# results come out on 15 August" -> "..., and I'm nervous" (fear). Plain words of middle
# strength; the model and the context fit choose.
FEELING_CLAUSES: dict[str, tuple[str, ...]] = {
    "joy": ("I'm so happy", "I'm thrilled"),
    "surprise": ("I still can't believe it",),
    "anger": ("I'm furious", "I'm so angry"),
    "fear": ("I'm nervous", "I'm scared"),
    "sadness": ("I'm sad", "it makes me sad"),
}
# Words that mark a message as an aside, which takes no interjection.
ASIDES = frozenset({"btw", "fyi"})
# Openings of speech acts that take no feeling interjection: "wow, thanks for the help"
# or "yay, happy birthday" restate the act, and a request ("can u grab milk") is not news.
SPEECH_ACT_OPENINGS = frozenset(
    {
        "thanks",
        "thank",
        "thx",
        "happy",
        "congrats",
        "congratulations",
        "sorry",
        "please",
        "pls",
        "plz",
        "hope",
        "good",
        "merry",
        "welcome",
        "can",
        "could",
        "would",
        "will",
        "are",
        "do",
        "shall",
        "should",
        "let",
        "lets",
        "let's",
        "wanna",
        "want",
    }
)
# For surprise in an exclamation about what happened to the writer: "I got the job!" -> "I
# actually got the job!" ("unexpectedly" there reads as the manner of getting it).
EXCLAIMED_SURPRISE = "actually"
