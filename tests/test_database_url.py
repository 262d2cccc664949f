"""DATABASE_URL: the spellings operators use, the async driver each gets, and masked errors."""

from __future__ import annotations

import pytest

from bot.adapters.database.engine import async_url, masked
from bot.core.errors import ConfigError
from bot.settings import load_database_settings, load_settings


@pytest.mark.parametrize(
    ("given", "driver_url"),
    [
        ("sqlite:///modbot.db", "sqlite+aiosqlite:///modbot.db"),
        ("sqlite:////var/lib/modbot/state.db", "sqlite+aiosqlite:////var/lib/modbot/state.db"),
        ("postgresql://u:p@db:5432/modbot", "postgresql+psycopg://u:p@db:5432/modbot"),
        (
            "postgres://u:p@db.example:5432/d1?sslmode=require",
            "postgresql+psycopg://u:p@db.example:5432/d1?sslmode=require",
        ),
        (
            "postgresql+psycopg://u@/modbot?host=/run/postgresql",
            "postgresql+psycopg://u@/modbot?host=/run/postgresql",
        ),
    ],
)
def test_each_spelling_gets_its_async_driver(given: str, driver_url: str) -> None:
    """sqlite:, postgresql: and Heroku's postgres: all run on an async driver."""
    assert async_url(given) == driver_url
    assert load_database_settings(DATABASE_URL=given).sqlalchemy_url == driver_url


def test_an_unknown_scheme_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mysql://… (or a typo) stops the start with one line naming DATABASE_URL, and the
    password in it is not repeated."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("MODBOT_ALERT_CHANNEL", "C1")
    monkeypatch.setenv("DATABASE_URL", "mysql://modbot:hunter2@db/modbot")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    [problem] = caught.value.problems
    assert problem.startswith("DATABASE_URL: must be sqlite:///path.db, postgresql://")
    assert "hunter2" not in problem


def test_masked_urls_hide_the_password_and_the_driver() -> None:
    """Error lines show the URL as the operator wrote it, with *** for the password."""
    assert masked("postgresql+psycopg://u:hunter2@db:5432/m") == "postgresql://u:***@db:5432/m"
    assert masked("sqlite+aiosqlite:///state.db") == "sqlite:///state.db"
