"""Slack id rules the core relies on."""

from __future__ import annotations

import pytest

from bot.core.slack_ids import is_user_group


@pytest.mark.parametrize(
    ("entry", "group"),
    [("S0MODS", True), ("U0MOD1", False), ("W0ENTERPRISE", False), ("", False)],
)
def test_an_id_starting_with_s_is_a_user_group(entry: str, group: bool) -> None:
    """S… ids are user groups (their members count); U… and W… ids are people."""
    assert is_user_group(entry) is group
