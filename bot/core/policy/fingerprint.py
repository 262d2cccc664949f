"""A short fingerprint of a policy's rules, equal for equal policies in any process (pure).

Replicas sharing a database record theirs, so one started with different rules is noticed.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from bot.core.policy.rules import Policy


def policy_fingerprint(policy: Policy) -> str:
    """16 hex digits of a SHA-256 over the policy's values (where it was read from left out)."""
    plain = _plain(dataclasses.replace(policy, source=""))
    canonical = json.dumps(plain, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    return value
