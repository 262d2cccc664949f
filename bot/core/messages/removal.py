"""Messages about removing an image from Slack (PRODUCT §10): the Remove button, `Removed:` and
`Could not remove:` replies, the alert's status line, and the poster's direct message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.core.messages.common import (
    SlackMessage,
    channel_ref,
    code,
    context,
    escape,
    link,
    section,
    user_ref,
)
from bot.core.messages.review import verdict_line
from bot.core.verdict import Verdict

ACTION_REMOVE = "modbot_remove"
ACTION_APPEAL = "modbot_appeal"
REMOVE_BLOCK = "modbot_remove"

_WHY = {
    "verdict": "the policy, after reviewers confirmed a violation",
    "flag": "the policy (flagged images are removed at once)",
    "repost": "the policy (a re-post of a confirmed violation)",
}


def remove_button(scan_id: str) -> dict[str, Any]:
    """The Remove button on review and flag alerts (when SLACK_ADMIN_TOKEN is set)."""
    return {
        "type": "actions",
        "block_id": f"{REMOVE_BLOCK}:{scan_id}"[:255],
        "elements": [
            {
                "type": "button",
                "action_id": ACTION_REMOVE,
                "style": "danger",
                "value": scan_id,
                "text": {"type": "plain_text", "text": "Remove"},
                "confirm": {
                    "title": {"type": "plain_text", "text": "Remove the image?"},
                    "text": {
                        "type": "plain_text",
                        "text": "It is deleted from Slack for everyone. This cannot be undone.",
                    },
                    "confirm": {"type": "plain_text", "text": "Remove"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            }
        ],
    }


def what_removed(kind: str, source: str | None, channel: str | None, poster: str | None) -> str:
    """'the upload `cat.png` posted by <@U1> in <#C1>' (or 'the message with the link …')."""
    thing = "the upload" if kind == "file" else "the message with the link"
    if source:
        thing += f" {link(source) if kind != 'file' and '://' in source else code(source)}"
    if poster:
        thing += f" posted by {user_ref(poster)}"
    if channel:
        thing += f" in {channel_ref(channel)}"
    return thing


def decided_by(why: str, actor: str | None) -> str:
    return f"{user_ref(actor)} (Remove button)" if actor else _WHY.get(why, "the policy")


def removed(what: str, why: str, actor: str | None) -> SlackMessage:
    """The thread reply once Slack deleted the image; its text starts with 'Removed:'."""
    text = f"Removed: {what} — decided by {decided_by(why, actor)}."
    return SlackMessage(text, (section(f":wastebasket: {text}"),))


# Slack's refusals of files.delete / chat.delete, in plain words, with what to fix.
_REFUSALS: dict[str, tuple[str, str]] = {
    "cant_delete_file": (
        "Slack did not let SLACK_ADMIN_TOKEN delete this file",
        "use the user token of a workspace Owner or Admin",
    ),
    "cant_delete_message": (
        "Slack did not let SLACK_ADMIN_TOKEN delete this message",
        "use the user token of a workspace Owner or Admin",
    ),
    "not_authed": (
        "no token reached Slack",
        "set SLACK_ADMIN_TOKEN to the app's xoxp- User OAuth Token",
    ),
    "invalid_auth": (
        "Slack does not accept SLACK_ADMIN_TOKEN",
        "install the app again and copy its User OAuth Token into SLACK_ADMIN_TOKEN",
    ),
    "token_revoked": (
        "SLACK_ADMIN_TOKEN has been revoked",
        "install the app again and copy its User OAuth Token into SLACK_ADMIN_TOKEN",
    ),
    "token_expired": (
        "SLACK_ADMIN_TOKEN has expired",
        "install the app again and copy its User OAuth Token into SLACK_ADMIN_TOKEN",
    ),
    "account_inactive": (
        "the user behind SLACK_ADMIN_TOKEN has been deactivated",
        "use the token of an active Owner or Admin",
    ),
    "missing_scope": (
        "SLACK_ADMIN_TOKEN lacks the scope for this",
        "add the user scopes files:write and chat:write in the app's OAuth settings, "
        "reinstall, and copy the new token",
    ),
    "not_allowed_token_type": (
        "SLACK_ADMIN_TOKEN is not a user token",
        "use the xoxp- User OAuth Token, not the bot token",
    ),
    "restricted_action": (
        "the workspace's settings keep this user from deleting it",
        "let Owners and Admins delete messages and files (workspace settings), or use an "
        "Owner's token",
    ),
    "file_not_found": (
        "the file is already gone",
        "nothing; it was deleted before modbot got to it",
    ),
    "file_deleted": ("the file is already gone", "nothing; it was deleted before modbot got to it"),
    "message_not_found": (
        "the message is already gone",
        "nothing; it was deleted before modbot got to it",
    ),
    "channel_not_found": (
        "the admin token's user cannot see that channel",
        "add that user to the channel, then remove the image by hand",
    ),
}


def removal_failure(error: str) -> str:
    """Why a removal failed and what to fix, from Slack's error code or our own words."""
    known = _REFUSALS.get(error)
    if known is None:
        return f"Slack refused it ({escape(error)}). Remove the image by hand."
    reason, fix = known
    return f"{reason} ({error}). To fix: {fix}."


