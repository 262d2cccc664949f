"""The near-duplicate and HMA settings: defaults, parsing, and what needs what."""

from __future__ import annotations

import pytest

from bot.core.errors import ConfigError
from bot.settings import load_settings

REQUIRED = {"SLACK_BOT_TOKEN": "xoxb-1", "MODBOT_ALERT_CHANNEL": "C1"}


def _set(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in {**REQUIRED, **env}.items():
        monkeypatch.setenv(name, value)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Distance 31, refresh every 2 s, no HMA."""
    _set(monkeypatch)
    settings = load_settings()
    assert settings.match_distance == 31
    assert settings.bank_refresh_seconds == 2
    assert settings.hma is None


def test_hma_settings_become_the_clients_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Banks are a comma list; the token stays secret in the settings' repr."""
    _set(
        monkeypatch,
        MODBOT_HMA_URL="https://hma.internal:5000",
        MODBOT_HMA_BANKS="A_BANK, B_BANK",
        MODBOT_HMA_PUSH_BANK="MINE",
        MODBOT_HMA_TOKEN="s3cret",
        MODBOT_HMA_TIMEOUT_SECONDS="1.5",
    )
    settings = load_settings()
    assert "s3cret" not in repr(settings)
    hma = settings.hma
    assert hma is not None
    assert hma.banks == ("A_BANK", "B_BANK")
    assert hma.push_bank == "MINE"
    assert hma.timeout == 1.5
    assert hma.headers() == {"Authorization": "Bearer s3cret"}


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"MODBOT_HMA_BANKS": "A"}, "MODBOT_HMA_BANKS needs MODBOT_HMA_URL"),
        ({"MODBOT_HMA_PUSH_BANK": "A"}, "MODBOT_HMA_PUSH_BANK needs MODBOT_HMA_URL"),
        ({"MODBOT_HMA_URL": "hma.internal"}, "MODBOT_HMA_URL: must be an http(s) URL"),
        ({"MODBOT_MATCH_DISTANCE": "64"}, "MODBOT_MATCH_DISTANCE: "),
    ],
)
def test_bad_combinations_are_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], problem: str
) -> None:
    _set(monkeypatch, **env)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert any(line.startswith(problem) for line in caught.value.problems), caught.value.problems
