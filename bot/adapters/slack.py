"""Slack Web API adapter: posts alerts, thread replies and ephemeral answers; looks up files."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
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

from bot.core.errors import FetchFailed, ModbotError
from bot.core.messages import SlackMessage
from bot.core.model import AlertRef

log = logging.getLogger(__name__)


class SlackUnavailable(ModbotError):
    """Slack refused or failed a call we cannot do without.

    `transient`: worth retrying later (429 beyond slack_sdk's own retries, 5xx, a dropped
    connection, a timeout); otherwise the call will not work however often it is repeated
    (channel_not_found, invalid_auth, not_in_channel, ...). `retry_after`: Slack's own hint.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool = False,
        retry_after: float | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after
        self.error = error  # Slack's error code, when it gave one


# Error codes Slack answers with HTTP 200 that still mean "try again later".
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def slack_failure(
    what: str, status: int, error: str | None, headers: Mapping[str, str]
) -> SlackUnavailable:
    """Classify one failed Slack answer (pure): transient or not, and how long Slack asks."""
    transient = status == 429 or status >= 500 or (error or "") in TRANSIENT_ERRORS
    retry_after = None
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if raw is not None:
        try:
            retry_after = max(0.0, float(raw))
        except ValueError:
            retry_after = None
    return SlackUnavailable(
        f"Slack {what} failed: {error or status}",
        transient=transient,
        retry_after=retry_after,
        error=error or ("ratelimited" if status == 429 else f"HTTP {status}"),
    )


# Reading the alerts channel's history back from this long before the alert intent was
# recorded covers a clock difference between this host and Slack.
HISTORY_MARGIN_SECONDS = 300.0


@dataclass(frozen=True)
class SlackFile:
    """A file hosted by Slack, as files.info describes it."""

    id: str
    name: str | None = None
    mimetype: str | None = None
    filetype: str | None = None
    download_url: str | None = None  # url_private_download, else url_private
    shares: Mapping[str, str] = field(default_factory=dict)  # channel -> ts of its first share

    def share_ts(self, channel: str | None) -> str | None:
        """The ts of the message that shared the file in `channel`."""
        return self.shares.get(channel) if channel is not None else None


def parse_file(info: Mapping[str, Any]) -> SlackFile:
    """files.info's `file` object as our own type (pure; anything malformed is left out)."""

    def text(key: str) -> str | None:
        value = info.get(key)
        return value if isinstance(value, str) and value else None

    shares: dict[str, str] = {}
    scopes = info.get("shares")
    for scope in ("public", "private"):
        by_channel = scopes.get(scope) if isinstance(scopes, Mapping) else None
        if not isinstance(by_channel, Mapping):
            continue
        for channel, entries in by_channel.items():
            if channel in shares or not isinstance(entries, list) or not entries:
                continue
            first = entries[0]
            if isinstance(first, Mapping) and first.get("ts"):
                shares[str(channel)] = str(first["ts"])
    return SlackFile(
        id=text("id") or "",
        name=text("name"),
        mimetype=text("mimetype"),
        filetype=text("filetype"),
        download_url=text("url_private_download") or text("url_private"),
        shares=shares,
    )


class Notifier(Protocol):
    """The port the core uses to say things in Slack."""

    alert_channel: str

    async def post_alert(self, message: SlackMessage, *, scan_id: str) -> AlertRef: ...
    async def find_alert(self, scan_id: str, *, since: float | None = None) -> AlertRef | None: ...
    async def reply(
        self, alert: AlertRef, message: SlackMessage, *, scan_id: str | None = None
    ) -> None: ...
    async def find_reply(self, alert: AlertRef, scan_id: str) -> bool: ...
    async def update(self, alert: AlertRef, message: SlackMessage) -> None: ...
    async def note(self, message: SlackMessage) -> None: ...
    async def respond(self, response_url: str, message: SlackMessage) -> None: ...
    async def permalink(self, channel: str, ts: str) -> str | None: ...
    async def file_info(self, file_id: str) -> SlackFile: ...


