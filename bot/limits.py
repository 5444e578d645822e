"""Abuse limits: how fast one chat may send, and how many reports one sender may submit in an hour.

The per-chat rate is a token bucket kept in this process's memory, keyed by the chat's pseudonym (never
the chat id). With several workers each keeps its own buckets, so a chat whose messages are spread over
N workers may send up to N times the rate; the limit is a brake on floods, not an accounting rule.

The report cap lives in the database (storage.store.Store.count_submission) so that it holds across
workers and restarts. It is keyed by a second pseudonym, not the conversation's, and purged after an
hour, so an anonymous report keeps no lasting link to the chat (see docs/limits.md for the trade-off).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from flows import catalog

# The words this module says itself (a [limits] table in the catalog).
CATALOG_KEYS = frozenset({"limits.slow_down", "limits.too_many_reports"})

MAX_TRACKED = 50_000  # buckets kept before idle ones are dropped (memory stays bounded under a flood)


def words(key: str) -> str:
    """A calm message from the [limits] table."""
    name = f"limits.{key}"
    assert name in CATALOG_KEYS, name
    return catalog.text(catalog.DEFAULT_LOCALE, name)


@dataclass
class _Bucket:
    tokens: float
    at: float
    told: bool = False  # told to slow down since the bucket last had a token


class ChatRateLimit:
    """A token bucket per chat: `rate` messages a second on average, bursts of up to twice that (a person
    ticking several boxes quickly is not a flood)."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> str:
        """'ok' to go on, 'tell' for the first message over the limit, 'drop' for the ones after it."""
        if not self.enabled:
            return "ok"
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.told = False
            return "ok"
        if bucket.told:
            return "drop"
        bucket.told = True
        return "tell"

    def _forget_idle(self, now: float) -> None:
        """Drop buckets that have refilled completely: forgetting them changes nothing."""
        full_after = self.burst / self.rate
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.at < full_after}
