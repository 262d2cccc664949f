"""The Remove button on alerts: `modbot_remove` (value: the scan id)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.core.messages import removal as texts
from bot.orchestration.removal import RemoveResult
from bot.orchestration.services import Services


def register(app: AsyncApp, services: Services) -> None:
    async def on_remove(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        removals = services.removals
        if removals is None:  # a button from a time when SLACK_ADMIN_TOKEN was set
            await ack()
            await respond(
                text=texts.nothing_to_remove(), response_type="ephemeral", replace_original=False
            )
            return
        container = body.get("container") or {}
        result = await removals.by_button(
            str(action.get("value")), body["user"]["id"], container.get("message_ts")
        )
        await ack()  # the intent is in the database before Slack hears back
        text = {
            RemoveResult.REFUSED: texts.remove_refused(),
            RemoveResult.NOTHING: texts.nothing_to_remove(),
            RemoveResult.ALREADY: texts.already_removing(),
            RemoveResult.ACCEPTED: texts.removal_accepted(),
        }[result]
        await respond(text=text, response_type="ephemeral", replace_original=False)

    app.action(texts.ACTION_REMOVE)(on_remove)
