"""A circuit breaker: after repeated failures a partner is skipped for a while, not waited on.

Pure: the caller passes the clock. Closed -> `threshold` consecutive failures -> open for
`cooldown` seconds (every call skipped at once) -> one trial call; success closes it again,
failure opens it for another cooldown.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CircuitBreaker:
    threshold: int = 3
    cooldown: float = 30.0
    _failures: int = field(default=0, init=False)
    _open_until: float = field(default=0.0, init=False)
    _trial_running: bool = field(default=False, init=False)

    def allow(self, now: float) -> bool:
        """Whether a call may be made now (while open: no; after the cooldown: one trial)."""
        if self._failures < self.threshold:
            return True
        if now < self._open_until or self._trial_running:
            return False
        self._trial_running = True
        return True

    def succeeded(self) -> None:
        self._failures = 0
        self._trial_running = False

    def failed(self, now: float) -> None:
        self._failures += 1
        self._trial_running = False
        if self._failures >= self.threshold:
            self._open_until = now + self.cooldown

    @property
    def open(self) -> bool:
        return self._failures >= self.threshold
