"""The stream's recommendation step: runs right after scoring, in the same model-thread job.

`StreamStep(recommender, ...)` is a callable `(texts, scores, targets) -> extras`, one dict
per text with the optional output fields `suggestions` and `attributions`. Plain parameters
only: `stream/` maps its settings onto them (models/ never reads the configuration).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

from models.base import Scorer, TextScore
from models.recommend.budget import Budget
from models.recommend.grammar import Grammar
from models.recommend.ranking import Recommender
from models.recommend.resources import Resources

log = logging.getLogger(__name__)

Mode = Literal["off", "requested", "all"]


class StreamStep:
    """Suggestions for events with a target (or all events), attributions when asked."""

    def __init__(
        self,
        recommender: Recommender,
        *,
        mode: Mode = "requested",
        default_target: str = "joy",
        attribution: bool = False,
    ) -> None:
        self.recommender = recommender
        self.mode = mode
        self.default_target = default_target
        self.attribution = attribution

    def targets(self, requested: Sequence[str | None]) -> list[str | None]:
        if self.mode == "off":
            return [None] * len(requested)
        if self.mode == "all":
            return [target or self.default_target for target in requested]
        return list(requested)

    def __call__(
        self, texts: Sequence[str], scores: Sequence[TextScore], targets: Sequence[str | None]
    ) -> list[dict[str, Any]]:
        chosen = self.targets(targets)
        extras: list[dict[str, Any]] = [{} for _ in texts]
        if not self.attribution and all(target is None for target in chosen):
            return extras
        analyses = self.recommender.analyse(texts, scores, chosen, attribution=self.attribution)
        for extra, analysis, target in zip(extras, analyses, chosen, strict=True):
            if target is not None:
                extra["suggestions"] = [s.to_dict() for s in analysis.suggestions]
            if self.attribution:
                extra["attributions"] = [a.to_dict() for a in analysis.attributions]
        return extras


def build_step(
    scorer: Scorer,
    *,
    mode: Mode,
    default_target: str,
    budget: Budget,
    attribution: bool,
    resources: Resources | None = None,
) -> StreamStep | None:
    """The step for these settings, or None when both features are off (nothing loaded)."""
    if mode == "off" and not attribution:
        return None
    started = time.monotonic()
    recommender = Recommender(scorer, resources or Resources.load(), budget, Grammar.load())
    log.info(
        "recommendations ready in %.1fs (suggestions=%s, attribution=%s)",
        time.monotonic() - started,
        mode,
        attribution,
    )
    return StreamStep(
        recommender, mode=mode, default_target=default_target, attribution=attribution
    )