def web_client(
    token: str | None, base_url: str, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """One client for the whole app; Bolt copies its base URL, session and retry handlers into
    the client it makes per request (Bolt's own copy has no token: its authorize hook gives
    each request the bot token).

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
        self._workspace_url: str | None = None

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

    async def find_alert(self, scan_id: str, *, since: float | None = None) -> AlertRef | None:
        """An alert for this scan in the alerts channel (by its metadata), posted after `since`.

        Pages through the whole history from just before `since` (when the alert intent was
        recorded), so a busy channel cannot hide it. Needs the bot in the alerts channel;
        without history access this answers None and the alert is posted again (at least once
        rather than never). Slack being unavailable raises a transient SlackUnavailable: the
        scan is retried later rather than risking a second alert.
        """
        oldest = None if since is None else f"{max(0.0, since - HISTORY_MARGIN_SECONDS):.6f}"
        cursor: str | None = None
        while True:
            try:
                page = await self._client.conversations_history(
                    channel=self.alert_channel,
                    limit=200,
                    include_all_metadata=True,
                    oldest=oldest,
                    cursor=cursor,
                )
            except SlackApiError as exc:
                failure = _api_failure("conversations.history", exc)
                if failure.transient:
                    raise failure from None
                log.warning("cannot read alerts channel history: %s", failure)
                return None
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _network_failure("conversations.history", exc) from None
            for found in page.get("messages") or ():
                if _tagged(found, ALERT_EVENT, scan_id):
                    ts = str(found["ts"])
                    return AlertRef(
                        self.alert_channel, ts, await self.permalink(self.alert_channel, ts)
                    )
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
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
        once rather than never). Slack being unavailable raises a transient SlackUnavailable,
        as in find_alert: the reply waits rather than risking a second one.
        """
        try:
            response = await self._client.conversations_replies(
                channel=alert.channel, ts=alert.ts, limit=1000, include_all_metadata=True
            )
        except SlackApiError as exc:
            failure = _api_failure("conversations.replies", exc)
            if failure.transient:
                raise failure from None
            log.warning("cannot read the alert's thread: %s", failure)
            return False
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _network_failure("conversations.replies", exc) from None
        return any(
            _tagged(found, OUTCOME_EVENT, scan_id) for found in response.get("messages") or ()
        )

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
        try:
            response = await webhook.send_dict(body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _network_failure("response_url", exc) from None
        if response.status_code >= 400:
            raise slack_failure(
                "response_url", response.status_code, None, dict(response.headers or {})
            )

    async def permalink(self, channel: str, ts: str) -> str | None:
        try:
            response = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError as exc:  # a missing link is not worth failing an alert for
            log.info("no permalink for %s/%s: %s", channel, ts, exc.response.get("error"))
            return None
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("no permalink for %s/%s: %s", channel, ts, type(exc).__name__)
            return None
        link = response.get("permalink")
        return str(link) if link else None

    async def publish_home(self, user: str, view: dict[str, Any]) -> None:
        """The user's App Home tab (views.publish)."""
        await self._call("views_publish", user_id=user, view=view)

    async def workspace_url(self) -> str | None:
        """https://<workspace>.slack.com/ from auth.test, asked once: links to alerts are built
        from it (chat.getPermalink's form) instead of one call per alert."""
        if self._workspace_url is None:
            try:
                self._workspace_url = str((await self._client.auth_test()).get("url") or "")
            except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
                log.info("no workspace URL: %s", type(exc).__name__)
                return None
        return self._workspace_url or None

    async def file_info(self, file_id: str) -> SlackFile:
        """files.info, parsed into our own type."""
        try:
            response = await self._client.files_info(file=file_id)
        except SlackApiError as exc:
            error = exc.response.get("error")
            raise FetchFailed(
                f"slack file {file_id}",
                f"Slack would not describe the file ({error})",
                transient=_api_failure("files.info", exc).transient,
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = f"Slack could not be reached to describe the file ({type(exc).__name__})"
            raise FetchFailed(f"slack file {file_id}", reason, transient=True) from None
        return parse_file(response["file"])

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return await getattr(self._client, method)(**kwargs)
        except SlackApiError as exc:
            raise _api_failure(method, exc) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _network_failure(method, exc) from None


def api_failure(method: str, exc: SlackApiError) -> SlackUnavailable:
    """A SlackApiError as our own exception (for the other Slack adapters)."""
    return _api_failure(method, exc)


def network_failure(method: str, exc: BaseException) -> SlackUnavailable:
    return _network_failure(method, exc)


def tagged(message: dict[str, Any], event_type: str, scan_id: str) -> bool:
    return _tagged(message, event_type, scan_id)


def _api_failure(method: str, exc: SlackApiError) -> SlackUnavailable:
    response = exc.response
    error = response.get("error") if isinstance(response.data, dict) else None
    return slack_failure(method, response.status_code, error, dict(response.headers or {}))


def _network_failure(method: str, exc: BaseException) -> SlackUnavailable:
    """Slack unreachable, the connection dropped, or no answer in time: try again later."""
    return SlackUnavailable(
        f"Slack {method} failed: {type(exc).__name__} {exc}".rstrip(),
        transient=True,
        error="timeout" if isinstance(exc, TimeoutError) else "unreachable",
    )


def _tagged(message: dict[str, Any], event_type: str, scan_id: str) -> bool:
    """Whether a message carries modbot's metadata of `event_type` for `scan_id`."""
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    return bool(metadata.get("event_type") == event_type and payload.get("scan_id") == scan_id)
