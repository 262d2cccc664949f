"""Who belongs to a Slack user group (usergroups.users.list), for the reviewer allow-list."""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import SlackUnavailable, slack_failure


def members_of(response: object) -> frozenset[str]:
    """The user ids in a usergroups.users.list answer (pure)."""
    users = response.get("users") if isinstance(response, dict) else None
    return frozenset(u for u in users or () if isinstance(u, str))


class SlackDirectory:
    """The `ReviewerDirectory` port over the Slack Web API."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def group_members(self, group: str) -> frozenset[str]:
        """The group's members now; SlackUnavailable when Slack cannot say."""
        method = "usergroups.users.list"
        try:
            response = await self._client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            answer = exc.response
            error = answer.get("error") if isinstance(answer.data, dict) else None
            raise slack_failure(
                method, answer.status_code, error, dict(answer.headers or {})
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SlackUnavailable(
                f"Slack {method} failed: {type(exc).__name__} {exc}".rstrip(), transient=True
            ) from None
        return members_of(response.data)
