"""Per-event limits of the recommendation work (a plain value: the settings map onto it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Budget:
    """Per-event limits: they bound the extra model rows one event may cost."""

    candidates: int = 32  # rewritten sentences rescored per event (call 2): the cost bound
    max_positions: int = 4  # words of the text that get candidates
    max_suggestions: int = 5  # suggestions returned per event
    occlusion_words: int = 40  # words occluded per event (call 1)
    attribution_top_k: int = 3  # spans per attributed label
    min_similarity: float = 0.8  # meaning: sentence cosine, original vs rewrite
    meaning_checks: int = 8  # best-gaining rewrites per event whose meaning is checked (call 3)
    require_support: bool = True  # lexicon/VADER must agree with the model
    support_weight: float = 0.1  # score = gain + w_s x support - w_m x (1 - similarity)
    meaning_weight: float = 1.0
    min_affect: float = 0.3  # affect a word needs to be changed (logit drop/lexicon/VADER/4)
    # Which words to change: "occlusion" asks the model (one extra row per word, call 1);
    # "lexicon" ranks them by the lexicon and VADER alone (no call 1 unless attribution is on).
    positions: Literal["occlusion", "lexicon"] = "occlusion"
