"""Rewrites of the writer's own tone words that the adjective scales do not reach.

The tables are in scales.py; each rewrite changes words the writer chose, in place:

- a tone verb for a stronger one of the same emotion, in the same tense: "Shares fell 12%"
  -> "Shares plunged 12%", "the ending made me cry" -> "made me sob", "I like how it looks"
  -> "I love how it looks";
- an apology made fuller: "We apologise for the confusion" -> "We sincerely apologise";
- a set phrase's feeling word for the target's: "Tired of paying" -> "Sick of paying"
  (anger), "We're sorry to say" -> "We're sad to say" (sadness);
- laughter that opens a chat message for an interjection of the target: "lol that was the
  worst film" -> "ugh that was the worst film" (anger);
- surprise in an exclamation about what happened to the writer: "I got the job!" -> "I
  actually got the job!";
- an interjection of the target opening a chat message that has none: "who left the fridge
  door open again?" -> "ugh, who left the fridge door open again?" (anger).

Like every proposal these are candidates only (ranking.py rescores, re-parses and fits them).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from models.recommend.grammar import Edit, editable
from models.recommend.inflection import inflect_as, match_case
from models.recommend.modifiers import SCALE_FIT_FLOOR, reported
from models.recommend.rewrites import (
    Rewrite,
    RewriteContext,
    about_the_writer,
    addresses_the_reader,
    carries_affect,
    contradicts,
    current_emotion,
    declarative,
    negated,
)
from models.recommend.scales import (
    APOLOGY_ADVERBS,
    ASIDES,
    CHAT_MARKERS,
    CHAT_OPENERS,
    EXCLAIMED_SURPRISE,
    FEELING_CLAUSES,
    INTERJECTIONS,
    LAUGHTER,
    OPENING_INTERJECTIONS,
    SET_PHRASES,
    SPEECH_ACT_OPENINGS,
    TELLING_VERBS,
    TONE_VERBS,
)

# The sources of the rewrites made here (ranking.py counts them with the scales' tables).
IDIOM_SOURCES = frozenset(
    {
        "tone_verb",
        "apology",
        "set_phrase",
        "interjection",
        "exclamation",
        "chat_opener",
        "feeling_clause",
    }
)
_SUBJECTS = frozenset({"nsubj", "nsubjpass"})
# "Would you like to join us?" is an offer, not a liking: "Would you love to" is wrong.
_POLITE_MODALS = frozenset({"would", "could", "should", "'d", "might"})
_OBJECTS = frozenset({"dobj", "ccomp", "xcomp"})
_WRITER = frozenset({"i", "we"})


def idiom_rewrites(ctx: RewriteContext) -> list[Rewrite]:
    """Every rewrite of this module for the text's sentences."""
    out: list[Rewrite] = []
    more_of_the_same = current_emotion(ctx) == ctx.target
    for k, doc in enumerate(ctx.docs):

        def rewrite(edit: Edit, kind: str, source: str, **kw: Any) -> Rewrite:
            return _rewrite(ctx, k, doc, edit, kind, source, **kw)  # noqa: B023

        for token in doc:
            verb = TONE_VERBS.get(token.lemma_.lower())
            if verb is not None and verb.emotion == ctx.target and _tone_verb_fits(token, verb):
                for lemma in verb.stronger:
                    form = inflect_as(lemma, token.tag_)
                    if form is None:
                        continue
                    out.append(
                        rewrite(
                            _swap(token, form),
                            "word",
                            "tone_verb",
                            fit_floor=SCALE_FIT_FLOOR,
                            intensifies=more_of_the_same,
                        )
                    )
            adverbs = APOLOGY_ADVERBS.get(token.lemma_.lower(), ())
            if ctx.target == "sadness" and adverbs and _writer_apologises(token):
                end = token.idx + len(token.text)
                out.extend(
                    rewrite(
                        Edit(token.idx, end, f"{adverb} {token.text}"),
                        "phrase",
                        "apology",
                        inserts=True,
                        intensifies=more_of_the_same,
                    )
                    for adverb in adverbs
                )
            phrase = _set_phrase(token, ctx.target)
            if phrase is not None:
                out.append(
                    rewrite(
                        _swap(token, phrase),
                        "word",
                        "set_phrase",
                        fit_floor=SCALE_FIT_FLOOR,
                        parse_rule="word",
                    )
                )
        laughter = _opening_laughter(doc)
        if laughter is not None and ctx.target in INTERJECTIONS:
            out.append(
                rewrite(
                    _swap(laughter, INTERJECTIONS[ctx.target]),
                    "word",
                    "interjection",
                    fit_floor=SCALE_FIT_FLOOR,
                    parse_rule="word",
                )
            )
        if ctx.target == "surprise":
            for verb_token in _exclaimed_events(doc):
                end = verb_token.idx + len(verb_token.text)
                out.append(
                    rewrite(
                        Edit(verb_token.idx, end, f"{EXCLAIMED_SURPRISE} {verb_token.text}"),
                        "phrase",
                        "exclamation",
                        inserts=True,
                        intensifies=more_of_the_same,
                    )
                )
    out.extend(_chat_openers(ctx))
    out.extend(_feeling_clauses(ctx))
    return out


