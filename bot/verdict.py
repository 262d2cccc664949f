"""How human answers become a verdict: Slack votes with a quorum, A2I worker answers by majority."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.model import ChannelMode, Decision, History, Outcome

A2I_REQUEST_SOURCE = "AWS/Rekognition/DetectModerationLabels/Image/V3"


@dataclass(frozen=True)
class Verdict:
    """A human decision about one image."""

    violation: bool
    labels: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()  # Slack user ids, for votes in Slack
    workers: int = 0  # number of A2I workers who answered
    loop_name: str | None = None
    seconds: float = 0.0  # from review start to verdict


def tally(votes: Mapping[str, bool], quorum: int) -> bool | None:
    """The outcome that has `quorum` agreeing votes (True = violation), or None while open.

    Votes can change until a verdict exists, so only current votes count, once per reviewer.
    Called after every vote: the side that just reached the quorum is the first to reach it.
    """
    counts = Counter(votes.values())
    for outcome in (True, False):
        if counts[outcome] >= quorum:
            return outcome
    return None


def a2i_answers(output: Mapping[str, Any]) -> list[list[str]]:
    """The label names each worker selected, from an A2I `output.json` (empty list = none)."""
    answers: list[list[str]] = []
    for answer in output.get("humanAnswers") or ():
        content = answer.get("answerContent") or {}
        body = content.get(A2I_REQUEST_SOURCE)
        if body is None:  # tolerate another request-source spelling: take the only entry
            body = next(iter(content.values()), {}) if len(content) == 1 else {}
        labels = body.get("moderationLabels") or body.get("ModerationLabels") or ()
        answers.append([str(label["name"]) for label in labels if label.get("name")])
    return answers


def a2i_verdict(answers: Iterable[list[str]]) -> tuple[bool, tuple[str, ...]]:
    """Violation if at least one worker selected a label and at least half of them did.

    An empty selection, or no answers at all, means "nothing wrong". The labels reported are
    those selected by at least half of the workers, in first-seen order.
    """
    answers = list(answers)
    total = len(answers)
    selecting = sum(1 for labels in answers if labels)
    violation = selecting >= 1 and 2 * selecting >= total
    counts: Counter[str] = Counter()
    order: dict[str, None] = {}
    for labels in answers:
        for name in dict.fromkeys(labels):  # a worker counts once per label
            counts[name] += 1
            order.setdefault(name, None)
    chosen = tuple(name for name in order if 2 * counts[name] >= total) if violation else ()
    return violation, chosen


def apply_history(outcome: Outcome, history: History) -> Outcome:
    """A human verdict on the same bytes beats the model (PRODUCT §5, re-posts).

    Confirmed violation: alerted as flagged, with no new review. Confirmed "no violation":
    allowed silently. Shadow and off channels keep their mode: they never alert anyway.
    """
    prior = history.verdict
    if prior is None or outcome.mode is not ChannelMode.ENFORCE:
        return outcome
    if not prior.violation:
        return Outcome(Decision.ALLOW, (), outcome.mode)
    return Outcome(Decision.FLAG, outcome.causes, outcome.mode, confirm=False)
