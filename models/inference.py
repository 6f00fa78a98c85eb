"""`TransformerScorer`: texts -> sentences/chunks -> one batched forward pass -> scores.

How a text is scored:

1. The whole text is tokenized once (fast tokenizer, with character offsets) and split into
   sentences (models/sentences.py); each token belongs to the sentence its first character
   is in. A sentence longer than `max_segment_tokens` (special tokens included) is cut into
   token windows, each mapped back to character offsets. Segments are contiguous, so every
   non-whitespace character is in some segment: nothing is truncated.
2. All segments of all texts go through the model together, sorted by length and cut into
   sub-batches, so short segments are not padded to the longest one.
3. A text's own probabilities (`TextScore.sentiment`/`emotion`) come from the whole text
   scored as one more segment when it fits one window (`whole_text`, on by default: the heads
   were trained on whole short texts, and on TweetEval validation a tweet scored whole beat
   the mean of its sentences, macro-recall 0.705 vs 0.667). A longer text's probabilities are
   the token-count-weighted mean of its segments' probabilities. The extra segment costs at
   most one window per multi-sentence text; single-segment texts cost nothing extra.

The `none` rule. A model whose emotion head has a `none` class of its own (the manifest's
`emotion_none_class`, trained on GoEmotions' neutral rows) gives six probabilities; the served
ones are the five emotions renormalised, and
emotion_intensity = max(P(emotion | not none)) x (1 - P(none)). Older models (a five-way head
trained on CARER alone, which always picks some emotion) read emotion-free text off the
sentiment head: emotion_intensity = max(P(emotion)) x (1 - P(sentiment = neutral)). Either
way, when the intensity is below the manifest's `none_threshold` (tuned on GoEmotions rows
the model did not train on; see models/training/calibrate.py) the emotion label is
`labels.NO_EMOTION`. The probabilities always list the five emotions and sum to 1.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast

from models.artifact import ModelManifest
from models.base import (
    DEFAULT_MAX_SEGMENT_TOKENS,
    LabelScores,
    ModelInfo,
    Scorer,
    SegmentScore,
    TextScore,
)
from models.labels import NO_EMOTION
from models.network import HeadLogits, SentimentEmotionModel, pad_rows
from models.segment_cache import SegmentCache, cached_forward
from models.sentences import split_sentences


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of a text to score: character span and its token ids (no special tokens)."""

    start: int
    end: int
    token_ids: list[int]


def emotion_intensity(emotion_probs: Sequence[float] | np.ndarray, neutral_prob: float) -> float:
    """Strength of the text's clearest emotion, discounted by how neutral the text is
    (P(none) of a head with a `none` class, else P(sentiment = neutral))."""
    return float(max(emotion_probs)) * (1.0 - float(neutral_prob))


def five_emotions(head_probs: np.ndarray, none_class: bool) -> tuple[np.ndarray, np.ndarray]:
    """The emotion head's probabilities split into the five emotions, renormalised to sum
    to 1 per row, and P(none) (zeros for a head without a `none` class). Accepts one row or
    a (rows, outputs) array."""
    probs = np.asarray(head_probs, dtype=np.float64)
    if not none_class:
        return probs, np.zeros(probs.shape[:-1])
    emotions, p_none = probs[..., :-1], probs[..., -1]
    # P(none) near 1 can round the rest to 0 in float32: fall back to uniform, not NaN.
    total = emotions.sum(axis=-1, keepdims=True)
    uniform = np.full_like(emotions, 1.0 / emotions.shape[-1])
    safe = np.where(total > 0, emotions / np.where(total > 0, total, 1.0), uniform)
    return safe, p_none


def _packed(segments: list[Segment], window: int) -> list[Segment]:
    """Neighbouring segments merged while their tokens fit one window.

    Opt-in (`pack_sentences`): the model was trained on whole short texts (tweets up to 64
    tokens), and on TweetEval validation scoring a tweet whole beat averaging its sentences
    (macro-recall 0.705 vs 0.667, see models/MODEL_CARD.md). Spans stay contiguous.
    """
    merged: list[Segment] = []
    for segment in segments:
        last = merged[-1] if merged else None
        if last is not None and len(last.token_ids) + len(segment.token_ids) <= window:
            merged[-1] = Segment(last.start, segment.end, last.token_ids + segment.token_ids)
        else:
            merged.append(segment)
    return merged


def _rstrip_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


