"""Version 1 of the three event contracts: editor event in, scored event out, dead letter.

Field types are strict where a writer could plausibly send the wrong type (a revision as a
string, a number as an id): such an event is rejected, not coerced.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr

SCHEMA_VERSION: Literal[1] = 1

# The one list of emotions: every other module (models/labels.py, the settings, the CLI)
# takes it from here.
Emotion = Literal["joy", "surprise", "anger", "fear", "sadness"]
EmotionOrNone = Literal[Emotion, "none"]
EMOTIONS: tuple[str, ...] = get_args(Emotion)
Sentiment = Literal["negative", "neutral", "positive"]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Id = Annotated[StrictStr, Field(min_length=1, max_length=256)]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EditorEvent(_Contract):
    """A text written in an editor, CMS or chat app (input topic, JSON, UTF-8)."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, title="EditorEvent", json_schema_extra={"version": 1}
    )

    schema_version: Literal[1] = Field(
        SCHEMA_VERSION, description="Contract version; events of other versions are dead-lettered."
    )
    event_id: Id = Field(description="Unique id of this event; consumers dedupe on it.")
    doc_id: Id = Field(description="Document the text belongs to; the output key.")
    user_id: Id = Field(description="Writer of the text.")
    revision: StrictInt = Field(ge=0, description="Revision number of the document.")
    text: StrictStr = Field(description="The text to score; must not be blank.")
    produced_at: AwareDatetime = Field(description="When the editor emitted the event (UTC).")
    lang: StrictStr | None = Field(None, max_length=35, description="BCP 47 language tag.")
    target_emotion: Emotion | None = Field(
        None, description="Emotion the writer wants the text to move toward."
    )


class ModelRef(_Contract):
    name: str
    version: str


class SentimentScore(_Contract):
    label: Sentiment
    probabilities: dict[Sentiment, Probability]
    valence: float = Field(ge=-1.0, le=1.0, description="P(positive) - P(negative).")


class EmotionScore(_Contract):
    label: EmotionOrNone = Field(description="Dominant emotion, or none when no emotion is clear.")
    probabilities: dict[Emotion, Probability]
    intensity: Probability = Field(description="How clearly the text carries its emotion.")


class SentenceScore(_Contract):
    start: int = Field(ge=0, description="Offset of the first character (Python str index).")
    end: int = Field(ge=0, description="Offset after the last character.")
    sentiment: SentimentScore
    emotion: EmotionScore


class Timings(_Contract):
    produced_at: AwareDatetime
    received_at: AwareDatetime = Field(description="When the worker decoded the event.")
    queued_ms: float = Field(ge=0, description="Decode to start of the model call.")
    inference_ms: float = Field(ge=0, description="Duration of the batch's model call.")
    batch_events: int = Field(ge=1)
    batch_tokens: int = Field(ge=0)


class Suggestion(_Contract):
    """A rewrite toward the target emotion: replace text[start:end] with `replacement`."""

    start: int = Field(ge=0, description="Offset of the first replaced character.")
    end: int = Field(ge=0, description="Offset after the last replaced character.")
    original: str = Field(description="The replaced text, text[start:end].")
    replacement: str
    target: Emotion
    kind: Literal["word", "phrase", "sentence_adverb"] = Field(
        description="word: one word swapped; phrase: a modifier dropped, added or changed "
        "with its word, or words added beside one (a mid-position adverb, an interjection "
        "opening a chat message, the writer's feeling after the sentence's last word); "
        "sentence_adverb: an adverb carrying the target opens the sentence."
    )
    delta: float = Field(ge=-1.0, le=1.0, description="Predicted change of P(target), whole text.")
    probability: Probability = Field(description="Predicted P(target) after the rewrite.")
    similarity: float = Field(
        ge=-1.0,
        le=1.0,
        description="Context fit: contextual similarity of the replaced and the new words, each "
        "in its sentence (for a sentence adverb: how little the rest of the sentence moved).",
    )
    sources: list[str] = Field(description="Where the candidate came from (wordnet, glove, ...).")


class AttributionSpan(_Contract):
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str
    score: float = Field(description="Drop of the label's log-odds without this span.")


class Attribution(_Contract):
    """The words and phrases carrying one label (occlusion)."""

    head: Literal["emotion", "sentiment"]
    label: Emotion | Sentiment
    probability: Probability
    spans: list[AttributionSpan]


class ScoredEvent(_Contract):
    """An editor event with its scores (output topic, keyed by doc_id)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, title="ScoredEvent", json_schema_extra={"version": 1}
    )

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Id
    doc_id: Id
    user_id: Id
    revision: int
    lang: str | None = None
    target_emotion: Emotion | None = None
    model: ModelRef
    sentiment: SentimentScore
    emotion: EmotionScore
    sentences: list[SentenceScore]
    timings: Timings
    scored_at: AwareDatetime
    suggestions: list[Suggestion] | None = Field(
        None, description="Ranked rewrites toward target_emotion (when suggestions are on)."
    )
    attributions: list[Attribution] | None = Field(
        None, description="Words carrying each emotion and the sentiment (when attribution is on)."
    )


class DeadLetterReason(StrEnum):
    """Why an event could not be scored. Stable strings: alerts and dashboards use them."""

    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    INVALID_EVENT = "invalid_event"
    EMPTY_TEXT = "empty_text"
    TEXT_TOO_LONG = "text_too_long"
    SCORING_FAILED = "scoring_failed"
    OUTPUT_TOO_LARGE = "output_too_large"


class SourceRef(_Contract):
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None
    key_b64: str | None = Field(
        None, description="The record key, base64; null when absent or longer than 1 KiB."
    )


class DeadLetter(_Contract):
    """An input event Valence could not score, with why (dead-letter topic)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, title="DeadLetter", json_schema_extra={"version": 1}
    )

    schema_version: Literal[1] = SCHEMA_VERSION
    reason: DeadLetterReason
    error: str = Field(description="Human-readable detail of the reason.")
    event_id: str | None = Field(None, description="The event's id, when it could be read.")
    source: SourceRef
    original_b64: str = Field(
        description="The original value bytes, base64; only their first bytes when "
        "original_truncated (the whole value is read back from source topic/partition/offset)."
    )
    original_bytes: int = Field(ge=0, description="Size of the whole original value.")
    original_sha256: str = Field(
        pattern="^[0-9a-f]{64}$", description="SHA-256 of the whole original value, hex."
    )
    original_truncated: bool = Field(
        description="True when the original did not fit the dead-letter topic's record limit."
    )
    dead_lettered_at: AwareDatetime
