"""Slack listeners, one module per concern; `register_all` is the one place that composes them."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.orchestration.services import Services
from handlers import actions, appeal, commands, events, home, removal, shortcuts


def register_all(app: AsyncApp, services: Services) -> None:
    home.register(app, services)  # before events: its catch-all takes every event left
    events.register(app, services)
    commands.register(app, services)
    shortcuts.register(app, services)
    actions.register(app, services)
    removal.register(app, services)
    appeal.register(app, services)
