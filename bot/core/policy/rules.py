"""The policy's values and how a rule is resolved for one label (PRODUCT.md §4).

How a rule is found for a label: walk up from it (L3, L2, L1) and then the defaults; at each
label a channel's rule comes before the global one. Each setting is taken from the first rule
on that walk that sets it, so `flag = 95` on an L3 keeps the `review` of its stricter L1.
Whether the label is ignored comes from the first rule that says anything about it: its
`action`, or thresholds, which mean "alert" — so a rule with its own thresholds re-enables a
label under an ignored parent, and an empty rule changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal, TypeVar

from bot.core import taxonomy
from bot.core.model import ChannelMode

Action = Literal["alert", "ignore"]
_T = TypeVar("_T")


class RemoveWhen(StrEnum):
    """The policy key `remove` (PRODUCT §10): when an image is deleted from Slack."""

    NEVER = "never"
    ON_VIOLATION = "on_violation"  # humans confirmed it (and re-posts of what they confirmed)
    ON_FLAG = "on_flag"  # as soon as the decision is `flag`; implies on_violation

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]


_STRICTNESS = {RemoveWhen.NEVER: 0, RemoveWhen.ON_VIOLATION: 1, RemoveWhen.ON_FLAG: 2}


def _no_rules() -> Mapping[str, Rule]:
    return MappingProxyType({})


def _no_channels() -> Mapping[str, ChannelPolicy]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Rule:
    """A rule for one label; None means "as the label's parent (or the defaults) says"."""

    review: float | None = None
    flag: float | None = None
    action: Action | None = None
    remove: RemoveWhen | None = None  # not part of "says anything": it never changes alerting

    @property
    def says_anything(self) -> bool:
        return self.review is not None or self.flag is not None or self.action is not None


@dataclass(frozen=True)
class ChannelPolicy:
    """One channel's overrides; None means "as the global policy says"."""

    mode: ChannelMode | None = None
    review: float | None = None
    flag: float | None = None
    min_confidence: float | None = None
    confirm: bool | None = None
    remove: RemoveWhen | None = None
    labels: Mapping[str, Rule] = field(default_factory=_no_rules)  # keys: canonical names


@dataclass(frozen=True)
class Policy:
    """The whole policy: defaults, global label rules (keyed by canonical name), channels."""

    review: float = 50.0
    flag: float = 90.0
    min_confidence: float = 40.0
    confirm: bool = False
    mode: ChannelMode = ChannelMode.ENFORCE
    remove: RemoveWhen = RemoveWhen.NEVER
    labels: Mapping[str, Rule] = field(default_factory=_no_rules)
    channels: Mapping[str, ChannelPolicy] = field(default_factory=_no_channels)
    source: str = "built-in policy"

    def channel(self, channel: str | None) -> ChannelPolicy:
        """The channel's overrides (empty ones for a channel without any, or for None)."""
        return self.channels.get(channel, _NO_OVERRIDES) if channel else _NO_OVERRIDES

    def mode_for(self, channel: str | None) -> ChannelMode:
        """Whether the channel is enforced, shadowed (record only) or not scanned."""
        return _first(self.channel(channel).mode, self.mode)

    def review_for(self, channel: str | None) -> float:
        """The default review threshold in this channel (labels without a rule)."""
        return _first(self.channel(channel).review, self.review)

    def flag_for(self, channel: str | None) -> float:
        """The default flag threshold in this channel (labels without a rule)."""
        return _first(self.channel(channel).flag, self.flag)

    def min_confidence_for(self, channel: str | None) -> float:
        """Labels below this confidence are not looked at in this channel."""
        return _first(self.channel(channel).min_confidence, self.min_confidence)

    def confirm_for(self, channel: str | None) -> bool:
        """Whether flagged images in this channel also get a human review."""
        return _first(self.channel(channel).confirm, self.confirm)

    def remove_default_for(self, channel: str | None) -> RemoveWhen:
        """When images are removed in this channel, for labels without a `remove` of their own."""
        return _first(self.channel(channel).remove, self.remove)

    @property
    def asks_removal(self) -> bool:
        """Whether any part of the policy removes images (that needs SLACK_ADMIN_TOKEN)."""
        rules = [*self.labels.values()]
        for overrides in self.channels.values():
            rules.extend(overrides.labels.values())
        found = [
            self.remove,
            *(c.remove for c in self.channels.values()),
            *(r.remove for r in rules),
        ]
        return any(when not in (None, RemoveWhen.NEVER) for when in found)

    @property
    def call_min_confidence(self) -> float:
        """The MinConfidence for the one Rekognition call per image: the lowest anywhere.

        Each channel then filters to its own threshold, which gives what a call with that
        channel's MinConfidence would have given.
        """
        found = [c.min_confidence for c in self.channels.values() if c.min_confidence is not None]
        return min([self.min_confidence, *found])


_NO_OVERRIDES = ChannelPolicy()

#: The built-in policy (PRODUCT.md §4): review at 50, flag at 90, MinConfidence 40.
DEFAULT_POLICY = Policy()


def _first(override: _T | None, default: _T) -> _T:
    return default if override is None else override


@dataclass(frozen=True)
class EffectiveRule:
    """The thresholds that apply to one label in one channel once every rule is resolved."""

    review: float
    flag: float
    ignored: bool


def rule_for(policy: Policy, channel: str | None, names: Iterable[str]) -> EffectiveRule:
    """Resolve the rule for a label given its name and its ancestors' names, nearest first."""
    overrides = policy.channel(channel)
    rules: list[Rule] = []
    for name in map(taxonomy.canonical, names):
        rules.extend(r for r in (overrides.labels.get(name), policy.labels.get(name)) if r)
    review = next((r.review for r in rules if r.review is not None), None)
    flag = next((r.flag for r in rules if r.flag is not None), None)
    speaking = next((r for r in rules if r.says_anything), None)
    return EffectiveRule(
        review=_first(review, policy.review_for(channel)),
        flag=_first(flag, policy.flag_for(channel)),
        ignored=speaking is not None and speaking.action == "ignore",
    )


def remove_for(policy: Policy, channel: str | None, paths: Iterable[Iterable[str]]) -> RemoveWhen:
    """`remove` for an image whose deciding labels are `paths` (each a label name and its
    ancestors, nearest first): each label's own, resolved like the thresholds (walking up,
    a channel's rule before the global one, then the channel's and the global default); the
    strictest of them wins. No labels: the channel's default."""
    overrides = policy.channel(channel)
    default = policy.remove_default_for(channel)
    found: list[RemoveWhen] = []
    for names in paths:
        rules: list[Rule] = []
        for name in map(taxonomy.canonical, names):
            rules.extend(r for r in (overrides.labels.get(name), policy.labels.get(name)) if r)
        found.append(next((r.remove for r in rules if r.remove is not None), default))
    return max(found or [default], key=lambda when: when.strictness)
