"""Slack Web API adapter: posts alerts, thread replies and ephemeral answers; looks up files."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import FetchFailed, ModbotError
from bot.messages import SlackMessage
from bot.model import AlertRef

log = logging.getLogger(__name__)


class SlackUnavailable(ModbotError):
    """Slack refused or failed a call we cannot do without."""


class Notifier(Protocol):
    """The port the core uses to say things in Slack."""

    alert_channel: str

    async def post_alert(self, message: SlackMessage, *, scan_id: str) -> AlertRef: ...
    async def find_alert(self, scan_id: str) -> AlertRef | None: ...
    async def reply(
        self, alert: AlertRef, message: SlackMessage, *, scan_id: str | None = None
    ) -> None: ...
    async def find_reply(self, alert: AlertRef, scan_id: str) -> bool: ...
    async def update(self, alert: AlertRef, message: SlackMessage) -> None: ...
    async def note(self, message: SlackMessage) -> None: ...
    async def respond(self, response_url: str, message: SlackMessage) -> None: ...
    async def permalink(self, channel: str, ts: str) -> str | None: ...
    async def file_info(self, file_id: str) -> dict[str, Any]: ...


def web_client(
    token: str, base_url: str, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """One client for the whole app; Bolt copies its base URL, session and retry handlers into
    the client it makes per request.

    With a shared session connections to Slack are kept alive (without one slack_sdk opens a
    new connection for every call). Slack's 429 answers are retried after Retry-After, 5xx and
    dropped connections a few times.
    """
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        session=session,
        timeout=15,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=3),
            AsyncRateLimitErrorRetryHandler(max_retry_count=8),
            AsyncServerErrorRetryHandler(max_retry_count=3),
        ],
    )


ALERT_EVENT = "modbot_alert"  # message metadata type carrying the scan id
OUTCOME_EVENT = "modbot_review_outcome"  # the same, on a review's verdict or failure reply


class SlackNotifier:
    def __init__(self, client: AsyncWebClient, alert_channel: str) -> None:
        self._client = client
        self.alert_channel = alert_channel

    async def post_alert(self, message: SlackMessage, *, scan_id: str) -> AlertRef:
        response = await self._call(
            "chat_postMessage",
            channel=self.alert_channel,
            unfurl_links=False,
            unfurl_media=False,
            metadata={"event_type": ALERT_EVENT, "event_payload": {"scan_id": scan_id}},
            **message.as_kwargs(),
        )
        # No permalink yet: it is looked up only when a re-post needs to link to this alert.
        return AlertRef(str(response.get("channel") or self.alert_channel), str(response["ts"]))

    async def find_alert(self, scan_id: str) -> AlertRef | None:
        """An alert for this scan among the channel's recent messages (by its metadata).

        Needs the bot in the alerts channel; without history access this answers None and
        the alert is posted again (at least once rather than never).
        """
        try:
            response = await self._client.conversations_history(
                channel=self.alert_channel, limit=200, include_all_metadata=True
            )
        except SlackApiError as exc:
            log.warning("cannot read alerts channel history: %s", exc.response.get("error"))
            return None
        for found in response.get("messages") or ():
            metadata = found.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == ALERT_EVENT and payload.get("scan_id") == scan_id:
                ts = str(found["ts"])
                return AlertRef(
                    self.alert_channel, ts, await self.permalink(self.alert_channel, ts)
                )
        return None

    async def reply(
        self, alert: AlertRef, message: SlackMessage, *, scan_id: str | None = None
    ) -> None:
        """A reply in the alert's thread; with `scan_id`, one `find_reply` can find again."""
        tagged: dict[str, Any] = {}
        if scan_id is not None:
            tagged["metadata"] = {
                "event_type": OUTCOME_EVENT,
                "event_payload": {"scan_id": scan_id},
            }
        await self._call(
            "chat_postMessage",
            channel=alert.channel,
            thread_ts=alert.ts,
            unfurl_links=False,
            unfurl_media=False,
            **tagged,
            **message.as_kwargs(),
        )

    async def find_reply(self, alert: AlertRef, scan_id: str) -> bool:
        """Whether the alert's thread holds the outcome reply tagged with `scan_id`.

        Without history access this answers False and the reply is posted again (at least
        once rather than never).
        """
        try:
            response = await self._client.conversations_replies(
                channel=alert.channel, ts=alert.ts, limit=1000, include_all_metadata=True
            )
        except SlackApiError as exc:
            log.warning("cannot read the alert's thread: %s", exc.response.get("error"))
            return False
        for found in response.get("messages") or ():
            metadata = found.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == OUTCOME_EVENT and payload.get("scan_id") == scan_id:
                return True
        return False

    async def update(self, alert: AlertRef, message: SlackMessage) -> None:
        await self._call("chat_update", channel=alert.channel, ts=alert.ts, **message.as_kwargs())

    async def note(self, message: SlackMessage) -> None:
        await self._call(
            "chat_postMessage",
            channel=self.alert_channel,
            unfurl_links=False,
            unfurl_media=False,
            **message.as_kwargs(),
        )

    async def respond(self, response_url: str, message: SlackMessage) -> None:
        webhook = AsyncWebhookClient(response_url, timeout=15)
        body = {"response_type": "ephemeral", "replace_original": False, **message.as_kwargs()}
        response = await webhook.send_dict(body)
        if response.status_code >= 400:
            raise SlackUnavailable(f"response_url answered HTTP {response.status_code}")

    async def permalink(self, channel: str, ts: str) -> str | None:
        try:
            response = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError as exc:  # a missing link is not worth failing an alert for
            log.info("no permalink for %s/%s: %s", channel, ts, exc.response.get("error"))
            return None
        link = response.get("permalink")
        return str(link) if link else None

    async def file_info(self, file_id: str) -> dict[str, Any]:
        try:
            response = await self._client.files_info(file=file_id)
        except SlackApiError as exc:
            error = exc.response.get("error")
            raise FetchFailed(
                f"slack file {file_id}",
                f"Slack would not describe the file ({error})",
                transient=exc.response.status_code >= 500,
            ) from None
        return dict(response["file"])

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return await getattr(self._client, method)(**kwargs)
        except SlackApiError as exc:
            raise SlackUnavailable(
                f"Slack {method} failed: {exc.response.get('error') or exc.response.status_code}"
            ) from None
