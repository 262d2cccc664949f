"""The App Home tab: on `app_home_opened`, the viewer's view is built and published."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from bot.adapters.database.home import home_state
from bot.adapters.database.scans import Store
from bot.adapters.slack import SlackUnavailable
from bot.core.messages.home import home_view
from bot.core.policy import Policy

log = logging.getLogger(__name__)


class HomePublisher(Protocol):
    async def publish_home(self, user: str, view: dict[str, Any]) -> None: ...

    async def workspace_url(self) -> str | None: ...


class HomeTab:
    def __init__(
        self,
        *,
        store: Store,
        publisher: HomePublisher,
        policy: Policy,
        may_vote: Callable[[str], Awaitable[bool | None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._policy = policy
        self._may_vote = may_vote
        self._clock = clock

    async def publish(self, user: str) -> None:
        """Build `user`'s Home tab and publish it; a Slack failure is logged (the next opening
        of the tab tries again)."""
        state = await home_state(self._store.engine, self._clock())
        view = home_view(
            state,
            policy=self._policy,
            may_vote=await self._may_vote(user),
            workspace_url=await self._publisher.workspace_url(),
        )
        try:
            await self._publisher.publish_home(user, view)
        except SlackUnavailable as exc:
            log.warning("Home tab of %s not published: %s", user, exc)
