"""The `/moderate` slash command: scan a link, `help`, `policy`."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.core import messages
from bot.core.payloads import CommandKind, parse_command
from bot.orchestration.services import Services


def register(app: AsyncApp, services: Services) -> None:
    @app.command("/moderate")
    async def moderate(ack: AsyncAck, command: dict[str, Any]) -> None:
        parsed = parse_command(command)
        if parsed.kind is CommandKind.SCAN and parsed.request is not None:
            await services.pipeline.accept([parsed.request])
            url = parsed.request.image.url or ""
            await ack(text=messages.scanning(url), response_type="ephemeral")
        elif parsed.kind is CommandKind.POLICY:
            summary = messages.policy_summary(services.policy, command.get("channel_id"))
            await ack(response_type="ephemeral", **summary.as_kwargs())
        else:
            usage = messages.usage()
            text = f"{parsed.problem}\n\n{usage.text}" if parsed.problem else usage.text
            await ack(text=text, blocks=list(usage.blocks) or None, response_type="ephemeral")
