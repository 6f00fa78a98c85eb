"""`Recommender`: attribution and ranked rewrites toward a target emotion, for many texts in
at most three batched model calls, however many texts and candidates there are.

For a batch of texts (with their `TextScore`s from the same model):

1. Call 1, occlusion: every text's sentences and their one-word-out variants (attribution.py).
   It gives the attributions and says which words hold the text away from the target: words
   that carry the text's dominant other emotion, or whose removal raises the target's log-odds.
   Only words with affect of their own (model, lexicon or VADER) qualify. With
   `positions="lexicon"` and attribution off, the lexicon and VADER choose and call 1 is skipped.
2. Candidates (candidates.py) for the top `max_positions` words of each text, cut to the
   per-event `candidates` budget by their model-free prior, round-robin over the words.
3. Call 2, rescoring: every rewritten sentence of every text through Valence's network: the
   new whole-text P(target) (the sentence's change weighted by its share of the text's tokens).
4. Call 3, meaning: for the `meaning_checks` best-gaining rewrites per text that have
   model-free support, the cosine between the original and rewritten sentence under the
   meaning encoder (encoder.MeaningEncoder: all-MiniLM-L6-v2 untuned).
5. Kept: gain > 0, similarity >= `min_similarity`, and (by default) support > 0: the lexicon
   or VADER agree, so no suggestion rests on Valence's model alone. Ranked by
   gain + `support_weight` x support - `meaning_weight` x (1 - similarity).

Runs on the model thread (it calls the network), never on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from models.base import Scorer, TextScore
from models.recommend.attribution import Attribution, Occlusion, attributions, occlude
from models.recommend.budget import Budget
from models.recommend.candidates import Candidate, generate
from models.recommend.encoder import Forward, MeaningEncoder, ModelAccess
from models.recommend.inflection import analyse, words_with_spans
from models.recommend.resources import Resources


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Replace text[start:end] (`original`) with `replacement`."""

    start: int
    end: int
    original: str
    replacement: str
    target: str
    delta: float  # predicted change of P(target) for the whole text
    probability: float  # predicted P(target) after the rewrite
    similarity: float  # cosine of the sentence's embeddings, original vs rewrite
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
    text: str
    score: TextScore
    target: str
    occlusion: Occlusion
    candidates: list[Candidate]
    rows: list[int]  # row of each candidate in call 2
    segment_of: list[int]


