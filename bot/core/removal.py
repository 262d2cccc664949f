"""When and what to remove from Slack (PRODUCT §10): pure rules over the policy and a scan."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from bot.core import taxonomy
from bot.core.model import Decision, History, Outcome, ScanRequest, Trigger
from bot.core.policy import Policy, RemoveWhen, remove_for


class Why(StrEnum):
    """What led to a removal (kept with it, shown in the `Removed:` reply)."""

    VERDICT = "verdict"  # humans confirmed a violation
    FLAG = "flag"  # the decision was `flag` under remove = "on_flag"
    REPOST = "repost"  # a re-post (or near-duplicate) of a confirmed violation
    BUTTON = "button"  # a reviewer pressed Remove


@dataclass(frozen=True)
class Target:
    """What to delete: an uploaded file (files.delete), or the message holding a link
    (chat.delete)."""

    channel: str | None
    file_id: str | None = None
    message_ts: str | None = None

    @property
    def kind(self) -> str:
        return "file" if self.file_id else "message"


def target_of(request: ScanRequest) -> Target | None:
    """The Slack object showing this image; None for a URL given to /moderate (nothing posted)."""
    origin = request.origin
    if origin.trigger is Trigger.COMMAND:
        return None
    if request.image.file_id:
        return Target(origin.channel, file_id=request.image.file_id, message_ts=origin.message_ts)
    if origin.channel and origin.message_ts:
        return Target(origin.channel, message_ts=origin.message_ts)
    return None


def _paths(labels: Iterable[str]) -> list[tuple[str, ...]]:
    return [(name, *taxonomy.ancestors(name)) for name in labels]


def removal_at_scan(
    policy: Policy, outcome: Outcome, history: History, channel: str | None
) -> Why | None:
    """Whether a scan's image is removed as soon as it is alerted: a re-post of a confirmed
    violation (remove = on_violation or on_flag), or a flag under remove = on_flag."""
    if not outcome.alerts:
        return None  # shadow and off channels, and allowed images, are never acted on
    prior = history.verdict
    if prior is not None and prior.violation:
        names = prior.labels or tuple(label.name for label in outcome.causes)
        when = remove_for(policy, channel, _paths(names))
        return Why.REPOST if when is not RemoveWhen.NEVER else None
    if outcome.decision is Decision.FLAG:
        when = remove_for(policy, channel, _paths(label.name for label in outcome.causes))
        return Why.FLAG if when is RemoveWhen.ON_FLAG else None
    return None


def removal_at_verdict(policy: Policy, channel: str | None, labels: Iterable[str]) -> bool:
    """Whether a confirmed violation with these labels is removed (on_violation or on_flag)."""
    return remove_for(policy, channel, _paths(labels)) is not RemoveWhen.NEVER
