"""Rules about Slack's ids that the core needs (pure)."""

from __future__ import annotations


def is_user_group(entry: str) -> bool:
    """Whether an id names a user group (S…) rather than a user (U… or W…)."""
    return entry.startswith("S")
