"""Recommendations: the words that carry an emotion, and rewrites toward a target emotion.

    from models.recommend import Budget, Recommender, Resources
    recommender = Recommender(scorer, Resources.load(), Budget(candidates=32))
    recommender.suggest(texts, scores, targets)  # -> list[list[Suggestion]]

See notes/recommendations.md for the method, the evaluation and the cost.
"""

from models.recommend.attribution import Attribution, SpanScore
from models.recommend.ranking import Analysis, Budget, Recommender, Suggestion
from models.recommend.resources import Resources

__all__ = [
    "Analysis",
    "Attribution",
    "Budget",
    "Recommender",
    "Resources",
    "SpanScore",
    "Suggestion",
]
