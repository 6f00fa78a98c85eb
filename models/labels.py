"""Label sets of the two heads, and how the shared data sets' label words map onto them."""

from __future__ import annotations

from schemas.events import EMOTIONS

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
EMOTION_LABELS: tuple[str, ...] = EMOTIONS  # the output contract's order

# Label written when no emotion is strong enough to claim one (see models/inference.py).
NO_EMOTION = "none"

# Output order of an emotion head that has a class of its own for emotion-free text
# (`ModelManifest.emotion_none_class`): the five emotions, then `none`. The served
# probabilities stay over the five emotions; P(none) decides the label and the intensity.
EMOTION_HEAD_WITH_NONE: tuple[str, ...] = (*EMOTION_LABELS, NO_EMOTION)

# Label words of the shared data sets -> Valence's emotion labels. CARER's `love` is joy;
# TweetEval's `optimism` is joy. Words absent here (e.g. GoEmotions `disgust`) are dropped.
EMOTION_ALIASES: dict[str, str] = {
    "joy": "joy",
    "love": "joy",
    "happiness": "joy",
    "optimism": "joy",
    "surprise": "surprise",
    "anger": "anger",
    "fear": "fear",
    "sadness": "sadness",
}

SENTIMENT_ALIASES: dict[str, str] = {
    "negative": "negative",
    "neutral": "neutral",
    "positive": "positive",
    "neg": "negative",
    "pos": "positive",
}

# GoEmotions' 27 fine labels -> Valence's emotion labels, after the Ekman grouping of the
# GoEmotions paper. Disgust is dropped, not folded into anger: the output contract has no
# disgust, GoEmotions' disgust rows are few (about 1.6 % of train), and anger in CARER and
# TweetEval is hostility, which disgust ("gross", "yuck") is not. `neutral` maps to NO_EMOTION:
# GoEmotions is the only shared set with emotion-free text, so it is what teaches, tunes and
# checks `none`.
GOEMOTIONS_TO_EMOTION: dict[str, str] = {
    **dict.fromkeys(
        (
            "joy",
            "amusement",
            "approval",
            "excitement",
            "gratitude",
            "love",
            "optimism",
            "relief",
            "pride",
            "admiration",
            "desire",
            "caring",
        ),
        "joy",
    ),
    **dict.fromkeys(("surprise", "realization", "confusion", "curiosity"), "surprise"),
    **dict.fromkeys(("anger", "annoyance", "disapproval"), "anger"),
    **dict.fromkeys(("fear", "nervousness"), "fear"),
    **dict.fromkeys(("sadness", "disappointment", "embarrassment", "grief", "remorse"), "sadness"),
    "neutral": NO_EMOTION,
}


def emotion_label(word: str) -> str | None:
    """Valence emotion label of a data set's label word, or None when it has none."""
    return EMOTION_ALIASES.get(word.strip().lower())


def sentiment_label(word: str) -> str | None:
    """Valence sentiment label of a data set's label word, or None when it has none."""
    return SENTIMENT_ALIASES.get(word.strip().lower())
