"""How human answers become a verdict: Slack votes with a quorum, A2I worker answers by majority."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from bot.core.model import ChannelMode, Decision, History, Outcome

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


def quorum_outcome(
    votes: Mapping[str, bool], quorum: int, allowed: Collection[str] | None
) -> tuple[bool, tuple[str, ...]] | None:
    """The outcome and the reviewers who chose it, counting only reviewers still `allowed`
    (None: anyone), or None while no outcome has the quorum."""
    counted = {user: vote for user, vote in votes.items() if allowed is None or user in allowed}
    outcome = tally(counted, quorum)
    if outcome is None:
        return None
    return outcome, tuple(user for user, vote in counted.items() if vote is outcome)


def a2i_answers(output: object) -> list[list[str]]:
    """The label names each worker selected, from an A2I `output.json` (empty list = none).

    Raises ValueError, naming the odd part, for an output whose shape is not A2I's: a worker's
    answer is never guessed at, since a skipped answer would change the majority.
    """
    if not isinstance(output, Mapping):
        raise ValueError("output.json is not a JSON object")
    raw_answers = output.get("humanAnswers") or []
    if not isinstance(raw_answers, list):
        raise ValueError("humanAnswers is not a list")
    answers: list[list[str]] = []
    for number, answer in enumerate(raw_answers, 1):
        content = answer.get("answerContent") if isinstance(answer, Mapping) else None
        if not isinstance(content, Mapping):
            raise ValueError(f"answer {number} has no answerContent object")
        body = content.get(A2I_REQUEST_SOURCE)
        if body is None:  # tolerate another request-source spelling: take the only entry
            body = next(iter(content.values()), {}) if len(content) == 1 else {}
        if not isinstance(body, Mapping):
            raise ValueError(f"answer {number}: the answer is not an object")
        labels = body.get("moderationLabels") or body.get("ModerationLabels") or []
        if not isinstance(labels, list) or not all(isinstance(lb, Mapping) for lb in labels):
            raise ValueError(f"answer {number}: moderationLabels is not a list of objects")
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


def flagged_by_partner(outcome: Outcome, confirm: bool) -> Outcome:
    """A match in a partner's hash bank (HMA) flags the image without detection (PRODUCT §11);
    with `confirm` set for the channel a human confirms it, as for any flag. Shadow and off
    channels keep their mode."""
    if outcome.mode is not ChannelMode.ENFORCE:
        return outcome
    return Outcome(Decision.FLAG, (), outcome.mode, confirm=confirm)