def could_not_remove(what: str, detail: str) -> SlackMessage:
    """The thread reply when Slack refused; its text starts with 'Could not remove:'."""
    text = f"Could not remove: {what} — {detail}"
    return SlackMessage(text, (section(f":warning: {text}"),))


def removal_status(text: str) -> dict[str, Any]:
    """The alert's status line about its removal."""
    return context(f"*{text}*")


def poster_notice(scan_id: str, what: str, labels: Sequence[str], appeal: bool) -> SlackMessage:
    """The direct message to the person whose image was removed: plain, calm, with a way out."""
    named = ", ".join(escape(name) for name in labels[:10])
    why = f"it appears to show: {named}" if named else "it appears to break the workspace's rules"
    text = (
        f"Hello. We removed {what}, because {why}. "
        "We know this can be upsetting, and mistakes happen."
    )
    blocks: list[dict[str, Any]] = [section(text)]
    if appeal:
        blocks.append(
            section(
                "If you think this was a mistake, you can appeal: a moderator who did not "
                "take the first decision will look at it again."
            )
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"modbot_appeal:{scan_id}"[:255],
                "elements": [
                    {
                        "type": "button",
                        "action_id": ACTION_APPEAL,
                        "value": scan_id,
                        "text": {"type": "plain_text", "text": "Appeal"},
                    }
                ],
            }
        )
    return SlackMessage(text, tuple(blocks))


def poster_not_told(reason: str) -> SlackMessage:
    """Thread note when the poster cannot get the direct message (left, DMs closed)."""
    text = f"Could not tell the poster about the removal: {escape(reason)}."
    return SlackMessage(text, (context(text),))


def remove_refused() -> str:
    return "Only the reviewers named in MODBOT_REVIEWERS can remove images. Nothing was removed."


def nothing_to_remove() -> str:
    return "There is nothing to remove for this alert. Nothing was done."


def already_removing() -> str:
    return "This image has already been removed (or its removal is under way)."


def removal_accepted() -> str:
    return "Removing the image; the result will be posted in the alert's thread."


def current_alert(
    original: Mapping[str, Any] | None,
    verdict: Verdict | None,
    lines: Sequence[str],
    *,
    keep_remove: bool,
) -> SlackMessage:
    """The alert as it stands: as posted, with its verdict (vote buttons gone) and the status
    of its removal and appeal (the Remove button gone once a removal exists)."""
    status = [context(f"*{verdict_line(verdict)}*")] if verdict is not None else []
    status += [removal_status(line) for line in lines]
    base = str((original or {}).get("text") or "Moderation alert")
    if verdict is not None:
        base += f" (verdict: {'violation' if verdict.violation else 'no violation'})"
    if not original:
        return SlackMessage(text=base, blocks=tuple(status))
    blocks = []
    for block in original.get("blocks") or ():
        block_id = str(block.get("block_id") or "")
        if block.get("type") == "actions":
            if block_id.startswith(REMOVE_BLOCK):
                if not keep_remove:
                    continue
            elif verdict is not None:
                continue  # the vote buttons
        blocks.append(block)
    return SlackMessage(text=base, blocks=(*blocks[: 50 - len(status)], *status))
