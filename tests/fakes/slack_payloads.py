"""Builders for what Slack sends the bot: events, commands, interactions, and how they travel.

Payloads start from recorded-shape templates in tests/data/slack/ so that fields the bot does not
read yet are still present; the builders only fill in what a test varies. The transports wrap a
payload as Slack would: signed HTTP bodies (slack.md §2, §1.3) or Socket Mode envelopes (§3.2).
"""

# The builders take Slack ids positionally in the order tests read them (channel, user, ...).
# ruff: noqa: PLR0917

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import html
import itertools
import json
import re
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "slack"

# Socket Mode envelope types, and the names HTTP-minded callers tend to use for the same thing.
_KINDS = {
    "events_api": "events_api",
    "events": "events_api",
    "slash_commands": "slash_commands",
    "commands": "slash_commands",
    "interactive": "interactive",
    "interactivity": "interactive",
}
# Slack's mrkdwn markup for links and mentions: <https://x|label>, <@U123>, <#C123|name>.
_MARKUP = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")

_counter = itertools.count(1)


def template(name: str) -> dict[str, Any]:
    """A fresh deep copy of tests/data/slack/<name>.json."""
    return copy.deepcopy(_load(name))


@functools.cache
def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _next_ts() -> str:
    # Distinct and increasing within a run, so retries and dedup keys behave like real events.
    n = next(_counter)
    return f"{1_700_100_000 + n}.{n % 1_000_000:06d}"


def _event_id() -> str:
    return f"Ev0FAKE{next(_counter):06d}"


def _channel_type(channel: str) -> str:
    return {"G": "group", "D": "im"}.get(channel[:1], "channel")


def rich_text_blocks(text: str) -> list[dict[str, Any]]:
    """The rich_text block Slack derives from a message's text (links become link elements)."""
    if not text:
        return []
    elements: list[dict[str, Any]] = []
    pos = 0
    for match in _MARKUP.finditer(text):
        if match.start() > pos:
            elements.append({"type": "text", "text": html.unescape(text[pos : match.start()])})
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            elements.append({"type": "user", "user_id": target[1:]})
        elif target.startswith("#"):
            elements.append({"type": "channel", "channel_id": target[1:]})
        else:
            link: dict[str, Any] = {"type": "link", "url": html.unescape(target)}
            if label:
                link["text"] = html.unescape(label)
            elements.append(link)
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": html.unescape(text[pos:])})
    section = {"type": "rich_text_section", "elements": elements}
    return [{"type": "rich_text", "block_id": uuid.uuid4().hex[:4], "elements": [section]}]


# ------------------------------------------------------------------------------- payloads


