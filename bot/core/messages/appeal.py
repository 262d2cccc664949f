"""Messages about appeals against a removal (PRODUCT §10): the modal, the appeal review in the
alert's thread, its outcome, and the answers to clicks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.core.messages.common import SlackMessage, context, escape, section, user_ref

APPEAL_CALLBACK = "modbot_appeal_submit"
ACTION_UPHOLD = "modbot_appeal_uphold"
ACTION_OVERTURN = "modbot_appeal_overturn"
REASON_BLOCK = "reason"
REASON_ACTION = "reason"
MAX_REASON_CHARS = 2999  # a reason of 3,000 characters or more does not fit one section


def appeal_modal(scan_id: str) -> dict[str, Any]:
    """The views.open modal with its one reason field; the scan id rides in private_metadata."""
    return {
        "type": "modal",
        "callback_id": APPEAL_CALLBACK,
        "private_metadata": scan_id,
        "title": {"type": "plain_text", "text": "Appeal a removal"},
        "submit": {"type": "plain_text", "text": "Send appeal"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why should the image come back?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                },
            }
        ],
    }


def reason_problem(reason: str) -> str | None:
    """What is wrong with an appeal's reason (shown under the field), or None."""
    if not reason.strip():
        return "Please say in a few words why the removal was a mistake."
    if len(reason) > MAX_REASON_CHARS:
        return f"Please keep it under 3,000 characters (this is {len(reason):,})."
    return None


def appeal_review(user: str, reason: str, scan_id: str) -> SlackMessage:
    """The appeal as a new review in the alert's thread; text starts 'Appeal from <@U…>:'."""
    text = f"Appeal from {user_ref(user)}: {escape(reason)}"
    head = f":scales: Appeal from {user_ref(user)}:"
    body = escape(reason)[:2900]
    blocks = [
        section(head),
        section(body),
        context("Reviewers who took the original decision cannot vote on the appeal."),
        {
            "type": "actions",
            "block_id": f"modbot_appeal_review:{scan_id}"[:255],
            "elements": [
                {
                    "type": "button",
                    "action_id": ACTION_UPHOLD,
                    "value": scan_id,
                    "text": {"type": "plain_text", "text": "Uphold removal"},
                },
                {
                    "type": "button",
                    "action_id": ACTION_OVERTURN,
                    "style": "primary",
                    "value": scan_id,
                    "text": {"type": "plain_text", "text": "Overturn"},
                },
            ],
        },
    ]
    return SlackMessage(text[:3000], tuple(blocks))


def _who(users: Sequence[str]) -> str:
    return ", ".join(user_ref(u) for u in users)


def appeal_verdict(upheld: bool, reviewers: Sequence[str]) -> SlackMessage:
    """The appeal's outcome in the thread: 'Appeal verdict: upheld' or '… overturned'."""
    outcome = "upheld" if upheld else "overturned"
    text = f"Appeal verdict: {outcome} — decided by {_who(reviewers)}."
    if not upheld:
        text += " The image no longer counts as a confirmed violation."
    return SlackMessage(text, (section(text),))


def appeal_verdict_dm(upheld: bool, what: str) -> SlackMessage:
    """The outcome told to the poster."""
    if upheld:
        text = (
            f"Appeal verdict: upheld. Moderators looked again at {what} and kept the removal. "
            "Thank you for explaining your side."
        )
    else:
        text = (
            f"Appeal verdict: overturned. Moderators looked again at {what} and agree it should "
            "not have been removed. Sorry about that; you are welcome to post it again."
        )
    return SlackMessage(text, (section(text),))


def appeal_received() -> str:
    return "Thank you. Your appeal was sent to the moderators; you will hear back here."


def not_your_removal() -> str:
    return "Only the person who posted the image can appeal its removal."


def already_appealed() -> str:
    return "This removal has already been appealed; you will hear back in this conversation."


def nothing_to_appeal() -> str:
    return "There is no removal to appeal here."


def appeal_vote_refused() -> str:
    return (
        "Only reviewers named in MODBOT_REVIEWERS who did not take the original decision (and "
        "did not appeal) can vote on this appeal. Your click was not recorded."
    )


def appeal_closed() -> str:
    return "This appeal is already decided; your click was not recorded."


def appeal_vote_recorded(upheld: bool) -> str:
    choice = "uphold the removal" if upheld else "overturn it"
    return f"Your vote ({choice}) is recorded. You can change it until a verdict is reached."
