"""The "Moderate images" message shortcut: scan the images of a chosen message on demand."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.core import messages
from bot.core import payloads as extract
from bot.orchestration.services import Services

CALLBACK_ID = "modbot_moderate_message"


def register(app: AsyncApp, services: Services) -> None:
    @app.shortcut(CALLBACK_ID)
    async def moderate_message(
        ack: AsyncAck, shortcut: dict[str, Any], respond: AsyncRespond
    ) -> None:
        requests = extract.from_message_shortcut(shortcut)
        await services.pipeline.accept(requests)
        await ack()
        if not requests:  # a message shortcut's ack cannot carry text: answer the invoker
            await respond(text=messages.no_images(), response_type="ephemeral")
