"""Valence's event contracts.

`schemas/events.py` is the source of truth; `schemas/v1/*.schema.json` are generated from it
by `python -m schemas.export` and committed, and a test fails when the two drift.
"""

from schemas.events import (
    SCHEMA_VERSION,
    DeadLetter,
    DeadLetterReason,
    EditorEvent,
    ScoredEvent,
)

__all__ = ["SCHEMA_VERSION", "DeadLetter", "DeadLetterReason", "EditorEvent", "ScoredEvent"]
