"""A2I activation conditions for the Rekognition task type (aws.md §3.2-3.3): checked and evaluated.

Pure functions over plain dicts, so the emulator and its tests share one reading of the grammar.
Choices on points aws.md leaves UNCONFIRMED:
- leaves see the labels *in the response* (after MinConfidence, every taxonomy level);
- several comparators in one ConditionParameters must all hold;
- ModerationLabelName must be "*" or a v7 name: a typo would otherwise silently never match;
- Sampling hashes a per-request key (image identity + flow ARN), so a resent request samples alike.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .taxonomy_v7 import NODES

CONFIDENCE_CHECK = "ModerationLabelConfidenceCheck"
SAMPLING = "Sampling"
MAX_NESTING = 2  # "Up to two levels of nesting are supported."

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    "ConfidenceEquals": operator.eq,
    "ConfidenceLessThan": operator.lt,
    "ConfidenceLessThanEquals": operator.le,
    "ConfidenceGreaterThan": operator.gt,
    "ConfidenceGreaterThanEquals": operator.ge,
}


class ConditionError(ValueError):
    """The conditions document breaks the grammar (CreateFlowDefinition would refuse it)."""


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate(conditions: object) -> None:
    """Raise ConditionError unless `conditions` is a valid {"Conditions": [...]} document."""
    if not isinstance(conditions, dict) or set(conditions) != {"Conditions"}:
        raise ConditionError('expected exactly {"Conditions": [...]}')
    top = conditions["Conditions"]
    if not isinstance(top, list) or not top:
        raise ConditionError("Conditions must be a non-empty list")
    for node in top:
        _validate_node(node, depth=0)


def _validate_node(node: object, depth: int) -> None:
    if not isinstance(node, dict):
        raise ConditionError(f"condition must be an object, got {node!r}")
    for key in ("And", "Or"):
        if key in node:
            if set(node) != {key}:
                raise ConditionError(f"{key} must be the only key of its object")
            if depth >= MAX_NESTING:
                raise ConditionError(f"more than {MAX_NESTING} levels of And/Or nesting")
            children = node[key]
            if not isinstance(children, list) or len(children) < 2:
                raise ConditionError(f"{key} needs a list of at least 2 conditions")
            for child in children:
                _validate_node(child, depth + 1)
            return
    _validate_leaf(node)


def _validate_leaf(node: dict[str, Any]) -> None:
    kind = node.get("ConditionType")
    params = node.get("ConditionParameters")
    if set(node) != {"ConditionType", "ConditionParameters"} or not isinstance(params, dict):
        raise ConditionError("a simple condition is {ConditionType, ConditionParameters}")
    if kind == CONFIDENCE_CHECK:
        _validate_confidence_check(params)
    elif kind == SAMPLING:
        pct = params.get("RandomSamplingPercentage")
        if set(params) != {"RandomSamplingPercentage"} or not isinstance(pct, int | float):
            raise ConditionError("Sampling takes exactly a numeric RandomSamplingPercentage")
        if isinstance(pct, bool) or not 0.01 <= pct <= 100:
            raise ConditionError("RandomSamplingPercentage must be within 0.01-100")
    else:
        raise ConditionError(f"unsupported ConditionType {kind!r} for Rekognition")


def _validate_confidence_check(params: dict[str, Any]) -> None:
    name = params.get("ModerationLabelName")
    if name != "*" and name not in NODES:
        raise ConditionError(f"ModerationLabelName {name!r} is neither '*' nor a v7 label")
    comparators = set(params) - {"ModerationLabelName"}
    if not comparators or not comparators <= COMPARATORS.keys():
        raise ConditionError(
            f"need one or more of {sorted(COMPARATORS)}, got {sorted(comparators)}"
        )
    for key in comparators:
        if not _is_number(params[key]) or not 0 <= params[key] <= 100:
            raise ConditionError(f"{key} must be a number within 0-100")


@dataclass(frozen=True)
class Evaluation:
    """What the conditions said about one inference."""

    triggered: bool
    tree: dict[str, Any]  # the conditions with "EvaluationResult" on every node
    selected: frozenset[str]  # labels behind the true leaves: what reviewers are shown


def sample_fraction(sample_key: str) -> float:
    """A stable number in [0, 100) for one request: Sampling fires when it is below the share."""
    digest = hashlib.sha256(sample_key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def evaluate(
    conditions: Mapping[str, Any], labels: Mapping[str, float], sample_key: str
) -> Evaluation:
    """Evaluate every condition (no short-circuit, as A2I does); the top level is an OR."""
    results = [_evaluate_node(node, labels, sample_key) for node in conditions["Conditions"]]
    triggered = any(ok for ok, _, _ in results)
    selected: set[str] = set()
    for ok, _, names in results:
        if ok:
            selected |= names
    if triggered and not selected:  # pure Sampling: reviewers see every label
        selected = set(labels)
    tree = {"Conditions": [node for _, node, _ in results]}
    return Evaluation(triggered, tree, frozenset(selected))


def _evaluate_node(
    node: Mapping[str, Any], labels: Mapping[str, float], sample_key: str
) -> tuple[bool, dict[str, Any], set[str]]:
    for key, combine in (("And", all), ("Or", any)):
        if key in node:
            children = [_evaluate_node(child, labels, sample_key) for child in node[key]]
            ok = combine(child_ok for child_ok, _, _ in children)
            names: set[str] = set()
            if ok:
                for child_ok, _, child_names in children:
                    if child_ok:
                        names |= child_names
            return ok, {key: [tree for _, tree, _ in children], "EvaluationResult": ok}, names
    params = node["ConditionParameters"]
    if node["ConditionType"] == SAMPLING:
        ok = sample_fraction(sample_key) < params["RandomSamplingPercentage"]
        names = set()
    else:
        wanted = params["ModerationLabelName"]
        names = {
            name
            for name, confidence in labels.items()
            if wanted in ("*", name)
            and all(
                COMPARATORS[key](confidence, limit)
                for key, limit in params.items()
                if key in COMPARATORS
            )
        }
        ok = bool(names)
    tree = {
        "ConditionType": node["ConditionType"],
        "ConditionParameters": dict(params),
        "EvaluationResult": ok,
    }
    return ok, tree, names


def _map_params(tree: Any, fix: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    if isinstance(tree, dict):
        return {
            key: fix(value) if key == "ConditionParameters" else _map_params(value, fix)
            for key, value in tree.items()
        }
    if isinstance(tree, list):
        return [_map_params(item, fix) for item in tree]
    return tree


def response_string(tree: Mapping[str, Any]) -> str:
    """HumanLoopActivationConditionsEvaluationResults: compact JSON text, numbers as floats."""

    def floats(params: dict[str, Any]) -> dict[str, Any]:
        return {k: float(v) if _is_number(v) else v for k, v in params.items()}

    return json.dumps(_map_params(tree, floats), separators=(",", ":"))


def output_form(tree: Mapping[str, Any]) -> Any:
    """The same tree as output.json carries it: ConditionParameters keys in alphabetical order."""
    return _map_params(tree, lambda params: dict(sorted(params.items())))
