"""Removing images from Slack with SLACK_ADMIN_TOKEN, and direct messages to posters.

The admin token lives in its own client whose base URL is the Slack API's: it is sent to
Slack's origin only (never to a link's host; fetching never sees it), and only files.delete,
chat.delete and auth.test are called with it. Look-ups (does the file or message still
exist?) and direct messages use the bot token.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import (
    SlackUnavailable,
    api_failure,
    network_failure,
    tagged,
)
from bot.core.errors import ConfigError
from bot.core.messages import SlackMessage
from bot.core.removal import Target

log = logging.getLogger(__name__)

NOTICE_EVENT = "modbot_notice"  # metadata on direct messages, to find one again after a crash
GONE = frozenset({"file_not_found", "file_deleted", "message_not_found"})
TOKEN_REJECTED = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)


class SlackRemover:
    """The `Remover` port: files.delete / chat.delete with the admin token."""

    def __init__(self, admin: AsyncWebClient, bot: AsyncWebClient) -> None:
        self._admin = admin
        self._bot = bot

    async def delete(self, target: Target) -> None:
        """Delete the file or message; SlackUnavailable (with Slack's `error`) when refused."""
        if target.file_id:
            await _call(self._admin, "files_delete", "files.delete", file=target.file_id)
        else:
            await _call(
                self._admin,
                "chat_delete",
                "chat.delete",
                channel=target.channel,
                ts=target.message_ts,
            )

    async def exists(self, target: Target) -> bool:
        """Whether the file or message is still there (asked after a crash that may have come
        between a delete call and its answer being recorded)."""
        try:
            if target.file_id:
                await _call(self._bot, "files_info", "files.info", file=target.file_id)
                return True
            page = await _call(
                self._bot,
                "conversations_history",
                "conversations.history",
                channel=target.channel,
                latest=target.message_ts,
                inclusive=True,
                limit=1,
            )
        except SlackUnavailable as exc:
            if exc.error in GONE:
                return False
            raise
        found = [m for m in page.get("messages") or () if m.get("ts") == target.message_ts]
        return bool(found) and found[0].get("subtype") != "tombstone"


class SlackDirectMessages:
    """The `DirectMessages` port: a message to one user in their conversation with the bot."""

    def __init__(self, bot: AsyncWebClient) -> None:
        self._bot = bot

    async def send(self, user: str, message: SlackMessage, *, tag: str) -> None:
        channel = await self._open(user)
        await _call(
            self._bot,
            "chat_postMessage",
            "chat.postMessage",
            channel=channel,
            unfurl_links=False,
            metadata={"event_type": NOTICE_EVENT, "event_payload": {"scan_id": tag}},
            **message.as_kwargs(),
        )

    async def sent(self, user: str, tag: str) -> bool:
        """Whether a message tagged `tag` is in the conversation already."""
        channel = await self._open(user)
        page = await _call(
            self._bot,
            "conversations_history",
            "conversations.history",
            channel=channel,
            limit=200,
            include_all_metadata=True,
        )
        return any(tagged(m, NOTICE_EVENT, tag) for m in page.get("messages") or ())

    async def _open(self, user: str) -> str:
        opened = await _call(self._bot, "conversations_open", "conversations.open", users=user)
        return str(opened["channel"]["id"])


async def _call(client: AsyncWebClient, attribute: str, method: str, **kwargs: Any) -> Any:
    try:
        return await getattr(client, attribute)(**kwargs)
    except SlackApiError as exc:
        raise api_failure(method, exc) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise network_failure(method, exc) from None


async def check_admin_token(admin: AsyncWebClient, bot: AsyncWebClient) -> None:
    """At start: the token is valid (auth.test) and its user an Owner or Admin (users.info).

    A token Slack refuses, or a user without the rights, stops the start with one line. If
    Slack cannot answer now, the start goes on (a removal will say what is wrong).
    """
    try:
        auth = await admin.auth_test()
        if auth.get("bot_id") and not auth.get("user_id"):
            raise ConfigError(["SLACK_ADMIN_TOKEN: a bot token; use the xoxp- user token"])
        user = str(auth["user_id"])
        info = await bot.users_info(user=user)
    except SlackApiError as exc:
        failure = api_failure("auth.test", exc)
        if failure.transient:
            log.warning("cannot check SLACK_ADMIN_TOKEN at start (%s)", failure.error)
            return
        raise ConfigError([f"SLACK_ADMIN_TOKEN: Slack refused it ({failure.error})"]) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("cannot check SLACK_ADMIN_TOKEN at start (%s)", type(exc).__name__)
        return
    person = info.get("user") or {}
    if not (person.get("is_admin") or person.get("is_owner")):
        raise ConfigError(
            [
                f"SLACK_ADMIN_TOKEN: its user {user} is not a workspace Owner or Admin; "
                "Slack lets only them delete other people's files and messages"
            ]
        )
