"""Shared pieces of every message: the SlackMessage value, mrkdwn escaping and block helpers.

The package as a whole holds every user-facing text modbot posts (PRODUCT.md §5-6).
Pure builders: values in, `SlackMessage` out. Text a user or another site controls (file names,
URLs) is escaped for mrkdwn; the scanned image itself is never included. Block Kit limits
(50 blocks, 3000 characters per section, 10 fields, 150 per header) hold by construction: long
label lists are summarised line by line, never cut mid-structure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bot.core.model import AlertRef, Decision

ACTION_VIOLATION = "modbot_review_violation"
ACTION_OK = "modbot_review_ok"

MAX_SECTION_CHARS = 3000
MAX_BREAKDOWN_LINES = 20  # branches shown before "… and N more labels"
MAX_FIELD_CHARS = 2000
BAR_CELLS = 10
PATH_SEPARATOR = " \u203a "  # the single right-pointing angle quote, between L1, L2 and L3

TITLES = {
    Decision.FLAG: (":rotating_light:", "Flagged"),
    Decision.REVIEW: (":warning:", "Needs review"),
    Decision.ALLOW: (":white_check_mark:", "Allowed"),
}
_SLACK_ID = re.compile(r"[A-Z0-9]{2,}")


@dataclass(frozen=True)
class SlackMessage:
    """A message ready for chat.postMessage / chat.update / an ephemeral reply."""

    text: str  # the notification fallback; always set
    blocks: tuple[dict[str, Any], ...] = ()

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for slack_sdk; "blocks" only when there are any."""
        kwargs: dict[str, Any] = {"text": self.text}
        if self.blocks:
            kwargs["blocks"] = list(self.blocks)
        return kwargs


# --- formatting helpers -------------------------------------------------------------------


def escape(text: str) -> str:
    """Text made safe for mrkdwn: no mentions, links or markup can be smuggled in."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def percent(confidence: float) -> str:
    """A confidence as shown everywhere: one decimal and a percent sign (97.3%).

    Rounded half up, as a reader expects (97.25 -> 97.3%), not half to even.
    """
    clamped = Decimal(repr(min(max(confidence, 0.0), 100.0)))
    return f"{clamped.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def bar(confidence: float) -> str:
    """A ten-cell bar for a 0..100 confidence."""
    filled = min(BAR_CELLS, max(0, int(confidence / 100 * BAR_CELLS + 0.5)))
    return "▰" * filled + "▱" * (BAR_CELLS - filled)


def short_id(scan_id: str) -> str:
    """The scan id as shown to people; the full id stays in button values and logs."""
    return scan_id[:8]


# scheme://user:password@ — everything up to the authority's last "@".
_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def link(url: str, label: str | None = None) -> str:
    """A mrkdwn link; a URL too long for a field is shown (shortened) but not linked.

    Credentials in a posted link (`user:password@`) are never echoed into a channel.
    """
    url = _CREDENTIALS.sub(r"\1", url, count=1)
    if len(url) > 1000:
        return escape(url[:100]) + "…"
    target = escape(url).replace("|", "%7C")
    return f"<{target}|{escape(label)}>" if label else f"<{target}>"


def channel_ref(channel: str) -> str:
    return f"<#{channel}>" if _SLACK_ID.fullmatch(channel) else escape(channel)


def user_ref(user: str) -> str:
    return f"<@{user}>" if _SLACK_ID.fullmatch(user) else escape(user)


def code(text: str) -> str:
    return "`" + escape(text.replace("`", "'"))[:200] + "`"


def alert_link(alert: AlertRef | None, label: str) -> str:
    if alert is None:
        return ""
    if alert.permalink:
        return link(alert.permalink, label)
    return f"{label} in {channel_ref(alert.channel)}"


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def sections(title: str, lines: Sequence[str]) -> list[dict[str, Any]]:
    """Lines packed into as few sections as fit in 3000 characters each, never split."""
    chunks: list[str] = []
    current = title
    for whole in lines:
        line = whole[: MAX_SECTION_CHARS - 10]
        if len(current) + 1 + len(line) > MAX_SECTION_CHARS:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    chunks.append(current)
    return [section(chunk) for chunk in chunks if chunk]
