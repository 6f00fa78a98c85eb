"""The scoring interface the stream depends on, apart from any implementation.

`stream/` only ever sees a `Scorer`: it hands over texts and gets `TextScore`s back. Which
network, device or precision sits behind it is the implementation's business.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field

# Sentences longer than this many tokens (special tokens included) are cut into windows;
# the stream's `max_segment_tokens` setting defaults to it.
DEFAULT_MAX_SEGMENT_TOKENS = 128


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What produced a score; copied into every output event."""

    name: str
    version: str
    backbone: str
    device: str
    dtype: str
    backend: str = "torch"  # what runs the network: "torch" or "onnx" (ONNX Runtime)


@dataclass(frozen=True, slots=True)
class LabelScores:
    """Probabilities over one head's labels, in that head's label order."""

    label: str
    probabilities: dict[str, float]


@dataclass(frozen=True, slots=True)
class SegmentScore:
    """One scored piece of a text: a sentence, or a chunk of an over-long sentence.

    `start` and `end` are character offsets into the original text (end exclusive).
    """

    start: int
    end: int
    tokens: int
    sentiment: LabelScores
    emotion: LabelScores
    emotion_intensity: float


@dataclass(frozen=True, slots=True)
class TextScore:
    """A whole text's score: aggregated over every segment, so nothing is truncated."""

    sentiment: LabelScores
    valence: float
    emotion: LabelScores
    emotion_intensity: float
    segments: list[SegmentScore] = field(default_factory=list)
    tokens: int = 0


class Scorer(abc.ABC):
    """Scores texts for sentiment and emotion.

    Called by the stream's batch processor from a worker thread, never on the event loop.
    `score` must be safe to call from one thread at a time; it raises on model failure
    (the caller decides whether a failure is the event's fault or the model's).
    """

    info: ModelInfo

    @abc.abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens the text will cost the model (all segments, special tokens included).

        Used by the batch policy's token budget; must be cheap relative to `score`.
        """

    @abc.abstractmethod
    def score(self, texts: Sequence[str]) -> list[TextScore]:
        """Score every text in one batched pass; one `TextScore` per text, same order."""

    def split(self, text: str, max_chars: int) -> list[tuple[int, int]]:
        """Character spans cutting `text` into pieces of about `max_chars` that can be
        scored one by one and then `combine`d into the score `score([text])` would give,
        so a long document need not occupy the model in one call. [] when the text is one
        piece anyway or the scorer cannot combine (the default)."""
        return []

    def combine(self, text: str, parts: Sequence[tuple[int, TextScore]]) -> TextScore:
        """The text's score from its pieces' scores, each with the piece's start offset."""
        raise NotImplementedError(f"{type(self).__name__} does not score texts in pieces")

    def warmup(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Run a representative batch so the first real batch pays no start-up cost."""
