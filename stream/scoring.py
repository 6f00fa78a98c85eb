"""Batch -> model: runs the scorer (and the recommendation step) off the event loop, and
isolates poison events.

Error policy: a batch that fails is retried one event at a time. An event that fails alone
is the event's fault (dead-lettered as `scoring_failed`) -- unless failures keep coming
for every event, which means the model itself is broken: then `ModelError` stops the
worker without acknowledging anything, and the events are redelivered after a restart.
A failing recommendation step costs only the extra fields (logged); the scores still go out.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Histogram

from models.base import Scorer, TextScore
from stream.errors import ModelError

log = logging.getLogger(__name__)

# (texts, their scores, target emotions) -> extra output fields per text; see models/recommend.
ExtraStep = Callable[[list[str], list[TextScore], list[str | None]], list[dict[str, Any]]]


@dataclass(frozen=True)
class ScoredText:
    """One text's model output: its scores and the optional extra output fields
    (`suggestions`, `attributions`) that the recommendation step added."""

    score: TextScore
    extras: dict[str, Any] = field(default_factory=dict)


class BatchScorer:
    """Runs `Scorer.score` in a dedicated thread (the GIL is released inside the network, so
    fetching, heartbeats and publishing go on while the model works), and the express
    lane's calls in a second one (stream/batching.py): those want no recommendation step,
    which runs in one thread at a time (its resources read shared files)."""

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
        # Started on first use only: a worker without an express lane never has the thread.
        self._express_executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="valence-express"
        )
        self._step_lock = threading.Lock()
        self._max_consecutive_failures = max_consecutive_failures
        self._consecutive_failures = 0

    async def score(
        self,
        texts: Sequence[str],
        targets: Sequence[str | None] | None = None,
        *,
        express: bool = False,
    ) -> list[ScoredText | Exception]:
        """One result per text: its scores (and extras), or the exception scoring it alone
        raised. `targets` are the events' target emotions (None: no suggestions asked);
        `express` runs the call in the express lane's thread."""
        wanted: list[str | None] = list(targets) if targets is not None else [None] * len(texts)
        executor = self._express_executor if express else self._executor
        loop = asyncio.get_running_loop()
        try:
            results: list[ScoredText | Exception] = list(
                await loop.run_in_executor(executor, self._job, list(texts), wanted)
            )
        except ModelError:
            raise
        except Exception as exc:
            log.warning("model call failed on a batch of %d: %r; isolating", len(texts), exc)
            results = await self._score_one_by_one(texts, executor)
        self._account(results)
        return results

    def _job(self, texts: list[str], targets: list[str | None]) -> list[ScoredText]:
        scores = self.scorer.score(texts)
        if len(scores) != len(texts):
            raise ModelError(f"scorer returned {len(scores)} scores for {len(texts)} texts")
        extras: list[dict[str, Any]] = [{} for _ in texts]
        if self.step is not None:
            started = time.monotonic()
            try:
                with self._step_lock:
                    extras = self.step(texts, list(scores), targets)
                if self.step_duration is not None and any(extras):
                    self.step_duration.observe(time.monotonic() - started)
            except Exception:
                log.exception("recommendation step failed on a batch of %d", len(texts))
        return [ScoredText(score, extra) for score, extra in zip(scores, extras, strict=True)]

    async def _score_one_by_one(
        self, texts: Sequence[str], executor: ThreadPoolExecutor
    ) -> list[ScoredText | Exception]:
        loop = asyncio.get_running_loop()
        results: list[ScoredText | Exception] = []
        for text in texts:
            try:
                scores = await loop.run_in_executor(executor, self.scorer.score, [text])
                results.append(ScoredText(scores[0]))
            except Exception as exc:
                results.append(exc)
        return results

    def _account(self, results: Sequence[ScoredText | Exception]) -> None:
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
        self._express_executor.shutdown(wait=True)
