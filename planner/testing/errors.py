"""The testing kit's errors."""

from __future__ import annotations


class KitError(RuntimeError):
    """The kit cannot do what was asked (closed service, runaway retries, unknown recipient)."""


class JobFailed(KitError):
    """A delivery job raised inside the in-process worker; the original error is the cause."""
