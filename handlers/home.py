"""The App Home tab: `app_home_opened` publishes the viewer's view."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.orchestration.services import Services


def register(app: AsyncApp, services: Services) -> None:
    home = services.home
    if home is None:
        return

    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any]) -> None:
        # The Messages tab opens this event too; only the Home tab has something to show.
        if event.get("tab", "home") == "home" and event.get("user"):
            await home.publish(str(event["user"]))
