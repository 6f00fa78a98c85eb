"""Rewrites from the hand-made scales (scales.py): edits inside the sentence where the tone
is carried by a feeling, an opinion or the degree of a property.

- a feeling swapped along its scale or for the target's, keeping its complement:
  "I was a bit annoyed by the delay" -> "I was infuriated by the delay" (anger, more of it),
  "I'm not happy with the service" -> "I'm angry with the service" (anger);
- an opinion strengthened toward the target: "decent pastries" -> "delicious pastries";
- a degree adverb that carries the target put in front of a property, or put in place of
  a plain degree word: "the trail is narrow" -> "dangerously narrow" (fear), "the wifi is
  pretty slow" -> "painfully slow" (sadness), "how quiet" -> "how remarkably quiet";
- more of the emotion the text already carries where the scales have no stronger word: a
  degree adverb before a word at the top of its scale ("utterly heartbroken"), "far" before
  a comparative ("far scarier than"), "by far" before a superlative, "completely" before an
  absolute word, "really" in place of a hedge ("kinda nervous" -> "really nervous"), a
  surprise adverb inside an exclamative "how" ("how incredibly quickly"), and for joy
  "Thanks" -> "Thanks so much".

Like every proposal these are candidates only (ranking.py rescores, re-parses and fits them).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from models.recommend.grammar import Edit, editable
from models.recommend.inflection import match_case
from models.recommend.rewrites import (
    REPORTING,
    Rewrite,
    RewriteContext,
    current_emotion,
    holder_is_sentient,
    negated,
)
from models.recommend.scales import (
    EXCLAMATIVE_ADVERBS,
    FEELING_BY_WORD,
    FEELING_HEDGES,
    FEELINGS,
    HEDGE_STRENGTHENER,
    OPINION_BY_WORD,
    REPLACEABLE_DEGREE,
    SUPERLATIVES,
    Feeling,
    Opinion,
    comparative_leans_to,
    degree_adverbs,
    extreme_adverbs,
    feelings_toward,
    opinions_toward,
)

# The sources of the rewrites made here, from the hand-made tables of scales.py.
TABLE_SOURCES = frozenset(
    {
        "feeling_scale",
        "opinion_scale",
        "degree_adverb",
        "intensifier",
        "hedge",
        "thanks",
        "superlative",
    }
)
_SUBJECTS = ("nsubj", "nsubjpass")
# Context-fit floor of a swap along a scale. The scale already chose a word of the same
# role and part of speech, and such swaps fit less by design ("decent" -> "delicious" 0.38,
# "worried" -> "amazed" 0.43 in fit_study.py); the floor only rules out the worst slots
# (nonsense there spans 0.19-0.49, the lowest third of it below 0.35).
SCALE_FIT_FLOOR = 0.35
_FEELING_TAGS = frozenset({"JJ", "VBN"})
# Where a feeling word says how someone feels: "I'm worried", "they are frustrated by".
_FEELING_DEPS = frozenset({"acomp", "oprd", "ROOT", "conj", "xcomp", "ccomp"})
# Predicative adjectives only: "the trail is dangerously narrow", but "our surprisingly
# small workshop" reads as a remark about the workshop, not the writer's tone.
_ADJECTIVE_DEPS = frozenset({"acomp", "conj", "oprd", "ROOT"})


def scale_rewrites(ctx: RewriteContext) -> list[Rewrite]:
    """Feeling and opinion swaps along the scales, over every sentence of the text."""
    out: list[Rewrite] = []
    for k, doc in enumerate(ctx.docs):
        offset = ctx.occlusion.segments[k][0]
        for token in doc:
            if not editable(doc, token):
                continue
            word = token.lower_
            if word in FEELING_BY_WORD and token.tag_ in _FEELING_TAGS:
                out.extend(_feeling_swaps(ctx, k, doc, offset, token))
            elif word in OPINION_BY_WORD and token.tag_ == "JJ" and not negated(token):
                out.extend(_opinion_swaps(ctx, k, doc, offset, token))
    return out


def degree_rewrites(ctx: RewriteContext) -> list[Rewrite]:
    """A degree adverb carrying the target in front of a property adjective."""
    out: list[Rewrite] = []
    for k, doc in enumerate(ctx.docs):
        offset = ctx.occlusion.segments[k][0]
        for token in doc:
            adverbs = degree_adverbs(token.lower_, ctx.target)
            if (
                not adverbs
                or token.tag_ != "JJ"
                or token.dep_ not in _ADJECTIVE_DEPS
                or not editable(doc, token)
                or negated(token)
                or _measured(token)
                or not _has_subject(token)
                or any(c.lower_ == "enough" for c in token.rights)  # "beautifully clean enough"
            ):
                continue
            start = _replaceable_degree_start(doc, token)
            if start is None:
                if any(c.dep_ == "advmod" and c.tag_ != "WRB" for c in token.lefts):
                    continue  # "so slow", "too quiet": already graded by the writer
                start = token.idx
            end = token.idx + len(token.text)
            for adverb in adverbs:
                out.append(
                    Rewrite(
                        k,
                        doc,
                        Edit(start, end, f"{adverb} {token.text}"),
                        offset,
                        "phrase",
                        {"degree_adverb"},
                        inserts=True,
                        parse_rule="modifier",
                    )
                )
    return out


# Where a word at the top of its scale says how someone feels or what something is like:
# "Fans were heartbroken", "I feel awful about it". Not before a noun, where "a" would have
# to become "an" ("an absolutely terrifying ride").
_EXTREME_DEPS = _ADJECTIVE_DEPS | _FEELING_DEPS


def intensifier_rewrites(ctx: RewriteContext) -> list[Rewrite]:
    """More of the emotion a word carries where no stronger word replaces the writer's:
    "utterly heartbroken", "completely useless", "far scarier than", "by far the best",
    "kinda nervous" -> "really nervous", and for surprise "how quickly" -> "how incredibly
    quickly". Only a hedge needs the text to carry the target already; the others must
    raise P(target) unless it does (ranking.Recommender._gains)."""
    out: list[Rewrite] = []
    more_of_the_same = current_emotion(ctx) == ctx.target
    for k, doc in enumerate(ctx.docs):
        offset = ctx.occlusion.segments[k][0]
        for token in doc:
            if not editable(doc, token) or negated(token):
                continue
            word = token.lower_
            end = token.idx + len(token.text)
            hedge = _hedge_start(doc, token)
            inserted: list[str] = []
            if token.tag_ == "JJR" and comparative_leans_to(word, ctx.target):
                inserted = ["far"]  # "much scarier" is graded already: _graded skips it
            elif token.tag_ in _FEELING_TAGS and token.dep_ in _EXTREME_DEPS and hedge is None:
                inserted = list(extreme_adverbs(word, ctx.target))
            elif (
                ctx.target == "surprise"
                and token.tag_ == "RB"
                and word in EXCLAMATIVE_ADVERBS
                and any(c.lower_ == "how" for c in token.lefts)
            ):
                inserted = ["incredibly"]  # "how surprisingly quickly" says it twice
            if inserted and not _graded(token):
                out.extend(
                    Rewrite(
                        k,
                        doc,
                        Edit(token.idx, end, f"{adverb} {token.text}"),
                        offset,
                        "phrase",
                        {"intensifier"},
                        inserts=True,
                        parse_rule="modifier",
                        intensifies=more_of_the_same,
                    )
                    for adverb in inserted
                )
            if token.tag_ == "JJS" and ctx.target in SUPERLATIVES.get(word, ()):
                out.extend(_superlative(ctx, k, doc, token, more_of_the_same))
            if (
                more_of_the_same
                and hedge is not None
                and _leans_to(word, ctx.target)
                and not _has_top_word(ctx.target, token)
            ):
                out.append(
                    Rewrite(
                        k,
                        doc,
                        Edit(hedge, end, f"{HEDGE_STRENGTHENER} {token.text}"),
                        offset,
                        "phrase",
                        {"hedge"},
                        parse_rule="modifier",
                        intensifies=True,
                    )
                )
    return out


# Thanks that a writer who wants more warmth makes fuller: "Thanks" -> "Thanks so much".
_THANKS = (("thanks",), ("thank", "you"))
_ALREADY_FULL = frozenset({"so", "very", "a", "again", "much", "ever"})


def thanks_rewrites(ctx: RewriteContext) -> list[Rewrite]:
    """For joy, "Thanks for your patience" -> "Thanks so much for your patience". The
    thanks must open its sentence, and not be full already ("Thanks a lot", "Thank you so
    much")."""
    if ctx.target != "joy":
        return []
    out: list[Rewrite] = []
    more_of_the_same = current_emotion(ctx) == "joy"
    for k, doc in enumerate(ctx.docs):
        words = [t for t in doc if not t.is_punct and not t.is_space]
        for key in _THANKS:
            head = words[: len(key)]
            if len(head) < len(key) or tuple(t.lower_ for t in head) != key:
                continue
            after = words[len(key)] if len(words) > len(key) else None
            if after is not None and after.lower_ in _ALREADY_FULL:
                continue
            end = head[-1].idx + len(head[-1].text)
            span = doc.text[head[0].idx : end]
            out.append(
                Rewrite(
                    k,
                    doc,
                    Edit(head[0].idx, end, f"{span} so much"),
                    ctx.occlusion.segments[k][0],
                    "phrase",
                    {"thanks"},
                    inserts=True,
                    parse_rule="extension",
                    intensifies=more_of_the_same,
                )
            )
    return out


def _superlative(
    ctx: RewriteContext, k: int, doc: Any, token: Any, more_of_the_same: bool
) -> list[Rewrite]:
    """ "the worst film" -> "by far the worst film": "by far" goes before the article, which
    stays as it is. Not where the writer graded it already ("easily the worst")."""
    article = doc[token.i - 1] if token.i > 0 else None
    if article is None or article.lower_ != "the" or article.head.i not in (token.i, token.head.i):
        return []
    if article.i > 0 and doc[article.i - 1].dep_ == "advmod":
        return []
    end = article.idx + len(article.text)
    return [
        Rewrite(
            k,
            doc,
            Edit(article.idx, end, f"by far {article.text}"),
            ctx.occlusion.segments[k][0],
            "phrase",
            {"superlative"},
            inserts=True,
            parse_rule="extension",
            intensifies=more_of_the_same,
        )
    ]


def _has_top_word(target: str, token: Any) -> bool:
    """Does the feeling scale offer a top-strength word with the same complement? Then that
    word replaces the hedge ("a bit annoyed by" -> "infuriated by"), not "really"."""
    feeling = FEELING_BY_WORD.get(token.lower_)
    if feeling is None:
        return False
    complement = _complement(token)
    return any(
        f.intensity == 3 and complement in f.complements
        for f in feelings_toward(target, feeling, intensify=True)
    )


def _leans_to(word: str, target: str) -> bool:
    """A feeling, an opinion or an extreme word that carries `target` by the scales."""
    if word in FEELING_BY_WORD:
        return FEELING_BY_WORD[word].emotion == target
    if word in OPINION_BY_WORD:
        return OPINION_BY_WORD[word].emotion == target
    return bool(extreme_adverbs(word, target))


def _graded(token: Any) -> bool:
    """Has the writer graded the word already ("so angry", "much scarier", "very bright")?
    An exclamative "how" does not count: it leaves room for "how incredibly quickly"."""
    return any(c.dep_ in ("advmod", "npadvmod") and c.tag_ != "WRB" for c in token.lefts)


def _feeling_swaps(ctx: RewriteContext, k: int, doc: Any, offset: int, token: Any) -> list[Rewrite]:
    feeling = FEELING_BY_WORD[token.lower_]
    complement = _complement(token)
    end = token.idx + len(token.text)
    before = doc[token.i - 1] if token.i > 0 else None
    if before is not None and before.dep_ == "neg" and before.lower_ == "not":
        # "not happy" -> "angry": the negation goes with the word it negates.
        if feeling.emotion != "joy" or ctx.target not in ("anger", "sadness"):
            return []
        pool = feelings_toward(ctx.target, feeling, intensify=False)
        pool += [f for f in _mild(ctx.target) if f not in pool]
        start = before.idx
        kind = "phrase"
        intensify = False
    elif negated(token):
        return []
    else:
        intensify = feeling.emotion == ctx.target
        pool = feelings_toward(ctx.target, feeling, intensify=intensify)
        start = token.idx
        kind = "word"
    if token.dep_ == "amod":
        if not _names_person(ctx, token.head):
            return []  # "happy birthday" is a wish, not a person's feeling
    elif token.dep_ not in _FEELING_DEPS or holder_is_sentient(ctx.resources, token) is not True:
        return []  # only a person's feeling is swapped for another feeling
    if feeling.word == "afraid" and complement == "that":
        return []  # "I'm afraid we can't ..." is politeness, not fear
    if reported(token):
        return []  # "Residents say they are frustrated": what they said is a fact
    if complement == "to" and not intensify and not _finding_out(token):
        # Another feeling before an infinitive reads right only about finding out ("happy
        # to see" -> "sad to see"): "We're amazed to tell you", "I'm scared to use it" ->
        # "angry to use it" (held-out reading) are nonsense.
        return []
    pool = [
        f for f in pool if complement in f.complements and (f.attributive or token.dep_ != "amod")
    ]
    out = [
        Rewrite(
            k,
            doc,
            Edit(start, end, match_case(doc.text[start:end].split()[0], f.word)),
            offset,
            kind,
            {"feeling_scale"},
            1.0,
            fit_floor=SCALE_FIT_FLOOR,
            parse_rule="tags",
            intensifies=intensify,
        )
        for f in pool
    ]
    manner = _manner_start(doc, token)
    if manner is not None and kind == "word":
        # "pleasantly surprised" -> "amazed": the manner goes with the word it qualified.
        out = [_widened(r, manner) for r in out]
    hedge = _hedge_start(doc, token)
    if hedge is not None and kind == "word":
        # "a bit annoyed" -> "infuriated": the hedge goes with the stronger word.
        out = [
            _widened(r, hedge)
            for r in out
            if FEELING_BY_WORD[r.replacement].intensity >= (3 if intensify else 2)
        ]
        # Keeping the hedge before a stronger word ("a bit furious") reads wrong; dropping it
        # for a word one step up ("kinda nervous" -> "worried") barely strengthens anything.
    return out


# Infinitives after a feeling of surprise that say how the writer found out.
_LEARNING_VERBS = frozenset({"see", "find", "hear", "learn", "discover", "read", "notice", "get"})


def _finding_out(token: Any) -> bool:
    """ "shocked to see", "surprised to find": the infinitive is how they found out."""
    verb = next((c for c in token.children if c.dep_ == "xcomp"), None)
    return verb is not None and verb.lemma_.lower() in _LEARNING_VERBS


def reported(token: Any) -> bool:
    """Is the feeling inside someone else's reported words ("Residents say they are ...")?"""
    clause = token.head if token.dep_ in ("acomp", "oprd", "amod") else token
    while clause.dep_ in ("conj", "xcomp"):
        clause = clause.head
    if clause.dep_ != "ccomp":
        return False
    speaker = next((c for c in clause.head.children if c.dep_ == "nsubj"), None)
    return clause.head.lemma_.lower() in REPORTING and (
        speaker is None or speaker.lower_ not in ("i", "we")
    )


def _widened(rewrite: Rewrite, start: int) -> Rewrite:
    """The same swap taking in the words before it from `start` ("a bit annoyed" ->
    "infuriated"): a phrase edit."""
    edit = Edit(start, rewrite.edit.end, rewrite.replacement)
    return replace(rewrite, edit=edit, kind="phrase")


def _mild(target: str) -> list[Feeling]:
    return [f for f in FEELINGS if f.emotion == target and f.intensity == 1]


def _opinion_swaps(ctx: RewriteContext, k: int, doc: Any, offset: int, token: Any) -> list[Rewrite]:
    opinion: Opinion = OPINION_BY_WORD[token.lower_]
    head_noun = _described_noun(token)
    pool = opinions_toward(ctx.target, opinion, head_noun=head_noun)
    article = doc[token.i - 1].lower_ if token.i > 0 else ""
    if article in ("a", "an"):
        # Keep the article right: "a decent choice" -> "a great choice", never "a excellent".
        pool = [o for o in pool if (o.word[0] in "aeiou") == (article == "an")]
    end = token.idx + len(token.text)
    # Every word of the pool is stronger; it intensifies when the opinion already leans to
    # the target ("decent" -> "excellent" for joy).
    same_feeling = opinion.emotion == ctx.target or (ctx.target == "joy" and opinion.polarity > 0)
    out = [
        Rewrite(
            k,
            doc,
            Edit(token.idx, end, match_case(token.text, o.word)),
            offset,
            "word",
            {"opinion_scale"},
            1.0,
            fit_floor=SCALE_FIT_FLOOR,
            parse_rule="tags",
            intensifies=same_feeling,
        )
        for o in pool
    ]
    start = _replaceable_degree_start(doc, token)
    if start is not None:
        # "pretty good" -> "excellent": a plain degree word goes with the stronger word.
        out = [_widened(r, start) for r in out] + out
    return out


def _complement(token: Any) -> str:
    """What follows a feeling word as its complement: a preposition ("of", "by", "with"),
    "to" (an infinitive), "that" (a clause) or "" (nothing)."""
    for child in token.rights:
        if child.dep_ in ("prep", "agent"):
            return child.lower_
        if child.dep_ == "xcomp" and any(c.lower_ == "to" for c in child.lefts):
            return "to"
        if child.dep_ in ("ccomp", "advcl") and any(c.dep_ == "mark" for c in child.lefts):
            mark = next(c for c in child.lefts if c.dep_ == "mark")
            return "that" if mark.lower_ == "that" else mark.lower_
        if child.dep_ == "ccomp":
            return "that"
    return ""


# Degree words before a feeling that stay with a stronger one ("so angry" -> "so furious").
_DEGREE = frozenset(["really", "truly", "so", "very", "totally", "completely", "absolutely"])


def _manner_start(doc: Any, token: Any) -> int | None:
    """Where a manner adverb right before a feeling starts ("pleasantly surprised")."""
    if token.i == 0:
        return None
    before = doc[token.i - 1]
    if before.dep_ == "advmod" and before.head.i == token.i and before.lower_.endswith("ly"):
        return None if before.lower_ in _DEGREE else int(before.idx)
    return None


def _names_person(ctx: RewriteContext, noun: Any) -> bool:
    """A noun for people ("customer", "residents"), by its first WordNet sense."""
    if noun.tag_ not in ("NN", "NNS"):
        return False
    senses = ctx.resources.wordnet.synsets(noun.lemma_.lower(), pos="n")
    return bool(senses) and senses[0].lexname() in ("noun.person", "noun.group")


def _hedge_start(doc: Any, token: Any) -> int | None:
    """Where a hedge right before `token` starts ("a bit", "kinda", "a little")."""
    for child in token.lefts:
        if child.right_edge.i != token.i - 1:
            continue
        span = doc[child.left_edge.i : child.right_edge.i + 1]
        if span.text.lower() in FEELING_HEDGES:
            return int(span.start_char)
    return None


def _replaceable_degree_start(doc: Any, token: Any) -> int | None:
    """Where a plain degree word right before `token` starts ("pretty", "a bit", "very")."""
    for child in token.lefts:
        if child.dep_ not in ("advmod", "npadvmod") or child.right_edge.i != token.i - 1:
            continue
        span = doc[child.left_edge.i : child.right_edge.i + 1]
        if span.text.lower() in REPLACEABLE_DEGREE:
            return int(span.start_char)
    return None


def _has_subject(token: Any) -> bool:
    """The property is said of something named: "the soup was cold", not "I'm so tired of
    being cold" ("being annoyingly cold" read as nonsense, held-out reading)."""
    verb = token.head if token.dep_ in ("acomp", "oprd") else token
    return token.dep_ == "conj" or any(c.dep_ in _SUBJECTS for c in verb.children)


def _measured(token: Any) -> bool:
    """A property given a measure ("two days late", "paper thin", "ten metres deep"); a
    hedge the small model reads the same way ("a little slow") is no measure."""
    doc = token.doc
    return any(
        c.dep_ in ("npadvmod", "nummod")
        and doc[c.left_edge.i : c.right_edge.i + 1].text.lower() not in REPLACEABLE_DEGREE
        for c in token.lefts
    )


def _described_noun(token: Any) -> str | None:
    if token.dep_ == "amod":
        return str(token.head.lower_)
    verb = token.head
    subject = next((c for c in verb.children if c.dep_ in _SUBJECTS), None)
    return str(subject.lower_) if subject is not None else None