def _feeling_clauses(ctx: RewriteContext) -> list[Rewrite]:
    """The writer's feeling said after a plain statement of what happens to them ("My exam
    results come out on 15 August, and I'm nervous"): a sentence about "I" or "my ..." with
    no feeling word of its own (so also for more of the same: the feeling is unsaid), no
    second clause, and a tone the model does not read the other way."""
    if ctx.target not in FEELING_CLAUSES:
        return []
    if addresses_the_reader(ctx):
        return []  # a reply to someone ("I have reset your password, and I'm thrilled")
    out: list[Rewrite] = []
    for k, doc in enumerate(ctx.docs):
        if not declarative(doc) or carries_affect(ctx, doc):
            continue
        # Nerves go with good news too ("Today I start my new job, and I'm nervous").
        if ctx.target != "fear" and contradicts(ctx, k):
            continue
        root = next(t for t in doc if t.dep_ == "ROOT")
        if not root.tag_.startswith("VB") or negated(root):
            continue
        if ctx.target == "surprise" and root.tag_ != "VBD":
            continue  # disbelief is about what happened, not plans ("looking forward to")
        if not about_the_writer(root, ("my",)):
            continue
        if any(c.dep_ in ("cc", "conj") for c in root.children):
            continue  # "..., and it looked so much smaller, and I'm sad"
        words = [t for t in doc if not t.is_punct and not t.is_space]
        last = words[-1]
        tail = doc.text[last.idx + len(last.text) :].strip()
        if tail not in ("", ".", "!") or not last.is_alpha:
            continue
        end = last.idx + len(last.text)
        out.extend(
            _rewrite(
                ctx,
                k,
                doc,
                Edit(last.idx, end, f"{last.text}, and {feeling}"),
                "phrase",
                "feeling_clause",
                inserts=True,
                parse_rule="clause",
            )
            for feeling in FEELING_CLAUSES[ctx.target]
        )
    return out


def _chat_openers(ctx: RewriteContext) -> list[Rewrite]:
    """The target's interjection before the first word of a chat message (after any
    @mentions) that opens with no interjection, greeting or request, and whose tone the
    interjection does not contradict. Never for more of the same feeling or on an aside."""
    if not ctx.docs or not _chat_message(ctx.text, ctx.docs[0]):
        return []
    if current_emotion(ctx) == ctx.target:
        # "yay, just got the job!!! 🎉🎉" adds little to a message that already says it
        # (read as weak three times, blind, session 9).
        return []
    if any(t.lower_ in ASIDES for t in ctx.docs[0]):
        return []  # "omg, the meeting got moved to 3pm btw": an aside is not news
    doc = ctx.docs[0]
    words = [t for t in doc if not t.is_space and not t.is_punct]
    first = next((t for t in words if not t.text.startswith("@")), None)
    if first is None or first.i + 2 >= len(doc) or not first.is_alpha:
        return []
    opening = first.lower_
    if opening in OPENING_INTERJECTIONS or opening in LAUGHTER or first.pos_ == "INTJ":
        return []
    if opening in SPEECH_ACT_OPENINGS or (first.tag_ == "VB" and first.dep_ == "ROOT"):
        return []  # "yay, check out the pics", "wow, thanks for the help"
    if doc.text.rstrip().endswith("?") and any(
        t.dep_ == "nsubj" and t.lower_ in ("you", "u") for t in doc
    ):
        return []  # a question to the reader asks for news: "omg, did u hear back yet?"
    if not _opener_agrees(ctx):
        return []
    capital = first.text[:1].isupper()
    word = first.text
    if capital and first.text != "I" and first.tag_ not in ("NNP", "NNPS"):
        word = word[:1].lower() + word[1:]
    end = first.idx + len(first.text)
    return [
        _rewrite(
            ctx,
            0,
            doc,
            Edit(first.idx, end, f"{opener.capitalize() if capital else opener}, {word}"),
            "phrase",
            "chat_opener",
            inserts=True,
            parse_rule="opener",
        )
        for opener in CHAT_OPENERS.get(ctx.target, ())
    ]


