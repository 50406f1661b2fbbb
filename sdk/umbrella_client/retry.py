"""When to try a request again, and how long to wait first: the server's Retry-After, else exponential backoff."""

from __future__ import annotations

import dataclasses
import random

from umbrella_client.errors import ConnectionFailed, UmbrellaError

RETRYABLE_STATUSES = frozenset({429, 503})


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Retries for idempotent requests (upserts by id): 429, 503 and failed connections, up to `attempts` tries.

    Without a Retry-After the n-th retry waits `backoff · 2ⁿ⁻¹` seconds plus up to `jitter` (25 %) more, so
    parallel uploaders do not come back in step, and at most `max_delay`. A Retry-After is honoured, also
    capped at `max_delay`.
    """

    attempts: int = 6
    backoff: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.25

    def retryable(self, error: UmbrellaError) -> bool:
        return isinstance(error, ConnectionFailed) or error.status in RETRYABLE_STATUSES

    def delay(self, attempt: int, error: UmbrellaError) -> float | None:
        """Seconds to wait before try number `attempt + 1` after `error` ended try `attempt`; None: give up."""
        if attempt >= self.attempts or not self.retryable(error):
            return None
        if error.retry_after is not None:
            return min(float(error.retry_after), self.max_delay)
        wait = self.backoff * 2.0 ** (attempt - 1) * (1 + self.jitter * random.random())  # jitter, not cryptography
        return min(wait, self.max_delay)
