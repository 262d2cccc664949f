"""The A2I HumanLoopActivationConditions that approximate the policy's global review band.

For `modbot policy a2i-conditions` and the `flow` trigger (PRODUCT.md §6.1): the flow
definition, not the bot, then decides when a human loop opens.
"""

from __future__ import annotations

import json
from typing import Any

from bot.core import taxonomy
from bot.core.policy.rules import EffectiveRule, Policy, rule_for

#: A2I's limit on the serialised HumanLoopActivationConditions (aws.md §3.1).
MAX_CONDITIONS_CHARS = 10_240

_CHECK = "ModerationLabelConfidenceCheck"


def a2i_activation_conditions(policy: Policy) -> dict[str, Any]:
    """Conditions under which A2I opens a loop: review <= confidence < flag, global rules only.

    The approximation, and why:
    - Without label rules this is one `*` band, the AWS reference shape.
    - With label rules there is no `*` condition: A2I has no "not", so a `*` band would also
      fire on ignored labels, and on labels with their own band (an Explicit label at 85 under
      `flag = 80` would open a loop while the bot flags it). Instead each v7 label subtree whose
      labels all resolve to one rule gets one band on its top label's name (Rekognition returns
      ancestors with their child's confidence, so the top name stands for the subtree), and
      ignored subtrees get nothing. Names are written in every spelling AWS uses, since A2I
      compares names exactly. Each band is an `And` of two checks on the same name, so it tests
      one label (an `And` over `*` could pair two different labels).
    - Gaps: a label of a mixed subtree returned without any of its children (e.g. only L1
      "Explicit" when an L3 below it has its own rule) opens no loop; labels outside the v7
      tree open none once label rules exist; a loop can open for an image the bot flags
      (another label at or above its flag); channel rules cannot be expressed.
    - The lower bound is max(review, min_confidence), since the bot ignores labels below
      min_confidence. A band that is empty (review >= flag) writes nothing.
    - If the enumeration would exceed A2I's 10,240 characters (measured as
      `json.dumps(..., indent=2)` writes it, so any more compact form fits too) it stops at
      L2, then at L1, using that label's own rule and dropping the finer carve-outs below it.
    - When nothing can open a loop, a condition that is never true is written (leaving the
      conditions out would send every image to humans).

    Structure: a top-level list of simple conditions or `And` pairs (one nesting level), only
    ModerationLabelConfidenceCheck, one comparator per condition.
    """
    if not policy.labels:
        conditions = _band(policy, "*", rule_for(policy, None, ()))
    else:
        # Coarser and coarser until it fits: every level, then down to L2, then L1 only.
        for depth in (3, 2, 1):
            conditions = [c for l1 in taxonomy.TREE for c in _subtree(policy, l1, depth)]
            if size(conditions) <= MAX_CONDITIONS_CHARS:
                break
    if not conditions:
        conditions = [_check("*", "ConfidenceLessThan", 0)]
    return {"Conditions": conditions}


def _rule(policy: Policy, name: str) -> EffectiveRule:
    return rule_for(policy, None, (name, *taxonomy.ancestors(name)))


def _subtree(policy: Policy, name: str, depth: int) -> list[dict[str, Any]]:
    rule = _rule(policy, name)
    uniform = all(_rule(policy, below) == rule for below in taxonomy.descendants(name))
    if uniform or taxonomy.level(name) == depth:
        return _named(policy, name, rule)
    # Mixed subtree: the name itself would also match when a differently-ruled child is
    # returned (same confidence), so only the children get conditions.
    return [c for child in taxonomy.children(name) for c in _subtree(policy, child, depth)]


def _named(policy: Policy, name: str, rule: EffectiveRule) -> list[dict[str, Any]]:
    return [c for spelling in taxonomy.spellings(name) for c in _band(policy, spelling, rule)]


def _band(policy: Policy, name: str, rule: EffectiveRule) -> list[dict[str, Any]]:
    low = max(rule.review, policy.min_confidence)
    if rule.ignored or low >= rule.flag:
        return []
    below_flag = _check(name, "ConfidenceLessThan", rule.flag)
    if low <= 0:
        return [below_flag]
    return [{"And": [_check(name, "ConfidenceGreaterThanEquals", low), below_flag]}]


def _check(name: str, comparator: str, value: float) -> dict[str, Any]:
    number: float | int = int(value) if float(value).is_integer() else value
    return {
        "ConditionType": _CHECK,
        "ConditionParameters": {"ModerationLabelName": name, comparator: number},
    }


def size(conditions: list[dict[str, Any]]) -> int:
    """Characters of the conditions as `json.dumps(..., indent=2)` writes them."""
    return len(json.dumps({"Conditions": conditions}, indent=2))
