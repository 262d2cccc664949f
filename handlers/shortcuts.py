"""The "Moderate images" message shortcut: scan the images of a chosen message on demand."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot import extract, messages
from bot.services import Services

CALLBACK_ID = "modbot_moderate_message"


def register(app: AsyncApp, services: Services) -> None:
    async def take(ack: AsyncAck, shortcut: dict[str, Any]) -> None:
        await services.pipeline.accept(extract.from_message_shortcut(shortcut))
        await ack()

    async def tell_if_empty(shortcut: dict[str, Any], respond: AsyncRespond) -> None:
        # Runs after the ack (a lazy listener): a message shortcut's ack cannot carry text.
        if not extract.from_message_shortcut(shortcut):
            await respond(text=messages.no_images(), response_type="ephemeral")

    app.shortcut(CALLBACK_ID)(ack=take, lazy=[tell_if_empty])
