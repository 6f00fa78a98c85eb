"""Batch -> model: runs the scorer off the event loop and isolates poison events.

Error policy: a batch that fails is retried one event at a time. An event that fails alone
is the event's fault (dead-lettered as `scoring_failed`) -- unless failures keep coming
for every event, which means the model itself is broken: then `ModelError` stops the
worker without acknowledging anything, and the events are redelivered after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from models.base import Scorer, TextScore
from stream.errors import ModelError

log = logging.getLogger(__name__)


class BatchScorer:
    """Runs `Scorer.score` in one dedicated thread: the GIL is released inside torch, so
    fetching, heartbeats and publishing go on while the model works."""

    def __init__(self, scorer: Scorer, max_consecutive_failures: int = 8):
        self.scorer = scorer
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
