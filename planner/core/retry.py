"""Retry decisions: a pure function of the attempt count, the error and the policy."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)

    def backoff(self, attempt: int, rng: random.Random) -> timedelta:
        """Exponential backoff with "equal jitter": half fixed, half random, never above the cap.

        The fixed half keeps retries from collapsing to zero; the random half spreads a burst of
        failures (a provider outage) so they do not all come back at the same instant.
        """
        ceiling = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** max(0, attempt - 1))
        return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))


@dataclass(frozen=True)
class RetryDecision:
    """Retry after ``delay``; or, when ``delay`` is None, the delivery is dead for ``reason``."""

    delay: timedelta | None
    reason: str

    @property
    def dead(self) -> bool:
        return self.delay is None


def decide_retry(
    policy: RetryPolicy,
    attempts: int,
    *,
    permanent: bool,
    retry_after: float | None,
    rng: random.Random,
) -> RetryDecision:
    """What to do after a failed attempt number ``attempts`` (1-based, already counted)."""
    if permanent:
        return RetryDecision(None, "permanent_failure")
    if attempts >= policy.max_attempts:
        return RetryDecision(None, "attempts_exhausted")
    delay = policy.backoff(attempts, rng)
    if retry_after is not None:
        # The provider said when it can take more; never sooner, and never past our own cap.
        delay = max(delay, timedelta(seconds=min(retry_after, policy.cap.total_seconds())))
    return RetryDecision(delay, "transient_failure")