class Recommender:
    """Attribution and suggestions over a loaded `TransformerScorer` (see module docstring)."""

    def __init__(
        self,
        scorer: Scorer,
        resources: Resources,
        budget: Budget | None = None,
        meaning: MeaningEncoder | None = None,
    ):
        self.access = ModelAccess(scorer)  # type: ignore[arg-type]
        self.meaning = meaning or MeaningEncoder(scorer)  # type: ignore[arg-type]
        self.scorer = scorer
        self.resources = resources
        self.budget = budget or Budget()
        self.emotion_labels = self.access.emotion_labels
        self.sentiment_labels = self.access.sentiment_labels

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
        """Attributions (if asked) and suggestions (where a target is given), batched:
        one occlusion call for the texts that need it, one rescoring call for all rewrites."""
        if len(targets) != len(texts):
            raise ValueError("one target (or None) per text")
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
            occlude_words=attribution or self.budget.positions == "occlusion",
        )
        plans: list[_Plan] = []
        rows: list[str] = []
        # Without occlusion, the original sentences are scored in the rescoring call.
        original_rows: list[tuple[Occlusion, list[int]]] = []
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
            target = targets[i]
            if target is None:
                continue
            if target not in self.emotion_labels:
                raise ValueError(f"unknown target emotion {target!r}")
            plan = self._plan(texts[i], scores[i], target, occlusion)
            if occlusion.segment_forward is None:
                original_rows.append(
                    (occlusion, list(range(len(rows), len(rows) + len(occlusion.segments))))
                )
                rows.extend(texts[i][a:b] for a, b in occlusion.segments)
            for candidate, k in zip(plan.candidates, plan.segment_of, strict=True):
                seg_start, seg_end = occlusion.segments[k]
                plan.rows.append(len(rows))
                rows.append(
                    texts[i][seg_start : candidate.start]
                    + candidate.replacement
                    + texts[i][candidate.end : seg_end]
                )
            plans.append(plan)
        forward = self.access.forward(rows)
        for occlusion, seg_rows in original_rows:
            occlusion.segment_forward = Forward(
                forward.sentiment[seg_rows], forward.emotion[seg_rows], forward.embedding[seg_rows]
            )
        # Call 3, meaning: the best-gaining rewrites of every text and their sentences.
        shortlists = [self._shortlist(plan, forward) for plan in plans]
        meaning_rows: list[str] = []
        for plan, shortlist in zip(plans, shortlists, strict=True):
            for suggestion, k in shortlist:
                seg_start, seg_end = plan.occlusion.segments[k]
                meaning_rows.append(plan.text[seg_start:seg_end])
                meaning_rows.append(
                    suggestion.apply(plan.text)[
                        seg_start : seg_end + len(suggestion.replacement) - len(suggestion.original)
                    ]
                )
        vectors = self.meaning.embed(meaning_rows) if meaning_rows else None
        cursor = 0
        for i, shortlist in zip(
            [i for i in wanted if targets[i] is not None], shortlists, strict=True
        ):
            kept: list[Suggestion] = []
            for suggestion, _ in shortlist:
                assert vectors is not None
                similarity = float(vectors[cursor] @ vectors[cursor + 1])
                cursor += 2
                if similarity < self.budget.min_similarity:
                    continue
                kept.append(self._final(suggestion, similarity))
            kept.sort(key=lambda s: (-s.score, s.start, s.replacement))
            results[i].suggestions = kept[: self.budget.max_suggestions]
        return results

    # --- internals --------------------------------------------------------------------------

    def _prior_weights(self) -> dict[str, float]:
        cached = getattr(self, "_weights", None)
        if cached is None:
            cached = {w: float(np.max(np.abs(v))) for w, v in self.resources.lexicon.scores.items()}
            self._weights = cached
        return cached

    def _plan(self, text: str, score: TextScore, target: str, occlusion: Occlusion) -> _Plan:
        """Pick the words to change and their candidates, within the budget."""
        t = self.emotion_labels.index(target)
        dominant = max(
            (label for label in self.emotion_labels if label != target),
            key=lambda label: score.emotion.probabilities[label],
        )
        d = self.emotion_labels.index(dominant)
        lexicon = self.resources.lexicon
        vader = self.resources.vader
        leverage: list[tuple[float, int]] = []
        for w, (start, end) in enumerate(occlusion.words):
            word = text[start:end].lower()
            model_part = occlusion.emotion_drop[w, d] - occlusion.emotion_drop[w, t]
            lexicon_part = lexicon.association(word, dominant) - lexicon.association(word, target)
            # Only words with affect of their own are worth changing: the model sees an
            # emotion in them, or the lexicon or VADER does. Swapping "kids" for "goods"
            # moves a classifier but not the writer's meaning.
            affect = max(
                abs(float(occlusion.emotion_drop[w, d])),
                max((abs(v) for v in lexicon.scores.get(word, ())), default=0.0),
                0.25 * abs(vader.get(word, 0.0)),
            )
            if affect < self.budget.min_affect:
                continue
            leverage.append((float(model_part + lexicon_part), w))
        leverage.sort(reverse=True)
        budget = self.budget
        chosen: list[list[Candidate]] = []
        segment_of: list[int] = []
        for _, w in leverage:
            if len(chosen) >= budget.max_positions:
                break
            start, end = occlusion.words[w]
            k = occlusion.segment_of[w]
            seg_start, seg_end = occlusion.segments[k]
            words = words_with_spans(text, seg_start, seg_end)
            index = next((j for j, m in enumerate(words) if m.start() == start), None)
            if index is None:
                continue
            slot = analyse([m.group(0) for m in words], index)
            if slot is None:
                continue
            found = generate(self.resources, text, start, end, slot, target)
            if budget.require_support:
                found = [c for c in found if c.support > 0]
            if found:
                chosen.append(found)
                segment_of.append(k)
        # Round-robin over the positions, each in prior order, until the budget is spent.
        candidates: list[Candidate] = []
        seg_list: list[int] = []
        depth = 0
        while len(candidates) < budget.candidates and any(depth < len(c) for c in chosen):
            for found, k in zip(chosen, segment_of, strict=True):
                if depth < len(found) and len(candidates) < budget.candidates:
                    candidates.append(found[depth])
                    seg_list.append(k)
            depth += 1
        return _Plan(text, score, target, occlusion, candidates, [], seg_list)

    def _shortlist(self, plan: _Plan, forward: Forward) -> list[tuple[Suggestion, int]]:
        """Rewrites that raise P(target) (and have support), best first, at most
        `meaning_checks` of them: the ones whose meaning is checked in call 3."""
        t = self.emotion_labels.index(plan.target)
        base_text = plan.score.emotion.probabilities[plan.target]
        seg = plan.occlusion.segment_forward
        assert seg is not None
        budget = self.budget
        out: list[tuple[Suggestion, int]] = []
        for candidate, row, k in zip(plan.candidates, plan.rows, plan.segment_of, strict=True):
            weight = plan.occlusion.segment_weight[k]
            delta = weight * float(forward.emotion[row, t] - seg.emotion[k, t])
            if delta <= 0 or (budget.require_support and candidate.support <= 0):
                continue
            suggestion = Suggestion(
                start=candidate.start,
                end=candidate.end,
                original=candidate.original,
                replacement=candidate.replacement,
                target=plan.target,
                delta=delta,
                probability=min(1.0, max(0.0, base_text + delta)),
                similarity=float(forward.embedding[row] @ seg.embedding[k]),
                support=candidate.support,
                sources=tuple(sorted(candidate.sources)),
                score=delta + budget.support_weight * candidate.support,
            )
            out.append((suggestion, k))
        out.sort(key=lambda item: (-item[0].score, item[0].start, item[0].replacement))
        return out[: budget.meaning_checks]

    def _final(self, suggestion: Suggestion, similarity: float) -> Suggestion:
        budget = self.budget
        return replace(
            suggestion,
            similarity=similarity,
            score=suggestion.delta
            + budget.support_weight * suggestion.support
            - budget.meaning_weight * (1.0 - similarity),
        )
