"""Events API listeners: images in messages (posts, and what edits add), and `file_shared`."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.core import payloads as extract
from bot.orchestration.services import Services


def register(app: AsyncApp, services: Services) -> None:
    # The app runs with process_before_response: the work is recorded in the database before
    # Slack gets its 200 / ack, so an accepted image survives a crash right after the ack.

    @app.event("message")  # every subtype: unhandled events would go un-acked in Socket Mode
    async def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        requests = extract.from_message_event(event, body.get("team_id"))
        await services.pipeline.accept(requests, event_id=extract.event_id(body))

    @app.event("file_shared")
    async def on_file_shared(event: dict[str, Any], body: dict[str, Any]) -> None:
        requests = extract.from_file_shared_event(event, body.get("team_id"))
        await services.pipeline.accept(requests, event_id=extract.event_id(body))

    # Registered last: Bolt runs the first listener that matches, so this takes only the event
    # types above do not. Acking them stops Slack retrying (and counting failures) for events
    # modbot has no use for; Bolt would answer 404 (HTTP) or leave them un-acked (Socket Mode).
    @app.event(re.compile(".*"))
    async def on_other_event() -> None:
        """Acknowledged and ignored."""
