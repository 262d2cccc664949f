"""Slack listeners, one module per concern; `register_all` is the one place that composes them."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.orchestration.services import Services
from handlers import actions, appeal, commands, events, removal, shortcuts


def register_all(app: AsyncApp, services: Services) -> None:
    events.register(app, services)
    commands.register(app, services)
    shortcuts.register(app, services)
    actions.register(app, services)
    removal.register(app, services)
    appeal.register(app, services)
