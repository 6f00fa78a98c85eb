"""API keys and the per-key rate limit of the gateway.

Keys come from the settings (comma separated, `SecretStr`). A write key may send events
and read streams; a read key may only read. Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import SecretStr

from stream.config import Settings
from stream.errors import ConfigError


class Access(StrEnum):
    READ = "read"
    WRITE = "write"


def _split(value: SecretStr | None) -> list[str]:
    if value is None:
        return []
    return [key.strip() for key in value.get_secret_value().split(",") if key.strip()]


@dataclass(frozen=True)
class ApiKeys:
    """Which key may do what. `generated` is set when the settings named no key at all."""

    write: tuple[str, ...]
    read: tuple[str, ...] = ()
    generated: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        """The configured keys; with none configured, one fresh random write key."""
        write, read = _split(settings.gateway_write_keys), _split(settings.gateway_read_keys)
        if set(write) & set(read):
            raise ConfigError("a gateway key is listed both as a write key and a read key")
        if not write and not read:
            key = secrets.token_urlsafe(18)
            return cls(write=(key,), generated=key)
        return cls(write=tuple(write), read=tuple(read))

    def access(self, presented: str | None) -> Access | None:
        """The access `presented` grants, or None for a missing or unknown key."""
        if not presented:
            return None
        given = presented.encode()
        # Compare with every key, so timing says nothing about which one (nearly) matched.
        found: Access | None = None
        for key in self.write:
            if hmac.compare_digest(given, key.encode()):
                found = Access.WRITE
        for key in self.read:
            if hmac.compare_digest(given, key.encode()):
                found = found or Access.READ
        return found


@dataclass
class TokenBucket:
    """`rate` tokens per second up to `burst`; each request takes one."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """0 when a token was taken, else the seconds until one will be available."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class RateLimiter:
    """One token bucket per API key (keys are few and configured, so the map stays small)."""

    rate_per_s: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def retry_after(self, key: str) -> float:
        """0 when `key` may make a request now, else the seconds it must wait."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_s, self.burst, float(self.burst), now)
            self._buckets[key] = bucket
        return bucket.take(now)
