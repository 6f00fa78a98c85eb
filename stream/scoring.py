"""Batch -> model: runs the scorer off the event loop and isolates poison events.

Error policy: a batch that fails is retried one event at a time. An event that fails alone
is the event's fault (dead-lettered as `scoring_failed`) -- unless failures keep coming
for every event, which means the model itself is broken: then `ModelError` stops the
worker without acknowledging anything, and the events are redelivered after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import Histogram

from models.base import Scorer, TextScore
from stream.config import Settings
from stream.errors import ModelError

log = logging.getLogger(__name__)

# (texts, their scores, target emotions) -> extra output fields per text; see models/recommend.
ExtraStep = Callable[[list[str], list[TextScore], list[str | None]], list[dict[str, Any]]]


def load_configured_scorer(settings: Settings) -> Scorer:
    """The scorer the settings name (model directory, device, precision, threads)."""
    from models.loading import load_scorer

    return load_scorer(
        settings.model_path,
        device=settings.device,
        precision=settings.precision,
        torch_threads=settings.torch_threads,
        max_segment_tokens=settings.max_segment_tokens,
        segment_cache_size=settings.segment_cache_size,
    )


class BatchScorer:
    """Runs `Scorer.score` in one dedicated thread: the GIL is released inside torch, so
    fetching, heartbeats and publishing go on while the model works."""

    def __init__(
        self,
        scorer: Scorer,
        max_consecutive_failures: int = 8,
        step: ExtraStep | None = None,
        step_duration: Histogram | None = None,
    ):
        self.scorer = scorer
        self.step = step  # runs after scoring in the same job (suggestions, attributions)
        self.step_duration = step_duration  # observed for batches the step added to
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="valence-model")
        self._max_consecutive_failures = max_consecutive_failures
        self._consecutive_failures = 0

    async def score(self, texts: Sequence[str]) -> list[TextScore | Exception]:
        """One result per text: its score, or the exception scoring it alone raised."""
        loop = asyncio.get_running_loop()
        try:
            scores = await loop.run_in_executor(self._executor, self.scorer.score, list(texts))
        except Exception as exc:
            log.warning("model call failed on a batch of %d: %r; isolating", len(texts), exc)
            results = await self._score_one_by_one(texts)
        else:
            if len(scores) != len(texts):
                raise ModelError(f"scorer returned {len(scores)} scores for {len(texts)} texts")
            results = list(scores)
        self._account(results)
        return results

    async def score_with_extras(
        self, texts: Sequence[str], targets: Sequence[str | None]
    ) -> tuple[list[TextScore | Exception], list[dict[str, Any]]]:
        """`score`, plus the step's extra output fields per text, computed in the same job.

        A failing step costs only the extras (logged); the scores still go out.
        """
        if self.step is None:
            return await self.score(texts), [{} for _ in texts]
        step = self.step
        extras: list[dict[str, Any]] = [{} for _ in texts]

        def job() -> list[TextScore]:
            scores = self.scorer.score(list(texts))
            started = time.monotonic()
            try:
                extras[:] = step(list(texts), scores, list(targets))
                if self.step_duration is not None and any(extras):
                    self.step_duration.observe(time.monotonic() - started)
            except Exception:
                log.exception("recommendation step failed on a batch of %d", len(texts))
            return scores

        loop = asyncio.get_running_loop()
        try:
            scores = await loop.run_in_executor(self._executor, job)
        except Exception as exc:
            log.warning("model call failed on a batch of %d: %r; isolating", len(texts), exc)
            results = await self._score_one_by_one(texts)
            self._account(results)
            return results, [{} for _ in texts]
        if len(scores) != len(texts):
            raise ModelError(f"scorer returned {len(scores)} scores for {len(texts)} texts")
        results: list[TextScore | Exception] = list(scores)
        self._account(results)
        return results, extras

    async def _score_one_by_one(self, texts: Sequence[str]) -> list[TextScore | Exception]:
        loop = asyncio.get_running_loop()
        results: list[TextScore | Exception] = []
        for text in texts:
            try:
                results.extend(
                    await loop.run_in_executor(self._executor, self.scorer.score, [text])
                )
            except Exception as exc:
                results.append(exc)
        return results

    def _account(self, results: Sequence[TextScore | Exception]) -> None:
        if any(not isinstance(result, Exception) for result in results):
            self._consecutive_failures = 0
            return
        self._consecutive_failures += len(results)
        if len(results) > 1 or self._consecutive_failures >= self._max_consecutive_failures:
            raise ModelError(
                f"{self._consecutive_failures} events in a row failed to score: "
                f"last error {results[-1]!r}"
            )

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def recommendation_step(settings: Settings, scorer: Scorer) -> ExtraStep | None:
    """Suggestions/attributions as the settings ask, or None when both are off."""
    if settings.suggestions == "off" and not settings.attribution:
        return None
    from models.recommend.resources import ResourceError
    from models.recommend.service import build_step

    try:
        return build_step(
            scorer,
            mode=settings.suggestions,
            default_target=settings.suggestions_default_target,
            budget=settings.suggestions_budget,
            max_suggestions=settings.suggestions_max,
            min_similarity=settings.suggestions_min_similarity,
            attribution=settings.attribution,
            attribution_top_k=settings.attribution_top_k,
        )
    except (ResourceError, TypeError) as exc:  # TypeError: not a TransformerScorer
        # Scores matter more than suggestions: run without them, loudly.
        log.error("recommendations disabled: %s", exc)
        return None