class TransformerScorer(Scorer):
    """Scores texts with a `SentimentEmotionModel`. `score` may run in two threads at once
    (the stream's main and express lanes): the tokenizer is locked, the segment cache locks
    itself, and the network (torch without grad, or an ONNX Runtime session) is safe to
    call concurrently."""

    def __init__(
        self,
        model: SentimentEmotionModel,
        tokenizer: PreTrainedTokenizerFast,
        manifest: ModelManifest,
        *,
        device: torch.device,
        dtype_name: str,
        max_segment_tokens: int = DEFAULT_MAX_SEGMENT_TOKENS,
        max_batch_segments: int = 64,
        max_batch_tokens: int = 8192,
        pack_sentences: bool = False,
        whole_text: bool = True,
        segment_cache_size: int = 0,
        network: Callable[[torch.Tensor, torch.Tensor], HeadLogits] | None = None,
        backend: str = "torch",
    ) -> None:
        self.model = model
        # What scores segments: the torch network itself, or an export of it (ONNX Runtime,
        # models/onnx_backend.py). Recommendations always use `model` (they need its states).
        self.network = network if network is not None else model
        self.tokenizer = tokenizer
        # Held around every call of the tokenizer, here and in models/recommend: a fast
        # tokenizer called with other truncation settings from another thread (the event
        # loop splits long documents; the express lane scores beside the main one) fails
        # with "Already borrowed".
        self.tokenizer_lock = threading.Lock()
        self.manifest = manifest
        self.device = device
        self.none_threshold = manifest.none_threshold
        self.sentiment_labels = tuple(manifest.sentiment_labels)
        self.emotion_labels = tuple(manifest.emotion_labels)
        self.emotion_none_class = manifest.emotion_none_class
        self._emotion_outputs = len(self.emotion_labels) + int(self.emotion_none_class)
        self._neutral = self.sentiment_labels.index("neutral")
        offsets = manifest.sentiment_log_offsets or {}
        self.sentiment_factors = np.exp(
            [offsets.get(label, 0.0) for label in self.sentiment_labels]
        )
        self._specials = tokenizer.num_special_tokens_to_add(pair=False)
        limit = int(getattr(model.encoder.config, "max_position_embeddings", 512))
        if not self._specials < max_segment_tokens <= limit:
            raise ValueError(f"max_segment_tokens must be in ({self._specials}, {limit}]")
        self.max_segment_tokens = max_segment_tokens
        self.pack_sentences = pack_sentences
        self.whole_text = whole_text
        self.max_batch_segments = max_batch_segments
        self.max_batch_tokens = max(max_batch_tokens, max_segment_tokens)
        self._pad_id = int(tokenizer.pad_token_id or 0)
        self.info = ModelInfo(
            name=manifest.name,
            version=manifest.version,
            backbone=manifest.backbone,
            device=str(device),
            dtype=dtype_name,
            backend=backend,
        )
        # Per-segment results of resent text (models/segment_cache.py); 0 turns it off.
        self.segment_cache: SegmentCache[np.ndarray] | None = (
            SegmentCache(
                segment_cache_size, f"{manifest.name}:{manifest.version}:{backend}:{dtype_name}"
            )
            if segment_cache_size > 0
            else None
        )

    # --- segmentation -----------------------------------------------------------------------

    def segments(self, text: str) -> list[Segment]:
        """The text's segments in order (one empty segment for a text with no tokens)."""
        with self.tokenizer_lock:
            encoding = self.tokenizer(
                text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
            )
        ids: list[int] = encoding["input_ids"]
        offsets: list[tuple[int, int]] = encoding["offset_mapping"]
        sentences = split_sentences(text)
        if not sentences or not ids:
            return [Segment(0, len(text), [])]
        starts = [start for start, _ in sentences]
        members: list[list[int]] = [[] for _ in sentences]
        for index, (token_start, _) in enumerate(offsets):
            members[max(0, bisect_right(starts, token_start) - 1)].append(index)

        window = self.max_segment_tokens - self._specials
        result: list[Segment] = []
        pending_start: int | None = None  # a token-less sentence waiting to join the next
        for (s_start, s_end), tokens in zip(sentences, members, strict=True):
            if not tokens:
                # The tokenizer dropped the whole sentence (e.g. control characters): keep its
                # text covered by joining it to a neighbouring segment.
                if result:
                    last = result[-1]
                    result[-1] = Segment(last.start, s_end, last.token_ids)
                elif pending_start is None:
                    pending_start = s_start
                continue
            for first in range(0, len(tokens), window):
                chunk = tokens[first : first + window]
                start = s_start if first == 0 else offsets[chunk[0]][0]
                if pending_start is not None:
                    start, pending_start = pending_start, None
                if first + window < len(tokens):
                    end = _rstrip_end(text, start, offsets[tokens[first + window]][0])
                else:
                    end = s_end
                result.append(Segment(start, end, [ids[i] for i in chunk]))
        return _packed(result, window) if self.pack_sentences else result

    def count_tokens(self, text: str) -> int:
        return sum(len(s.token_ids) + self._specials for s in self.segments(text))

    # --- model ------------------------------------------------------------------------------

    def _sub_batches(self, lengths: Sequence[int]) -> Iterator[list[int]]:
        """Indices sorted by length, cut so padded tokens and rows stay within the limits."""
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        batch: list[int] = []
        for index in order:
            width = lengths[index]  # sorted, so the newest is the longest
            if batch and (
                len(batch) >= self.max_batch_segments
                or (len(batch) + 1) * width > self.max_batch_tokens
            ):
                yield batch
                batch = []
            batch.append(index)
        if batch:
            yield batch

    def _forward(self, inputs: Sequence[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Softmax probabilities (float64) of both heads for each input, in input order."""
        sentiment = np.zeros((len(inputs), len(self.sentiment_labels)))
        emotion = np.zeros((len(inputs), self._emotion_outputs))
        with torch.inference_mode():
            for batch in self._sub_batches([len(x) for x in inputs]):
                ids, mask = pad_rows([inputs[i] for i in batch], self._pad_id)
                logits = self.network(ids.to(self.device), mask.to(self.device))
                sentiment[batch] = torch.softmax(logits.sentiment.float(), -1).cpu().numpy()
                emotion[batch] = torch.softmax(logits.emotion.float(), -1).cpu().numpy()
        return sentiment, emotion

    # --- scores -----------------------------------------------------------------------------

    def _labels(
        self, sentiment: np.ndarray, emotion: np.ndarray
    ) -> tuple[LabelScores, LabelScores, float]:
        emotion, p_none = five_emotions(emotion, self.emotion_none_class)
        emotion = emotion / emotion.sum()  # exact sum 1 after averaging and float rounding
        sentiment = sentiment * self.sentiment_factors  # the manifest's prior correction
        sentiment = sentiment / sentiment.sum()
        discount = p_none if self.emotion_none_class else sentiment[self._neutral]
        intensity = emotion_intensity(emotion, float(discount))
        best = self.emotion_labels[int(np.argmax(emotion))]
        return (
            LabelScores(
                label=self.sentiment_labels[int(np.argmax(sentiment))],
                probabilities=dict(zip(self.sentiment_labels, map(float, sentiment), strict=True)),
            ),
            LabelScores(
                label=best if intensity >= self.none_threshold else NO_EMOTION,
                probabilities=dict(zip(self.emotion_labels, map(float, emotion), strict=True)),
            ),
            intensity,
        )

    def _whole(self, text: str, segments: list[Segment]) -> Segment | None:
        """The whole text as one segment, when it has several and they fit one window."""
        if not self.whole_text or len(segments) < 2:
            return None
        token_ids = [token for segment in segments for token in segment.token_ids]
        if len(token_ids) > self.max_segment_tokens - self._specials:
            return None
        return Segment(segments[0].start, segments[-1].end, token_ids)

    def split(self, text: str, max_chars: int) -> list[tuple[int, int]]:
        """Runs of whole sentences of at most `max_chars` (a longer sentence alone).

        A piece starts and ends on sentence boundaries the splitter finds in the whole text
        and finds again in the piece (it only looks ahead to the next whitespace), so the
        pieces' segments are the text's own. Texts that could be scored whole (one window)
        are never split: their score is not a mean of segments.
        """
        if len(text) <= max_chars:
            return []
        sentences = split_sentences(text)
        pieces: list[tuple[int, int]] = []
        for start, end in sentences:
            if pieces and end - pieces[-1][0] <= max_chars:
                pieces[-1] = (pieces[-1][0], end)
            else:
                pieces.append((start, end))
        if len(pieces) < 2:
            return []
        # Tokenizing here costs ~1 ms a page; above 8 characters a token on average no text
        # fits one window, so only shorter texts are checked exactly.
        if len(text) <= 8 * self.max_segment_tokens and self._whole(text, self.segments(text)):
            return []
        return pieces

    def combine(self, text: str, parts: Sequence[tuple[int, TextScore]]) -> TextScore:
        """The token-weighted mean of every piece's segments, as `score` computes it for a
        text that does not fit one window (the per-segment probabilities are turned back
        into the model's raw ones: the sentiment prior correction is undone)."""
        segments: list[SegmentScore] = []
        for offset, part in parts:
            segments += [
                SegmentScore(
                    start=seg.start + offset,
                    end=seg.end + offset,
                    tokens=seg.tokens,
                    sentiment=seg.sentiment,
                    emotion=seg.emotion,
                    emotion_intensity=seg.emotion_intensity,
                )
                for seg in part.segments
            ]
        if not segments:
            raise ValueError("no segments to combine")
        tokens = np.array([seg.tokens for seg in segments], float)
        corrected = np.array(
            [[seg.sentiment.probabilities[k] for k in self.sentiment_labels] for seg in segments]
        )
        raw = corrected / self.sentiment_factors
        raw = raw / raw.sum(axis=1, keepdims=True)
        emotion = np.array(
            [[seg.emotion.probabilities[k] for k in self.emotion_labels] for seg in segments]
        )
        if self.emotion_none_class:
            # The served five are renormalised without P(none), which the intensity keeps:
            # intensity = max(five) x (1 - P(none)). Rebuild the head's six outputs.
            top = emotion.max(axis=1)
            served = np.array([seg.emotion_intensity for seg in segments])
            p_none = np.clip(1.0 - served / np.where(top > 0, top, 1.0), 0.0, 1.0)
            emotion = np.column_stack([emotion * (1.0 - p_none)[:, None], p_none])
        weights = tokens / tokens.sum()
        sentiment_scores, emotion_scores, intensity = self._labels(weights @ raw, weights @ emotion)
        probabilities = sentiment_scores.probabilities
        return TextScore(
            sentiment=sentiment_scores,
            valence=probabilities["positive"] - probabilities["negative"],
            emotion=emotion_scores,
            emotion_intensity=intensity,
            segments=segments,
            tokens=int(tokens.sum()),
        )

    def score(self, texts: Sequence[str]) -> list[TextScore]:
        per_text = [self.segments(text) for text in texts]
        wholes = [
            self._whole(text, segments) for text, segments in zip(texts, per_text, strict=True)
        ]
        # Rows: every text's segments in order, then the whole-text segments.
        flat = [segment for segments in per_text for segment in segments]
        whole_rows: dict[int, int] = {}
        for index, whole in enumerate(wholes):
            if whole is not None:
                whole_rows[index] = len(flat)
                flat.append(whole)
        inputs = [self.tokenizer.build_inputs_with_special_tokens(s.token_ids) for s in flat]
        if self.segment_cache is None:
            sentiment, emotion = self._forward(inputs)
        else:  # only segments not scored before reach the model
            owners = [
                text for text, segments in zip(texts, per_text, strict=True) for _ in segments
            ]
            owners += [texts[index] for index in whole_rows]
            spans = [owner[s.start : s.end] for owner, s in zip(owners, flat, strict=True)]
            sentiment, emotion = cached_forward(
                self.segment_cache, spans, inputs, self._forward, len(self.sentiment_labels)
            )

        results: list[TextScore] = []
        cursor = 0
        for index, segments in enumerate(per_text):
            rows = slice(cursor, cursor + len(segments))
            cursor += len(segments)
            tokens = np.array([len(s.token_ids) + self._specials for s in segments], float)
            if index in whole_rows:
                row = whole_rows[index]
                text_sentiment, text_emotion, text_intensity = self._labels(
                    sentiment[row], emotion[row]
                )
            else:
                weights = tokens / tokens.sum()
                text_sentiment, text_emotion, text_intensity = self._labels(
                    weights @ sentiment[rows], weights @ emotion[rows]
                )
            scored_segments = []
            for segment, seg_tokens, seg_sentiment, seg_emotion in zip(
                segments, tokens, sentiment[rows], emotion[rows], strict=True
            ):
                s_sentiment, s_emotion, s_intensity = self._labels(seg_sentiment, seg_emotion)
                scored_segments.append(
                    SegmentScore(
                        start=segment.start,
                        end=segment.end,
                        tokens=int(seg_tokens),
                        sentiment=s_sentiment,
                        emotion=s_emotion,
                        emotion_intensity=s_intensity,
                    )
                )
            probabilities = text_sentiment.probabilities
            results.append(
                TextScore(
                    sentiment=text_sentiment,
                    valence=probabilities["positive"] - probabilities["negative"],
                    emotion=text_emotion,
                    emotion_intensity=text_intensity,
                    segments=scored_segments,
                    tokens=int(tokens.sum()),
                )
            )
        return results

    def warmup(self) -> None:
        """One batch of the largest size scoring allows, then a real text end to end."""
        rows = min(self.max_batch_segments, self.max_batch_tokens // self.max_segment_tokens)
        rows = max(1, rows)
        filler = self.tokenizer.convert_tokens_to_ids("the")
        filler_id = filler if isinstance(filler, int) else self.tokenizer.unk_token_id
        content: list[int] = [filler_id] * (self.max_segment_tokens - self._specials)
        self._forward([self.tokenizer.build_inputs_with_special_tokens(content)] * rows)
        self.score(["Warm-up: the model is ready. It works!"])