def message_event(
    channel: str,
    user: str,
    text: str = "",
    files: Iterable[dict[str, Any]] = (),
    ts: str | None = None,
    event_id: str | None = None,
    subtype: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """An event_callback body for a `message` (subtype file_share when files are given)."""
    files = [copy.deepcopy(f) for f in files]
    body = template("message_file_share" if files else "message_with_links")
    ts = ts or _next_ts()
    event = body["event"]
    event.update(
        {
            "text": text,
            "user": user,
            "channel": channel,
            "channel_type": _channel_type(channel),
            "ts": ts,
            "event_ts": ts,
            "client_msg_id": str(uuid.uuid4()),
            "blocks": rich_text_blocks(text),
        }
    )
    if not event["blocks"]:
        del event["blocks"]
    if files:
        event["files"] = files
    subtype = subtype or ("file_share" if files else None)
    if subtype:
        event["subtype"] = subtype
    else:
        event.pop("subtype", None)
    if thread_ts:
        event["thread_ts"] = thread_ts
    body["event_id"] = event_id or _event_id()
    body["event_time"] = int(float(ts))
    return body


def message_changed_event(
    original: dict[str, Any], text: str, event_id: str | None = None, **changes: Any
) -> dict[str, Any]:
    """The `message_changed` event Slack sends when the message in `original` (a body from
    message_event) is edited to `text` (plus any other fields, e.g. attachments or blocks)."""
    before = copy.deepcopy(original["event"])
    channel = before.pop("channel")
    for key in ("channel_type", "event_ts"):
        before.pop(key, None)
    after = {**copy.deepcopy(before), "text": text, "blocks": rich_text_blocks(text), **changes}
    after["edited"] = {"user": before.get("user"), "ts": _next_ts()}
    if not after["blocks"]:
        del after["blocks"]
    ts = _next_ts()
    body = copy.deepcopy(original)
    body["event"] = {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": channel,
        "channel_type": _channel_type(channel),
        "ts": ts,
        "event_ts": ts,
        "message": after,
        "previous_message": before,
    }
    body["event_id"] = event_id or _event_id()
    body["event_time"] = int(float(ts))
    return body


def file_shared_event(
    file_id: str, channel: str, user: str, event_id: str | None = None
) -> dict[str, Any]:
    """An event_callback body for `file_shared`, which carries only the file id."""
    body = template("file_shared")
    ts = _next_ts()
    body["event"].update(
        {
            "channel_id": channel,
            "file_id": file_id,
            "user_id": user,
            "file": {"id": file_id},
            "event_ts": ts,
        }
    )
    body["event_id"] = event_id or _event_id()
    body["event_time"] = int(float(ts))
    return body


def app_home_opened_event(user: str, *, tab: str = "home") -> dict[str, Any]:
    """An event_callback body for `app_home_opened`: `user` opened the app's `tab`."""
    body = template("app_home_opened")
    body["event"].update({"user": user, "tab": tab, "event_ts": _next_ts()})
    body["event_id"] = _event_id()
    return body


def slash_command(
    text: str, channel: str, user: str, response_url: str, command: str = "/moderate"
) -> dict[str, str]:
    """A slash command's fields, all strings (form fields over HTTP, JSON in Socket Mode)."""
    fields: dict[str, str] = template("slash_command")
    fields.update(
        {
            "text": text,
            "channel_id": channel,
            "user_id": user,
            "response_url": response_url,
            "command": command,
            "trigger_id": f"{next(_counter)}.{uuid.uuid4().int % 10**9}.fake",
        }
    )
    return fields


def block_action(
    action_id: str,
    value: str,
    user: str,
    channel: str,
    message_ts: str,
    response_url: str,
) -> dict[str, Any]:
    """A block_actions payload for a button click on a message in `channel`."""
    payload = template("block_actions")
    payload["user"].update({"id": user, "username": user.lower(), "name": user.lower()})
    payload["container"].update({"message_ts": message_ts, "channel_id": channel})
    payload["channel"]["id"] = channel
    payload["message"]["ts"] = message_ts
    payload["response_url"] = response_url
    payload["trigger_id"] = f"{next(_counter)}.222.fake"
    payload["actions"][0].update({"action_id": action_id, "value": value, "action_ts": _next_ts()})
    return payload


def view_submission(
    callback_id: str, private_metadata: str, user: str, values: dict[str, Any]
) -> dict[str, Any]:
    """A view_submission payload: `user` submitted a modal whose inputs hold `values`
    (block_id -> action_id -> {"type": ..., "value": ...})."""
    payload = template("view_submission")
    payload["user"].update({"id": user, "username": user.lower(), "name": user.lower()})
    payload["trigger_id"] = f"{next(_counter)}.444.fake"
    payload["view"].update(
        {
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {"values": copy.deepcopy(values)},
        }
    )
    return payload


def message_shortcut(
    callback_id: str, message: dict[str, Any], channel: str, user: str, response_url: str
) -> dict[str, Any]:
    """A message_action payload: the user ran a message shortcut on `message`."""
    payload = template("message_shortcut")
    payload["callback_id"] = callback_id
    payload["message"] = copy.deepcopy(message)
    payload["message_ts"] = message.get("ts", payload["message_ts"])
    payload["channel"]["id"] = channel
    payload["user"].update({"id": user, "username": user.lower(), "name": user.lower()})
    payload["response_url"] = response_url
    payload["trigger_id"] = f"{next(_counter)}.738474920.fake"
    payload["action_ts"] = _next_ts()
    return payload


# ------------------------------------------------------------------------------- transports


def _kind(kind: str) -> str:
    try:
        return _KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown payload kind {kind!r}; use one of {sorted(_KINDS)}") from None


def signed_headers(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request-signing headers for `body` (v0 HMAC-SHA256 over v0:ts:body)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def http_body(kind: str, payload: dict[str, Any]) -> tuple[str, str]:
    """The raw HTTP body and Content-Type Slack would POST for this payload."""
    kind = _kind(kind)
    if kind == "events_api":
        return json.dumps(payload), "application/json"
    if kind == "slash_commands":
        return urlencode(payload), "application/x-www-form-urlencoded"
    return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"


def envelope(kind: str, payload: dict[str, Any], retry_attempt: int = 0) -> dict[str, Any]:
    """A Socket Mode envelope carrying `payload` (events_api, slash_commands or interactive)."""
    kind = _kind(kind)
    frame: dict[str, Any] = {
        "envelope_id": str(uuid.uuid4()),
        "type": kind,
        "payload": copy.deepcopy(payload),
        # Only commands and interactions may carry a reply in the ack (slack.md §3.3).
        "accepts_response_payload": kind != "events_api",
    }
    if kind == "events_api":
        frame["retry_attempt"] = retry_attempt
        frame["retry_reason"] = "timeout" if retry_attempt else ""
    return frame
