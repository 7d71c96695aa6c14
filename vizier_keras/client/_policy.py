"""Retry and polling policies of the client: every retry has a bound and jitter, every poll a
deadline."""

from __future__ import annotations

import random
from dataclasses import dataclass

from vizier_keras.errors import ValidationError


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValidationError(name, value, "must be positive")


@dataclass(frozen=True)
class RetryPolicy:
    """How the client repeats a call that failed in a way worth repeating.

    Only calls that are safe to repeat are repeated: reads, operation polls, suggest (the same
    client id gets the same trial), early-stopping checks; any call whose request never reached
    the service (the connection could not be opened). Repeated are UNAVAILABLE and
    DEADLINE_EXCEEDED answers and broken connections, with exponential backoff and jitter; a
    ``Retry-After`` header is honoured up to ``max_backoff``. RESOURCE_EXHAUSTED (quota) waits
    longer and is tried fewer times. ``addTrialMeasurement`` and ``complete`` are never repeated
    blindly: the client first reads the trial to see whether the first attempt took effect.

    Attributes:
        max_attempts: Attempts in all, the first included (1 disables retries).
        initial_backoff: Seconds before the second attempt (before jitter).
        max_backoff: Longest wait between attempts.
        multiplier: Growth of the wait per attempt.
        exhausted_initial_backoff: First wait after RESOURCE_EXHAUSTED.
        exhausted_max_attempts: Attempts in all when the service keeps answering
            RESOURCE_EXHAUSTED.
        deadline: No new attempt starts this many seconds after the first one began.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    multiplier: float = 2.0
    exhausted_initial_backoff: float = 5.0
    exhausted_max_attempts: int = 3
    deadline: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.exhausted_max_attempts < 1:
            raise ValidationError("max_attempts", self.max_attempts, "must be at least 1")
        for name in ("initial_backoff", "max_backoff", "exhausted_initial_backoff", "deadline"):
            _positive(name, getattr(self, name))
        if self.multiplier < 1:
            raise ValidationError("multiplier", self.multiplier, "must be at least 1")

    def backoff(self, retry_number: int, *, exhausted: bool = False,
                rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry).

        "Equal jitter": half the exponential delay, plus a uniform draw from the other half, so
        that many workers that failed together do not come back together.
        """
        initial = self.exhausted_initial_backoff if exhausted else self.initial_backoff
        delay = min(self.max_backoff, initial * self.multiplier ** (retry_number - 1))
        draw = (rng or random).random()
        return delay / 2 + draw * delay / 2

    def attempts_for(self, exhausted: bool) -> int:
        return min(self.max_attempts, self.exhausted_max_attempts) if exhausted else (
            self.max_attempts)


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class PollPolicy:
    """How the client waits for a long-running operation (suggest, early-stopping check).

    Attributes:
        initial_delay: Seconds before the first re-read of an operation that is not done.
        max_delay: Longest wait between two reads.
        multiplier: Growth of the wait per read.
        timeout: Default deadline, in seconds, for an operation to be done.
    """

    initial_delay: float = 0.05
    max_delay: float = 5.0
    multiplier: float = 1.5
    timeout: float = 600.0

    def __post_init__(self) -> None:
        for name in ("initial_delay", "max_delay", "timeout"):
            _positive(name, getattr(self, name))
        if self.multiplier < 1:
            raise ValidationError("multiplier", self.multiplier, "must be at least 1")
