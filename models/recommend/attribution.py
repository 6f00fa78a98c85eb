"""Which words carry each emotion and the sentiment: occlusion (leave one word out).

Method: for every word of a sentence (up to `max_words` per text, content words and negations
first), the sentence is scored again without that word; the word's score for a label is how
much the label's log-odds drop without it, times the sentence's share of the text's tokens.
Log-odds, not probabilities: in "i feel so sad and lonely" P(sadness) stays 0.999 without
"sad" (saturated), but its log-odds still fall, so both words are found.
All occluded sentences of all texts of a batch go through the model in one batched call, and
one call answers every label at once (both heads).

Why occlusion and not gradients (measured in models/recommend/README.md): it is model-agnostic
(works unchanged on int8 and fp16 encoders, which have no usable backward), its scores are
real probability changes in the output's own units, and on this CPU it costs about the same as
gradient x input would: one occluded row per word vs. one backward pass per label (8 labels).

Adjacent words that both carry the same label are merged into a phrase whose score is the sum
of the words' scores (an approximation: the phrase itself is not occluded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from models.base import TextScore
from models.recommend.encoder import Forward, ModelAccess
from models.recommend.inflection import STOPWORDS, WORD_RE, words_set

NEGATIONS = words_set(
    "not no never nothing nobody none nor dont didnt doesnt cant couldnt wouldnt wont isnt "
    "arent wasnt werent hasnt havent hadnt shouldnt"
)


@dataclass(frozen=True, slots=True)
class SpanScore:
    """A word or phrase: character offsets into the text (end exclusive) and its score."""

    start: int
    end: int
    text: str
    score: float

    def to_dict(self) -> dict[str, object]:
        return {
            "start": int(self.start),
            "end": int(self.end),
            "text": self.text,
            "score": round(float(self.score), 4),
        }


@dataclass(frozen=True, slots=True)
class Attribution:
    """The spans carrying one label: `head` is "emotion" or "sentiment"."""

    head: str
    label: str
    probability: float
    spans: list[SpanScore]

    def to_dict(self) -> dict[str, object]:
        return {
            "head": self.head,
            "label": self.label,
            "probability": round(float(self.probability), 4),
            "spans": [span.to_dict() for span in self.spans],
        }


@dataclass
class Occlusion:
    """Per occluded word of one text: the drop of every label's log-odds (sentence-weighted)."""

    words: list[tuple[int, int]]  # character spans, text order
    segment_of: list[int]  # index into `segments` per word
    emotion_drop: np.ndarray  # (n_words, n_emotion): logit(P) - logit(P without the word)
    sentiment_drop: np.ndarray  # (n_words, n_sentiment)
    segments: list[tuple[int, int]] = field(default_factory=list)
    segment_weight: list[float] = field(default_factory=list)
    segment_forward: Forward | None = None  # the original segments' own forward


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def _remove(text: str, start: int, end: int, seg_start: int, seg_end: int) -> str:
    """The segment with text[start:end] removed, and one space around it."""
    left, right = text[seg_start:start], text[end:seg_end]
    if left.endswith(" ") and (right.startswith(" ") or not right):
        left = left[:-1]
    elif not left and right.startswith(" "):
        right = right[1:]
    return left + right


def _chosen_words(
    text: str, seg_start: int, seg_end: int, prior: dict[str, float] | None, budget: int
) -> list[tuple[int, int]]:
    spans = [
        (m.start(), m.end())
        for m in WORD_RE.finditer(text, seg_start, seg_end)
        if m.group(0).lower() not in STOPWORDS or m.group(0).lower() in NEGATIONS
    ]
    if len(spans) <= budget:
        return spans
    weight = prior or {}
    ranked = sorted(spans, key=lambda s: -weight.get(text[s[0] : s[1]].lower(), 0.0))
    return sorted(ranked[:budget])


