"""`Recommender`: attribution and rewrites toward a target emotion that a writer could keep.

For a batch of texts (with their `TextScore`s from the same model), in four batched steps
however many texts and candidates there are:

1. Call 1, occlusion (attribution.py): which words carry the text's emotions. With the
   parse of each sentence (grammar.py) it picks the positions: editable words (content
   words with a tag we can keep; never determiners, numbers, pronouns, auxiliaries,
   prepositions, proper nouns, entities, URLs, @mentions, #hashtags, or words under a
   negation) that carry affect (the model, the lexicon or VADER see an emotion in them).
   A noun that carries no emotion is not a slot for an emotion word.
2. Rewrites of three kinds (rewrites.py): a word swap keeping the word's fine-grained tag
   (WordNet, GloVe, lexicon and VADER neighbours, inflected into the slot: candidates.py);
   a modifier edit ("a bit tired" -> "exhausted", "happy" -> "really happy" when the target
   is already the text's emotion); a sentence adverb carrying the target ("Sadly, ...").
3. Call 2, rescoring: every rewritten sentence through Valence's network gives the new
   whole-text P(target); a rewrite must raise it by `min_gain`.
4. Checks on the best-gaining `parse_checks` rewrites of each text: the rewrite is parsed
   again and must keep the sentence's structure (grammar.structure_kept); then call 3, the
   context fit (context_fit.py) of each survivor: a word swap must fit its slot
   (`min_fit`), and no rewrite may disturb the rest of the sentence (`min_validation`).

A text with no rewrite that clears every bar gets no suggestion. Ranked by
gain + `support_weight` x support + `fit_weight` x fit, the gain in log-odds of the target
(capped), so intensifying an emotion the text already carries counts too; a sentence
adverb's gain weighs `adverb_weight`: it is one tool among several, not the product.

Runs on the model thread (it calls the network), never on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from models.base import Scorer, TextScore
from models.recommend.attribution import Attribution, Occlusion, attributions, occlude
from models.recommend.budget import Budget
from models.recommend.context_fit import ContextFit, Fit, Pair
from models.recommend.encoder import ModelAccess
from models.recommend.grammar import (
    Grammar,
    clause_kept,
    extension_kept,
    modifier_kept,
    opener_kept,
    structure_kept,
    tags_kept,
    word_kept,
)
from models.recommend.idioms import IDIOM_SOURCES, idiom_rewrites
from models.recommend.modifiers import (
    TABLE_SOURCES,
    degree_rewrites,
    intensifier_rewrites,
    scale_rewrites,
    thanks_rewrites,
)
from models.recommend.resources import Resources
from models.recommend.rewrites import Rewrite, RewriteContext, propose


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Replace text[start:end] (`original`) with `replacement`."""

    start: int
    end: int
    original: str
    replacement: str
    target: str
    kind: str  # word, phrase or sentence_adverb
    delta: float  # predicted change of P(target) for the whole text
    probability: float  # predicted P(target) after the rewrite
    similarity: float  # context fit (context_fit.py): span fit, or validation for insertions
    support: float  # lexicon + VADER evidence (model-free)
    sources: tuple[str, ...]
    score: float  # the ranking score

    def to_dict(self) -> dict[str, object]:
        return {
            "start": int(self.start),
            "end": int(self.end),
            "original": self.original,
            "replacement": self.replacement,
            "target": self.target,
            "kind": self.kind,
            "delta": round(float(self.delta), 4),
            "probability": round(float(self.probability), 4),
            "similarity": round(float(self.similarity), 4),
            "sources": list(self.sources),
        }

    def apply(self, text: str) -> str:
        return text[: self.start] + self.replacement + text[self.end :]


@dataclass
class Analysis:
    """What the recommender found for one text."""

    attributions: list[Attribution] = field(default_factory=list)
    suggestions: list[Suggestion] = field(default_factory=list)


@dataclass
class _Plan:
    index: int  # of the text in the batch
    text: str
    score: TextScore
    target: str
    occlusion: Occlusion
    rewrites: list[Rewrite]
    rows: list[int] = field(default_factory=list)  # row of each rewrite in call 2


