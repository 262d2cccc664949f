"""The moderation policy: the decision it makes for one detection, and its public API.

Pure: frozen values and functions. The values and rule resolution live in `bot.core.policy.rules`,
reading a policy file in `bot.core.policy.file`, the A2I activation conditions in
`bot.core.policy.a2i`;
everything is re-exported here so callers import from one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.core import taxonomy
from bot.core.model import ChannelMode, Decision, Detection, Label, Outcome
from bot.core.policy.a2i import MAX_CONDITIONS_CHARS, a2i_activation_conditions
from bot.core.policy.file import check_policy_file, load_policy, parse_policy
from bot.core.policy.rules import (
    DEFAULT_POLICY,
    Action,
    ChannelPolicy,
    EffectiveRule,
    Policy,
    RemoveWhen,
    Rule,
    remove_for,
    rule_for,
)

__all__ = [
    "DEFAULT_POLICY",
    "MAX_CONDITIONS_CHARS",
    "Action",
    "ChannelPolicy",
    "EffectiveRule",
    "LabelThresholds",
    "Policy",
    "RemoveWhen",
    "Rule",
    "Thresholds",
    "a2i_activation_conditions",
    "check_policy_file",
    "decide",
    "load_policy",
    "parse_policy",
    "remove_for",
    "rule_for",
    "severity",
    "thresholds_for",
]


def decide(policy: Policy, detection: Detection, channel: str | None) -> Outcome:
    """The decision for a detection in a channel (None: no channel, e.g. a DM'd /moderate).

    Labels under the channel's min_confidence are dropped first, as if Rekognition had been
    called with it; then only the deepest label of each branch is evaluated against its rule.
    The decision is computed whatever the mode: an "off" channel is simply not scanned
    automatically, but someone who asks with /moderate still gets the answer.
    """
    floor = policy.min_confidence_for(channel)
    visible = [label for label in detection.labels if label.confidence >= floor]
    flagged: list[Label] = []
    reviewed: list[Label] = []
    for label in taxonomy.deepest(visible):
        rule = rule_for(policy, channel, reversed(taxonomy.path(label, visible)))
        if rule.ignored:
            continue
        if label.confidence >= rule.flag:
            flagged.append(label)
        elif label.confidence >= rule.review:
            reviewed.append(label)
    decision, causes = (
        (Decision.FLAG, flagged)
        if flagged
        else (Decision.REVIEW, reviewed)
        if reviewed
        else (Decision.ALLOW, [])
    )
    return Outcome(
        decision=decision,
        causes=tuple(causes),
        mode=policy.mode_for(channel),
        confirm=policy.confirm_for(channel),
    )


@dataclass(frozen=True)
class LabelThresholds:
    """What applies to one label named by a rule, for "/moderate policy"."""

    label: str
    review: float
    flag: float
    ignored: bool
    channel_rule: bool  # the channel has its own rule for this label


@dataclass(frozen=True)
class Thresholds:
    """Everything in force in one channel, resolved, for "/moderate policy"."""

    channel: str | None
    mode: ChannelMode
    review: float
    flag: float
    min_confidence: float
    confirm: bool
    labels: tuple[LabelThresholds, ...]  # in taxonomy order
    source: str


def thresholds_for(policy: Policy, channel: str | None) -> Thresholds:
    """The resolved thresholds in a channel: defaults, and each label that has a rule."""
    overrides = policy.channel(channel)
    named = set(policy.labels) | set(overrides.labels)
    order = {name: i for i, name in enumerate(taxonomy.ALL_LABELS)}
    labels = []
    for name in sorted(named, key=lambda n: (order.get(n, len(order)), n)):
        rule = rule_for(policy, channel, (name, *taxonomy.ancestors(name)))
        labels.append(
            LabelThresholds(name, rule.review, rule.flag, rule.ignored, name in overrides.labels)
        )
    return Thresholds(
        channel=channel,
        mode=policy.mode_for(channel),
        review=policy.review_for(channel),
        flag=policy.flag_for(channel),
        min_confidence=policy.min_confidence_for(channel),
        confirm=policy.confirm_for(channel),
        labels=tuple(labels),
        source=policy.source,
    )


def severity(decision: Decision) -> int:
    """Decisions in order of strictness: allow < review < flag."""
    return _SEVERITY[decision]


_SEVERITY: Mapping[Decision, int] = {Decision.ALLOW: 0, Decision.REVIEW: 1, Decision.FLAG: 2}
