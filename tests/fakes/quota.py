"""An in-memory QuotaGate: the shared schedule of bot.adapters.ratelimit without a database."""

from __future__ import annotations

from collections.abc import Callable

from bot.adapters.ratelimit import Feedback, GateState, Grant, claim_slots


class FakeQuotaGate:
    """Claims from one in-process schedule on `clock`; `fail` makes the next claims raise."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.state = GateState(rate=0.0, last_slot=-1e9, last_decrease=-1e9)
        self.feedback: list[Feedback] = []
        self.fail = 0

    async def claim(self, count: int, ceiling: float, feedback: Feedback) -> Grant:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("database away")
        self.feedback.append(feedback)
        self.state, slots = claim_slots(
            self.state, now=self._clock(), count=count, ceiling=ceiling, feedback=feedback
        )
        return Grant(slots, self.state.rate)
