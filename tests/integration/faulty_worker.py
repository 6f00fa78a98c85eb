"""`valence worker` whose real model fails on purpose, for the fault tests.

    python -m tests.integration.faulty_worker marked   # fails on texts with FAULT_MARKER
    python -m tests.integration.faulty_worker broken   # fails on every call

Everything else is the real worker: the shipped model scores the other texts, and the
broker, topics and delivery path are the real ones.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from models.base import Scorer, TextScore
from stream import worker
from stream.cli.main import main
from stream.config import Settings

FAULT_MARKER = "MODEL-FAULT"


class FailingScorer(Scorer):
    def __init__(self, scorer: Scorer, mode: str) -> None:
        self.scorer, self.mode = scorer, mode
        self.info = scorer.info

    def count_tokens(self, text: str) -> int:
        return self.scorer.count_tokens(text)

    def warmup(self) -> None:
        self.scorer.warmup()

    def score(self, texts: Sequence[str]) -> list[TextScore]:
        if self.mode == "broken" or any(FAULT_MARKER in text for text in texts):
            raise RuntimeError(f"injected model failure ({self.mode})")
        return self.scorer.score(texts)


if __name__ == "__main__":
    mode = sys.argv[1]
    load = worker.load_configured_scorer

    def load_failing(settings: Settings) -> Scorer:
        return FailingScorer(load(settings), mode)

    worker.load_configured_scorer = load_failing
    # Suggestions need the transformer scorer itself; this wrapper is not one.
    sys.exit(main(["worker", "--suggestions", "off"]))
