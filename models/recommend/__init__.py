"""Recommendations: the words that carry an emotion, and rewrites toward a target emotion.

    from models.recommend import Budget, Recommender, Resources
    recommender = Recommender(scorer, Resources.load(), Budget(candidates=32))
    recommender.suggest(texts, scores, targets)  # -> list[list[Suggestion]]

See models/recommend/README.md for the method, the evaluation and the cost. The heavy parts
(torch, WordNet, GloVe) are imported on first use, so reading `Budget` (as the settings do)
stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from models.recommend.budget import Budget

if TYPE_CHECKING:
    from models.recommend.attribution import Attribution, SpanScore
    from models.recommend.ranking import Analysis, Recommender, Suggestion
    from models.recommend.resources import Resources

_LAZY = {
    "Attribution": "models.recommend.attribution",
    "SpanScore": "models.recommend.attribution",
    "Analysis": "models.recommend.ranking",
    "Recommender": "models.recommend.ranking",
    "Suggestion": "models.recommend.ranking",
    "Resources": "models.recommend.resources",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Analysis",
    "Attribution",
    "Budget",
    "Recommender",
    "Resources",
    "SpanScore",
    "Suggestion",
]