def _rewrite(
    ctx: RewriteContext, k: int, doc: Any, edit: Edit, kind: str, source: str, **kw: Any
) -> Rewrite:
    """A rewrite of sentence `k` from this module's tables (support 1, like the scales')."""
    return Rewrite(k, doc, edit, ctx.occlusion.segments[k][0], kind, {source}, 1.0, **kw)


def _chat_message(text: str, doc: Any) -> bool:
    """A text message rather than edited prose: it opens in lower case, or has emoji or chat
    spellings ("lol", "tbh", "u")."""
    if any(ord(c) >= 0x2190 and unicodedata.category(c) == "So" for c in text):
        return True
    if any(t.lower_ in CHAT_MARKERS for t in doc):
        return True
    first = next((t for t in doc if t.is_alpha), None)
    return first is not None and first.i == 0 and first.text[:1].islower()


def _opener_agrees(ctx: RewriteContext) -> bool:
    """The message's own tone, by the model, does not run against the interjection: "yay"
    only on good news, "ugh", "eek" or "sigh" not on good news; "wow" or "omg" on any."""
    probabilities = ctx.score.sentiment.probabilities
    lean = probabilities.get("positive", 0.0) - probabilities.get("negative", 0.0)
    if ctx.target == "joy":
        return lean > 0.3
    if ctx.target == "surprise":
        return True
    return lean < 0.3


def _swap(token: Any, word: str) -> Edit:
    return Edit(token.idx, token.idx + len(token.text), match_case(token.text, word))


def _tone_verb_fits(token: Any, verb: Any) -> bool:
    """The verb says what its own subject feels or does (no imperative, offer, negation or
    someone else's reported words), with what the stronger verb needs after it."""
    if not token.tag_.startswith("VB") or negated(token) or reported(token):
        return False
    children = list(token.children)
    if not any(c.dep_ in _SUBJECTS for c in children):
        return False  # "Enjoy your meal" -> "Love your meal" is no longer a wish
    if any(c.dep_ == "aux" and c.lower_ in _POLITE_MODALS for c in children):
        return False
    if verb.needs == "object":
        return any(c.dep_ in _OBJECTS for c in children)
    if verb.needs == "measure":
        return any(
            c.i > token.i
            and c.dep_ in ("npadvmod", "dobj", "prep")
            and any(t.like_num for t in c.subtree)
            for c in children
        )
    return True


def _writer_apologises(token: Any) -> bool:
    """ "We apologise", "I apologize": the writer's own apology, not yet graded."""
    if token.tag_ not in ("VBP", "VB") or negated(token):
        return False
    subject = next((c for c in token.children if c.dep_ == "nsubj"), None)
    if subject is None or subject.lower_ not in _WRITER:
        return False
    return not any(c.dep_ == "advmod" for c in token.lefts)


def _set_phrase(token: Any, target: str) -> str | None:
    """The target's word for a set phrase's feeling word ("tired of" -> "sick of")."""
    if token.tag_ != "JJ" or negated(token) or not editable(token.doc, token):
        return None
    for (word, complement), by_target in SET_PHRASES.items():
        if token.lower_ != word or target not in by_target:
            continue
        if complement == "to":
            verb = next((c for c in token.children if c.dep_ == "xcomp"), None)
            if verb is None or verb.lemma_.lower() not in TELLING_VERBS:
                continue
        elif not any(c.dep_ == "prep" and c.lower_ == complement for c in token.children):
            continue
        return by_target[target]
    return None


def _opening_laughter(doc: Any) -> Any | None:
    """ "lol" or "haha" as the first word of a message, followed by more words."""
    words = [t for t in doc if not t.is_space]
    if len(words) < 3 or words[0].lower_ not in LAUGHTER:
        return None
    return words[0]


def _exclaimed_events(doc: Any) -> list[Any]:
    """Past-tense verbs of the writer's own clauses in a sentence that ends with "!" ("I got
    the job!", "and I passed!!"), with no auxiliary, negation or adverb before them."""
    if not doc.text.rstrip().endswith("!"):
        return []
    found = []
    for token in doc:
        # Not `editable`: the verb stays as it is ("got" is never edited, but may be graded).
        if token.tag_ != "VBD" or token.dep_ not in ("ROOT", "conj") or not token.is_alpha:
            continue
        subject = next((c for c in token.lefts if c.dep_ == "nsubj"), None)
        if subject is None or subject.lower_ not in _WRITER:
            continue
        if any(c.dep_ in ("aux", "auxpass", "neg", "advmod") for c in token.lefts):
            continue
        found.append(token)
    return found