@dataclass
class _Checked:
    plan: _Plan
    rewrite: Rewrite
    delta: float  # change of the whole text's P(target)
    logit_gain: float  # change of the whole text's log-odds of the target


def _current(score: TextScore) -> str:
    probabilities = score.emotion.probabilities
    return max(probabilities, key=lambda label: probabilities[label])


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p) - np.log1p(-p))


# Log-odds gains above this all rank alike: past it the text carries the target clearly.
_GAIN_CAP = 4.0


class Recommender:
    """Attribution and suggestions over a loaded `TransformerScorer` (see module docstring)."""

    def __init__(
        self,
        scorer: Scorer,
        resources: Resources,
        budget: Budget | None = None,
        grammar: Grammar | None = None,
        fit: ContextFit | None = None,
    ):
        self.access = ModelAccess(scorer)  # type: ignore[arg-type]
        self.scorer = scorer
        self.resources = resources
        self.budget = budget or Budget()
        self.grammar = grammar or Grammar.load()
        self.fit = fit or ContextFit.for_scorer(scorer)
        self.emotion_labels = self.access.emotion_labels
        self.sentiment_labels = self.access.sentiment_labels
        self._weights: dict[str, float] | None = None

    # --- public API -------------------------------------------------------------------------

    def suggest(
        self,
        texts: Sequence[str],
        scores: Sequence[TextScore] | None,
        targets: Sequence[str | None],
    ) -> list[list[Suggestion]]:
        """Ranked suggestions per text (empty where the target is None)."""
        return [a.suggestions for a in self.analyse(texts, scores, targets, attribution=False)]

    def attribute(
        self, texts: Sequence[str], scores: Sequence[TextScore] | None
    ) -> list[list[Attribution]]:
        """Attributions per text (one model call for all texts)."""
        none: list[str | None] = [None] * len(texts)
        return [a.attributions for a in self.analyse(texts, scores, none, attribution=True)]

    def analyse(
        self,
        texts: Sequence[str],
        scores: Sequence[TextScore] | None,
        targets: Sequence[str | None],
        *,
        attribution: bool,
    ) -> list[Analysis]:
        """Attributions (if asked) and suggestions (where a target is given), batched."""
        if len(targets) != len(texts):
            raise ValueError("one target (or None) per text")
        for target in targets:
            if target is not None and target not in self.emotion_labels:
                raise ValueError(f"unknown target emotion {target!r}")
        if scores is None:
            scores = self.scorer.score(texts)
        results = [Analysis() for _ in texts]
        wanted = [i for i, target in enumerate(targets) if attribution or target is not None]
        if not wanted:
            return results
        occlusions = occlude(
            self.access,
            [texts[i] for i in wanted],
            [scores[i] for i in wanted],
            max_words=self.budget.occlusion_words,
            prior=self._prior_weights(),
        )
        targeted: list[tuple[int, Occlusion]] = []
        for i, occlusion in zip(wanted, occlusions, strict=True):
            if attribution:
                results[i].attributions = attributions(
                    texts[i],
                    scores[i],
                    occlusion,
                    self.emotion_labels,
                    self.sentiment_labels,
                    top_k=self.budget.attribution_top_k,
                )
            if targets[i] is not None:
                targeted.append((i, occlusion))
        if not targeted:
            return results
        plans = self._plans(texts, scores, targets, targeted)
        checked = self._rescore(plans)
        for i, suggestions in self._finish(checked).items():
            results[i].suggestions = suggestions
        return results

    # --- steps ------------------------------------------------------------------------------

    def _prior_weights(self) -> dict[str, float]:
        if self._weights is None:
            self._weights = {
                w: float(np.max(np.abs(v))) for w, v in self.resources.lexicon.scores.items()
            }
        return self._weights

    def _plans(
        self,
        texts: Sequence[str],
        scores: Sequence[TextScore],
        targets: Sequence[str | None],
        targeted: list[tuple[int, Occlusion]],
    ) -> list[_Plan]:
        """Parse every sentence of the targeted texts at once; propose rewrites per text."""
        sentences: list[str] = []
        for i, occlusion in targeted:
            sentences.extend(texts[i][a:b] for a, b in occlusion.segments)
        docs = iter(self.grammar.parse(sentences))
        plans = []
        for i, occlusion in targeted:
            target = targets[i]
            assert target is not None
            context = RewriteContext(
                text=texts[i],
                score=scores[i],
                target=target,
                occlusion=occlusion,
                docs=[next(docs) for _ in occlusion.segments],
                emotion_labels=self.emotion_labels,
                resources=self.resources,
                budget=self.budget,
            )
            scaled = (
                intensifier_rewrites(context)
                + idiom_rewrites(context)
                + thanks_rewrites(context)
                + scale_rewrites(context)
                + degree_rewrites(context)
            )
            plans.append(_Plan(i, texts[i], scores[i], target, occlusion, propose(context, scaled)))
        return plans

    def _rescore(self, plans: list[_Plan]) -> list[_Checked]:
        """Call 2: every rewritten sentence through the network; keep those that gain."""
        rows: list[str] = []
        for plan in plans:
            for rewrite in plan.rewrites:
                plan.rows.append(len(rows))
                rows.append(rewrite.sentence_after)
        forward = self.access.forward(rows)
        kept: list[_Checked] = []
        for plan in plans:
            t = self.emotion_labels.index(plan.target)
            seg = plan.occlusion.segment_forward
            assert seg is not None
            gains = []
            for rewrite, row in zip(plan.rewrites, plan.rows, strict=True):
                weight = plan.occlusion.segment_weight[rewrite.segment]
                before = float(seg.emotion[rewrite.segment, t])
                after = float(forward.emotion[row, t])
                delta = weight * (after - before)
                logit_gain = weight * (_logit(after) - _logit(before))
                if self._gains(plan, rewrite, before, after, delta, logit_gain):
                    gains.append(_Checked(plan, rewrite, delta, logit_gain))
            gains.sort(key=lambda c: -self._prelim(c))
            kept.extend(_parse_check_picks(gains, self.budget.parse_checks))
        return kept

    def _gains(
        self,
        plan: _Plan,
        rewrite: Rewrite,
        before: float,
        after: float,
        delta: float,
        logit_gain: float,
    ) -> bool:
        """Does the rewrite move the text toward the target enough to be worth suggesting?

        When the text already carries the target almost surely (P >= `saturated`), the model
        cannot show a rise any more: an intensification then only has to not lower it (its
        candidates were chosen as stronger by VADER and the lexicon, rewrites.py). A stronger
        word from the hand-made scales (`Rewrite.intensifies`) near saturation need only keep
        P(target) above `min_intensified`: there the scale ranks intensity, the model cannot."""
        budget = self.budget
        current = _current(plan.score) == plan.target
        if rewrite.intensifies and current and before >= budget.min_intensified:
            return after >= budget.min_intensified
        if before >= budget.saturated and current:
            # Past saturation the model cannot tell "angry" from "furious" (both P ~ 1):
            # float noise must not decide, only a real drop may.
            return delta >= -budget.saturation_slack
        return delta >= budget.min_gain and logit_gain >= budget.min_logit_gain

    def _prelim(self, checked: _Checked) -> float:
        weight = _weight(self.budget, checked.rewrite)
        gain = min(checked.logit_gain, _GAIN_CAP) / _GAIN_CAP
        return weight * gain + self.budget.support_weight * checked.rewrite.support

    def _finish(self, checked: list[_Checked]) -> dict[int, list[Suggestion]]:
        """Re-parse, then call 3 (context fit), then rank; per text index."""
        budget = self.budget
        parsed = self.grammar.parse([c.rewrite.sentence_after for c in checked])
        grammatical = [
            c
            for c, doc in zip(checked, parsed, strict=True)
            if _PARSE_RULES[c.rewrite.parse_rule](c.rewrite.doc, doc, c.rewrite.edit)
        ]
        fits = self.fit.scores([_pair(c.rewrite) for c in grammatical])
        out: dict[int, list[Suggestion]] = {}
        stronger: set[int] = set()
        for c, fit in zip(grammatical, fits, strict=True):
            if fit.validation < budget.min_validation:
                continue
            floor = budget.min_fit if c.rewrite.fit_floor is None else c.rewrite.fit_floor
            if not c.rewrite.inserts and fit.span < floor:
                continue
            suggestion = self._suggestion(c, fit)
            if c.rewrite.intensifies and c.rewrite.kind != "sentence_adverb":
                stronger.add(id(suggestion))
            out.setdefault(c.plan.index, []).append(suggestion)
        for suggestions in out.values():
            # More of the same from the writer's own words ("completely useless") comes before
            # a stance adverb or chat interjection that only restates the emotion
            # ("Annoyingly, ... useless", "eek, I'm really nervous");
            # otherwise the score decides.
            demote = any(id(s) in stronger for s in suggestions)
            suggestions.sort(
                key=lambda s: (
                    demote and (s.kind == "sentence_adverb" or "chat_opener" in s.sources),
                    -s.score,
                    s.start,
                    s.replacement,
                )
            )
            _drop_overlapping_duplicates(suggestions)
            del suggestions[budget.max_suggestions :]
        return out

    def _suggestion(self, c: _Checked, fit: Fit) -> Suggestion:
        budget = self.budget
        rewrite = c.rewrite
        similarity = fit.validation if rewrite.inserts else fit.span
        weight = _weight(budget, rewrite)
        base = c.plan.score.emotion.probabilities[c.plan.target]
        return Suggestion(
            start=rewrite.start,
            end=rewrite.end,
            original=c.plan.text[rewrite.start : rewrite.end],
            replacement=rewrite.replacement,
            target=c.plan.target,
            kind=rewrite.kind,
            delta=c.delta,
            probability=min(1.0, max(0.0, base + c.delta)),
            similarity=similarity,
            support=rewrite.support,
            sources=tuple(sorted(rewrite.sources)),
            score=weight * min(c.logit_gain, _GAIN_CAP) / _GAIN_CAP
            + budget.support_weight * rewrite.support
            + budget.fit_weight * similarity,
        )


