"""Reading and validating a policy TOML file: every problem names the file, a dotted key, a reason.

Strict on purpose: an unknown key or label name is an error, not something skipped, because a
typo in a moderation policy silently weakens moderation.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from bot.core import taxonomy
from bot.core.errors import PolicyError
from bot.core.model import ChannelMode
from bot.core.policy.rules import (
    DEFAULT_POLICY,
    Action,
    ChannelPolicy,
    Policy,
    RemoveWhen,
    Rule,
)

_TOP_KEYS = ("defaults", "labels", "channels")
_DEFAULT_KEYS = ("review", "flag", "min_confidence", "confirm", "mode", "remove")
_CHANNEL_KEYS = (*_DEFAULT_KEYS, "labels")
_RULE_KEYS = ("review", "flag", "action", "remove")
_ACTIONS: tuple[Action, ...] = ("alert", "ignore")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# Channel, private-group and DM ids; a mistyped id would otherwise be a rule that never applies.
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


def load_policy(path: str | Path | None) -> Policy:
    """The policy in a TOML file, or the built-in one for None; PolicyError when invalid."""
    if path is None:
        return DEFAULT_POLICY
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise PolicyError(source, "(file)", f"cannot read it: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(source, "(file)", "not UTF-8 text") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = _TOML_LINE.search(message)
        key = f"line {where.group(1)}" if where else "(end of file)"
        raise PolicyError(source, key, f"invalid TOML: {message}") from exc
    return parse_policy(data, source)


def parse_policy(data: Mapping[str, Any], source: str) -> Policy:
    """Validate already-parsed TOML data and build the Policy; PolicyError on the first problem."""
    check = _Checker(source)
    check.keys(data, "", _TOP_KEYS)
    defaults = check.table(data.get("defaults", {}), "defaults")
    check.keys(defaults, "defaults", _DEFAULT_KEYS)
    review = check.number(defaults, "defaults", "review")
    flag = check.number(defaults, "defaults", "flag")
    check.band(
        "defaults",
        DEFAULT_POLICY.review if review is None else review,
        DEFAULT_POLICY.flag if flag is None else flag,
    )
    min_confidence = check.number(defaults, "defaults", "min_confidence")
    confirm = check.boolean(defaults, "defaults", "confirm")
    mode = check.mode(defaults, "defaults")
    remove = check.remove(defaults, "defaults")
    channels = check.table(data.get("channels", {}), "channels")
    return Policy(
        review=DEFAULT_POLICY.review if review is None else review,
        flag=DEFAULT_POLICY.flag if flag is None else flag,
        min_confidence=(
            DEFAULT_POLICY.min_confidence if min_confidence is None else min_confidence
        ),
        confirm=DEFAULT_POLICY.confirm if confirm is None else confirm,
        mode=DEFAULT_POLICY.mode if mode is None else mode,
        remove=DEFAULT_POLICY.remove if remove is None else remove,
        labels=check.labels(data.get("labels", {}), "labels"),
        channels=MappingProxyType(
            {cid: check.channel(cid, value) for cid, value in channels.items()}
        ),
        source=source,
    )


def check_policy_file(path: str | Path) -> tuple[int, str]:
    """`modbot policy check FILE`: (0, a summary) when valid, (1, "file: key: reason") when not."""
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        return 1, str(exc)
    return 0, (
        f"{path}: OK ({len(policy.labels)} label rules, {len(policy.channels)} channels; "
        f"review {policy.review:g}, flag {policy.flag:g}, "
        f"min_confidence {policy.min_confidence:g}; remove {policy.remove.value})"
    )


def _part(name: str) -> str:
    """One segment of a dotted key, quoted as TOML would need it."""
    return name if _BARE_KEY.fullmatch(name) else _quoted(name)


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _join(prefix: str, part: str) -> str:
    return f"{prefix}.{part}" if prefix else part


class _Checker:
    """Validation steps sharing the file name; each raises PolicyError on failure."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, reason: str) -> PolicyError:
        return PolicyError(self.source, key, reason)

    def table(self, value: object, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a table, got {_show(value)}")
        return cast(Mapping[str, Any], value)

    def keys(self, table: Mapping[str, Any], prefix: str, allowed: tuple[str, ...]) -> None:
        for name in table:
            if name not in allowed:
                hint = _did_you_mean(name, allowed)
                raise self.fail(
                    _join(prefix, _part(name)),
                    f"unknown key{hint} (allowed: {', '.join(allowed)})",
                )

    def number(self, table: Mapping[str, Any], prefix: str, name: str) -> float | None:
        if name not in table:
            return None
        value = table[name]
        key = _join(prefix, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number from 0 to 100, got {_show(value)}")
        if not (math.isfinite(value) and 0 <= value <= 100):
            raise self.fail(key, f"must be from 0 to 100, got {value}")
        return float(value)

    def boolean(self, table: Mapping[str, Any], prefix: str, name: str) -> bool | None:
        if name not in table:
            return None
        value = table[name]
        if not isinstance(value, bool):
            raise self.fail(_join(prefix, name), f"must be true or false, got {_show(value)}")
        return value

    def mode(self, table: Mapping[str, Any], prefix: str) -> ChannelMode | None:
        if "mode" not in table:
            return None
        value = table["mode"]
        allowed = ", ".join(m.value for m in ChannelMode)
        if not isinstance(value, str) or value not in {m.value for m in ChannelMode}:
            raise self.fail(_join(prefix, "mode"), f"unknown mode {_show(value)} ({allowed})")
        return ChannelMode(value)

    def remove(self, table: Mapping[str, Any], prefix: str) -> RemoveWhen | None:
        if "remove" not in table:
            return None
        value = table["remove"]
        allowed = ", ".join(w.value for w in RemoveWhen)
        if not isinstance(value, str) or value not in {w.value for w in RemoveWhen}:
            raise self.fail(_join(prefix, "remove"), f"unknown value {_show(value)} ({allowed})")
        return RemoveWhen(value)

    def band(self, prefix: str, review: float | None, flag: float | None) -> None:
        if review is not None and flag is not None and review > flag:
            raise self.fail(
                _join(prefix, "review"), f"review ({review:g}) is above flag ({flag:g})"
            )

    def labels(self, value: object, prefix: str) -> Mapping[str, Rule]:
        rules: dict[str, Rule] = {}
        spelt: dict[str, str] = {}
        for name, body in self.table(value, prefix).items():
            key = _join(prefix, _quoted(name))  # label names are always quoted, as written
            if not taxonomy.is_known(name):
                guess = taxonomy.suggest(name)
                hint = f' (did you mean "{guess}"?)' if guess else ""
                raise self.fail(key, f'unknown label "{name}"{hint} (Rekognition v7 names)')
            canonical = taxonomy.canonical(name)
            if canonical in rules:
                raise self.fail(key, f'the same label as "{spelt[canonical]}", given twice')
            spelt[canonical] = name
            rules[canonical] = self.rule(body, key)
        return MappingProxyType(rules)

    def rule(self, value: object, key: str) -> Rule:
        table = self.table(value, key)
        self.keys(table, key, _RULE_KEYS)
        review = self.number(table, key, "review")
        flag = self.number(table, key, "flag")
        self.band(key, review, flag)
        action = table.get("action")
        if action is not None and action not in _ACTIONS:
            raise self.fail(_join(key, "action"), f"unknown action {_show(action)} (alert, ignore)")
        if action == "ignore" and (review is not None or flag is not None):
            raise self.fail(
                _join(key, "action"), 'action "ignore" cannot be combined with review or flag'
            )
        return Rule(
            review=review,
            flag=flag,
            action=cast(Action | None, action),
            remove=self.remove(table, key),
        )

    def channel(self, channel_id: str, value: object) -> ChannelPolicy:
        key = _join("channels", _part(channel_id))
        if not _CHANNEL_ID.fullmatch(channel_id):
            raise self.fail(key, "not a Slack channel id (one like C0123ABCD)")
        table = self.table(value, key)
        self.keys(table, key, _CHANNEL_KEYS)
        review = self.number(table, key, "review")
        flag = self.number(table, key, "flag")
        self.band(key, review, flag)
        return ChannelPolicy(
            mode=self.mode(table, key),
            review=review,
            flag=flag,
            min_confidence=self.number(table, key, "min_confidence"),
            confirm=self.boolean(table, key, "confirm"),
            remove=self.remove(table, key),
            labels=self.labels(table.get("labels", {}), _join(key, "labels")),
        )


def _did_you_mean(name: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, allowed, n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _show(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)
