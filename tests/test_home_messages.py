"""The Home tab's view (pure): what each kind of viewer sees, and Block Kit's limits."""

from __future__ import annotations

from bot.core.messages.home import MAX_LISTED, HomeState, OpenReview, home_view
from bot.core.model import AlertRef, ChannelMode, Decision
from bot.core.policy import DEFAULT_POLICY
from bot.core.policy.rules import ChannelPolicy, Policy

NOW = 1_800_000_000.0


def _state(n: int, *, open_reviews: int | None = None) -> HomeState:
    reviews = tuple(
        OpenReview(
            scan_id=f"{i:032x}",
            decision=Decision.REVIEW,
            causes=("Explicit", "Exposed Female Nipple", "Weapons", "Alcohol"),
            opened_at=NOW - 3600 * (i + 1),
            backend="slack",
            alert=AlertRef("C0ALERTS", f"1700000000.{i:06d}"),
        )
        for i in range(n)
    )
    return HomeState(reviews, open_reviews or n, 10, 4, 2, 1, 3, NOW)


def _text(view: dict) -> str:
    return "\n".join(
        b.get("text", {}).get("text", "") + "".join(f["text"] for f in b.get("fields", []))
        for b in view["blocks"]
    )


def test_a_long_queue_of_reviews_lists_the_oldest_and_counts_the_rest() -> None:
    """More open reviews than fit: the listed ones and "… and N more"; at most 100 blocks,
    sections within 3000 characters; the fourth cause is summarised."""
    view = home_view(
        _state(MAX_LISTED, open_reviews=250),
        policy=DEFAULT_POLICY,
        may_vote=True,
        workspace_url="https://acme.slack.com/",
    )
    text = _text(view)
    assert view["type"] == "home"
    assert len(view["blocks"]) <= 100
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in view["blocks"])
    assert "<https://acme.slack.com/archives/C0ALERTS/p1700000000000000|Needs review 00000000>" in (
        text
    )
    assert "Explicit, Exposed Female Nipple, Weapons (+1) · open for 1 h" in text
    assert f"… and {250 - MAX_LISTED} more, newer" in text


def test_without_slack_votes_the_tab_says_where_reviews_happen() -> None:
    """A2I backend (may_vote None): no list, the count, and why."""
    text = _text(home_view(_state(2), policy=DEFAULT_POLICY, may_vote=None))
    assert "Reviews are not voted on in Slack here (`MODBOT_REVIEW_BACKEND`): 2 reviews open." in (
        text
    )
    assert "Needs review" not in text


def test_off_and_shadow_channels_are_listed_and_enforced_everywhere_is_said() -> None:
    """Channels whose mode is not enforce are named with their mode; none: said so."""
    policy = Policy(
        channels={
            "C0OFF": ChannelPolicy(mode=ChannelMode.OFF),
            "C0LOUD": ChannelPolicy(mode=ChannelMode.ENFORCE),
        }
    )
    text = _text(home_view(_state(0), policy=policy, may_vote=True))
    assert "<#C0OFF>: *off*" in text
    assert "C0LOUD" not in text
    assert "Nothing is waiting for you." in text
    plain = _text(home_view(_state(0), policy=DEFAULT_POLICY, may_vote=True))
    assert "None: every channel is enforced." in plain
