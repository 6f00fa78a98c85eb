"""One error tree for Valence."""

from __future__ import annotations

from schemas.events import DeadLetterReason


class ValenceError(Exception):
    """Base of every error Valence raises on purpose."""


class ConfigError(ValenceError):
    """The configuration cannot work (e.g. a gateway key listed as both read and write)."""


class DecodeError(ValenceError):
    """Raw bytes could not become an editor event. Carries the dead-letter reason."""

    def __init__(self, reason: DeadLetterReason, detail: str, event_id: str | None = None):
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.event_id = event_id


class ModelError(ValenceError):
    """The model failed on a whole batch: the worker cannot go on safely."""


class DeadLetterTooLarge(ValenceError):
    """Not even an empty dead letter fits the dead-letter topic's record limit."""


class DeliveryFailed(ValenceError):
    """The broker refused or lost a record Valence had to publish: the worker stops."""
