"""The App Home tab (PRODUCT §13): open reviews for the viewer, the last day's counts, the queue,
the policy in force and the channels not enforced. A pure builder: state in, a `home` view out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core.messages.common import (
    TITLES,
    channel_ref,
    context,
    escape,
    header,
    link,
    section,
    sections,
    short_id,
)
from bot.core.messages.review import duration
from bot.core.model import AlertRef, ChannelMode, Decision
from bot.core.policy import Policy

MAX_LISTED = 20  # reviews listed by name; the rest are counted (a view holds 100 blocks)
MAX_CAUSES = 3


@dataclass(frozen=True)
class OpenReview:
    """A review waiting for a verdict, with the alert it belongs to."""

    scan_id: str
    decision: Decision
    causes: tuple[str, ...]
    opened_at: float
    backend: str  # slack | a2i
    alert: AlertRef | None


@dataclass(frozen=True)
class HomeState:
    """What the Home tab shows, read from the database in a fixed, small number of queries."""

    reviews: tuple[OpenReview, ...]  # the oldest open reviews, at most MAX_LISTED
    open_reviews: int  # all of them
    scans: int  # finished in the last 24 hours
    alerts: int
    verdicts: int
    removals: int
    queue_depth: int
    now: float


def home_view(
    state: HomeState,
    *,
    policy: Policy,
    may_vote: bool | None,
    workspace_url: str | None = None,
) -> dict[str, Any]:
    """The `views.publish` view for one viewer. `may_vote`: whether the viewer may vote in
    Slack (one of MODBOT_REVIEWERS, or that list is empty); None when reviews are not voted on
    in Slack at all (MODBOT_REVIEW_BACKEND a2i or none)."""
    blocks: list[dict[str, Any]] = [header("modbot: moderation at a glance")]
    blocks += _reviews(state, may_vote, workspace_url)
    blocks.append({"type": "divider"})
    blocks.append(section("*Last 24 hours*"))
    blocks.append(
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Scans*\n{state.scans}"},
                {"type": "mrkdwn", "text": f"*Alerts*\n{state.alerts}"},
                {"type": "mrkdwn", "text": f"*Verdicts*\n{state.verdicts}"},
                {"type": "mrkdwn", "text": f"*Removals*\n{state.removals}"},
                {"type": "mrkdwn", "text": f"*Queue now*\n{state.queue_depth}"},
                {"type": "mrkdwn", "text": f"*Open reviews*\n{state.open_reviews}"},
            ],
        }
    )
    blocks.append({"type": "divider"})
    blocks += _policy(policy)
    blocks.append(context(f"Updated <!date^{int(state.now)}^{{date_short_pretty}} {{time}}|now>"))
    return {"type": "home", "blocks": blocks}


def _reviews(
    state: HomeState, may_vote: bool | None, workspace_url: str | None
) -> list[dict[str, Any]]:
    slack_reviews = [r for r in state.reviews if r.backend == "slack"]
    if may_vote is None:
        return [
            section(
                "*Open reviews*\nReviews are not voted on in Slack here (`MODBOT_REVIEW_BACKEND`)"
                f": {_count(state.open_reviews, 'review')} open."
            )
        ]
    if not may_vote:
        waiting = state.open_reviews
        return [
            section(
                "*Open reviews*\nYou are not one of the reviewers (`MODBOT_REVIEWERS`), so there "
                f"is nothing here for you to vote on. {_count(waiting, 'review')} open."
            )
        ]
    if not slack_reviews:
        elsewhere = state.open_reviews
        more = f" ({_count(elsewhere, 'review')} open in Amazon A2I)" if elsewhere else ""
        return [section(f"*Open reviews you may vote on*\nNothing is waiting for you{more}.")]
    lines = [_review_line(review, state.now, workspace_url) for review in slack_reviews]
    rest = state.open_reviews - len(state.reviews)
    if rest > 0:
        lines.append(f"… and {rest} more, newer")
    return sections(f"*Open reviews you may vote on* ({len(slack_reviews)})", lines)


def _review_line(review: OpenReview, now: float, workspace_url: str | None) -> str:
    _, title = TITLES[review.decision]
    url = _alert_url(review.alert, workspace_url)
    label = f"{title} {short_id(review.scan_id)}"
    shown = link(url, label) if url else escape(label)
    causes = ", ".join(escape(cause) for cause in review.causes[:MAX_CAUSES])
    if len(review.causes) > MAX_CAUSES:
        causes += f" (+{len(review.causes) - MAX_CAUSES})"
    where = f" in {channel_ref(review.alert.channel)}" if review.alert and not url else ""
    return f"• {shown}{where}: {causes or 'no label'} · open for {duration(now - review.opened_at)}"


def _alert_url(alert: AlertRef | None, workspace_url: str | None) -> str | None:
    """The alert's permalink, or the link Slack would give (workspace URL, channel and ts)."""
    if alert is None:
        return None
    if alert.permalink:
        return alert.permalink
    if not workspace_url:
        return None
    return f"{workspace_url.rstrip('/')}/archives/{alert.channel}/p{alert.ts.replace('.', '')}"


def _policy(policy: Policy) -> list[dict[str, Any]]:
    head = (
        f"*Policy in force* ({escape(policy.source)})\n"
        f"Review at {policy.review:g}% or more, flag at {policy.flag:g}% or more; labels under "
        f"{policy.min_confidence:g}% are not looked at. Flagged images also get a human review: "
        f"{'yes' if policy.confirm else 'no'}. Label rules: {len(policy.labels)}."
    )
    quiet = [
        f"• {channel_ref(channel)}: *{mode.value}*"
        for channel in sorted(policy.channels)
        if (mode := policy.mode_for(channel)) is not ChannelMode.ENFORCE
    ]
    if policy.mode is not ChannelMode.ENFORCE:
        quiet.insert(0, f"• every channel without its own mode: *{policy.mode.value}*")
    blocks = [section(head)]
    if quiet:
        blocks += sections("*Channels in shadow or off mode*", quiet)
    else:
        blocks.append(section("*Channels in shadow or off mode*\nNone: every channel is enforced."))
    return blocks


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