# The sources of rewrites from the hand-made tables (scales.py, via modifiers and idioms).
_HAND_MADE = TABLE_SOURCES | IDIOM_SOURCES


def _parse_check_picks(gains: list[_Checked], limit: int) -> list[_Checked]:
    """The rewrites parsed again, best `_prelim` first: up to half of them from the
    hand-made tables (modifiers.TABLE_SOURCES), the rest whatever gains most. Word swaps from
    the lexicon carry more model-free support (up to ~2 against the tables' 1) and, with
    gains capped, would otherwise fill every slot ("I feel so angry" toward joy: ten swaps
    such as "so brave", none of the scale's "so delighted")."""
    tables = [c for c in gains if c.rewrite.sources & _HAND_MADE][: limit // 2]
    picked = {id(c) for c in tables}
    for c in gains:
        if len(picked) >= limit:
            break
        picked.add(id(c))
    return [c for c in gains if id(c) in picked]


# How a rewrite's re-parse is checked (Rewrite.parse_rule; grammar.py has each rule).
_PARSE_RULES = {
    "structure": structure_kept,
    "tags": tags_kept,
    "modifier": modifier_kept,
    "extension": extension_kept,
    "word": word_kept,
    "opener": opener_kept,
    "clause": clause_kept,
}


def _weight(budget: Budget, rewrite: Rewrite) -> float:
    """How much a rewrite's gain counts in the ranking: an inserted stance adverb is a
    generic tool, so an edit of the writer's own words wins when both move the text."""
    if rewrite.kind == "sentence_adverb":
        return budget.adverb_weight
    return budget.inserted_adverb_weight if rewrite.inserts else 1.0


def _pair(rewrite: Rewrite) -> Pair:
    edit = rewrite.edit
    return Pair(
        before=rewrite.doc.text,
        after=rewrite.sentence_after,
        span_before=(edit.start, edit.end),
        span_after=(edit.start, edit.start + len(edit.replacement)),
    )


def _drop_overlapping_duplicates(suggestions: list[Suggestion]) -> None:
    """One suggestion per resulting text (a phrase edit and a swap can produce the same)."""
    seen: set[tuple[int, int, str]] = set()
    keep = []
    for s in suggestions:
        key = (s.start, s.end, s.replacement.lower())
        if key not in seen:
            seen.add(key)
            keep.append(s)
    suggestions[:] = keep