def occlude(
    access: ModelAccess,
    texts: Sequence[str],
    scores: Sequence[TextScore],
    *,
    max_words: int = 40,
    prior: dict[str, float] | None = None,
    occlude_words: bool = True,
) -> list[Occlusion]:
    """Occlusion of every text's chosen words, all texts in one batched model call.

    With `occlude_words=False` nothing runs: only the words and sentences are chosen (drops
    are zero, `segment_forward` is None) for a caller that ranks positions without the model.
    """
    rows: list[str] = []
    plans = []
    for text, score in zip(texts, scores, strict=True):
        segments = [(s.start, s.end) for s in score.segments] or [(0, len(text))]
        tokens = np.array([max(1, s.tokens) for s in score.segments] or [1], float)
        weights = list(tokens / tokens.sum())
        budget = max_words
        words: list[tuple[int, int]] = []
        segment_of: list[int] = []
        seg_rows: list[int] = []
        word_rows: list[int] = []
        for k, (start, end) in enumerate(segments):
            seg_rows.append(len(rows))
            rows.append(text[start:end])
            chosen = _chosen_words(text, start, end, prior, budget)
            budget -= len(chosen)
            for w_start, w_end in chosen:
                words.append((w_start, w_end))
                segment_of.append(k)
                word_rows.append(len(rows))
                rows.append(_remove(text, w_start, w_end, start, end))
        plans.append((segments, weights, words, segment_of, seg_rows, word_rows))
    if not occlude_words:
        return [
            Occlusion(
                words=words,
                segment_of=segment_of,
                emotion_drop=np.zeros((len(words), len(access.emotion_labels))),
                sentiment_drop=np.zeros((len(words), len(access.sentiment_labels))),
                segments=segments,
                segment_weight=weights,
            )
            for segments, weights, words, segment_of, _, _ in plans
        ]
    forward = access.forward(rows)
    results = []
    for segments, weights, words, segment_of, seg_rows, word_rows in plans:
        n_e, n_s = forward.emotion.shape[1], forward.sentiment.shape[1]
        emotion_drop, sentiment_drop = np.zeros((0, n_e)), np.zeros((0, n_s))
        if words:
            # Each word's drop is measured against its own segment, weighted by that segment.
            base = [seg_rows[k] for k in segment_of]
            w = np.array([weights[k] for k in segment_of])[:, None]
            emotion_drop = w * (_logit(forward.emotion[base]) - _logit(forward.emotion[word_rows]))
            sentiment_drop = w * (
                _logit(forward.sentiment[base]) - _logit(forward.sentiment[word_rows])
            )
        results.append(
            Occlusion(
                words=words,
                segment_of=segment_of,
                emotion_drop=emotion_drop,
                sentiment_drop=sentiment_drop,
                segments=segments,
                segment_weight=weights,
                segment_forward=Forward(
                    forward.sentiment[seg_rows],
                    forward.emotion[seg_rows],
                    forward.embedding[seg_rows],
                ),
            )
        )
    return results


def _spans(
    text: str, words: list[tuple[int, int]], scores: np.ndarray, top_k: int, min_score: float
) -> list[SpanScore]:
    """Top-k positive spans; adjacent carrying words merged into phrases."""
    carrying = [(s, e, float(v)) for (s, e), v in zip(words, scores, strict=True) if v > min_score]
    merged: list[tuple[int, int, float]] = []
    for start, end, value in carrying:  # words are in text order
        if merged and not text[merged[-1][1] : start].strip():
            last = merged[-1]
            merged[-1] = (last[0], end, last[2] + value)
        else:
            merged.append((start, end, value))
    merged.sort(key=lambda item: -item[2])
    return [SpanScore(s, e, text[s:e], v) for s, e, v in merged[:top_k]]


def attributions(
    text: str,
    score: TextScore,
    occlusion: Occlusion,
    emotion_labels: Sequence[str],
    sentiment_labels: Sequence[str],
    *,
    top_k: int = 3,
    min_probability: float = 0.2,
    min_score: float = 0.05,
) -> list[Attribution]:
    """Spans for each emotion with P >= min_probability, and for the sentiment label."""
    out: list[Attribution] = []
    emotions = score.emotion.probabilities
    for j, label in enumerate(emotion_labels):
        if emotions.get(label, 0.0) >= min_probability:
            spans = _spans(text, occlusion.words, occlusion.emotion_drop[:, j], top_k, min_score)
            out.append(Attribution("emotion", label, emotions[label], spans))
    out.sort(key=lambda a: -a.probability)
    label = score.sentiment.label
    j = list(sentiment_labels).index(label)
    spans = _spans(text, occlusion.words, occlusion.sentiment_drop[:, j], top_k, min_score)
    out.append(Attribution("sentiment", label, score.sentiment.probabilities[label], spans))
    return out
