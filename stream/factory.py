"""Settings -> model objects: the scorer, the recommendation budget, the recommendation step.

The worker, the command line and the benchmark build their model objects here and nowhere
else, so a setting means the same thing in each of them (`models/` never reads settings).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from models.base import Scorer
from stream.config import Settings
from stream.errors import ConfigError

if TYPE_CHECKING:
    from models.recommend import Budget
    from models.recommend.service import StreamStep

log = logging.getLogger(__name__)


def load_configured_scorer(settings: Settings, **overrides: object) -> Scorer:
    """The scorer the settings name (model directory, device, backend, precision, threads).

    `overrides` replace single loader arguments, e.g. `precision="int8"` for a comparison.
    """
    from models.loading import load_scorer

    arguments: dict[str, object] = {
        "device": settings.device,
        "precision": settings.precision,
        "torch_threads": settings.torch_threads,
        "max_segment_tokens": settings.max_segment_tokens,
        "segment_cache_size": settings.segment_cache_size,
        "backend": settings.backend,
        "onnx_cache_dir": settings.onnx_cache_dir.expanduser(),
    }
    arguments.update(overrides)
    return load_scorer(settings.model_path, **arguments)  # type: ignore[arg-type]


def recommendation_budget(settings: Settings) -> Budget:
    """How much work one text's suggestions may cost, from the settings."""
    from models.recommend import Budget

    return Budget(
        candidates=settings.suggestions_budget,
        max_suggestions=settings.suggestions_max,
        min_fit=settings.suggestions_min_fit,
        attribution_top_k=settings.attribution_top_k,
    )


def recommendation_step(settings: Settings, scorer: Scorer) -> StreamStep | None:
    """Suggestions/attributions as the settings ask, or None when both are off.

    When they are asked for but cannot run (a word resource or the parser is missing, the
    model is not a transformer), this raises `ConfigError`: the worker refuses to start
    rather than quietly publish events without the suggestions their writers asked for.
    """
    if settings.suggestions == "off" and not settings.attribution:
        return None
    from models.inference import TransformerScorer
    from models.recommend.resources import ResourceError
    from models.recommend.service import build_step

    wanted = f"suggestions={settings.suggestions}, attribution={settings.attribution}"
    if not isinstance(scorer, TransformerScorer):
        raise ConfigError(
            f"{wanted} needs a transformer model, not {type(scorer).__name__}; "
            "set VALENCE_SUGGESTIONS=off and VALENCE_ATTRIBUTION=false to run without them"
        )
    try:
        return build_step(
            scorer,
            mode=settings.suggestions,
            default_target=settings.suggestions_default_target,
            budget=recommendation_budget(settings),
            attribution=settings.attribution,
        )
    except ResourceError as exc:
        raise ConfigError(
            f"{wanted} cannot run: {exc}; set VALENCE_SUGGESTIONS=off and "
            "VALENCE_ATTRIBUTION=false to run without them"
        ) from exc
